package rules

import (
	"context"
	"time"
)

// pending is a firing made ready: what to commit, and what to send once committed.
type pending struct {
	r    *rule
	f    Firing
	send func() error
}

// batch collects the firings of a chunk of fired timers, to commit them together.
type batch struct{ pending []pending }

// do performs r's action for env if the limits allow it. The firing is counted and
// recorded (a prompt stored) in one step before it is sent, so that whoever receives
// it finds it in the queue and the log. With a batch, that step waits for the rest
// of the batch (see commit).
func (e *Engine) do(ctx context.Context, r *rule, env *Env, now time.Time, limits []Limit, b *batch) {
	p, ok := e.prepare(ctx, r, env, now, limits)
	switch {
	case !ok:
	case b != nil:
		b.pending = append(b.pending, p)
	default:
		e.commit(ctx, []pending{p})
	}
}

func (e *Engine) prepare(ctx context.Context, r *rule, env *Env, now time.Time, limits []Limit) (pending, bool) {
	rec := &Record{Action: Action{At: now, Viewer: env.Viewer.ID, Room: env.Session.Room, RuleID: r.id, Type: r.action}}
	a := &rec.Action
	var send func() error
	switch r.action {
	case ActPrompt:
		p, err := e.prompt(r, env, now)
		if err != nil {
			e.fail("render prompt", err)
			return pending{}, false
		}
		rec.Prompt, a.Detail = &p, p.ID
		send = func() error { return e.deps.Outbox.SendPrompt(ctx, p.Room, p) }
	case ActDM:
		text, err := render(r.text, env)
		if err != nil {
			e.fail("render dm", err)
			return pending{}, false
		}
		a.Detail = text
		send = func() error { return e.deps.Outbox.SendDM(ctx, env.Session.Room, env.Viewer.ID, text, r.id) }
	case ActWebhook:
		a.Detail = r.url
		d := delivery{id: newID("w"), url: r.url, rule: r.id, at: now, env: *env}
		send = func() error { e.hooks.enqueue(d); return nil }
	case ActTag:
		a.Detail = r.tag
		send = func() error {
			if t := e.deps.Tagger; t != nil {
				return t.AddTag(ctx, env.Viewer.ID, r.tag, r.id)
			}
			return nil
		}
	}
	return pending{r: r, f: Firing{At: now, Limits: limits, Rec: rec}, send: send}, true
}

// commit counts and records ps in one step, then sends those the limits let through.
// A burst of stay prompts is committed a chunk at a time: one lock and one read of
// the counters per chunk instead of per prompt.
func (e *Engine) commit(ctx context.Context, ps []pending) {
	if len(ps) == 0 {
		return
	}
	fs := make([]Firing, len(ps))
	for i, p := range ps {
		fs[i] = p.f
	}
	ok, err := e.deps.State.Commit(ctx, fs...)
	if err != nil {
		e.fail("record firings", err)
		return
	}
	for i, p := range ps {
		if !ok[i] {
			continue
		}
		e.stats.fired.Add(1)
		e.stats.count(p.r.action)
		if err := p.send(); err != nil {
			e.fail("send "+p.r.action, err)
		}
	}
}

func (e *Engine) prompt(r *rule, env *Env, now time.Time) (Prompt, error) {
	suggested, err := render(r.text, env)
	if err != nil {
		return Prompt{}, err
	}
	reason := describe(env)
	if r.reason != nil {
		if reason, err = render(r.reason, env); err != nil {
			return Prompt{}, err
		}
	}
	v := env.Viewer
	return Prompt{ID: newID("p"), Room: env.Session.Room, RuleID: r.id, CreatedAt: now,
		Viewer: PromptUser{ID: v.ID, Name: v.Name, Tags: v.Tags}, Reason: reason, Suggested: suggested}, nil
}
