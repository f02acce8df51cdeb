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
		defer e.subsMu.Unlock()
		e.setSubscribers(slices.DeleteFunc(slices.Clone(*e.subs.Load()), func(x *subscriber) bool { return x == s }))
	}
}

// setSubscribers installs list; e.subsMu is held.
func (e *Engine) setSubscribers(list []*subscriber) {
	e.subs.Store(&list)
	e.wantTags.Store(slices.ContainsFunc(list, func(s *subscriber) bool { return s.wants(event.TagChange) }))
	e.wantReasons.Store(slices.ContainsFunc(list, func(s *subscriber) bool { return s.reasons && s.wants(event.TagChange) }))
}

func (e *Engine) publish(ev *event.Event, changes []event.Event) {
	subs := *e.subs.Load()
	if len(subs) == 0 {
		return
	}
	for _, s := range subs {
		if s.wants(ev.Type) {
			s.pub.Publish(*ev)
		}
	}
	e.publishAll(changes)
}

func (e *Engine) publishAll(changes []event.Event) {
	for _, s := range *e.subs.Load() {
		if !s.wants(event.TagChange) {
			continue
		}
		for _, c := range changes {
			s.pub.Publish(c)
		}
	}
}
