package rules

import (
	"context"
	"time"
)

// do performs r's action for env. The action is logged (and a prompt stored) before
// it is sent, so that whoever receives it finds it in the log and the queue.
func (e *Engine) do(ctx context.Context, r *rule, env *Env, now time.Time) {
	a := Action{At: now, Viewer: env.Viewer.ID, Room: env.Session.Room, RuleID: r.id, Type: r.action}
	var send func() error
	switch r.action {
	case ActPrompt:
		p, err := e.prompt(r, env, now)
		if err != nil {
			e.fail("render prompt", err)
			return
		}
		if err := e.deps.State.AddPrompt(ctx, p); err != nil {
			e.fail("store prompt", err)
			return
		}
		a.Detail = p.ID
		e.stats.prompts.Add(1)
		send = func() error { return e.deps.Outbox.SendPrompt(ctx, p.Room, p) }
	case ActDM:
		text, err := render(r.text, env)
		if err != nil {
			e.fail("render dm", err)
			return
		}
		a.Detail = text
		e.stats.dms.Add(1)
		send = func() error { return e.deps.Outbox.SendDM(ctx, env.Session.Room, env.Viewer.ID, text, r.id) }
	case ActWebhook:
		a.Detail = r.url
		e.stats.webhooks.Add(1)
		d := delivery{id: newID("w"), url: r.url, rule: r.id, at: now, env: *env}
		send = func() error { e.hooks.enqueue(d); return nil }
	case ActTag:
		a.Detail = r.tag
		e.stats.tags.Add(1)
		send = func() error {
			if t := e.deps.Tagger; t != nil {
				return t.AddTag(ctx, env.Viewer.ID, r.tag, r.id)
			}
			return nil
		}
	}
	if err := e.deps.State.AddAction(ctx, a); err != nil {
		e.fail("log action", err)
	}
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
