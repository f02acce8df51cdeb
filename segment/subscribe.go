package segment

import (
	"slices"

	"github.com/liveroom/liveroom/event"
)

// subscriber receives applied events and tag changes of the types it asked for.
type subscriber struct {
	pub     event.Publisher
	types   []event.Type // empty: every type
	reasons bool         // its tag changes carry their reasons
}

func (s *subscriber) wants(t event.Type) bool {
	return len(s.types) == 0 || slices.Contains(s.types, t)
}

// Subscribe hands pub every event the engine applies (with the viewer id resolved to
// its profile) and every tag change (event.TagChange, with Tag set but no Reason),
// filtered to types when given. pub must not block (an event.Queue drops and counts).
// The returned func ends the subscription.
func (e *Engine) Subscribe(pub event.Publisher, types ...event.Type) (cancel func()) {
	return e.subscribe(&subscriber{pub: pub, types: types})
}

// SubscribeWithReasons is Subscribe with each tag change's reason explained (Tag.Reason).
// Explaining it is a third of a tag change's cost, and the rules do not read it (the
// profile page explains every tag anew), so only a subscriber that asks pays for it.
func (e *Engine) SubscribeWithReasons(pub event.Publisher, types ...event.Type) (cancel func()) {
	return e.subscribe(&subscriber{pub: pub, types: types, reasons: true})
}

func (e *Engine) subscribe(s *subscriber) (cancel func()) {
	e.subsMu.Lock()
	e.setSubscribers(append(slices.Clone(*e.subs.Load()), s))
	e.subsMu.Unlock()
	return func() {
		e.subsMu.Lock()
		e.setSubscribers(slices.DeleteFunc(slices.Clone(*e.subs.Load()), func(x *subscriber) bool { return x == s }))
		e.subsMu.Unlock()
		e.pubMu.Lock() // a publish under way took the list before: wait for it
		e.pubMu.Unlock()
	}
}

// setSubscribers installs list; e.subsMu is held.
func (e *Engine) setSubscribers(list []*subscriber) {
	e.subs.Store(&list)
	e.wantTags.Store(slices.ContainsFunc(list, func(s *subscriber) bool { return s.wants(event.TagChange) }))
	e.wantReasons.Store(slices.ContainsFunc(list, func(s *subscriber) bool { return s.reasons && s.wants(event.TagChange) }))
}

func (e *Engine) publish(ev *event.Event, changes []event.Event) {
	e.pubMu.RLock()
	defer e.pubMu.RUnlock()
	subs := *e.subs.Load()
	if len(subs) == 0 {
		return
	}
	for _, s := range subs {
		if s.wants(ev.Type) {
			s.pub.Publish(*ev)
		}
	}
	e.publishChanges(changes)
}

// publishAll hands the subscribers tag changes (a sweep's).
func (e *Engine) publishAll(changes []event.Event) {
	e.pubMu.RLock()
	defer e.pubMu.RUnlock()
	e.publishChanges(changes)
}

// publishChanges is publishAll's work; e.pubMu is held for reading.
func (e *Engine) publishChanges(changes []event.Event) {
	if len(changes) == 0 {
		return
	}
	ptrs := make([]*event.Event, len(changes))
	for i := range changes {
		ptrs[i] = &changes[i]
	}
	for _, s := range *e.subs.Load() {
		if s.wants(event.TagChange) {
			publishTo(s.pub, ptrs)
		}
	}
}

// publishTo hands evs to pub in order, at once when it can take a batch.
func publishTo(pub event.Publisher, evs []*event.Event) {
	if bp, ok := pub.(event.BatchPublisher); ok {
		bp.PublishAll(evs)
		return
	}
	for _, ev := range evs {
		pub.Publish(*ev)
	}
}

// batchPublish gathers what one batch of the tap's events hands the subscribers, in
// order: each applied event, then its tag changes. Each subscriber takes its share at
// the end of the batch in one PublishAll: a lock, two atomic adds and a channel
// operation per event and per tag change otherwise. It is the consumer's own.
type batchPublish struct {
	refs    []int32        // in order: ≥ 0 the batch's event, < 0 changes[-ref-1]
	changes []event.Event  // the batch's tag changes
	share   []*event.Event // one subscriber's share, reused
}

// add notes the batch's event i, applied, and its tag changes: whether anyone
// subscribes is asked at the batch's end (or before an event that may wait), so that
// a subscriber that came meanwhile gets what was applied since.
func (b *batchPublish) add(i int, changes []event.Event) {
	b.refs = append(b.refs, int32(i))
	for _, c := range changes {
		b.changes = append(b.changes, c)
		b.refs = append(b.refs, -int32(len(b.changes)))
	}
}

// publishBatch hands each subscriber its share of what the consumer gathered from
// batch, then forgets it.
func (e *Engine) publishBatch(batch []event.Event) {
	b := &e.batchPub
	if len(b.refs) == 0 {
		return
	}
	e.pubMu.RLock()
	defer e.pubMu.RUnlock()
	for _, s := range *e.subs.Load() {
		share := b.share[:0]
		for _, r := range b.refs {
			ev := &batch[max(r, 0)]
			if r < 0 {
				ev = &b.changes[-r-1]
			}
			if s.wants(ev.Type) {
				share = append(share, ev)
			}
		}
		publishTo(s.pub, share)
		clear(share)
		b.share = share[:0]
	}
	clear(b.changes) // let their strings go
	b.changes, b.refs = b.changes[:0], b.refs[:0]
}
