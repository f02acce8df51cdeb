package rules

import (
	"hash/maphash"
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
	mu    sync.RWMutex             // read-locked for a commit's first look at the cache
	cache map[string]cachedCounter // written or pending since the last flush
	recs  []*Record
	// jobs are the changes to scheduled jobs since the last flush, by job id: the
	// rules' event consumer schedules a job per order, and one fsync each made it
	// fall behind an import of a shop's orders.
	jobs map[string]jobChange
	ver  uint64
	// flushes counts the flushes that wrote and forgot counters.
	flushes uint64
	// afterRead, set only by tests, runs between the unlocked read and the lock.
	afterRead func()
	// last is the latest commit and oldest the oldest unwritten one: a flush waits
	// for a pause in a burst of firings (so the disk does not compete with them for
	// the CPU), but never longer than maxAge.
	last, oldest time.Time
	every        time.Duration
	// err is the last flush's failure, until a flush succeeds: Ready reports it (the
	// node turns unready) while commits go on in memory, their records kept for the
	// next flush. Failing the commits instead would drop a whole chunk of prompts.
	err error

	// flushing are the records the running flush writes, in the transaction
	// flushingTx; flushedTx is the last flush's transaction. A reader of the file
	// tells by its own transaction's id which of them it sees (unwritten).
	flushing              []*Record
	flushingTx, flushedTx int
	// duringFlush, set only by tests, runs inside the flush's transaction.
	duringFlush func()

	// stored holds a hash of every counter key in the file: a key not in it has no
	// counter there, and is not read (a burst's keys are mostly new: each stay
	// prompt has its own once-per-live key). Pointer-free, so the collector does not
	// scan it: about 11 bytes per key.
	stored map[uint64]struct{}
	seed   maphash.Seed

	flushMu sync.Mutex // one flush at a time
	stop    chan struct{}
	wg      sync.WaitGroup
}

// cachedCounter is a Counter in 24 bytes (the last firing in Unix nanoseconds, 0 for
// none): a burst caches two per firing.
type cachedCounter struct {
	n    int
	last int64
	ver  uint64
}

func (c cachedCounter) counter() Counter {
	out := Counter{N: c.n}
	if c.last != 0 {
		out.Last = time.Unix(0, c.last)
	}
	return out
}

// jobChange is a job to put (encoded) or, with enc nil, to delete.
type jobChange struct {
	viewer string
	enc    []byte
}

func newWriteBehind(s *BoltState, every time.Duration) (*writeBehind, error) {
	w := &writeBehind{s: s, cache: map[string]cachedCounter{}, jobs: map[string]jobChange{}, stop: make(chan struct{}), every: every,
		stored: map[uint64]struct{}{}, seed: maphash.MakeSeed()}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bCounters).ForEach(func(k, _ []byte) error {
			w.stored[maphash.Bytes(w.seed, k)] = struct{}{}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
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
	return w, nil
}

// maxAgeFactor × the interval bounds how long a firing stays unwritten in a burst.
const maxAgeFactor = 10

func (w *writeBehind) due(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.idle() {
		return false
	}
	return now.Sub(w.last) >= w.every || now.Sub(w.oldest) >= maxAgeFactor*w.every
}

func (w *writeBehind) commit(fs []Firing) ([]bool, error) {
	// Counters not cached are read from the file before taking the lock, so that
	// workers read in parallel. A flush that ends meanwhile may have written newer
	// values (it counts itself in flushes): then they are read again under the lock.
	w.mu.RLock() // workers look in parallel
	missing, flushes := w.uncached(fs, nil), w.flushes
	w.mu.RUnlock()
	read, err := w.read(missing, nil)
	if err != nil {
		return nil, err
	}
	if w.afterRead != nil {
		w.afterRead()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.flushes != flushes {
		clear(read)
	}
	// Keys another worker cached meanwhile are taken from the cache; only a flush
	// can have made more keys uncached (and then read must be looked at again).
	if len(missing) > 0 || w.flushes != flushes {
		if read, err = w.read(w.uncached(fs, read), read); err != nil {
			return nil, err
		}
	}
	ok := make([]bool, len(fs))
	for i, f := range fs {
		ok[i] = w.take(f, read)
	}
	w.changed()
	return ok, nil
}

// job keeps a change to the job id for the next flush.
func (w *writeBehind) job(id string, c jobChange) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.jobs[id] = c
	w.changed()
}

// changed notes a change not yet written; w.mu is held.
func (w *writeBehind) changed() {
	now := time.Now()
	if w.oldest.IsZero() {
		w.oldest = now
	}
	w.last = now
}

// idle reports whether nothing waits to be written; w.mu is held.
func (w *writeBehind) idle() bool { return len(w.recs) == 0 && len(w.cache) == 0 && len(w.jobs) == 0 }

// take counts f if its limits allow it, from the cached counters or else those read
// from the file. Each key is looked up once: in a burst the cache is large and every
// lookup a cache miss.
func (w *writeBehind) take(f Firing, read map[string]Counter) bool {
	var buf [4]int
	ns := buf[:0]
	for _, l := range f.Limits {
		counter := read[l.Key]
		if c, ok := w.cache[l.Key]; ok {
			counter = c.counter()
		}
		if !l.allows(counter, f.At) {
			return false
		}
		ns = append(ns, counter.N)
	}
	for i, l := range f.Limits {
		w.ver++
		w.cache[l.Key] = cachedCounter{n: ns[i] + 1, last: f.At.UnixNano(), ver: w.ver}
	}
	if f.Rec != nil {
		w.recs = append(w.recs, f.Rec)
	}
	return true
}

// failure is the last flush's error while no flush has succeeded since.
func (w *writeBehind) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// unwritten lists viewer's firings that a read of the file in transaction rtx did
// not see, oldest first. ok is false when a flush has ended since that read began:
// its records are neither in what was read nor in memory any more, so read again.
func (w *writeBehind) unwritten(viewer string, rtx int) (out []*Record, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.flushedTx > rtx {
		return nil, false
	}
	if rtx < w.flushingTx {
		out = viewerRecords(out, w.flushing, viewer)
	}
	return viewerRecords(out, w.recs, viewer), true
}

func viewerRecords(out []*Record, recs []*Record, viewer string) []*Record {
	for _, r := range recs {
		if r.Action.Viewer == viewer {
			out = append(out, r)
		}
	}
	return out
}

// uncached lists the limit keys of fs that are neither cached nor in have, and may
// have a counter in the file.
func (w *writeBehind) uncached(fs []Firing, have map[string]Counter) []string {
	var out []string
	for _, f := range fs {
		for _, l := range f.Limits {
			_, cached := w.cache[l.Key]
			_, had := have[l.Key]
			if !cached && !had && w.inFile(l.Key) {
				out = append(out, l.Key)
			}
		}
	}
	return out
}

// inFile reports whether key may have a counter in the file.
func (w *writeBehind) inFile(key string) bool {
	_, ok := w.stored[maphash.String(w.seed, key)]
	return ok
}

// read adds the counters of keys, read from the file in one transaction, to into
// (made when nil).
func (w *writeBehind) read(keys []string, into map[string]Counter) (map[string]Counter, error) {
	if into == nil {
		into = make(map[string]Counter, len(keys))
	}
	if len(keys) == 0 {
		return into, nil
	}
	err := w.s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bCounters)
		for _, k := range keys {
			c, err := readCounter(b, k)
			if err != nil {
				return err
			}
			into[k] = c
		}
		return nil
	})
	return into, err
}

// flush writes the pending records and counters in one transaction, then forgets
// the counters that did not change meanwhile (the file holds them now). It takes
// them inside the transaction, so that readers can tell what the file they read
// holds (unwritten) and never wait for a flush.
func (w *writeBehind) flush() error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	return w.flushLocked()
}

// flushLocked is flush for a caller that holds flushMu.
func (w *writeBehind) flushLocked() error {
	w.mu.Lock()
	idle := w.idle()
	w.mu.Unlock()
	if idle {
		return nil
	}
	var recs []*Record
	var counters map[string]cachedCounter
	var jobs map[string]jobChange
	var txID int
	err := w.s.db.Update(func(tx *bolt.Tx) error {
		txID = w.s.db.TxID(tx)
		w.mu.Lock()
		recs, w.recs, w.oldest = w.recs, nil, time.Time{}
		w.flushing, w.flushingTx = recs, txID
		counters = maps.Clone(w.cache)
		jobs, w.jobs = w.jobs, map[string]jobChange{}
		for k := range counters {
			w.stored[maphash.String(w.seed, k)] = struct{}{}
		}
		w.mu.Unlock()
		if w.duringFlush != nil {
			w.duringFlush()
		}
		b := tx.Bucket(bCounters)
		for _, k := range slices.Sorted(maps.Keys(counters)) { // in key order: fewer pages touched
			if err := putCounter(b, k, counters[k].counter()); err != nil {
				return err
			}
		}
		if err := writeJobs(tx, jobs); err != nil {
			return err
		}
		encs := make([]*encoded, len(recs))
		for i, r := range recs {
			var err error
			if encs[i], err = encode(r); err != nil {
				return err
			}
		}
		return writeRecords(tx, encs)
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushing, w.flushingTx = nil, 0
	if err != nil {
		w.recs = append(recs, w.recs...) // try again at the next flush
		for id, c := range jobs {
			if _, newer := w.jobs[id]; !newer {
				w.jobs[id] = c
			}
		}
		return err
	}
	w.flushedTx = txID
	for k, v := range counters {
		if w.cache[k].ver == v.ver {
			delete(w.cache, k)
		}
	}
	w.flushes++
	w.err = nil
	return nil
}

// writeJobs puts and deletes jobs in key order.
func writeJobs(tx *bolt.Tx, jobs map[string]jobChange) error {
	b := tx.Bucket(bJobs)
	for _, id := range slices.Sorted(maps.Keys(jobs)) {
		var err error
		if enc := jobs[id].enc; enc != nil {
			err = b.Put([]byte(id), enc)
		} else {
			err = b.Delete([]byte(id))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *writeBehind) close() error {
	close(w.stop)
	w.wg.Wait()
	return w.flush()
}
