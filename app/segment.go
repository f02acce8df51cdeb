package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/gateway"
	"github.com/liveroom/liveroom/problem"
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

// maxCatchUp is how long an erasure waits for segment to take the events the tap held
// when it was asked for (at a million events a second, a full tap is gone in a tenth
// of a second: only a stalled node waits this long).
const maxCatchUp = 10 * time.Second

// caughtUp waits until segment has taken from the tap every event published before
// the call: an erasure comes after the viewer's events already on their way, which
// would otherwise make its profile again once the erasure had answered.
func caughtUp(ctx context.Context, tap *event.Queue, seg *segment.Engine) error {
	want := tap.Published()
	ctx, cancel := context.WithTimeout(ctx, maxCatchUp)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for seg.Consumed() < want {
		select {
		case <-ctx.Done():
			return problem.New(problem.Unavailable, "the live events queued before the erasure were not applied within %s; retry", maxCatchUp)
		case <-tick.C:
		}
	}
	return nil
}
