package rules

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/liveroom/liveroom/event"
)

// staleAfter: an "after" job whose due time passed longer ago than this is not
// scheduled (an imported order from last year earns no follow-up today), and an event
// older than this, or a tag change it caused, fires no event or tag_change rule: it is
// history (a shop's orders imported on day one), not something the viewer just did,
// and thanking a customer today for an order of last year would be wrong. Its "after"
// jobs still fall due from its time, and stay timers, converted prompts and the
// profile still take it into account.
const staleAfter = time.Hour

// StaleAfter is staleAfter for those who hand the rules events: a tag change caused by
// an event older than this is of no use to them (segment's holds skip it).
const StaleAfter = staleAfter

// history reports whether something that happened at is too old to act on.
func history(at, now time.Time) bool { return !at.IsZero() && at.Before(now.Add(-staleAfter)) }

// OnEvent evaluates the rules triggered by ev for viewer v in session s (snapshots
// taken just after ev was applied), arms or disarms v's stay timers, and on an order
// marks v's recent prompts as converted.
func (e *Engine) OnEvent(ctx context.Context, v Viewer, s Session, ev event.Event) {
	if ev.Type == event.LiveEnd { // about the live, whoever's event carries it
		e.EndLive(cmp.Or(ev.Live, s.Live))
	}
	e.eraseMu.RLock()
	defer e.eraseMu.RUnlock()
	if e.erasing[v.ID] > 0 {
		return
	}
	set := e.set.Load()
	now := e.clock.Now()
	env := Env{Viewer: v, Session: s, Event: EventOf(ev)}
	switch ev.Type {
	case event.Order:
		at := ev.At
		if at.IsZero() {
			at = now
		}
		if err := e.OnOrder(ctx, v.ID, at); err != nil {
			e.fail("mark prompts ordered", err)
		}
	}
	e.trackStay(set, &env, now)
	rs := set.byEvent[ev.Type]
	if len(rs) == 0 {
		return
	}
	old := history(ev.News(), now)
	shared := env // conditions take it by pointer, which moves it to the heap: only here
	for _, r := range rs {
		switch {
		case r.timer == TimerAfter: // due from the event's time; not when long past
			e.scheduleAfter(ctx, r, shared, ev, now)
		case old:
			e.stats.history.Add(1)
		default:
			e.run(ctx, r, &shared, now, nil)
		}
	}
}

// Present arms the stay timers of a viewer found present in a live without an event of
// its own: one who was in the room's chat before the live began (the app calls it for
// each such viewer at the live's start).
func (e *Engine) Present(v Viewer, s Session) {
	e.eraseMu.RLock()
	defer e.eraseMu.RUnlock()
	if e.erasing[v.ID] > 0 {
		return
	}
	e.trackStay(e.set.Load(), &Env{Viewer: v, Session: s}, e.clock.Now())
}

// OnTagChange evaluates the tag_change rules for one change of v's tags.
func (e *Engine) OnTagChange(ctx context.Context, v Viewer, s Session, c TagChange) {
	e.eraseMu.RLock()
	defer e.eraseMu.RUnlock()
	if e.erasing[v.ID] > 0 {
		return
	}
	set := e.set.Load()
	now := e.clock.Now()
	if history(c.CauseAt, now) {
		for _, r := range set.tags {
			if r.tagDim == c.Dimension && matches(r.tagFrom, c.From) && matches(r.tagTo, c.To) {
				e.stats.history.Add(1)
			}
		}
		return
	}
	var env *Env // made for the first rule that matches
	for _, r := range set.tags {
		if r.tagDim == c.Dimension && matches(r.tagFrom, c.From) && matches(r.tagTo, c.To) {
			if env == nil {
				env = &Env{Viewer: v, Session: s, Event: c.event()}
			}
			e.run(ctx, r, env, now, nil)
		}
	}
}

// matches: an empty list takes anything; a preference value (a comma list) matches
// when any of its words is listed.
func matches(list []string, value string) bool {
	if len(list) == 0 {
		return true
	}
	for w := range strings.SplitSeq(value, ",") {
		if slices.Contains(list, w) {
			return true
		}
	}
	return false
}

// machines are the conditions' virtual machines, each with the memory budget
// MaxExprMemory (expr.Run makes one per run with the default budget).
var machines = sync.Pool{New: func() any { return &vm.VM{MemoryBudget: MaxExprMemory} }}

// holds evaluates r's condition on env. A batch that prepares (b.prep) leaves the
// counting and the logging to the firing at the threshold.
func (e *Engine) holds(r *rule, env *Env, b *batch) bool {
	prep := b.preparing()
	if !prep {
		e.stats.evaluated.Add(1)
	}
	if r.cond == nil {
		return true
	}
	m := machines.Get().(*vm.VM)
	out, err := m.Run(r.cond, env)
	machines.Put(m)
	if err != nil {
		if !prep {
			e.stats.errors.Add(1)
			// Once a minute per rule: a condition that fails, fails for every event.
			if now := e.clock.Now().UnixNano(); now-r.warned.Load() >= int64(time.Minute) {
				r.warned.Store(now)
				e.log.Warn("rule condition failed (logged once a minute per rule; every failure is counted)", "rule", r.id, "viewer", env.Viewer.ID, "err", err)
			}
		}
		return false
	}
	ok, _ := out.(bool)
	return ok
}

// run fires r for env if its condition holds; extra limits (the stay timer's once per
// live) are counted with the rule's own. b, when not nil, collects the firing.
func (e *Engine) run(ctx context.Context, r *rule, env *Env, now time.Time, b *batch, extra ...Limit) {
	if !e.holds(r, env, b) {
		return
	}
	e.act(ctx, r, env, now, false, b, extra...)
}

func (r *rule) limit(viewer string) Limit {
	if r.group != "" {
		return Limit{Key: "g\x00" + r.group + "\x00" + viewer, Cooldown: r.cooldown, Cap: r.cap}
	}
	return Limit{Key: "r\x00" + r.id + "\x00" + viewer, Cooldown: r.cooldown, Cap: r.cap}
}

func (r *rule) messages() bool { return r.action == ActPrompt || r.action == ActDM }

// act applies consent, quiet hours and the limits, then does r's action. A deferred
// act has already been counted against the limits.
func (e *Engine) act(ctx context.Context, r *rule, env *Env, now time.Time, deferred bool, b *batch, extra ...Limit) {
	if r.messages() {
		if !env.Viewer.Consent {
			if !b.preparing() {
				e.stats.consentSkipped.Add(1)
			}
			return
		}
		// A message goes to the viewer's room (the DM) or its agents (the prompt): with
		// none known (an order naming no room from a viewer never seen in one), it
		// would be counted and logged as sent and reach no one.
		if env.Session.Room == "" {
			if !b.preparing() {
				e.stats.noRoom.Add(1)
			}
			return
		}
		// One read of the set in force: a new set put in force meanwhile may have no
		// quiet hours (nil), and holdBack reads their mode.
		q := e.set.Load().quiet
		if end, in := q.until(now, env.Viewer.TimeZone); in {
			if b.preparing() {
				b.held = true // decided at the threshold
				return
			}
			e.holdBack(ctx, r, env, now, end, q.drop, deferred, extra)
			return
		}
	}
	var limits []Limit
	if !deferred {
		limits = r.limits(env.Viewer.ID, extra)
	}
	e.do(ctx, r, env, now, limits, b)
}

func (r *rule) limits(viewer string, extra []Limit) []Limit {
	return append([]Limit{r.limit(viewer)}, extra...)
}

// holdBack drops or defers a message that falls in the viewer's quiet hours; a
// deferred one is counted against the limits now, so triggers during the night do
// not pile up.
func (e *Engine) holdBack(ctx context.Context, r *rule, env *Env, now, end time.Time, drop, deferred bool, extra []Limit) {
	if drop {
		e.stats.quietDropped.Add(1)
		return
	}
	if !deferred {
		ok, err := e.deps.State.Commit(ctx, Firing{At: now, Limits: r.limits(env.Viewer.ID, extra)})
		if err != nil {
			e.fail("count rule", err)
			return
		}
		if !ok[0] {
			return
		}
	}
	e.stats.quietDeferred.Add(1)
	e.schedule(ctx, Job{ID: newID("q"), RuleID: r.id, Due: end, Deferred: true, Env: *env})
}

func (e *Engine) scheduleAfter(ctx context.Context, r *rule, env Env, ev event.Event, now time.Time) {
	due := ev.At.Add(r.delay)
	if ev.At.IsZero() {
		due = now.Add(r.delay)
	}
	if history(due, now) || !e.holds(r, &env, nil) {
		return
	}
	id := newID("a")
	if ev.ID != "" {
		id = "a" + r.id + ":" + ev.ID // a redelivered event schedules the same job
	}
	e.schedule(ctx, Job{ID: id, RuleID: r.id, Due: due, Env: env})
}

func (e *Engine) schedule(ctx context.Context, j Job) {
	if err := e.deps.State.PutJob(ctx, j); err != nil {
		e.fail("schedule job", err)
		return
	}
	e.wheel.schedule(jobKey(j.ID), j.Due, j)
}

// fireJob runs a due "after" job or a deferred action; a rule removed or disabled
// since then does nothing.
func (e *Engine) fireJob(ctx context.Context, j Job) {
	defer func() {
		if err := e.deps.State.DeleteJob(ctx, j.ID); err != nil {
			e.fail("delete job", err)
		}
	}()
	r := e.set.Load().byID[j.RuleID]
	if r == nil || !r.enabled {
		return
	}
	env := j.Env
	if p := e.deps.Profiles; p != nil {
		v, _, ok := p.Snapshot(ctx, env.Viewer.ID, env.Session.Live)
		if !ok {
			return // no profile any more (erased): nothing to act on
		}
		if v.TimeZone == "" {
			// Zones are known from the viewer's player, in memory only: after a
			// restart the one the job was scheduled with is the best there is.
			v.TimeZone = env.Viewer.TimeZone
		}
		env.Viewer = v // fresh consent, name and tags; the session stays the trigger's
	}
	e.act(ctx, r, &env, e.clock.Now(), j.Deferred, nil)
}

func (e *Engine) fail(what string, err error) {
	e.stats.errors.Add(1)
	e.log.Error("rules: "+what, "err", err)
}
