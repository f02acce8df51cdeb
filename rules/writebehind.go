package rules

import (
	"maps"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// writeBehind decides firings against in-memory counters and writes them to bbolt in
// one transaction per interval. Counters stay cached until written; a key not cached
// is read from the file, which then holds its latest value.
type writeBehind struct {
	s     *BoltState
	mu    sync.Mutex
	cache map[string]cachedCounter // written or pending since the last flush
	recs  []*Record
	ver   uint64
	// last is the latest commit and oldest the oldest unwritten one: a flush waits
	// for a pause in a burst of firings (so the disk does not compete with them for
	// the CPU), but never longer than maxAge.
	last, oldest time.Time
	every        time.Duration
	err          error // the last flush's failure, returned by the next Commit

	flushMu sync.Mutex // one flush at a time
	stop    chan struct{}
	wg      sync.WaitGroup
}

type cachedCounter struct {
	c   Counter
	ver uint64
}

func newWriteBehind(s *BoltState, every time.Duration) *writeBehind {
	w := &writeBehind{s: s, cache: map[string]cachedCounter{}, stop: make(chan struct{}), every: every}
	w.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				if !w.due(time.Now()) {
					continue
				}
				if err := w.flush(); err != nil {
					w.mu.Lock()
					w.err = err
					w.mu.Unlock()
				}
			}
		}
	})
	return w
}

// maxAgeFactor × the interval bounds how long a firing stays unwritten in a burst.
const maxAgeFactor = 10

func (w *writeBehind) due(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.recs) == 0 && len(w.cache) == 0 {
		return false
	}
	return now.Sub(w.last) >= w.every || now.Sub(w.oldest) >= maxAgeFactor*w.every
}

func (w *writeBehind) commit(at time.Time, limits []Limit, rec *Record) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.err; err != nil {
		w.err = nil
		return false, err
	}
	counters := make([]Counter, len(limits))
	for i, l := range limits {
		c, ok := w.cache[l.Key]
		if !ok {
			err := w.s.db.View(func(tx *bolt.Tx) error {
				var err error
				c.c, err = readCounter(tx.Bucket(bCounters), l.Key)
				return err
			})
			if err != nil {
				return false, err
			}
		}
		if !l.allows(c.c, at) {
			return false, nil
		}
		counters[i] = c.c
	}
	for i, l := range limits {
		w.ver++
		w.cache[l.Key] = cachedCounter{c: Counter{N: counters[i].N + 1, Last: at}, ver: w.ver}
	}
	if rec != nil {
		w.recs = append(w.recs, rec)
	}
	now := time.Now()
	if w.oldest.IsZero() {
		w.oldest = now
	}
	w.last = now
	return true, nil
}

// flush writes the pending records and counters in one transaction, then forgets
// the counters that did not change meanwhile (the file holds them now).
func (w *writeBehind) flush() error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	recs := w.recs
	w.recs, w.oldest = nil, time.Time{}
	counters := make(map[string]cachedCounter, len(w.cache))
	for k, v := range w.cache {
		counters[k] = v
	}
	w.mu.Unlock()
	if len(recs) == 0 && len(counters) == 0 {
		return nil
	}
	err := w.s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bCounters)
		for _, k := range slices.Sorted(maps.Keys(counters)) { // in key order: fewer pages touched
			if err := putCounter(b, k, counters[k].c); err != nil {
				return err
			}
		}
		for _, r := range recs {
			enc, err := encode(r)
			if err != nil {
				return err
			}
			if err := enc.write(tx); err != nil {
				return err
			}
		}
		return nil
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.recs = append(recs, w.recs...) // try again at the next flush
		return err
	}
	for k, v := range counters {
		if w.cache[k].ver == v.ver {
			delete(w.cache, k)
		}
	}
	return nil
}

func (w *writeBehind) close() error {
	close(w.stop)
	w.wg.Wait()
	return w.flush()
}
