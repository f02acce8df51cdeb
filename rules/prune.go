package rules

import (
	"context"
	"hash/maphash"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// onceKey is the limit key that lets a stay rule fire once per viewer per live.
func onceKey(stay string) string { return "once" + stay }

// oncePrefix starts every once-per-live key (stayKey begins "s\x00").
const oncePrefix = "onces\x00"

// endedLive reports whether key is a once-per-live key of live.
func endedLive(key, live string) bool {
	return strings.HasPrefix(key, oncePrefix) && strings.HasSuffix(key, "\x00"+live)
}

// LiveEnder is the part of a State that forgets what only mattered during a live.
type LiveEnder interface {
	// ForgetLive removes the once-per-live counters of a live that has ended: a live
	// id does not come back, and each live would otherwise leave one counter per
	// viewer who got a stay prompt in the state for good.
	ForgetLive(ctx context.Context, live string) error
}

// pruneLoop drops the counters no rule needs, every Config.PruneEvery.
func (e *Engine) pruneLoop() {
	t := time.NewTicker(e.cfg.PruneEvery)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
			if _, err := e.PruneCounters(e.ctx); err != nil {
				e.fail("prune limit counters", err)
			}
		}
	}
}

// PruneCounters drops the limit counters that limit nothing any more under the rules
// in force (staleCounter) and reports how many. Without it every (rule, viewer) that
// ever fired would keep a counter for good, one per viewer for the stay prompt alone.
func (e *Engine) PruneCounters(ctx context.Context) (int, error) {
	set, now := e.set.Load(), e.clock.Now()
	n, err := e.deps.State.PruneCounters(ctx, func(key string, c Counter) bool { return staleCounter(set, key, c, now) })
	if n > 0 {
		e.log.Info("rules: limit counters dropped", "counters", n)
	}
	return n, err
}

// staleCounter reports whether the counter under key limits nothing at now under
// set: a rule's (or a rule group's) counter when none of its rules has a cap and the
// longest cooldown has passed since its last firing. Counters of a rule or group not
// in set are kept (a rule put back keeps its caps), and so are the once-per-live
// ones (dropped when their live ends).
func staleCounter(set *Set, key string, c Counter, now time.Time) bool {
	kind, rest, ok := strings.Cut(key, "\x00")
	name, _, ok2 := strings.Cut(rest, "\x00")
	if !ok || !ok2 || (kind != "r" && kind != "g") {
		return false
	}
	var cooldown time.Duration
	found := false
	for _, r := range set.rules {
		if (kind == "r" && r.group == "" && r.id == name) || (kind == "g" && r.group == name) {
			if r.cap > 0 {
				return false
			}
			found, cooldown = true, max(cooldown, r.cooldown)
		}
	}
	return found && !now.Before(c.Last.Add(cooldown))
}

// CounterPruner is the part of a State that drops limit counters no limit needs any
// more (see Engine.pruneCounters).
type CounterPruner interface {
	// PruneCounters removes the counters for which stale holds and reports how many.
	PruneCounters(ctx context.Context, stale func(key string, c Counter) bool) (int, error)
}

// PruneCounters implements CounterPruner.
func (m *MemoryState) PruneCounters(_ context.Context, stale func(string, Counter) bool) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, c := range m.counters {
		if stale(k, c) {
			delete(m.counters, k)
			n++
		}
	}
	return n, nil
}

// PruneCounters implements CounterPruner (see deleteCounters).
func (s *BoltState) PruneCounters(_ context.Context, stale func(string, Counter) bool) (int, error) {
	return s.deleteCounters(nil, func(k string, c Counter, ok bool) bool { return ok && stale(k, c) })
}

// ForgetLive implements LiveEnder.
func (m *MemoryState) ForgetLive(ctx context.Context, live string) error {
	_, err := m.PruneCounters(ctx, func(k string, _ Counter) bool { return endedLive(k, live) })
	return err
}

// ForgetLive implements LiveEnder (see deleteCounters).
func (s *BoltState) ForgetLive(_ context.Context, live string) error {
	_, err := s.deleteCounters([]byte(oncePrefix), func(k string, _ Counter, _ bool) bool { return endedLive(k, live) })
	return err
}

// deleteCounters deletes, in one rewrite (see rewrite), the counters under prefix for
// which match holds, and reports how many keys went. A counter in the file is judged
// by its stored value (ok is false when that does not decode); one counted since the
// last flush by its latest value, in the write-behind cache.
func (s *BoltState) deleteCounters(prefix []byte, match func(key string, c Counter, ok bool) bool) (int, error) {
	var gone [][]byte
	n := 0 // of the cached counters not also deleted from the file
	err := s.rewrite(func(tx *bolt.Tx) (err error) {
		gone, err = deleteWhere(tx.Bucket(bCounters), prefix, func(k, v []byte) bool {
			c, err := decodeCounter(v)
			return match(string(k), c, err == nil)
		})
		return err
	}, func(w *writeBehind) {
		inFile := make(map[string]bool, len(gone))
		for _, k := range gone {
			delete(w.stored, maphash.Bytes(w.seed, k))
			inFile[string(k)] = true
		}
		for k, c := range w.cache {
			if match(k, c.counter(), true) {
				delete(w.cache, k) // not written again
				if !inFile[k] {
					n++
				}
			}
		}
	}, false)
	return n + len(gone), err
}
