package app

import "github.com/liveroom/liveroom/gateway"

// wireMedia builds the media service and hands it to the gateway (see its issue).
func (a *App) wireMedia(deps *gateway.Deps) error {
	return nil
}
