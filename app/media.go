package app

import (
	"github.com/liveroom/liveroom/gateway"
	"github.com/liveroom/liveroom/media"
)

// liveFunc adapts the chat live hook (possibly nil) to media.LiveNotifier.
type liveFunc func(room string, live bool)

func (f liveFunc) SetLive(room string, live bool) {
	if f != nil {
		f(room, live)
	}
}

// wireMedia builds the media service (binding the WebRTC ports) and hands it to the
// gateway; it reports going live to chat and watch time to the tap.
func (a *App) wireMedia(deps *gateway.Deps) error {
	m, err := media.New(a.cfg.Media, media.Deps{
		Log: a.log.With("part", "media"), Registry: deps.Registry, Tap: a.pub, Live: liveFunc(a.liveHook),
	})
	if err != nil {
		return err
	}
	deps.Media = m
	a.stops = append(a.stops, m.Close)
	return nil
}
