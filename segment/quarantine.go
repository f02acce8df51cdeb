package segment

import (
	"context"
	"fmt"
	"strconv"

	"github.com/liveroom/liveroom/event"
)

// KindQuarantine keeps the bytes of a stored profile that could not be decoded when
// the engine loaded (a bug in an encoder, a damaged file), owned by the viewer's id.
// One such record would otherwise stop the node from starting; dropped, it would be
// lost, or written over by the viewer's next event. Set aside, the node starts
// without it, the viewer's next events begin a new profile, and the bytes stay for a
// fix to recover, in the viewer's export, until the viewer is erased.
const KindQuarantine Kind = "quarantine"

// unreadable is a stored profile that did not decode at load.
type unreadable struct {
	id   string // the store's key: the viewer's id
	data []byte // a copy: the store's bytes are only valid during the load's callback
	err  error
}

// quarantine moves the unreadable profiles out of the store's profiles into
// quarantine records, in one batch, keyed by the viewer's id and the load's time
// (Unix ms), so that a later quarantine of the same id keeps both. It fails, and
// so the engine's start does, when the store cannot take them: nothing is dropped.
func (e *Engine) quarantine(ctx context.Context, bad []unreadable, now int64) error {
	if len(bad) == 0 {
		return nil
	}
	b := &Batch{}
	at := strconv.FormatInt(now, 10)
	for _, u := range bad {
		b.DeletedProfiles = append(b.DeletedProfiles, u.id)
		// Owned by the id as lookups write it: a key stored before e-mail keys were
		// kept in lower case is found, exported and erased by its address in any case.
		owner := event.EmailKey(u.id)
		b.own(KindQuarantine, Record{Key: owner + "@" + at, Owner: owner, Data: u.data})
	}
	if err := e.store.Commit(ctx, b); err != nil {
		return fmt.Errorf("setting aside %d unreadable profiles (first %q: %v): %w", len(bad), bad[0].id, bad[0].err, err)
	}
	for _, u := range bad {
		e.log.Error("segment profile set aside: its stored record does not decode; the viewer's next events start a new profile, the bytes are kept in the viewer's export",
			"viewer", u.id, "record", event.EmailKey(u.id)+"@"+at, "bytes", len(u.data), "err", u.err)
	}
	e.metrics.quarantined.Add(float64(len(bad)))
	return nil
}

// Quarantined is a stored profile that could not be decoded, as the export shows it:
// its key (the viewer's id, "@", the time it was set aside in Unix ms) and its bytes
// (base64 in JSON).
type Quarantined struct {
	Key  string `json:"key"`
	Data []byte `json:"data"`
}

// heldOnly returns what the store holds of id (as its e-mail key, as lookups take
// it) when that includes a profile set aside at load (else nil): no profile has the
// id, since its viewer has not come back. Erase and export then act on the store
// alone. An id merged into the set-aside profile finds nothing: its aliases were in
// the bytes that did not decode.
func (e *Engine) heldOnly(ctx context.Context, id string) (map[Kind][]Record, error) {
	held, err := e.store.Held(ctx, []string{event.EmailKey(id)})
	if err != nil || len(held[KindQuarantine]) == 0 {
		return nil, err
	}
	return held, nil
}
