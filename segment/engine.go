package segment

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveroom/liveroom/event"
)

// Deps are what the engine is built on.
type Deps struct {
	// Store keeps the profiles; required.
	Store Store
	// Tap is the live event stream (chat and media); nil for none.
	Tap event.Source
	// Now is the clock (time.Now when nil); tests fix it or run in a synctest bubble.
	Now func() time.Time
	Log *slog.Logger
	// Registry receives the engine's metrics when set.
	Registry prometheus.Registerer
}

// Engine keeps every viewer's profile and tags; see the package comment.
type Engine struct {
	cfg     Config
	rates   map[string]Money
	store   Store
	now     func() time.Time
	log     *slog.Logger
	shards  []*shard
	catalog *catalog
	prefs   prefLists // shared preference lists
	metrics *metrics

	// commitMu orders every write to the store: a snapshot taken under it is
	// committed before any later one, and an import's dedup check, apply and commit
	// happen as one step.
	commitMu sync.Mutex
	// mergeMu keeps merges out of a write-through snapshot: a merge deletes the source
	// profile and changes the target, and both must land in the same snapshot (a
	// snapshot that took the target's shard before the merge and the source's after
	// would delete the source before the merged target is written).
	mergeMu sync.RWMutex
	// liveMu keeps merges out of a live's start and end, which visit the shards one by
	// one: a merge from a shard not yet visited into one already visited would carry
	// a presence past the visit (an ended live's presence left open, credited until
	// the vanished-client timeout).
	liveMu sync.RWMutex
	// afterShardSnapshot, beforeImportWrite and afterLiveShard, set only by tests, run
	// after each shard is snapshotted, before an import writes its profiles and after a
	// live's end has visited a shard.
	afterShardSnapshot func(shard int)
	beforeImportWrite  func()
	afterLiveShard     func(shard int)
	// eraseMu is held by an Erase and read by an Export, so that an export sees a viewer
	// wholly before its erasure or not at all: an export that had read the profile
	// could read the store after an erasure ran, and answer with the profile but none
	// of its events and orders.
	eraseMu sync.RWMutex
	// erasing holds the owners of an erasure whose store part failed, under each of
	// them (under eraseMu): the profile is gone from memory, so a retry finds it here
	// and erases them from the store again.
	erasing      map[string][]string
	unstored     Batch                   // what a failed commit left, retried with the next one (under commitMu)
	holding      atomic.Pointer[holding] // where imports and sweeps hold what they hand over (held.go)
	lastSnapshot int                     // profiles in the last write-through's snapshot (under commitMu)
	spare        snapshotLists           // the last write-through's lists, emptied (under commitMu)
	lastFlush    atomic.Pointer[flushTiming]
	flushed      chan struct{} // holds a token once a write-through has ended
	sweepMu      sync.Mutex
	lastCompact  time.Time // of the last compaction (sweepMu)
	// importedSinceCompact counts the events imports applied since the last compaction,
	// and lastImport is when the last import was stored (Unix ms): a large import
	// settled calls for a compaction before the half hour is up (importSettled).
	importedSinceCompact atomic.Int64
	lastImport           atomic.Int64
	texts                textChunks // the compaction's chunks of details and order ids
	rank                 atomic.Pointer[rankings]
	subs                 atomic.Pointer[[]*subscriber]
	subsMu               sync.Mutex
	// pubMu is held for reading while the engine hands events to its subscribers, and
	// for writing by a cancel: once a cancel returns, nothing more reaches its
	// subscriber (the rules drain their queue after it at a stop).
	pubMu       sync.RWMutex
	wantTags    atomic.Bool  // some subscriber takes tag changes
	wantReasons atomic.Bool  // and wants their reasons
	batchPub    batchPublish // the tap's consumer's (applyBatch)
	refresh     chan struct{}
	rerank      rerankCauses
	applied     atomic.Uint64          // events folded in, for Applied
	consumed    atomic.Uint64          // events taken from the tap, for Consumed
	yield       atomic.Pointer[func()] // SetYield
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	closed      atomic.Bool
}

// shard is one independently locked part of the profile table.
type shard struct {
	mu       sync.Mutex
	profiles profileTable
	alias    map[string]string     // guest id, customer:ID, email:ADDR → canonical id
	open     map[*Profile]struct{} // profiles with an open presence (sweep, live end)
	dirty    []*Profile
	deleted  []string
	names    map[string]string   // interned rooms and tag words
	lists    map[string][]string // shared room and preference lists (sharedList)
	recent   [4][]string         // the lists sharedList handed out last, tried first
	next     int                 // the slot of recent the next new one takes
	// changes counts the changes to the shard's profiles; with the shard's index it
	// stamps each change (Profile.ver), unique across the engine up to the
	// count's wrap (see shardBits).
	index   uint64
	changes uint64
}

// maxInterned bounds a shard's intern table; it is reset when full.
const maxInterned = 1 << 16

func (sh *shard) intern(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := sh.names[s]; ok {
		return v
	}
	if len(sh.names) >= maxInterned {
		clear(sh.names)
	}
	sh.names[s] = s
	return s
}

// sharedList returns a list equal to words that the shard's profiles share: most
// viewers were in the same room and prefer the same few categories, so one copy serves
// them all. It has no spare capacity, so appending to it copies; nothing writes into a
// profile's Rooms or Preference in place once shared.
func (sh *shard) sharedList(words []string) []string {
	if len(words) == 0 {
		return []string{} // empty, not nil, as before (JSON [], not null)
	}
	// Viewers of one room change to the same few lists at once (the pinned product's
	// category): the last ones handed out spare building a key and a lookup in a map
	// too large for the cache.
	for _, l := range sh.recent {
		if slices.Equal(l, words) {
			return l
		}
	}
	l := sh.internList(words)
	sh.recent[sh.next] = l
	sh.next = (sh.next + 1) % len(sh.recent)
	return l
}

// internList returns the shard's shared copy of words, making it when new.
func (sh *shard) internList(words []string) []string {
	var buf [128]byte
	key := appendPrefixed(buf[:0], words)
	if l, ok := sh.lists[string(key)]; ok {
		return l
	}
	if len(sh.lists) >= maxInterned {
		clear(sh.lists)
	}
	l := slices.Clip(slices.Clone(words))
	sh.lists[string(key)] = l
	return l
}

// shardBits holds a shard's index in a change stamp: segment-shards is at most 4096.
// The stamp is 32 bits (it fills a hole in Profile), so the shard's count wraps every
// 2^20 changes: two stamps of one profile are equal only if none or a multiple of
// 2^20 changes of its shard lie between them, which a second (the rules' use) cannot
// hold.
const shardBits = 12

// markDirty stamps p as changed and queues it for the next write-through (once).
func (sh *shard) markDirty(p *Profile) {
	sh.changes++
	p.ver = uint32(sh.changes<<shardBits | sh.index)
	p.mark(dirty, true)
	if !p.is(queued) {
		p.mark(queued, true)
		sh.dirty = append(sh.dirty, p)
	}
}

// New loads the profiles from deps.Store and starts consuming the tap, sweeping and
// writing through. Close stops it.
func New(cfg Config, deps Deps) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil {
		return nil, fmt.Errorf("segment: a store is required")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	e := &Engine{
		cfg: cfg, rates: cfg.rates(), store: deps.Store, now: deps.Now, log: deps.Log,
		catalog: newCatalog(), refresh: make(chan struct{}, 1), flushed: make(chan struct{}, 1),
		lastCompact: deps.Now(), // unless load finds profiles
	}
	e.shards = make([]*shard, cfg.Shards)
	for i := range e.shards {
		e.shards[i] = &shard{index: uint64(i), alias: map[string]string{}, open: map[*Profile]struct{}{}, names: map[string]string{}, lists: map[string][]string{}}
		e.shards[i].profiles.init()
	}
	e.subs.Store(&[]*subscriber{})
	m, err := newMetrics(deps.Registry, e)
	if err != nil {
		return nil, err
	}
	e.metrics = m
	if err := e.load(context.Background()); err != nil {
		return nil, err
	}
	e.Sweep()
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	if deps.Tap != nil {
		e.wg.Go(func() { e.consume(ctx, deps.Tap) })
	}
	e.wg.Go(func() { e.sweepLoop(ctx) })
	e.wg.Go(func() { e.flushLoop(ctx) })
	return e, nil
}

// load rebuilds memory from the store.
func (e *Engine) load(ctx context.Context) error {
	n := 0
	now := e.now().UnixMilli()
	oldest := e.oldest(now)
	var bad []unreadable
	err := e.store.Load(ctx, func(id string, data []byte) error {
		p, err := unmarshalProfile(data)
		if err != nil {
			bad = append(bad, unreadable{id: id, data: bytes.Clone(data), err: err})
			return nil
		}
		sh := e.shardOf(p.ID)
		sh.profiles.put(p)
		e.internProfile(sh, p)
		if len(p.Open.get()) > 0 {
			// Every connection ended with the process that had them: the presences
			// are closed, counted up to their last event as a vanished client's are.
			// Left open, a live starting in the room would take them in (startLive).
			p.closeStale(math.MaxInt64, oldest)
			sh.markDirty(p)
		}
		for _, a := range p.Aliases() {
			e.shardOf(a).alias[a] = p.ID
		}
		if k := event.EmailKey(p.ID); k != p.ID {
			// Stored before e-mail keys were kept in lower case: found by the key as it
			// is written now too.
			e.shardOf(k).alias[k] = p.ID
		}
		n++
		return nil
	}, func(sku string, data []byte) error {
		if err := e.catalog.load(sku, data); err != nil {
			// A catalog entry is learned again at the product's next pin (which writes
			// over it): not worth a node that does not start.
			e.log.Error("segment product skipped: its stored record does not decode", "sku", sku, "err", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load segment store: %w", err)
	}
	if err := e.quarantine(ctx, bad, now); err != nil {
		return fmt.Errorf("load segment store: %w", err)
	}
	e.log.Info("segment profiles loaded", "profiles", n, "set_aside", len(bad))
	if n > 0 {
		// Decoded among the decoding's garbage, the profiles' lists and texts lie a few
		// to a page: the first sweep, right after the load, compacts them (at the
		// bench's steady state, 1,204 bytes of heap spans per profile after loading
		// without it, 1,011 with it).
		e.lastCompact = time.Time{}
	}
	return nil
}

// internProfile shares the strings a loaded profile repeats with others.
func (e *Engine) internProfile(sh *shard, p *Profile) {
	pref := p.Tags.Preference.get()
	for i := range pref {
		pref[i] = sh.intern(pref[i])
	}
	rooms := p.Rooms.get()
	for i := range rooms {
		rooms[i] = sh.intern(rooms[i])
	}
	if len(rooms) > 0 {
		p.Rooms = packedOf(sh.sharedList(rooms))
	}
	// Most recent events' detail is the room they were in: the running engine keeps the
	// room's string there, and so does a restart (16 bytes and an object each, else).
	recent := p.Recent.get()
	for i := range recent {
		if r := p.knownRoom(recent[i].Detail()); r != "" {
			recent[i].setDetail(r)
		}
	}
	if len(pref) > 0 {
		p.Tags.Preference = packedOf(sh.sharedList(pref))
	}
}

// Close stops the goroutines and writes everything still in memory.
func (e *Engine) Close(ctx context.Context) error {
	if e.closed.Swap(true) {
		return nil
	}
	e.cancel()
	e.wg.Wait()
	err := e.Flush(ctx)
	e.commitMu.Lock()
	e.spare = snapshotLists{} // no more write-throughs: as large as the last, let go
	e.commitMu.Unlock()
	return err
}

func (e *Engine) consume(ctx context.Context, tap event.Source) {
	batch := make([]event.Event, 0, consumeBatch)
	batches, _ := tap.(event.BatchSource)
	blocks, _ := tap.(event.BlockSource)
	block := new(event.Block)
	keys := new(warmKeys)
	// behind says whether the last take found a backlog (a swap, or a full batch): only
	// then can a chunk be full, and only then is it worth the tap's lock to ask.
	behind := true
	for {
		// Behind: the events are applied where the publisher put them, not moved out
		// one by one first.
		if behind && blocks != nil && blocks.SwapFull(&block) {
			e.applyBatch(block[:], keys)
			clear(block[:]) // let the events' strings go; the tap fills it again
			continue
		}
		ev, err := tap.Next(ctx)
		if err != nil {
			// Stopped (Next keeps saying so): take what is already queued, it was
			// published before the stop.
			var ok bool
			if ev, ok = tap.TryNext(); !ok {
				return
			}
		}
		batch = append(batch[:0], ev)
		if batches != nil {
			batch = batch[:1+batches.TryNextBatch(batch[1:consumeBatch])]
		}
		for batches == nil && len(batch) < consumeBatch {
			ev, ok := tap.TryNext()
			if !ok {
				break
			}
			batch = append(batch, ev)
		}
		behind = len(batch) == consumeBatch
		e.applyBatch(batch, keys)
		clear(batch) // let the events' strings go
	}
}

// consumeBatch is how many queued events the tap's consumer takes at once, so that it
// can warm the cache for the events ahead of the one it applies. The first events of
// a batch are applied with their warming only just asked for: at 128 that is a tenth
// of a batch, at 32 it was half (measured: about 5 % less time on live traffic than
// 32 with the distances below half as long; docs/benchmarks.md, nineteenth session).
const consumeBatch = 128

// maxBatch is the most events applyBatch takes at once: a tap's block (SwapFull).
const maxBatch = max(consumeBatch, event.BlockLen)

// warmKeys holds each event's viewer of a batch, hashed once for the warming stages:
// the consumer's own, not on applyBatch's stack, which zeroed its 4 KiB at every call
// (every event, when the consumer keeps up and takes them one by one).
type warmKeys [maxBatch]warmKey

// The consumer warms the cache for the events ahead of the one it applies, in stages,
// each fetching what the next stage reads: the viewer's id (idAhead events ahead), the
// slot of the shard's table where the id's search begins (slotAhead), the profile the
// slot leads to (profileAhead), the lists that profile points to (listsAhead).
// Applying an event then finds most of what it reads in the cache instead of waiting
// on memory several times, most of an event's time when the profiles outgrow the
// cache. The distances are half as long again as they were when an event took more
// work (before its id's bytes went unread): a stage's lines must arrive before the
// next stage reads them (measured: 12 % less time on live traffic, 6 % on history;
// docs/benchmarks.md, fifteenth session). They doubled again with the larger batch.
const (
	idAhead      = 48
	slotAhead    = 36
	profileAhead = 24
	listsAhead   = 12
)

func (e *Engine) applyBatch(batch []event.Event, keys *warmKeys) {
	n := len(batch)
	// One clock reading serves the batch (microseconds apart), read again after an event
	// that may have waited on a lock held for long: an order may merge profiles, which
	// waits for a write-through's snapshot; a live's end visits every shard.
	now := e.now().UnixMilli()
	var counts tally
	// The events' tag changes are made in one buffer: declared per event, its 1.2 KB
	// were zeroed for every event (docs/benchmarks.md, twenty-second session).
	var changes [maxChanges]event.Event
	pub := &e.batchPub // the consumer's own
	for i := -idAhead; i < n; i++ {
		if j := i + idAhead; j < n {
			warmString(batch[j].Viewer)
		}
		if j := i + slotAhead; j >= 0 && j < n {
			keys[j] = e.warmSlot(&batch[j])
		}
		if j := i + profileAhead; j >= 0 && j < n {
			e.warmProfile(&keys[j])
		}
		if j := i + listsAhead; j >= 0 && j < n {
			e.warmLists(&batch[j], &keys[j])
		}
		if i >= 0 {
			ev := &batch[i]
			mayWait := ev.Type == event.Order || ev.Type == event.LiveEnd
			if mayWait {
				e.publishBatch(batch) // what the batch applied so far does not wait with it
			}
			if !byStaff(ev) {
				pub.add(i, e.apply(ev, keys[i].h, nil, nil, changes[:0], now, &counts))
			}
			if mayWait {
				now = e.now().UnixMilli()
			}
		}
	}
	e.publishBatch(batch)
	clear(keys[:n]) // their profiles may be erased or merged away before the next batch
	e.count(counts)
	e.consumed.Add(uint64(n))
}

// tally counts events applied and tag changes made, for Applied and the metrics. The
// tap's consumer adds up a batch's before it counts them: an atomic instruction per
// event, which on x86 waits for every earlier load and store, cost as the warming's
// locks did (docs/benchmarks.md, twenty-first session).
type tally struct {
	applied int // viewer events folded into profiles (Applied and the metric)
	others  int // a pin, a live's start or end (the metric only)
	changes int // tag changes
}

func (e *Engine) count(t tally) {
	if n := t.applied + t.others; n > 0 {
		e.metrics.applied.Add(float64(n))
	}
	if t.applied > 0 {
		e.applied.Add(uint64(t.applied))
	}
	if t.changes > 0 {
		e.metrics.tagChanges.Add(float64(t.changes))
	}
}

// Consumed is how many events the engine has taken from its tap and dealt with,
// whether or not they changed a profile (Applied counts those that did).
func (e *Engine) Consumed() uint64 { return e.consumed.Load() }

// flushLoop writes through every FlushInterval. After a write-through that took long
// (a million busy profiles), whoever asked for it, the next waits four times as long
// as it took, so that writing takes at most about a fifth of the engine's time.
func (e *Engine) flushLoop(ctx context.Context) {
	t := time.NewTimer(e.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			// flush does nothing while the pause lasts (another caller's write-through
			// may have ended since the timer was set).
			if err := e.flush(ctx, true); err != nil && ctx.Err() == nil {
				e.log.Error("segment write-through failed; will retry", "err", err)
			}
		case <-e.flushed: // a write-through ended, this loop's or another caller's
		case <-ctx.Done():
			return
		}
		t.Reset(max(e.flushPause(), time.Millisecond))
	}
}

// flushTiming is when the last write-through ended and how long it took, from the
// moment it had the store to itself.
type flushTiming struct {
	end  time.Time
	took time.Duration
}

// flushPause is how long the write-through loop still waits after the last
// write-through: FlushInterval, or four times as long as that one took.
func (e *Engine) flushPause() time.Duration {
	last := e.lastFlush.Load()
	if last == nil {
		return 0
	}
	return time.Until(last.end.Add(max(e.cfg.FlushInterval, 4*last.took)))
}

func (e *Engine) sweepLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			e.Sweep()
		case <-e.refresh:
			e.Sweep()
		case <-ctx.Done():
			return
		}
	}
}

// shardOf picks the shard of an id.
func (e *Engine) shardOf(id string) *shard { return e.shardFor(idHash(id)) }

// shardFor picks the shard of an id of hash h: from its low 32 bits (a table takes the
// high ones), scaled to the shard count by a multiplication, where a modulo by a count
// known only at run time divides (tens of cycles, twice an event).
func (e *Engine) shardFor(h uint64) *shard {
	return e.shards[uint64(uint32(h))*uint64(len(e.shards))>>32]
}

// lookup finds the canonical profile of id (following an alias) and returns it with
// its shard locked; nil (nothing locked) when unknown and create is false.
func (e *Engine) lookup(id string, create bool) (*shard, *Profile) {
	return e.lookupHashed(id, idHash(id), create)
}

// lookupHashed is lookup with id's hash h (idHash) worked out: it picks the shard and
// the table's slot.
func (e *Engine) lookupHashed(id string, h uint64, create bool) (*shard, *Profile) {
	sh := e.shardFor(h)
	sh.mu.Lock()
	if p := sh.profiles.getHashed(id, h); p != nil {
		return sh, p
	}
	if canon, ok := sh.alias[id]; ok {
		sh.mu.Unlock()
		if csh, p := e.follow(canon); p != nil {
			return csh, p
		}
		sh.mu.Lock()
		// Looked at again: the lock was let go, and another goroutine may have made
		// the profile meanwhile (two would each make one, and the second replace the
		// first's with what it had applied).
		if p := sh.profiles.getHashed(id, h); p != nil {
			return sh, p
		}
	}
	if !create {
		sh.mu.Unlock()
		return nil, nil
	}
	p := &Profile{ID: strings.Clone(id)} // not a view into a larger request buffer
	sh.profiles.putHashed(p, h)
	return sh, p
}

// maxAliasChain is how many ids an alias is followed through. A merge points the id
// it merges away at its target under both shards' locks, but the ids that pointed at
// the merged-away one only after (merge's repoint): meanwhile they lead there in two
// steps. Merges into merges can make it a few more; the bound keeps a cycle, which no
// merge makes, from looping.
const maxAliasChain = 8

// follow finds the profile the alias id leads to, through ids merged away in turn,
// and returns it with its shard locked; nil (nothing locked) when the chain ends
// without one.
func (e *Engine) follow(id string) (*shard, *Profile) {
	for range maxAliasChain {
		sh := e.shardOf(id)
		sh.mu.Lock()
		if p := sh.profiles.get(id); p != nil {
			return sh, p
		}
		next, ok := sh.alias[id]
		sh.mu.Unlock()
		if !ok {
			break
		}
		id = next
	}
	return nil, nil
}

// today's oldest buckets: days at or before these have no bucket any more.
func (e *Engine) oldest(now int64) int32 {
	return dayOf(now) - int32(max(e.cfg.ActivityDays, e.cfg.OrderDays, e.cfg.PreferenceDays))
}

// oldestCat is the last day at now whose category counts are out of the preference
// window.
func (e *Engine) oldestCat(now int64) int32 {
	return dayOf(now) - int32(e.cfg.PreferenceDays)
}

// Apply folds one live event into its viewer's profile and hands the event and any tag
// change to the subscribers. Live events are not checked against stored ids: the tap's
// ids are unique by construction.
func (e *Engine) Apply(ev event.Event) {
	if byStaff(&ev) {
		return
	}
	var t tally
	var changes [maxChanges]event.Event
	e.publish(&ev, e.apply(&ev, 0, nil, nil, changes[:0], e.now().UnixMilli(), &t))
	e.count(t)
}

// maxChanges is the most tag changes one event makes: one per dimension.
const maxChanges = 4

// byStaff reports whether ev is a host's, agent's or admin's own presence or activity
// in a room: staff are not viewers, so it makes no profile, counts in no figure and
// triggers no rule. A DM is about its viewer party whoever wrote it, and a pin or a
// live's start and end are about the room.
func byStaff(ev *event.Event) bool {
	if !staffRole(ev.Role) {
		return false
	}
	switch ev.Type {
	case event.DM, event.Pin, event.LiveStart, event.LiveEnd, event.TagChange:
		return false
	}
	return true
}

func staffRole(role string) bool {
	return role == event.RoleHost || role == event.RoleAgent || role == event.RoleAdmin
}

// apply is Apply's work; h is idHash(ev.Viewer) when the caller has it (the tap's
// consumer, from warming the cache), else 0; o is the parsed order of an Order event.
// touched collects the profiles an import must write before it answers. Tag changes
// are appended to out; the event and its tag changes are counted in t.
func (e *Engine) apply(ev *event.Event, h uint64, o *orderIn, touched map[*Profile]*shard, out []event.Event, now int64, t *tally) []event.Event {
	if ev.At.IsZero() {
		ev.At = time.UnixMilli(now).UTC()
	}
	// Whatever the source (a token's subject, an import).
	if key := event.EmailKey(ev.Viewer); key != ev.Viewer {
		ev.Viewer, h = key, 0
	}
	switch ev.Type {
	case event.LiveEnd:
		e.endLive(ev.Live, ev.At.UnixMilli())
		t.others++
		return nil
	case event.Pin:
		price, err := e.toBase(ev.Value, ev.Currency)
		if err == nil {
			e.catalog.learn(ev.SKU, ev.Category, price, ev.At.UnixMilli())
		}
		t.others++
		return nil
	case event.LiveStart:
		e.startLive(ev.Room, ev.Live, ev.At.UnixMilli())
		t.others++
		return nil
	case event.TagChange:
		return nil
	}
	if ev.Viewer == "" {
		e.metrics.invalid.Inc()
		return nil
	}
	if o != nil && o.customerKeys != nil {
		e.link(ev.Viewer, o.customerKeys, touched)
	} else if ev.Type == event.Order && o == nil {
		parsed, err := e.parseOrder(ev.Order)
		if err != nil {
			e.metrics.invalid.Inc()
			return nil
		}
		o = parsed
		e.link(ev.Viewer, o.customerKeys, touched)
	}
	// The end of a presence whose start the engine never saw makes no profile: the
	// leave of a connection opened before its viewer was erased must not bring the
	// profile back. Nor does staff's DM to someone unknown (a host not in the room:
	// chat cannot tell an absent addressee's role).
	staffDM := ev.Type == event.DM && staffRole(ev.Role)
	if h == 0 {
		h = idHash(ev.Viewer)
	}
	sh, p := e.lookupHashed(ev.Viewer, h, !(ev.Type == event.Leave || ev.Type == event.WatchStop || staffDM))
	if p == nil {
		return nil
	}
	defer sh.mu.Unlock()
	ev.Viewer = p.ID
	var pre *[3]int64 // a ranked buyer's values before its order
	if ev.Type == event.Order && p.is(ranked) {
		if r, f, m, ok := e.rfmValues(p, dayOf(now)); ok {
			pre = &[3]int64{r, f, m}
		}
	}
	cats, ordered := e.applyTo(sh, p, ev, o, now)
	if ordered {
		e.scoreOne(p, now, pre)
	}
	n := len(out)
	out = e.retag(sh, p, now, ev, cats, out)
	sh.markDirty(p)
	if touched != nil {
		touched[p] = sh
	}
	t.applied++
	t.changes += len(out) - n
	return out
}

// Applied is how many viewer events have been folded into profiles so far.
func (e *Engine) Applied() uint64 { return e.applied.Load() }

// endLive closes every presence in a live that ended, credited up to its end. The
// viewers still in the room's chat stay present in the room (their players stop with
// the live), so that the room's next live takes them in (startLive).
func (e *Engine) endLive(live string, at int64) {
	if live == "" {
		return
	}
	e.liveMu.Lock()
	defer e.liveMu.Unlock()
	oldest := e.oldest(e.now().UnixMilli())
	for si, sh := range e.shards {
		sh.mu.Lock()
		for p := range sh.open {
			i := p.openIndex(live, "")
			if i < 0 {
				continue
			}
			s := p.Open.get()[i]
			p.endSpan(i, at, oldest)
			if chat := s.Refs - s.Players; chat > 0 && s.Room() != "" {
				p.enter(sh, "", s.Room(), max(at, s.Start), chat, 0)
			}
			if len(p.Open.get()) == 0 {
				delete(sh.open, p)
			}
			sh.markDirty(p)
		}
		sh.mu.Unlock()
		if e.afterLiveShard != nil {
			e.afterLiveShard(si)
		}
	}
}

// startLive moves the viewers who were in room's chat before live began into it: the
// live's start is their first sign in it (no event of theirs says so), so their
// session is counted and their presence, credited up to then, goes on in the live.
func (e *Engine) startLive(room, live string, at int64) {
	if room == "" || live == "" {
		return
	}
	e.liveMu.Lock()
	defer e.liveMu.Unlock()
	oldest := e.oldest(e.now().UnixMilli())
	for _, sh := range e.shards {
		sh.mu.Lock()
		for p := range sh.open {
			i := p.openIndex("", room)
			if i < 0 {
				continue
			}
			s := p.Open.get()[i]
			p.endSpan(i, at, oldest)
			p.liveSession(live, room, at, oldest)
			p.enter(sh, live, room, at, s.Refs, s.Players)
			sh.markDirty(p)
		}
		sh.mu.Unlock()
	}
}

// PresentIn returns the viewers with an open presence in live (a chat connection or a
// player): the rules arm the stay timers of those who were there before it began.
func (e *Engine) PresentIn(live string) []string {
	var ids []string
	for _, sh := range e.shards {
		sh.mu.Lock()
		for p := range sh.open {
			if p.openIndex(live, "") >= 0 {
				ids = append(ids, p.ID)
			}
		}
		sh.mu.Unlock()
	}
	return ids
}

// toBase converts a float amount (pins, gifts) in currency to the base currency.
func (e *Engine) toBase(v float64, currency string) (Money, error) {
	return e.convert(MoneyFromFloat(v), currency)
}

func (e *Engine) convert(m Money, currency string) (Money, error) {
	if currency == "" || currency == e.cfg.Currency {
		return m, nil // no lookup: most amounts (every gift of a catalog in the base) are in it
	}
	rate, ok := e.rates[currency]
	if !ok {
		return 0, fmt.Errorf("%w: no rate for currency %q to %s (add it to currency-rates)", ErrBadEvent, currency, e.cfg.Currency)
	}
	return m.Convert(rate)
}
