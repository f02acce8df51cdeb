package segment

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/liveroom/liveroom/event"
)

// Holds. An import is answered once durable, then its events and their tag changes
// go to the subscribers (the rules) through memory, once: a crash before the rules
// handled them lost them for good, an order's thank-you and follow-up with them; so
// did a sweep's tag changes once its profiles were written through. A Holder (the
// rules' state, wired by app) keeps them durably from before the import's commit (or
// the sweep's hand-over) until the subscriber releases the hold, which the last event
// handed over names (event.Event.Held). After a crash, app hands over again the holds
// whose imports were committed (HeldEvents, Imported) and drops the others.

// Holder keeps data until released; Hold returns once data is durable, with the hold's
// number (never 0).
type Holder interface {
	Hold(ctx context.Context, data []byte) (uint64, error)
}

// SetHolder makes imports and sweeps hold what they hand over in h until released
// (nil: no holds). A tag change caused by an event older than stale is not held: the
// rules do not act on such history (rules.StaleAfter), and most of a shop's imported
// past is that.
func (e *Engine) SetHolder(h Holder, stale time.Duration) {
	if h == nil {
		e.holding.Store(nil)
		return
	}
	e.holding.Store(&holding{h: h, stale: stale})
}

type holding struct {
	h     Holder
	stale time.Duration
}

// fresh appends to dst the changes the rules may act on: those caused less than stale
// ago, or by no event (a sweep's: the clock's).
func (hd *holding) fresh(dst, changes []event.Event, now time.Time) []event.Event {
	since := now.Add(-hd.stale)
	for _, c := range changes {
		if c.Tag == nil || c.Tag.CauseAt.IsZero() || !c.Tag.CauseAt.Before(since) {
			dst = append(dst, c)
		}
	}
	return dst
}

// holdChanges holds a sweep's tag changes (no event caused them: the clock, or a
// re-ranking) and names the hold on the last of them; nothing when none is fresh, or
// the holder failed (logged).
func (e *Engine) holdChanges(ctx context.Context, changes []event.Event) {
	hd := e.holding.Load()
	if hd == nil || len(changes) == 0 {
		return
	}
	fresh := hd.fresh(nil, changes, e.now())
	if len(fresh) == 0 {
		return
	}
	data, err := json.Marshal([]heldEvent{{Changes: fresh}})
	changes[len(changes)-1].Held = e.holdData(ctx, hd, data, err, "a sweep's tag changes")
}

// holdData hands data (or its encoding's error) to the holder: the hold's number, 0
// when either failed (logged: what was to be held goes to the subscribers unheld).
func (e *Engine) holdData(ctx context.Context, hd *holding, data []byte, err error, what string) uint64 {
	var seq uint64
	if err == nil {
		seq, err = hd.h.Hold(ctx, data)
	}
	if err != nil {
		e.log.Error("segment: "+what+" are not held for the rules; a crash before they are handled loses them", "err", err)
	}
	return seq
}

// heldEvent is one applied event of a hold: the item as sent (decoded again as the
// import did), else the event; with the tag changes it caused.
type heldEvent struct {
	Raw      json.RawMessage `json:"raw,omitempty"`
	Viewer   string          `json:"viewer,omitempty"` // with Raw: the id it was applied to (an e-mail's key, an alias's target)
	Event    *event.Event    `json:"event,omitempty"`
	Received time.Time       `json:"received,omitzero"` // not in Event's JSON form; News reads it
	Changes  []event.Event   `json:"changes,omitempty"`
}

// hold holds the import's applied events (raws: their items as sent, where there are
// some) and their changes; e.commitMu is held. It returns the hold's number, 0 when
// there is none: no holder, nothing applied, or the holder failed (logged: the import
// goes on, and its events reach the subscribers now; only a crash before they are
// handled would lose them, as before holds).
func (e *Engine) hold(ctx context.Context, applied []event.Event, raws []json.RawMessage, changes [][]event.Event) uint64 {
	hd := e.holding.Load()
	if hd == nil || len(applied) == 0 {
		return 0
	}
	// Written by hand around the items' JSON, which the import checked: encoding each
	// event again took a tenth of an import's time.
	data := []byte{'['}
	var err error
	var fresh []event.Event
	now := e.now()
	for i := range applied {
		fresh = hd.fresh(fresh[:0], changes[i], now)
		h := heldEvent{Received: applied[i].Received, Changes: fresh}
		if raws[i] == nil {
			h.Event = &applied[i]
		} else {
			h.Viewer = applied[i].Viewer
		}
		var b []byte
		if b, err = json.Marshal(h); err != nil {
			break
		}
		if i > 0 {
			data = append(data, ',')
		}
		if raws[i] == nil {
			data = append(data, b...)
			continue
		}
		data = append(append(data, `{"raw":`...), raws[i]...)
		if rest := b[1 : len(b)-1]; len(rest) > 0 { // the other fields of {…}
			data = append(append(data, ','), rest...)
		}
		data = append(data, '}')
	}
	data = append(data, ']')
	return e.holdData(ctx, hd, data, err, "an import's events")
}

// markHeld names hold seq on the last of what an import hands over: its last event's
// last tag change, else that event.
func markHeld(applied []event.Event, changes [][]event.Event, seq uint64) {
	if seq == 0 || len(applied) == 0 {
		return
	}
	last := len(applied) - 1
	if c := changes[last]; len(c) > 0 {
		c[len(c)-1].Held = seq
	} else {
		applied[last].Held = seq
	}
}

// HeldEvents decodes hold seq's data into what the import (or sweep) handed over, in
// its order (each event, then its tag changes), the last naming seq, and the ids of
// its imported events (none for a sweep's).
func HeldEvents(seq uint64, data []byte) (evs []event.Event, ids []string, err error) {
	var held []heldEvent
	if err := json.Unmarshal(data, &held); err != nil {
		return nil, nil, fmt.Errorf("hold %d: %w", seq, err)
	}
	for i, h := range held {
		var ev event.Event
		switch {
		case h.Raw != nil:
			it, ie := decodeOne(i, h.Raw, time.Now())
			if ie != nil {
				return nil, nil, fmt.Errorf("hold %d, item %d: %s", seq, i, ie.Error)
			}
			ev = it.Event
			if h.Viewer != "" {
				ev.Viewer = h.Viewer
			}
		case h.Event != nil:
			ev = *h.Event
		case len(h.Changes) > 0: // a sweep's tag changes: no event caused them
			evs = append(evs, h.Changes...)
			continue
		default:
			return nil, nil, fmt.Errorf("hold %d, item %d: no event", seq, i)
		}
		ev.Received = h.Received
		ids = append(ids, ev.ID)
		evs = append(append(evs, ev), h.Changes...)
	}
	if len(evs) == 0 {
		return nil, nil, fmt.Errorf("hold %d: empty", seq)
	}
	evs[len(evs)-1].Held = seq // the others decode with none: Held has no JSON form
	return evs, ids, nil
}

// Imported reports whether every id is a stored imported event: whether the import
// a hold was made for was committed.
func (e *Engine) Imported(ctx context.Context, ids []string) (bool, error) {
	if len(ids) == 0 {
		return true, nil // a sweep's hold: nothing was imported
	}
	seen, err := e.store.Seen(ctx, KindEvent, ids)
	if err != nil {
		return false, err
	}
	for _, id := range ids {
		if !seen[id] {
			return false, nil
		}
	}
	return true, nil
}
