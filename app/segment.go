package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/liveroom/liveroom/gateway"
	"github.com/liveroom/liveroom/segment"
)

// inUse says what a store's lock wait running out means: another node holds --data.
func (a *App) inUse(err error) error {
	if errors.Is(err, segment.ErrLocked) || errors.Is(err, bolt.ErrTimeout) {
		return fmt.Errorf("%w (is another liveroom using --data %s?)", err, a.cfg.Data)
	}
	return err
}

// SegmentFile is the embedded segment store under --data.
const SegmentFile = "segment.db"

// wireSegment opens the embedded segment store, starts the engine on the tap and hands
// it to the gateway. On drain the engine writes what it still holds, then the file is
// closed.
func (a *App) wireSegment(deps *gateway.Deps) error {
	path := filepath.Join(a.cfg.Data, SegmentFile)
	store, err := segment.OpenJournal(path, 2*time.Second, int64(a.cfg.Segment.JournalMiB)<<20, a.log.With("part", "segment"))
	if err != nil {
		return a.inUse(err)
	}
	eng, err := segment.New(a.cfg.Segment, segment.Deps{
		Store: store, Tap: a.tap, Log: a.log.With("part", "segment"), Registry: deps.Registry,
	})
	if err != nil {
		store.Close()
		return err
	}
	deps.Segment = eng
	a.backups = append(a.backups, eng.Backup)
	a.stops = append(a.stops, func(ctx context.Context) error {
		return errors.Join(eng.Close(ctx), store.Close())
	})
	return nil
}
