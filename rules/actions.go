package rules

import (
	"context"
	"time"
)

// do performs r's action for env and records it in the viewer's action log.
func (e *Engine) do(ctx context.Context, r *rule, env *Env, now time.Time) {
	a := Action{At: now, Viewer: env.Viewer.ID, Room: env.Session.Room, RuleID: r.id, Type: r.action}
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
		if err := e.deps.Outbox.SendPrompt(ctx, p.Room, p); err != nil {
			e.fail("send prompt", err)
		}
	case ActDM:
		text, err := render(r.text, env)
		if err != nil {
			e.fail("render dm", err)
			return
		}
		a.Detail = text
		e.stats.dms.Add(1)
		if err := e.deps.Outbox.SendDM(ctx, env.Session.Room, env.Viewer.ID, text, r.id); err != nil {
			e.fail("send dm", err)
		}
	case ActWebhook:
		a.Detail = r.url
		e.stats.webhooks.Add(1)
		e.hooks.enqueue(delivery{id: newID("w"), url: r.url, rule: r.id, at: now, env: *env})
	case ActTag:
		a.Detail = r.tag
		e.stats.tags.Add(1)
		if t := e.deps.Tagger; t != nil {
			if err := t.AddTag(ctx, env.Viewer.ID, r.tag, r.id); err != nil {
				e.fail("add tag", err)
			}
		}
	}
	if err := e.deps.State.AddAction(ctx, a); err != nil {
		e.fail("log action", err)
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
