package rules

import (
	"context"
	"time"
	"unicode/utf8"
)

// OrderWindow is how soon after a prompt an order counts as its conversion.
const OrderWindow = 24 * time.Hour

// maxOutcome bounds an agent's outcome text.
const maxOutcome = 200

// Prompts lists a room's prompts, oldest first, resolved ones included.
func (e *Engine) Prompts(ctx context.Context, room string) ([]Prompt, error) {
	return e.deps.State.Prompts(ctx, room)
}

// Claim gives a prompt to agent. Claiming again by the same agent is a no-op; a
// prompt held by another agent is a Conflict (ErrPromptClaimed). Each allow check sees
// the prompt's room first; its error leaves the prompt untouched.
func (e *Engine) Claim(ctx context.Context, id, agent string, allow ...func(room string) error) (Prompt, error) {
	return e.updateFor(ctx, id, agent, allow, func(p *Prompt, now time.Time) error {
		switch {
		case !p.ResolvedAt.IsZero():
			return resolved()
		case p.ClaimedBy == agent:
			return nil
		case p.ClaimedBy != "":
			return claimed(p.ClaimedBy)
		}
		p.ClaimedBy, p.ClaimedAt = agent, now
		return nil
	})
}

// Resolve closes a prompt with the agent's outcome (e.g. "messaged", "ignored"). An
// unclaimed prompt is claimed by agent at once; one claimed by another agent is a
// Conflict. allow works as for Claim.
func (e *Engine) Resolve(ctx context.Context, id, agent, outcome string, allow ...func(room string) error) (Prompt, error) {
	if agent != "" && (outcome == "" || utf8.RuneCountInString(outcome) > maxOutcome || !utf8.ValidString(outcome)) {
		return Prompt{}, badOutcome("the outcome must be 1 to 200 characters")
	}
	return e.updateFor(ctx, id, agent, allow, func(p *Prompt, now time.Time) error {
		switch {
		case !p.ResolvedAt.IsZero():
			return resolved()
		case p.ClaimedBy != "" && p.ClaimedBy != agent:
			return claimed(p.ClaimedBy)
		case p.ClaimedBy == "":
			p.ClaimedBy, p.ClaimedAt = agent, now
		}
		p.ResolvedAt, p.Outcome = now, outcome
		return nil
	})
}

// updateFor applies change to prompt id on behalf of agent, atomically, once the allow
// checks have accepted the prompt's room.
func (e *Engine) updateFor(ctx context.Context, id, agent string, allow []func(string) error, change func(*Prompt, time.Time) error) (Prompt, error) {
	if agent == "" {
		return Prompt{}, badOutcome("an agent is required")
	}
	now := e.clock.Now()
	changed := false // a repeated claim by the same agent changes nothing: no update is sent
	p, err := e.deps.State.UpdatePrompt(ctx, id, func(p *Prompt) error {
		if err := allowed(p.Room, allow); err != nil {
			return err
		}
		before := *p
		err := change(p, now)
		changed = p.ClaimedBy != before.ClaimedBy || !p.ResolvedAt.Equal(before.ResolvedAt)
		return err
	})
	if err != nil {
		return p, err
	}
	if !p.ResolvedAt.IsZero() {
		e.forgetConversions()
	}
	if n, ok := e.deps.Outbox.(PromptNotifier); ok && changed {
		if nerr := n.PromptChanged(ctx, p.Room, p); nerr != nil {
			e.log.Warn("rules: telling the agents of a prompt's change", "prompt", p.ID, "err", nerr)
		}
	}
	return p, nil
}

func allowed(room string, checks []func(string) error) error {
	for _, check := range checks {
		if err := check(room); err != nil {
			return err
		}
	}
	return nil
}

// OnOrder marks the viewer's prompts created within OrderWindow before at as
// converted. OnEvent calls it for order events; call it directly for orders that do
// not pass through OnEvent.
func (e *Engine) OnOrder(ctx context.Context, viewer string, at time.Time) error {
	ids, err := e.deps.State.ViewerPrompts(ctx, viewer, at.Add(-OrderWindow))
	if err != nil {
		return err
	}
	for _, id := range ids {
		converted := false
		_, err := e.deps.State.UpdatePrompt(ctx, id, func(p *Prompt) error {
			// Shops stamp orders to the second: one placed in the prompt's second, after
			// it, is stamped before its nanoseconds.
			if !p.Ordered24h && !at.Before(p.CreatedAt.Truncate(time.Second)) && at.Sub(p.CreatedAt) <= OrderWindow {
				p.Ordered24h, converted = true, true
			}
			return nil
		})
		if converted {
			e.forgetConversions() // once the change is stored
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// forgetConversions drops the kept DMConversion figures once a prompt was resolved,
// converted or erased; a figure being computed meanwhile is not kept (convGen).
func (e *Engine) forgetConversions() {
	e.convMu.Lock()
	clear(e.conversions)
	e.convGen++
	e.convMu.Unlock()
}

// Conversion is dm_conversion: of a room's resolved prompts, how many viewers ordered
// within 24 h of their prompt.
type Conversion struct {
	Resolved int     `json:"resolved"`
	Ordered  int     `json:"ordered"`
	Rate     float64 `json:"rate"` // Ordered / Resolved; 0 when none resolved
}

// conversionTTL is how long DMConversion keeps a figure while no prompt is resolved
// or converted: the dashboard asks every 10 s, and each answer reads every prompt of
// the room (of every room without one).
const conversionTTL = 30 * time.Second

type cachedConversion struct {
	c  Conversion
	at time.Time
}

// DMConversion computes the room's Conversion (every room's for ""), at most
// conversionTTL old.
func (e *Engine) DMConversion(ctx context.Context, room string) (Conversion, error) {
	now := e.clock.Now()
	e.convMu.Lock()
	cached, ok := e.conversions[room]
	gen := e.convGen
	e.convMu.Unlock()
	if ok && now.Sub(cached.at) < conversionTTL {
		return cached.c, nil
	}
	c, err := e.dmConversion(ctx, room)
	if err != nil {
		return Conversion{}, err
	}
	e.convMu.Lock()
	if e.convGen == gen { // else a prompt changed while it was read: not kept
		e.conversions[room] = cachedConversion{c, now}
	}
	e.convMu.Unlock()
	return c, nil
}

func (e *Engine) dmConversion(ctx context.Context, room string) (Conversion, error) {
	list, err := e.deps.State.Prompts(ctx, room)
	if err != nil {
		return Conversion{}, err
	}
	var c Conversion
	for _, p := range list {
		if p.ResolvedAt.IsZero() {
			continue
		}
		c.Resolved++
		if p.Ordered24h {
			c.Ordered++
		}
	}
	if c.Resolved > 0 {
		c.Rate = float64(c.Ordered) / float64(c.Resolved)
	}
	return c, nil
}

// Actions lists what rules did for a viewer, oldest first, with the rule of each.
func (e *Engine) Actions(ctx context.Context, viewer string) ([]Action, error) {
	return e.deps.State.Actions(ctx, viewer)
}

// NoteAction is the action type of an agent's note in a viewer's action log; its RuleID
// names the agent ("agent:ID") instead of a rule.
const NoteAction = "note"

// AddNote keeps an agent's note in the viewer's action log, beside what the rules did;
// it is durable when AddNote returns.
func (e *Engine) AddNote(ctx context.Context, viewer, agent, text string) error {
	rec := &Record{Action: Action{At: e.clock.Now(), Viewer: viewer, RuleID: "agent:" + agent, Type: NoteAction, Detail: text}}
	if _, err := e.deps.State.Commit(ctx, Firing{At: rec.Action.At, Rec: rec}); err != nil {
		return err
	}
	// An agent's note is answered once durable, not written behind with the firings
	// (a crash in the write-behind's window lost a note already answered).
	if s, ok := e.deps.State.(syncer); ok {
		return s.Sync(ctx)
	}
	return nil
}

// syncer is a State that writes some changes behind (BoltState): Sync writes them.
type syncer interface {
	Sync(ctx context.Context) error
}
