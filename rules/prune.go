package rules

import (
	"context"
	"hash/maphash"
	"strings"

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

// ForgetLive implements LiveEnder.
func (m *MemoryState) ForgetLive(_ context.Context, live string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.counters {
		if endedLive(k, live) {
			delete(m.counters, k)
		}
	}
	return nil
}

// ForgetLive implements LiveEnder, in one rewrite (see rewrite).
func (s *BoltState) ForgetLive(_ context.Context, live string) error {
	var gone [][]byte
	return s.rewrite(func(tx *bolt.Tx) (err error) {
		gone, err = deleteWhere(tx.Bucket(bCounters), []byte(oncePrefix), func(k, _ []byte) bool { return endedLive(string(k), live) })
		return err
	}, func(w *writeBehind) {
		for _, k := range gone {
			delete(w.stored, maphash.Bytes(w.seed, k))
		}
		for k := range w.cache { // counted since the flush: not written again
			if endedLive(k, live) {
				delete(w.cache, k)
			}
		}
	})
}
