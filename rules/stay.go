package rules

import (
	"cmp"
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// stayTimer is armed per stay rule per viewer per live. Unless final, it is due
// Config.StayPrepare before the threshold, when its firing is made ready (prepareStay).
type stayTimer struct {
	key     string
	rule    string
	viewer  string // env.Viewer.ID, fixed: env is the worker's once taken
	env     Env
	armedAt time.Time // when env.Session.WatchSeconds was measured
	final   bool      // due at the threshold itself: fired there from a fresh snapshot
}

// readyStay is a stay firing made ready ahead of its threshold, armed at the
// threshold to be committed and sent as it is.
type readyStay struct {
	timer   *stayTimer
	p       pending
	version uint64 // of the viewer's profile it was made from (ProfileVersions)
}

// replacing is what a fresh snapshot st makes of an armed stay's data: it carries
// the latest snapshot, and a firing made ready from an older one is dropped, to be
// made again at the threshold (so is one being made ready: see prepareStay).
func (st *stayTimer) replacing(old any) any {
	switch o := old.(type) {
	case *stayTimer:
		st.final = o.final
	case *readyStay:
		st.final = true
	}
	return st
}

func stayKey(rule, viewer, live string) string {
	return "s\x00" + rule + "\x00" + viewer + "\x00" + live
}

// trackStay arms a stay timer for a viewer present in a live with no order in it, and
// disarms it when they leave or order. An armed timer keeps its deadline and carries
// the latest snapshot, for the prompt's reason and text.
func (e *Engine) trackStay(set *Set, env *Env, now time.Time) {
	s := env.Session
	if s.Live == "" || len(set.stays) == 0 {
		return
	}
	for _, r := range set.stays {
		key := stayKey(r.id, env.Viewer.ID, s.Live)
		if !s.Watching || s.Orders > 0 {
			e.wheel.cancel(key)
			continue
		}
		asOf := now // when WatchSeconds was measured
		if !s.AsOf.IsZero() && s.AsOf.Before(now) {
			asOf = s.AsOf
		}
		lead := e.stayLead
		st := &stayTimer{key: key, rule: r.id, viewer: env.Viewer.ID, env: *env, armedAt: asOf, final: lead == 0}
		if e.wheel.refresh(key, st.replacing) || e.stayFired(s.Live, key) {
			continue // armed: the latest snapshot rides along, the deadline stays
		}
		watched := time.Duration(s.WatchSeconds * float64(time.Second))
		e.wheel.schedule(key, asOf.Add(r.threshold-watched-lead), st)
	}
}

func (e *Engine) stayFired(live, key string) bool { return e.stayDone.has(live, key) }

// markStay marks key fired in live; it reports whether it was not marked before.
func (e *Engine) markStay(live, key string) bool { return e.stayDone.add(live, key) }

// EndLive drops what the engine remembers of a live that ended (which viewers already
// had their stay prompt, in memory and in the state's once-per-live counters); OnEvent
// calls it for a live_end event. The state forgets in the background: a scan of its
// counters must not hold up the events behind this one. Stay timers still armed for
// that live are disarmed by the viewers' watch_stop/leave snapshots.
func (e *Engine) EndLive(live string) {
	e.stayDone.endLive(live)
	select {
	case e.ended <- live:
	case <-e.ctx.Done():
	}
}

// forgetLives has the state forget each ended live, one at a time.
func (e *Engine) forgetLives() {
	for {
		select {
		case <-e.ctx.Done():
			return
		case live := <-e.ended:
			if err := e.deps.State.ForgetLive(e.ctx, live); err != nil {
				e.fail("forget an ended live", err)
			}
		}
	}
}

// stayDone remembers the stay keys that fired in each live, as 64-bit hashes: a
// burst of ten thousand prompts adds ten thousand, and pointer-free keys are cheaper
// to add and are not scanned by the collector. Two keys of one live would have to
// share a hash (about 1 in 10^7 for a million stays) for a stay to be taken as fired
// wrongly. Striped by key: the workers of a burst mark thousands at once, and every
// event checks it.
type stayDone struct {
	seed    maphash.Seed
	stripes [16]struct {
		mu   sync.Mutex
		live map[string]map[uint64]struct{}
	}
}

func (d *stayDone) stripe(key string) (*sync.Mutex, *map[string]map[uint64]struct{}, uint64) {
	h := maphash.String(d.seed, key)
	st := &d.stripes[h%uint64(len(d.stripes))]
	return &st.mu, &st.live, h
}

func (d *stayDone) has(live, key string) bool {
	mu, m, h := d.stripe(key)
	mu.Lock()
	defer mu.Unlock()
	_, ok := (*m)[live][h]
	return ok
}

// add marks key fired in live; it reports whether key was not marked before.
func (d *stayDone) add(live, key string) bool {
	mu, m, h := d.stripe(key)
	mu.Lock()
	defer mu.Unlock()
	if *m == nil {
		*m = map[string]map[uint64]struct{}{}
	}
	keys := (*m)[live]
	if keys == nil {
		keys = map[uint64]struct{}{}
		(*m)[live] = keys
	}
	n := len(keys)
	keys[h] = struct{}{}
	return len(keys) > n
}

// forget drops the keys of viewers' stay rules (those of set) in every live: an
// erasure forgets which stay prompts they had (their once-per-live counters go too).
func (d *stayDone) forget(set *Set, viewers []string) {
	if set == nil || len(set.stays) == 0 {
		return
	}
	lives := map[string]struct{}{}
	for i := range d.stripes {
		st := &d.stripes[i]
		st.mu.Lock()
		for live := range st.live {
			lives[live] = struct{}{}
		}
		st.mu.Unlock()
	}
	for live := range lives {
		for _, r := range set.stays {
			for _, v := range viewers {
				mu, m, h := d.stripe(stayKey(r.id, v, live))
				mu.Lock()
				delete((*m)[live], h)
				mu.Unlock()
			}
		}
	}
}

func (d *stayDone) endLive(live string) {
	for i := range d.stripes {
		st := &d.stripes[i]
		st.mu.Lock()
		delete(st.live, live)
		st.mu.Unlock()
	}
}

// fireStay runs a stay rule whose threshold is reached at `at`: once per viewer per
// live, and only if the viewer is still there without an order. Its firing joins b;
// a batch that prepares is only collecting what would fire (see prepareStay).
func (e *Engine) fireStay(ctx context.Context, t *stayTimer, at time.Time, b *batch) {
	r := e.set.Load().byID[t.rule]
	if r == nil || !r.enabled || r.timer != TimerStay {
		return
	}
	env := &t.env // the timer left the wheel when it fired: its snapshot is ours
	measured := t.armedAt
	if p := e.deps.Profiles; p != nil {
		v, s, ok := p.Snapshot(ctx, env.Viewer.ID, env.Session.Live)
		if !ok {
			return // no profile any more (erased): nothing to fire from a stale snapshot
		}
		env.Viewer, env.Session = v, s
		measured = cmp.Or(s.AsOf, e.clock.Now())
	}
	if !env.Session.Watching || env.Session.Orders > 0 {
		return
	}
	if ahead := at.Sub(measured).Seconds(); ahead > 0 { // watch time as of `at`
		env.Session.WatchSeconds += ahead
		if e.deps.Profiles != nil { // the armed snapshot's lifetime figure is not moved on
			env.Viewer.WatchSeconds += ahead
		}
	}
	env.Event = Event{Type: "timer", At: at}
	if !b.preparing() {
		e.markStay(env.Session.Live, t.key)
	}
	once := Limit{Key: onceKey(t.key), Cap: 1}
	e.run(ctx, r, env, at, b, once)
}

// prepareStay makes the firing of a stay timer due Config.StayPrepare before its
// threshold ready, and arms it at the threshold: the snapshot, the condition and the
// rendering are done now, out of the way of the other thresholds falling due then.
// What does not fire plainly (a false condition, no consent, quiet hours) is armed
// unprepared, to be decided at the threshold as it would have been. A timer reached
// at or after its threshold (a backlog, a viewer who joined late) fires at once in b.
func (e *Engine) prepareStay(ctx context.Context, tm *timer, t *stayTimer, now time.Time, b *batch) {
	at := tm.due.Add(e.stayLead)
	if !at.After(now) {
		e.fireStay(ctx, t, now, b)
		return
	}
	final := *t
	final.final = true
	var version uint64
	if e.versions != nil {
		// Read before the snapshot: a change in between moves the stamp past this
		// one, and the firing is made afresh at the threshold.
		version, _ = e.versions.Version(ctx, t.viewer)
	}
	pb := batch{prep: true}
	e.fireStay(ctx, t, at, &pb)
	var next any = &final
	if len(pb.pending) == 1 && !pb.held {
		next = &readyStay{timer: &final, p: pb.pending[0], version: version}
	}
	e.wheel.rearm(tm, at, func(refreshed any) any { // a cancel since tm was taken stands
		if st, ok := refreshed.(*stayTimer); ok { // a fresher snapshot came meanwhile
			st.final = true
			return st
		}
		return next
	})
}

// fireReady commits a stay firing made ready ahead, as part of b: only if it is
// still the viewer's first in the live, its rule is unchanged and the viewer's
// profile has not changed since (an order, a leave, a live's end, an opt-out that
// reached segment but not yet the engine); otherwise it is made afresh.
func (e *Engine) fireReady(ctx context.Context, rs *readyStay, now time.Time, b *batch) {
	fresh := e.set.Load().byID[rs.timer.rule] == rs.p.r
	if e.versions != nil && fresh {
		v, known := e.versions.Version(ctx, rs.timer.viewer)
		if !known {
			return // no profile any more (erased)
		}
		fresh = v == rs.version
	}
	if !fresh {
		e.fireStay(ctx, rs.timer, now, b)
		return
	}
	if e.markStay(rs.timer.env.Session.Live, rs.timer.key) {
		e.stats.evaluated.Add(1) // its condition, evaluated when it was made ready
		b.pending = append(b.pending, rs.p)
	}
}
