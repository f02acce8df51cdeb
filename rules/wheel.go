package rules

import (
	"container/heap"
	"context"
	"slices"
	"sync"
	"time"
)

// wheel is a hashed timer wheel: timers due within one turn fall into slots of one
// tick each, and one goroutine (the engine's loop) advances it every tick while any
// are armed, so ten thousand armed viewers cost ten thousand map entries rather than
// ten thousand runtime timers. Timers further out (7-day follow-ups, deferred DMs)
// wait in a min-heap and move into the slots when their turn comes, so an idle wheel
// does not tick. Safe for concurrent use.
type wheel struct {
	mu    sync.Mutex
	tick  time.Duration
	slots []map[string]*timer
	index map[string]*timer
	// displaced are taken timers whose key was cancelled or armed again before
	// forget: still being fired, though no longer in the index.
	displaced map[*timer]struct{}
	far       farHeap
	near      int // timers in slots
	origin    time.Time
	cursor    int64 // the last tick advanced over
	wake      chan struct{}
}

type timer struct {
	key  string
	due  time.Time
	slot int
	far  int // index in the heap, -1 when in a slot
	data any
	// refreshed is what a refresh made of the data while the timer was being fired
	// (see rearm).
	refreshed any
}

// A timer advance has handed out is neither in the heap nor in its slot's map (the
// map was swapped out): it stays in the index, counting as armed, until the engine
// has fired it and calls forget.
func (w *wheel) takenLocked(t *timer) bool { return t.far < 0 && w.slots[t.slot][t.key] != t }

func newWheel(tick time.Duration, slots int, now time.Time) *wheel {
	w := &wheel{tick: tick, slots: make([]map[string]*timer, slots), index: map[string]*timer{}, displaced: map[*timer]struct{}{},
		origin: now, wake: make(chan struct{}, 1)}
	for i := range w.slots {
		w.slots[i] = map[string]*timer{}
	}
	return w
}

func (w *wheel) tickOf(t time.Time) int64 {
	return int64(t.Sub(w.origin) / w.tick)
}

func (w *wheel) turn() time.Duration { return time.Duration(len(w.slots)) * w.tick }

// schedule arms key at due, replacing a timer already armed under key.
func (w *wheel) schedule(key string, due time.Time, data any) {
	w.mu.Lock()
	w.cancelLocked(key)
	t := &timer{key: key, due: due, far: -1, data: data}
	w.index[key] = t
	w.put(t)
	w.mu.Unlock()
}

// put files t in a slot or, half a turn away or more, in the heap, and lets the loop
// plan again.
func (w *wheel) put(t *timer) {
	if t.due.Sub(w.origin.Add(time.Duration(w.cursor)*w.tick)) >= w.turn()/2 {
		heap.Push(&w.far, t)
	} else {
		w.place(t)
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// place puts t in the slot of the first tick starting at or after its due time (the
// wheel fires slot n once now reaches the start of tick n); a past due fires at the
// next tick.
func (w *wheel) place(t *timer) {
	n := w.tickOf(t.due)
	if w.origin.Add(time.Duration(n) * w.tick).Before(t.due) {
		n++
	}
	n = max(n, w.cursor+1)
	t.slot, t.far = int(n%int64(len(w.slots))), -1
	w.slots[t.slot][t.key] = t
	w.near++
}

// refresh replaces the data of key's timer by update(old data), keeping its due
// time; it reports whether key is armed or being fired. The data of a timer being
// fired is in the engine's hands: the update is kept aside for rearm (update(nil)).
func (w *wheel) refresh(key string, update func(old any) any) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.index[key]
	switch {
	case !ok:
	case w.takenLocked(t):
		t.refreshed = update(t.refreshed)
	default:
		t.data = update(t.data)
	}
	return ok
}

// rearm arms t's key again at due, from the worker that is firing t, with
// data(what refreshes made of t's data meanwhile, or nil), unless t's key was
// cancelled or armed anew since t was handed out. t itself is then done with, as
// after forget.
func (w *wheel) rearm(t *timer, due time.Time, data func(refreshed any) any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.index[t.key] != t {
		return
	}
	n := &timer{key: t.key, due: due, far: -1, data: data(t.refreshed)}
	w.index[t.key] = n
	w.put(n)
}

// cancel disarms key; it reports whether a timer was armed.
func (w *wheel) cancel(key string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cancelLocked(key)
}

func (w *wheel) cancelLocked(key string) bool {
	t, ok := w.index[key]
	if !ok {
		return false
	}
	delete(w.index, key)
	switch {
	case w.takenLocked(t): // being fired: too late to stop
		w.displaced[t] = struct{}{}
	case t.far >= 0:
		heap.Remove(&w.far, t.far)
	default:
		delete(w.slots[t.slot], key)
		w.near--
	}
	return true
}

// forget removes fired timers from the index (those not armed again meanwhile).
func (w *wheel) forget(ts []*timer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range ts {
		if w.index[t.key] == t {
			delete(w.index, t.key)
		}
		delete(w.displaced, t)
	}
}

// plan says when the loop should next advance: the next tick while timers sit in
// the slots, shortly before the nearest far timer's turn otherwise, or never (zero).
func (w *wheel) plan(now time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.near > 0 { // the start of the next tick: a slot is due from then, not a tick later
		return w.origin.Add(time.Duration(w.tickOf(now)+1) * w.tick)
	}
	if len(w.far) > 0 {
		return maxTime(w.far[0].due.Add(-w.turn()/2), now.Add(w.tick))
	}
	return time.Time{}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// advance takes out every timer due at or before now, as the slots they were in,
// earliest tick first: a slot's map is swapped for a fresh one rather than emptied
// timer by timer, so that a burst of ten thousand timers of one tick is handed over
// at once and the engine can start on it while it iterates. The timers stay in the
// index, taken, until forget.
func (w *wheel) advance(now time.Time) []map[string]*timer {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.far) > 0 && w.far[0].due.Sub(now) < w.turn()/2 {
		w.place(heap.Pop(&w.far).(*timer))
	}
	target := w.tickOf(now)
	from, to := w.cursor+1, max(target, w.cursor+1) // the next slot holds past-due timers
	if to-from >= int64(len(w.slots)) {             // a long jump: every slot once
		from = to - int64(len(w.slots)) + 1
	}
	// Less than half a turn past the cursor a slot holds only its own tick's timers
	// (none is placed half a turn ahead or more, far ones included, which are placed
	// above before the cursor moves), all due once now has reached the tick's start.
	// After a longer sleep a slot may also hold a later turn's timers, and the slot
	// ahead of the cursor (n beyond target) later ones: there each timer is looked at.
	whole := to-w.cursor < int64(len(w.slots))/2
	var due []map[string]*timer
	for n := from; n <= to; n++ {
		i := n % int64(len(w.slots))
		slot := w.slots[i]
		if len(slot) == 0 {
			continue
		}
		if n > target || !whole {
			for key, t := range slot {
				if !t.due.After(now) {
					delete(slot, key)
					w.near--
					due = append(due, map[string]*timer{key: t})
				}
			}
			continue
		}
		w.near -= len(slot)
		w.slots[i] = make(map[string]*timer)
		due = append(due, slot)
	}
	w.cursor = max(w.cursor, target)
	return due
}

// len is the number of armed timers.
func (w *wheel) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.index)
}

// farHeap orders far timers by due time.
type farHeap []*timer

func (h farHeap) Len() int           { return len(h) }
func (h farHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h farHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].far, h[j].far = i, j
}
func (h *farHeap) Push(x any) {
	t := x.(*timer)
	t.far = len(*h)
	*h = append(*h, t)
}
func (h *farHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.far = -1
	return t
}

// cancelWhere disarms every armed timer for which match holds, and returns those
// that match but are being fired (past stopping: see forgotten).
func (w *wheel) cancelWhere(match func(data any) bool) (firing []*timer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for key, t := range w.index {
		switch {
		case !match(t.data):
		case w.takenLocked(t):
			firing = append(firing, t)
		default:
			w.cancelLocked(key)
		}
	}
	for t := range w.displaced {
		if match(t.data) {
			firing = append(firing, t)
		}
	}
	return firing
}

// forgotten waits until the engine is done with the timers ts (each forgotten or
// armed again under its key), or ctx ends. Rare (an erasure): it polls.
func (w *wheel) forgotten(ctx context.Context, ts []*timer) error {
	for {
		w.mu.Lock()
		busy := slices.ContainsFunc(ts, func(t *timer) bool {
			_, d := w.displaced[t]
			return d || w.index[t.key] == t
		})
		w.mu.Unlock()
		if !busy {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}
