package segment

import (
	"cmp"
	"context"
	"encoding/binary"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/segment/rfm"
)

// rankings are the buyers' RFM values of the last sweep, sorted per dimension.
type rankings struct {
	r, f, m rfm.Ranking
}

// rfmValues are the values RFM ranks: the day of the last order (later is better),
// orders and spend in the order window. buyer is false with no order in the window.
func (e *Engine) rfmValues(p *Profile, today int32) (r, f, m int64, buyer bool) {
	w := p.window(today, e.cfg.OrderDays)
	if w.Orders == 0 {
		return 0, 0, 0, false
	}
	return int64(dayOf(p.LastOrder)), int64(w.Orders), int64(w.Spend), true
}

// scoreOne sets p's RFM from the current rankings. A buyer not yet ranked is counted
// in; the full population is re-ranked at the next sweep (soon after an import). pre
// are a ranked buyer's values before the order being applied (nil: none), so that
// one whose value rose is not counted as strictly worse than itself.
func (e *Engine) scoreOne(p *Profile, now int64, pre *[3]int64) {
	r, f, m, buyer := e.rfmValues(p, dayOf(now))
	switch {
	case !buyer && p.Orders > 0:
		// Ordered, but not within the window: the lowest scores.
		p.RFM = RFM{R: 1, F: 1, M: 1, Segment: wordOf(rfm.Lost)}
		return
	case !buyer:
		p.RFM = RFM{}
		return
	}
	rk := e.rank.Load()
	if rk == nil {
		rk = &rankings{}
	}
	in := p.is(ranked)
	// Values only rise with orders: once above its ranked value, a value stays above.
	if in && pre != nil {
		p.mark(aboveR, p.is(aboveR) || pre[0] < r)
		p.mark(aboveF, p.is(aboveF) || pre[1] < f)
		p.mark(aboveM, p.is(aboveM) || pre[2] < m)
	}
	rs, fs, ms := rk.r.Score(r, in, p.is(aboveR)), rk.f.Score(f, in, p.is(aboveF)), rk.m.Score(m, in, p.is(aboveM))
	p.RFM = RFM{R: uint8(rs), F: uint8(fs), M: uint8(ms), Segment: wordOf(rfm.Segment(rs, fs, ms))}
}

// SetYield has the sweep call yield before each shard it takes: the node waits there
// while a burst of rule firings is under way, so that the sweep (all profiles, a
// shard at a time under the shard's lock) neither takes the cores from it nor holds
// the locks its snapshots need.
func (e *Engine) SetYield(yield func()) { e.yield.Store(&yield) }

// pause yields (SetYield) until the sweep has waited sweepYieldBudget in all: a node
// firing without pause does not hold its sweep off for good. It returns how long it
// waited this time.
func (e *Engine) pause(budget *time.Duration) (waited time.Duration) {
	y := e.yield.Load()
	if y == nil || *budget <= 0 {
		return 0
	}
	start := time.Now()
	(*y)()
	waited = time.Since(start)
	*budget -= waited
	return waited
}

// sweepYieldBudget bounds how long one sweep waits in all for bursts elsewhere.
const sweepYieldBudget = 5 * time.Second

// Sweep re-ranks RFM over every buyer, closes presences of vanished clients and
// recomputes every profile's tags at the current time: the tags that change with time
// alone (dormant, churned, windows sliding) change here. It runs every SweepInterval.
func (e *Engine) Sweep() {
	e.sweepMu.Lock()
	defer e.sweepMu.Unlock()
	budget := sweepYieldBudget
	// A re-ranking caused by imported orders (rerankCauses) is read per shard below,
	// so that an import landing during the sweep stamps the shards after it, and it is
	// cleared only if no import landed since the sweep began: the sweep that import
	// requested ranks its orders in full and still carries it.
	notes := e.rerank.notesSoFar()
	defer e.rerank.clearUnless(notes)
	now := e.now().UnixMilli()
	today := dayOf(now)
	oldest := e.oldest(now)
	var rs, fs, ms []int64
	var list []*Profile // one shard's profiles, reused
	pass := newPace()
	for _, sh := range e.shards {
		pass.waited(e.pause(&budget))
		list = sh.profileList(list[:0])
		sh.inBatches(list, pass, func(p *Profile) {
			p.prune(oldest, today-int32(e.cfg.PreferenceDays))
			r, f, m, ok := e.rfmValues(p, today)
			if ok {
				rs, fs, ms = append(rs, r), append(fs, f), append(ms, m)
			}
			// Marked as its values are taken: an order between here and its scoring
			// below rises above them (aboveR/F/M), and a buyer made since is not ranked.
			p.mark(ranked, ok)
			p.flags &^= aboveR | aboveF | aboveM
		})
	}
	e.rank.Store(&rankings{r: rfm.NewRanking(rs), f: rfm.NewRanking(fs), m: rfm.NewRanking(ms)})

	cutoff := now - e.cfg.PresenceTimeout.Milliseconds()
	var changes []event.Event
	pass = newPace()
	for _, sh := range e.shards {
		pass.waited(e.pause(&budget))
		sh.mu.Lock()
		for p := range sh.open {
			if p.closeStale(cutoff, oldest) {
				sh.markDirty(p)
			}
			if len(p.Open.get()) == 0 {
				delete(sh.open, p)
			}
		}
		sh.mu.Unlock()
		list = sh.profileList(list[:0])
		cause := e.rerank.cause()
		sh.inBatches(list, pass, func(p *Profile) {
			old := p.RFM
			e.scoreOne(p, now, nil)
			n := len(changes)
			changes = e.retag(sh, p, now, nil, true, changes)
			c := changes[n:]
			if len(c) > 0 || old != p.RFM {
				sh.markDirty(p)
			}
			if !cause.IsZero() {
				for i := range c {
					if c[i].Tag.Dimension == DimValue {
						c[i].Tag.CauseAt = cause
					}
				}
			}
		})
		if len(changes) > 0 {
			e.metrics.tagChanges.Add(float64(len(changes)))
			e.holdChanges(context.Background(), changes)
			e.publishAll(changes)
			changes = changes[:0]
		}
	}
	// Last, so that what the sweep pruned and closed leaves no gaps in the new chunks.
	if at := e.now(); at.Sub(e.lastCompact) >= compactEvery || e.importSettled(at) {
		e.compact(func() time.Duration { return e.pause(&budget) })
		e.lastCompact = at
	}
}

// lockBatch is how many profiles a sweep or a write-through handles per hold of a
// shard's lock. A shard of a million-profile node holds about 16,000: handled in one
// hold, the tap's consumer waited 50–170 ms for every event of that shard, the tap
// filled and tag changes came seconds late.
const lockBatch = 256

// profileList appends the shard's profiles to list, under its lock.
func (sh *shard) profileList(list []*Profile) []*Profile {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for p := range sh.profiles.all() {
		list = append(list, p)
	}
	return list
}

// batchGap, set only by tests, runs between two batches of inBatches, the lock free.
var batchGap func()

// inBatches calls fn for each profile of list still in the shard, lockBatch at a time
// under the shard's lock, letting the lock go and the core (as the pass's pace
// allows) in between.
func (sh *shard) inBatches(list []*Profile, pass *pace, fn func(*Profile)) {
	for start := 0; start < len(list); start += lockBatch {
		if start > 0 {
			pass.between()
			if batchGap != nil {
				batchGap()
			}
		}
		sh.mu.Lock()
		began := time.Now()
		batch := list[start:min(start+lockBatch, len(list))]
		for i := -passProfileAhead; i < len(batch); i++ {
			if j := i + passProfileAhead; j < len(batch) {
				warmBytes(uintptr(unsafe.Pointer(batch[j])), unsafe.Sizeof(Profile{}))
			}
			if j := i + passListsAhead; j >= 0 && j < len(batch) {
				batch[j].warmForPass()
			}
			if i >= 0 && !batch[i].is(gone) { // erased or merged away since the list was taken
				fn(batch[i])
			}
		}
		pass.work += time.Since(began)
		sh.mu.Unlock()
	}
}

// A pass reads most of each profile it visits, and they are cold (a million of them do
// not fit in the cache): while it handles one, it asks for the lines of the profile
// passProfileAhead further on, and then for its lists (warmForPass), as the tap's
// consumer does for its events (warm.go). The reads happen under the shard's lock.
const (
	passProfileAhead = 32
	passListsAhead   = 16
)

// pace decides whether a long pass over the shards (a write-through's snapshot, a
// sweep's phase, a compaction) yields the core between two batches, to the tap's
// consumer and the rest: it does while the pass has had at least a tenth of the time
// since it began. On a core that the consumer keeps busy, a pass that always yielded
// got a turn every few tens of milliseconds: a snapshot of 917,000 profiles took 30 s
// for 0.8 s of work, and nothing was written for as long. One that never yielded kept
// events waiting up to 1.2 s at a load the engine keeps up with (docs/benchmarks.md).
type pace struct {
	begin time.Time
	work  time.Duration // spent in its batches
}

func newPace() *pace { return &pace{begin: time.Now()} }

// minShare is the part of the time since it began (one in minShare) below which a
// pass stops yielding.
const minShare = 10

func (s *pace) between() {
	if s.yields(time.Now()) {
		runtime.Gosched()
	}
}

// yields reports whether the pass, at now, has had its share or more.
func (s *pace) yields(now time.Time) bool { return now.Sub(s.begin) <= minShare*s.work }

// waited takes d, a wait the pass chose (the sweep's for a burst of rule firings),
// out of its time: it is no sign of a busy core.
func (s *pace) waited(d time.Duration) { s.begin = s.begin.Add(d) }

// rerankCauses records what changed the RFM ranking since the last sweep, which
// applies it to everyone's value tag: imports of orders (their oldest order's
// Event.News each). The sweep's value changes carry the oldest as their CauseAt, so
// that a re-ranking by imported history is old news to the rules, even when a shop's
// webhook order (news) came in the same minute or the same batch: the changes cannot
// tell whose orders moved them, and day one's import must not reach the rules as a
// burst of news.
type rerankCauses struct {
	mu     sync.Mutex
	oldest time.Time // zero: nothing imported since the last sweep
	notes  uint64    // how many were noted, ever
}

// note records an import whose oldest order is at.
func (r *rerankCauses) note(at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.oldest.IsZero() || at.Before(r.oldest) {
		r.oldest = at
	}
	r.notes++
}

// cause is the CauseAt for the re-ranking's value changes (zero: none).
func (r *rerankCauses) cause() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.oldest
}

func (r *rerankCauses) notesSoFar() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.notes
}

// clearUnless forgets the causes unless one was noted since notes were counted: an
// import during a sweep ranks its orders in full only at the sweep it requested,
// which must still carry its cause.
func (r *rerankCauses) clearUnless(notes uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.notes == notes {
		r.oldest = time.Time{}
	}
}

// requestSweep asks the sweeper for a re-rank soon (after imports with orders).
func (e *Engine) requestSweep() {
	select {
	case e.refresh <- struct{}{}:
	default:
	}
}

// Flush writes every changed profile (and product) to the store (see commitParts).
func (e *Engine) Flush(ctx context.Context) error { return e.flush(ctx, false) }

// flush is Flush. The write-through loop's (fromLoop) does nothing while the pause
// after the last write-through lasts: it may have waited for the store behind
// another caller's write-through, which calls for a pause of its own.
func (e *Engine) flush(ctx context.Context, fromLoop bool) error {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	if fromLoop && e.flushPause() > 0 {
		return nil
	}
	start := time.Now()
	defer func() {
		end := time.Now()
		e.lastFlush.Store(&flushTiming{end: end, took: end.Sub(start)})
		select {
		case e.flushed <- struct{}{}:
		default:
		}
	}()
	b := &Batch{}
	var a arena
	pending := e.snapshotDirty(b, &a)
	b.Products = e.catalog.drain()
	if b.empty() && e.unstored.empty() {
		e.spare.keep(b.Profiles, pending) // for the next one
		return nil
	}
	if err := e.commitParts(ctx, b); err != nil {
		// The records wait in unstored for the retry: their chunks stay theirs.
		for _, p := range pending {
			sh := e.shardOf(p.ID)
			sh.mu.Lock()
			if !p.is(gone) {
				sh.markDirty(p)
			}
			sh.mu.Unlock()
		}
		return err
	}
	e.metrics.flushed.Add(float64(len(b.Profiles)))
	if e.unstored.empty() {
		a.release() // committed: the store keeps none of it
		e.spare.keep(b.Profiles, pending)
	}
	return nil
}

// flushPart is how many profiles one write-through transaction holds at most.
const flushPart = 32 << 10

// commitParts commits a write-through. Into a bare bbolt store it goes in parts
// (inParts), each durable before the next; only a batch of independent profile
// records is split: one that deletes profiles (a merge) or carries a retry commits
// whole, so it stays atomic. A bulkStore takes an independent write-through of half
// the profiles or more through CommitBulk, and any other whole (its journal has no
// transaction buffers to bound).
func (e *Engine) commitParts(ctx context.Context, b *Batch) error {
	if len(b.DeletedProfiles) > 0 || len(b.Owned) > 0 || !e.unstored.empty() {
		return e.commit(ctx, b)
	}
	bulk, ok := e.store.(bulkStore)
	switch {
	case !ok:
		return inParts(ctx, b, flushPart, e.commit)
	case len(b.Profiles) >= max(flushPart, e.Count()/2):
		return e.commitBy(ctx, b, bulk.CommitBulk)
	}
	return e.commit(ctx, b)
}

// bulkStore is a store with a cheaper way to write a write-through that changes
// much of it (JournalStore: straight into its bbolt file, in parts). Like a
// write-through in parts, a bulk commit is durable when it returns, and one a crash
// cut short leaves some of its profiles written and the others as they were.
type bulkStore interface {
	CommitBulk(ctx context.Context, b *Batch) error
}

// inParts commits b as transactions of at most part profiles, in key order; the
// first also carries everything else in b. bbolt holds a buffer for every page a
// transaction rewrites until it commits: at a million viewers one transaction was a
// gigabyte of buffers (and a garbage-collection cycle); parts reuse the same few.
func inParts(ctx context.Context, b *Batch, size int, commit func(context.Context, *Batch) error) error {
	if len(b.Profiles) <= size {
		return commit(ctx, b)
	}
	order := sortedByKey(b.Profiles)
	part := &Batch{Profiles: make([]Record, 0, size), DeletedProfiles: b.DeletedProfiles, Owned: b.Owned, Products: b.Products}
	for start := 0; start < len(order); start += size {
		part.Profiles = part.Profiles[:0] // the store keeps none of it after Commit
		for _, k := range order[start:min(start+size, len(order))] {
			part.Profiles = append(part.Profiles, b.Profiles[k.i])
		}
		if err := commit(ctx, part); err != nil {
			return err
		}
		part.DeletedProfiles, part.Owned, part.Products = nil, nil, nil
	}
	return nil
}

// keyOrder is a record's position with the first 16 bytes of its key, big-endian and
// zero-padded, so most comparisons need not follow the key's pointer (a cache miss
// each, a million times per sort).
type keyOrder struct {
	hi, lo uint64
	i      int32
}

// sortedByKey returns the positions of recs in key order, equal keys in position
// order, so that a later record of the same key is written last (positions, not the
// records: moving pointerful records during a garbage collection costs a write barrier
// each).
func sortedByKey(recs []Record) []keyOrder {
	order := make([]keyOrder, len(recs))
	for i, r := range recs {
		var pre [16]byte
		copy(pre[:], r.Key)
		order[i] = keyOrder{binary.BigEndian.Uint64(pre[:8]), binary.BigEndian.Uint64(pre[8:]), int32(i)}
	}
	slices.SortFunc(order, func(x, y keyOrder) int {
		if c := cmp.Compare(x.hi, y.hi); c != 0 {
			return c
		}
		if c := cmp.Compare(x.lo, y.lo); c != 0 {
			return c
		}
		if c := strings.Compare(recs[x.i].Key, recs[y.i].Key); c != 0 {
			return c
		}
		return cmp.Compare(x.i, y.i)
	})
	return order
}

// snapshotDirty encodes every queued profile into b, its records in a; called under
// commitMu.
func (e *Engine) snapshotDirty(b *Batch, a *arena) []*Profile {
	e.mergeMu.Lock() // a merge lands wholly in this snapshot or wholly in a later one
	defer e.mergeMu.Unlock()
	// Sized from the last snapshot: under load each is about as large as the one before,
	// and growing by doubling copied (and barriered) tens of megabytes of records each time.
	var pending []*Profile
	b.Profiles, pending = e.spare.take(e.lastSnapshot + e.lastSnapshot/8)
	defer func() { e.lastSnapshot = len(pending) }()
	pass := newPace()
	for i, sh := range e.shards {
		sh.mu.Lock()
		// The queue is taken whole, and changes from now on queue anew for the next
		// write-through; a queued profile changed before its turn is encoded as it is
		// then. The new queue starts empty rather than with the old one's capacity:
		// after a write-through of every profile (an import, the first minutes of a big
		// node) that would hold a pointer's worth of memory per profile for good.
		list := sh.dirty
		sh.dirty = nil
		b.DeletedProfiles = append(b.DeletedProfiles, sh.deleted...)
		sh.deleted = nil
		sh.mu.Unlock()
		// Encoded lockBatch at a time, so the tap's consumer is not held off for long.
		sh.inBatches(list, pass, func(p *Profile) {
			p.mark(queued, false)
			if !p.is(dirty) {
				return
			}
			b.Profiles = append(b.Profiles, Record{Key: p.ID, Data: a.add(p)})
			p.mark(dirty, false)
			pending = append(pending, p)
		})
		if e.afterShardSnapshot != nil {
			e.afterShardSnapshot(i)
		}
	}
	return pending
}

// snapshotLists are a write-through's list of records and of the profiles they were
// encoded from, kept emptied for the next write-through: under load each is about as
// large as the one before, and made anew each second they were about a tenth of the
// engine's garbage, which sets how often the collector runs.
type snapshotLists struct {
	records  []Record
	profiles []*Profile
}

// take hands out the kept lists if they hold n, and not so many more that a past
// spike (an import's write-through of every profile) stays held; else new ones.
func (l *snapshotLists) take(n int) ([]Record, []*Profile) {
	records, profiles := l.records, l.profiles
	*l = snapshotLists{}
	if c := cap(records); c < n || c > 4*n+1024 || cap(profiles) < n {
		return make([]Record, 0, n), make([]*Profile, 0, n)
	}
	return records[:0], profiles[:0]
}

// keep holds the lists of a write-through the store has taken, emptied: their ids,
// encodings and profiles (perhaps erased since) must not outlive them.
func (l *snapshotLists) keep(records []Record, profiles []*Profile) {
	clear(records)
	clear(profiles)
	*l = snapshotLists{records: records[:0], profiles: profiles[:0]}
}

// arena packs encoded profiles into large shared chunks: a write-through of a million
// profiles made a million small buffers (and their regrowth) for the garbage
// collector otherwise. A chunk lives as long as any record in it; once the records
// are committed, release hands the chunks to the next write-through (every second
// under load, tens of megabytes each time).
type arena struct {
	scratch []byte // one encoding, reused
	chunk   []byte
	full    []*[]byte // chunks taken from the pool, for release
}

const arenaChunk = 1 << 20

// arenaChunks holds released chunks; the collector frees what stays unused.
var arenaChunks = sync.Pool{New: func() any { b := make([]byte, 0, arenaChunk); return &b }}

func (a *arena) add(p *Profile) []byte {
	a.scratch = appendProfile(a.scratch[:0], p)
	n := len(a.scratch)
	if cap(a.chunk)-len(a.chunk) < n {
		if n > arenaChunk {
			a.chunk = make([]byte, 0, n) // a huge profile: its own buffer, not pooled
		} else {
			c := arenaChunks.Get().(*[]byte)
			a.full = append(a.full, c)
			a.chunk = (*c)[:0]
		}
	}
	start := len(a.chunk)
	a.chunk = append(a.chunk, a.scratch...)
	return a.chunk[start : start+n : start+n]
}

// release gives the chunks back to the pool; nothing may use the records any more.
func (a *arena) release() {
	for _, c := range a.full {
		arenaChunks.Put(c)
	}
	*a = arena{}
}

// commit writes b together with whatever an earlier failed commit left; on failure
// all of it is kept for the next try (called under commitMu). With nothing left over,
// b is committed as it is, without copying it.
func (e *Engine) commit(ctx context.Context, b *Batch) error {
	return e.commitBy(ctx, b, e.store.Commit)
}

// commitBy is commit through the store's method write.
func (e *Engine) commitBy(ctx context.Context, b *Batch, write func(context.Context, *Batch) error) error {
	all := b
	if !e.unstored.empty() {
		e.keep(b)
		all = &e.unstored
	}
	if err := write(ctx, all); err != nil {
		e.metrics.storeErrors.Inc()
		if all == b {
			e.keep(b)
		}
		return err
	}
	e.unstored = Batch{}
	return nil
}

// forget drops b's records of the profiles owners and of what they own (an erasure:
// a retried commit must not write them back).
func (b *Batch) forget(owners []string) {
	gone := b.forgetProfiles(owners)
	for k, rs := range b.Owned {
		b.Owned[k] = slices.DeleteFunc(rs, func(r Record) bool { return gone[r.Owner] })
	}
}

// forgetProfiles drops b's records of the profiles ids, and returns them as a set.
func (b *Batch) forgetProfiles(ids []string) map[string]bool {
	gone := make(map[string]bool, len(ids))
	for _, id := range ids {
		gone[id] = true
	}
	b.Profiles = slices.DeleteFunc(b.Profiles, func(r Record) bool { return gone[r.Key] })
	return gone
}

// keep adds b to what the next commit retries, later snapshots after earlier ones.
func (e *Engine) keep(b *Batch) {
	all := &e.unstored
	if len(b.DeletedProfiles) > 0 && len(all.Profiles) > 0 {
		// A profile an earlier snapshot wrote and this one deletes (merged away since)
		// is not written back: a store applies a batch's deletions before its records,
		// so its old record would outlive it. (An erasure forgets them itself.)
		all.forgetProfiles(b.DeletedProfiles)
	}
	all.Profiles = append(all.Profiles, b.Profiles...)
	all.DeletedProfiles = append(all.DeletedProfiles, b.DeletedProfiles...)
	all.Products = append(all.Products, b.Products...)
	for k, rs := range b.Owned {
		for _, r := range rs {
			all.own(k, r)
		}
	}
}

// encodeProfile snapshots p (its shard locked) and clears its dirty mark.
func encodeProfile(p *Profile) Record {
	data := marshalProfile(p)
	p.mark(dirty, false)
	return Record{Key: p.ID, Data: data}
}
