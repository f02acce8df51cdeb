package app

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/liveroom/liveroom/chat"
	"github.com/liveroom/liveroom/gateway"
)

// ChatDB is the chat store's file under --data.
const ChatDB = "chat.db"

// wireChat opens the chat store (<data>/chat.db), builds the hub, hands it to the
// gateway and lets media announce live state through liveHook.
func (a *App) wireChat(deps *gateway.Deps) error {
	store, err := chat.OpenBolt(filepath.Join(a.cfg.Data, ChatDB))
	if err != nil {
		return a.inUse(err)
	}
	hub, err := chat.New(a.cfg.Chat, chat.Deps{Store: store, Tap: a.pub, Registry: deps.Registry, Log: a.log})
	if err != nil {
		store.Close()
		return err
	}
	deps.Chat = hub
	a.chatHub = hub
	deps.Ready = append(deps.Ready, store.Ready)
	a.liveHook = hub.SetLive
	a.backups = append(a.backups, store.Backup)
	a.stops = append(a.stops, func(ctx context.Context) error {
		return errors.Join(hub.Close(ctx), store.Close())
	})
	return nil
}
