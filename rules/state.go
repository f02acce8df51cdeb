package rules

import (
	"context"
	"time"
)

// Limit is one per-viewer limit to check and count atomically: at most Cap firings
// (0: no cap) at least Cooldown apart.
type Limit struct {
	Key      string
	Cooldown time.Duration
	Cap      int
}

// Counter is what a State keeps per Limit key.
type Counter struct {
	N    int       `json:"n"`
	Last time.Time `json:"last"`
}

// allows reports whether c lets one more firing through at at.
func (l Limit) allows(c Counter, at time.Time) bool {
	if l.Cap > 0 && c.N >= l.Cap {
		return false
	}
	return c.N == 0 || l.Cooldown <= 0 || !at.Before(c.Last.Add(l.Cooldown))
}

// Job is a scheduled firing kept durably: an "after" timer or an action deferred by
// quiet hours.
type Job struct {
	ID     string    `json:"id"`
	RuleID string    `json:"rule"`
	Due    time.Time `json:"due"`
	// Deferred jobs have already passed the condition and the limits.
	Deferred bool `json:"deferred,omitempty"`
	Env      Env  `json:"env"`
}

// Prompt asks a room's agents to write to a viewer.
type Prompt struct {
	ID         string     `json:"id"`
	Room       string     `json:"room"`
	Viewer     PromptUser `json:"viewer"`
	Reason     string     `json:"reason"`
	Suggested  string     `json:"suggested"`
	RuleID     string     `json:"rule"`
	CreatedAt  time.Time  `json:"created_at"`
	ClaimedBy  string     `json:"claimed_by,omitempty"`
	ClaimedAt  time.Time  `json:"claimed_at,omitzero"`
	ResolvedAt time.Time  `json:"resolved_at,omitzero"`
	Outcome    string     `json:"outcome,omitempty"`
	// Ordered24h: the viewer ordered within 24 h after the prompt was created.
	Ordered24h bool `json:"ordered_24h"`
}

// PromptUser is the viewer a prompt is about.
type PromptUser struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Tags Tags   `json:"tags"`
}

// Action is one thing a rule did for a viewer, for the viewer's profile.
type Action struct {
	At     time.Time `json:"at"`
	Viewer string    `json:"viewer"`
	Room   string    `json:"room,omitempty"`
	RuleID string    `json:"rule"`
	Type   string    `json:"type"` // prompt, dm, webhook, tag
	// Detail is the DM text, the prompt id, the webhook URL or the tag.
	Detail string `json:"detail,omitempty"`
}

// MaxActionsPerViewer bounds the action log of one viewer (the oldest go first).
const MaxActionsPerViewer = 200

// Record is what one firing leaves behind: its line in the viewer's action log and,
// for a prompt action, the prompt in its room's queue.
type Record struct {
	Action Action
	Prompt *Prompt
}

// Firing is one firing to count and record: Rec may be nil (count only), and with
// no Limits it is only recorded.
type Firing struct {
	At     time.Time
	Limits []Limit
	Rec    *Record
}

// Firings counts firings against the limits and records them, in one atomic step so
// that a firing is counted if and only if it is recorded.
type Firings interface {
	// Commit takes the firings in order: each is checked against its limits at its
	// time (after the ones before it) and only if all allow it is it counted on each
	// and its record stored; ok[i] reports firing i. On an error nothing is counted.
	// A burst of firings committed together shares one lock, one read and one write.
	Commit(ctx context.Context, fs ...Firing) (ok []bool, err error)
	// Actions lists a viewer's actions, oldest first (at most MaxActionsPerViewer).
	Actions(ctx context.Context, viewer string) ([]Action, error)
	// AnyTagged reports whether any viewer's actions hold a tag action: while none
	// does, nobody has custom tags and their logs need not be read for them.
	AnyTagged(ctx context.Context) (bool, error)
}

// JobStore keeps scheduled jobs across restarts.
type JobStore interface {
	PutJob(ctx context.Context, j Job) error
	DeleteJob(ctx context.Context, id string) error
	Jobs(ctx context.Context) ([]Job, error)
}

// PromptStore reads and updates the prompt queues (Commit adds to them).
type PromptStore interface {
	// UpdatePrompt runs fn on the prompt atomically and stores the result unless fn
	// fails; an unknown id is ErrPromptNotFound.
	UpdatePrompt(ctx context.Context, id string, fn func(*Prompt) error) (Prompt, error)
	// Prompts lists a room's prompts, oldest first; every room's (room by room) for "".
	Prompts(ctx context.Context, room string) ([]Prompt, error)
	// ViewerPrompts lists the ids of a viewer's prompts created at or after since.
	ViewerPrompts(ctx context.Context, viewer string, since time.Time) ([]string, error)
}

// State is everything the engine keeps: MemoryState (tests, embedded fallback) and
// BoltState (durable) implement it; a Redis one fits the same methods.
type State interface {
	Firings
	JobStore
	PromptStore
	Eraser
	LiveEnder
	CounterPruner
}
