package rules

import (
	"context"
	"time"
)

// pending is a firing made ready: what to commit, and what send needs once it is.
type pending struct {
	r    *rule
	f    Firing
	env  *Env      // dm and tag: the viewer and the room
	text string    // dm: the text
	hook *delivery // webhook
	// encoded is the prompt as the Outbox encoded it ahead (PromptEncoder), or nil.
	encoded any
}

// batch collects the firings of a chunk of fired timers, to commit them together. A
// batch that prepares (prep) collects what would fire without counting or deferring
// anything; held says a firing would have been deferred past quiet hours.
type batch struct {
	pending    []pending
	prep, held bool
}

// preparing reports whether b only collects what would fire (see prepareStay).
func (b *batch) preparing() bool { return b != nil && b.prep }

// do performs r's action for env if the limits allow it. The firing is counted and
// recorded (a prompt stored) in one step before it is sent, so that whoever receives
// it finds it in the queue and the log. With a batch, that step waits for the rest
// of the batch (see commit).
func (e *Engine) do(ctx context.Context, r *rule, env *Env, now time.Time, limits []Limit, b *batch) {
	p, err := e.prepare(r, env, now, limits)
	switch {
	case err != nil:
		if !b.preparing() { // a firing being prepared fails again at the threshold
			e.fail("render "+r.action, err)
		}
	case b != nil:
		if b.prep {
			e.encodeAhead(&p)
		}
		b.pending = append(b.pending, p)
	default:
		e.commit(ctx, []pending{p})
	}
}

func (e *Engine) prepare(r *rule, env *Env, now time.Time, limits []Limit) (pending, error) {
	rec := &Record{Action: Action{At: now, Viewer: env.Viewer.ID, Room: env.Session.Room, RuleID: r.id, Type: r.action}}
	p := pending{r: r, f: Firing{At: now, Limits: limits, Rec: rec}, env: env}
	a := &rec.Action
	switch r.action {
	case ActPrompt:
		pr, err := e.prompt(r, env, now)
		if err != nil {
			return pending{}, err
		}
		rec.Prompt, a.Detail = pr, pr.ID
	case ActDM:
		text, err := render(r.text, env)
		if err != nil {
			return pending{}, err
		}
		a.Detail, p.text = text, text
	case ActWebhook:
		a.Detail = r.url
		p.hook = &delivery{id: newID("w"), url: r.url, rule: r.id, at: now, env: *env}
	case ActTag:
		a.Detail = r.tag
	}
	return p, nil
}

// encodeAhead has the Outbox encode a prompt made ready ahead, if it can; when it
// cannot, the prompt is sent as usual.
func (e *Engine) encodeAhead(p *pending) {
	if e.encoder == nil || p.r.action != ActPrompt {
		return
	}
	encoded, err := e.encoder.EncodePrompt(*p.f.Rec.Prompt)
	if err != nil {
		e.fail("encode prompt", err)
		return
	}
	p.encoded = encoded
}

// send does a committed firing's action.
func (e *Engine) send(ctx context.Context, p *pending) error {
	switch p.r.action {
	case ActPrompt:
		pr := p.f.Rec.Prompt
		if p.encoded != nil {
			return e.encoder.SendEncodedPrompt(ctx, pr.Room, p.encoded)
		}
		return e.deps.Outbox.SendPrompt(ctx, pr.Room, *pr)
	case ActDM:
		return e.deps.Outbox.SendDM(ctx, p.env.Session.Room, p.env.Viewer.ID, p.text, p.r.id)
	case ActWebhook:
		e.hooks.enqueue(*p.hook)
	case ActTag:
		if t := e.deps.Tagger; t != nil {
			return t.AddTag(ctx, p.env.Viewer.ID, p.r.tag, p.r.id)
		}
	}
	return nil
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
	for i := range ps {
		if !ok[i] {
			continue
		}
		p := &ps[i]
		e.stats.fired.Add(1)
		e.stats.count(p.r.action)
		if err := e.send(ctx, p); err != nil {
			e.fail("send "+p.r.action, err)
		}
	}
}

func (e *Engine) prompt(r *rule, env *Env, now time.Time) (*Prompt, error) {
	suggested, err := render(r.text, env)
	if err != nil {
		return nil, err
	}
	reason := describe(env)
	if r.reason != nil {
		if reason, err = render(r.reason, env); err != nil {
			return nil, err
		}
	}
	v := env.Viewer
	return &Prompt{ID: newID("p"), Room: env.Session.Room, RuleID: r.id, CreatedAt: now,
		Viewer: PromptUser{ID: v.ID, Name: v.Name, Tags: v.Tags}, Reason: reason, Suggested: suggested}, nil
}
