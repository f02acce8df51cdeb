package rules

import (
	"sync"
	"time"
)

// wheel is a hashed timer wheel: timers fall into slots of one tick each, and one
// goroutine (the engine's) advances it every tick, so ten thousand armed viewers cost
// ten thousand map entries rather than ten thousand runtime timers. Safe for
// concurrent use.
type wheel struct {
	mu     sync.Mutex
	tick   time.Duration
	slots  []map[string]*timer
	index  map[string]*timer
	origin time.Time
	cursor int64 // the last tick advanced over
}

type timer struct {
	key  string
	due  time.Time
	slot int
	data any
}

func newWheel(tick time.Duration, slots int, now time.Time) *wheel {
	w := &wheel{tick: tick, slots: make([]map[string]*timer, slots), index: map[string]*timer{}, origin: now}
	for i := range w.slots {
		w.slots[i] = map[string]*timer{}
	}
	return w
}

func (w *wheel) tickOf(t time.Time) int64 {
	return int64(t.Sub(w.origin) / w.tick)
}

// schedule arms key at due, replacing a timer already armed under key.
func (w *wheel) schedule(key string, due time.Time, data any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancelLocked(key)
	// The wheel fires slot n once now reaches the start of tick n, so a timer goes in
	// the first tick starting at or after due; a past due fires at the next tick.
	n := w.tickOf(due)
	if w.origin.Add(time.Duration(n) * w.tick).Before(due) {
		n++
	}
	n = max(n, w.cursor+1)
	t := &timer{key: key, due: due, slot: int(n % int64(len(w.slots))), data: data}
	w.slots[t.slot][key] = t
	w.index[key] = t
}

// armed reports whether key has a timer.
func (w *wheel) armed(key string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.index[key]
	return ok
}

// cancel disarms key; it reports whether a timer was armed.
func (w *wheel) cancel(key string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cancelLocked(key)
}

func (w *wheel) cancelLocked(key string) bool {
	t, ok := w.index[key]
	if ok {
		delete(w.slots[t.slot], key)
		delete(w.index, key)
	}
	return ok
}

// advance removes and returns every timer due at or before now.
func (w *wheel) advance(now time.Time) []*timer {
	w.mu.Lock()
	defer w.mu.Unlock()
	target := w.tickOf(now)
	if target <= w.cursor {
		return nil
	}
	from := w.cursor + 1
	if target-from >= int64(len(w.slots)) { // a long jump: every slot once
		from = target - int64(len(w.slots)) + 1
	}
	var due []*timer
	for n := from; n <= target; n++ {
		slot := w.slots[n%int64(len(w.slots))]
		for key, t := range slot {
			if !t.due.After(now) {
				due = append(due, t)
				delete(slot, key)
				delete(w.index, key)
			}
		}
	}
	w.cursor = target
	return due
}

// len is the number of armed timers.
func (w *wheel) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.index)
}
