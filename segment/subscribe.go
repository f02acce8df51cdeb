package segment

import (
	"slices"

	"github.com/liveroom/liveroom/event"
)

// subscriber receives applied events and tag changes of the types it asked for.
type subscriber struct {
	pub   event.Publisher
	types []event.Type // empty: every type
}

func (s *subscriber) wants(t event.Type) bool {
	return len(s.types) == 0 || slices.Contains(s.types, t)
}

// Subscribe hands pub every event the engine applies (with the viewer id resolved to
// its profile) and every tag change (event.TagChange, with Tag set), filtered to types
// when given. pub must not block (an event.Queue drops and counts). The returned func
// ends the subscription.
func (e *Engine) Subscribe(pub event.Publisher, types ...event.Type) (cancel func()) {
	s := &subscriber{pub: pub, types: types}
	e.subsMu.Lock()
	list := append(slices.Clone(*e.subs.Load()), s)
	e.subs.Store(&list)
	e.wantTags.Store(wantsTags(list))
	e.subsMu.Unlock()
	return func() {
		e.subsMu.Lock()
		defer e.subsMu.Unlock()
		list := slices.DeleteFunc(slices.Clone(*e.subs.Load()), func(x *subscriber) bool { return x == s })
		e.subs.Store(&list)
		e.wantTags.Store(wantsTags(list))
	}
}

func wantsTags(list []*subscriber) bool {
	return slices.ContainsFunc(list, func(s *subscriber) bool { return s.wants(event.TagChange) })
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
