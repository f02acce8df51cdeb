package rules

import (
	"context"
	"time"
)

// do performs r's action for env if the limits allow it. The firing is counted and
// recorded (a prompt stored) in one step before it is sent, so that whoever receives
// it finds it in the queue and the log.
func (e *Engine) do(ctx context.Context, r *rule, env *Env, now time.Time, limits []Limit) {
	rec := Record{Action: Action{At: now, Viewer: env.Viewer.ID, Room: env.Session.Room, RuleID: r.id, Type: r.action}}
	a := &rec.Action
	var send func() error
	switch r.action {
	case ActPrompt:
		p, err := e.prompt(r, env, now)
		if err != nil {
			e.fail("render prompt", err)
			return
		}
		rec.Prompt, a.Detail = &p, p.ID
		send = func() error { return e.deps.Outbox.SendPrompt(ctx, p.Room, p) }
	case ActDM:
		text, err := render(r.text, env)
		if err != nil {
			e.fail("render dm", err)
			return
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
	ok, err := e.deps.State.Commit(ctx, now, limits, &rec)
	if err != nil {
		e.fail("record "+r.action, err)
	}
	if !ok || err != nil {
		return
	}
	e.stats.fired.Add(1)
	e.stats.count(r.action)
	if err := send(); err != nil {
		e.fail("send "+r.action, err)
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
