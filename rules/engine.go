package rules

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"hash/maphash"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Outbox is how the engine reaches people; chat implements it. Both calls must not
// block for long (chat queues and drops rather than waits).
type Outbox interface {
	// SendPrompt hands a prompt to the agents of p.Room (a `prompt` event).
	SendPrompt(ctx context.Context, room string, p Prompt) error
	// SendDM sends an automatic private message to a viewer, on behalf of ruleID.
	SendDM(ctx context.Context, room, viewerID, text, ruleID string) error
}

// PromptEncoder is an Outbox that can encode a prompt ahead of sending it, so that a
// stay firing made ready ahead (Config.StayPrepare) is only handed over at its
// threshold. Optional.
type PromptEncoder interface {
	EncodePrompt(p Prompt) (encoded any, err error)
	SendEncodedPrompt(ctx context.Context, room string, encoded any) error
}

// PromptNotifier is an Outbox that tells a room's agents when a prompt is claimed or
// resolved (chat's `prompt_update`). Optional.
type PromptNotifier interface {
	PromptChanged(ctx context.Context, room string, p Prompt) error
}

// Clock tells the time; nil means the system clock.
type Clock interface{ Now() time.Time }

// Tagger adds a custom tag to a viewer's profile (segment implements it). Optional:
// without it tag actions are only recorded.
type Tagger interface {
	AddTag(ctx context.Context, viewerID, tag, ruleID string) error
}

// Profiles gives a fresh snapshot of a viewer in a live when a timer fires (segment
// implements it). Optional: without it the snapshot taken when the timer was armed is
// used, its watch time moved on to the firing time.
type Profiles interface {
	Snapshot(ctx context.Context, viewerID, live string) (Viewer, Session, bool)
}

// ProfileVersions is a Profiles that tells cheaply a stamp of what a snapshot of a
// viewer would be made of: equal stamps, no change in between. Only with it (or with no Profiles at all) are stay
// firings made ready ahead (Config.StayPrepare): one is committed at its threshold only
// if the viewer's profile has not changed since it was made ready, and made afresh
// otherwise. false: the viewer has no profile any more.
type ProfileVersions interface {
	Version(ctx context.Context, viewerID string) (uint64, bool)
}

// Deps are what the engine needs from outside. Outbox and State are required.
type Deps struct {
	Outbox   Outbox
	State    State
	Clock    Clock
	Tagger   Tagger
	Profiles Profiles
	// HTTP delivers webhooks; nil means a client with Config.WebhookTimeout.
	HTTP *http.Client
	Log  *slog.Logger
	// Rules is the set in force at start; nil means no rules.
	Rules *Set
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Engine evaluates rules and runs their actions. Its methods are safe for concurrent
// use; Close stops its goroutines.
type Engine struct {
	cfg   Config
	deps  Deps
	clock Clock
	log   *slog.Logger
	set   atomic.Pointer[Set]
	wheel *wheel
	hooks *webhooks
	fires chan []*timer
	// inflight counts the chunks of due timers handed to the workers and not yet
	// done (WaitIdle).
	inflight atomic.Int64
	ended    chan string // lives whose once-per-live counters are to be forgotten
	// conversions keeps DMConversion's recent figures, by room.
	convMu      sync.Mutex
	conversions map[string]cachedConversion
	convGen     uint64 // counts forgetConversions

	stayDone stayDone // the stay keys that fired, per live

	// versions and encoder are deps.Profiles and deps.Outbox where they can do more
	// (nil otherwise); stayLead is how far ahead stay firings are made ready:
	// Config.StayPrepare, or 0 with Profiles that cannot tell a snapshot went stale.
	versions ProfileVersions
	encoder  PromptEncoder
	stayLead time.Duration

	// erasing are the viewers being erased. Everything that fires or arms for a
	// viewer (events, tag changes, a worker's chunk) holds eraseMu for reading and
	// leaves those viewers alone; Erase takes it for writing once, so that what was
	// under way before it has finished.
	eraseMu sync.RWMutex
	erasing map[string]int

	ctx    context.Context // cancelled by Close; only for the engine's own goroutines
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stats  counters
}

// fireChunk is how many due timers a worker takes at once.
const fireChunk = 16

// wheelSlots × Tick is one turn of the wheel; timers further out wait whole turns.
const wheelSlots = 4096

// New starts an engine: its timer wheel, its workers, its webhook pool, and the jobs
// left scheduled in deps.State by an earlier run.
func New(cfg Config, deps Deps) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Outbox == nil || deps.State == nil {
		return nil, errors.New("rules: Outbox and State are required")
	}
	e := &Engine{cfg: cfg, deps: deps, clock: deps.Clock, log: deps.Log,
		fires: make(chan []*timer, 64), ended: make(chan string, 64), erasing: map[string]int{}, conversions: map[string]cachedConversion{}, stayDone: stayDone{seed: maphash.MakeSeed()}}
	if e.clock == nil {
		e.clock = systemClock{}
	}
	e.versions, _ = deps.Profiles.(ProfileVersions)
	e.encoder, _ = deps.Outbox.(PromptEncoder)
	e.stayLead = cfg.StayPrepare
	if deps.Profiles != nil && e.versions == nil {
		e.stayLead = 0
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	set := deps.Rules
	if set == nil {
		set = &Set{byEvent: nil, byID: map[string]*rule{}}
	}
	e.set.Store(set)
	client := deps.HTTP
	if client == nil {
		client = webhookClient(cfg)
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	jobs, err := deps.State.Jobs(e.ctx)
	if err != nil {
		e.cancel()
		return nil, err
	}
	e.wheel = newWheel(cfg.Tick, wheelSlots, e.clock.Now())
	for _, j := range jobs {
		e.wheel.schedule(jobKey(j.ID), j.Due, j)
	}
	e.hooks = newWebhooks(e.ctx, cfg, client, e.log, &e.stats)
	e.wg.Go(e.loop)
	e.wg.Go(e.forgetLives)
	if cfg.PruneEvery > 0 {
		e.wg.Go(e.pruneLoop)
	}
	for range cfg.Workers {
		e.wg.Go(e.work)
	}
	return e, nil
}

// Close stops the timers, the workers and the webhook pool (pending retries are
// abandoned) and waits for them, or for ctx.
func (e *Engine) Close(ctx context.Context) error {
	e.cancel()
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		e.hooks.wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Rules returns the set in force.
func (e *Engine) Rules() *Set { return e.set.Load() }

// SetRules compiles data and puts it in force; on error the old set stays.
func (e *Engine) SetRules(data []byte) (*Set, error) {
	s, err := Compile(data)
	if err != nil {
		return nil, err
	}
	e.set.Store(s)
	return s, nil
}

// Use puts a compiled set in force.
func (e *Engine) Use(s *Set) { e.set.Store(s) }

// loop advances the wheel every tick while timers are near, sleeps until the next
// far timer otherwise, and hands due timers to the workers.
func (e *Engine) loop() {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	var next time.Time // when t fires; zero when stopped
	for {
		now := e.clock.Now()
		if plan := e.wheel.plan(now); !plan.IsZero() && (next.IsZero() || plan.Before(next)) {
			t.Reset(plan.Sub(now))
			next = plan
		}
		select {
		case <-e.ctx.Done():
			return
		case <-e.wheel.wake:
			continue
		case <-t.C:
			next = time.Time{}
		}
		// Hand due timers over in chunks as the slots are read: a burst of ten
		// thousand costs a few hundred channel operations, not ten thousand, and the
		// first chunk goes out at once.
		chunk := make([]*timer, 0, fireChunk)
		for _, slot := range e.wheel.advance(e.clock.Now()) {
			for _, t := range slot {
				if chunk = append(chunk, t); len(chunk) == fireChunk {
					if !e.hand(chunk) {
						return
					}
					chunk = make([]*timer, 0, fireChunk)
				}
			}
		}
		if len(chunk) > 0 && !e.hand(chunk) {
			return
		}
	}
}

// hand gives a chunk of due timers to the workers; false once the engine stops.
func (e *Engine) hand(chunk []*timer) bool {
	e.inflight.Add(1)
	select {
	case e.fires <- chunk:
		return true
	case <-e.ctx.Done():
		e.inflight.Add(-1)
		return false
	}
}

// WaitIdle returns once no due timer waits for a worker or is being fired, or after
// at most max, or when the engine closes. Background work elsewhere in the node
// (segment's sweep) calls it between its steps, so that it does not take the cores from
// a burst of prompts falling due together.
func (e *Engine) WaitIdle(max time.Duration) {
	if e.inflight.Load() == 0 {
		return
	}
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	poll := time.NewTicker(2 * time.Millisecond)
	defer poll.Stop()
	for e.inflight.Load() > 0 {
		select {
		case <-e.ctx.Done():
			return
		case <-deadline.C:
			return
		case <-poll.C:
		}
	}
}

func (e *Engine) work() {
	for {
		select {
		case <-e.ctx.Done():
			return
		case chunk := <-e.fires:
			now := e.clock.Now()
			// A chunk's stay firings are committed together (see commit); jobs, rare
			// and each deleted once done, go one by one.
			b := &batch{pending: make([]pending, 0, len(chunk))}
			e.eraseMu.RLock()
			for _, t := range chunk {
				switch data := t.data.(type) {
				case *stayTimer:
					switch {
					case e.erasing[data.viewer] > 0:
					case data.final:
						e.fireStay(e.ctx, data, now, b)
					default:
						e.prepareStay(e.ctx, t, data, now, b)
					}
				case *readyStay:
					if e.erasing[data.timer.viewer] == 0 {
						e.fireReady(e.ctx, data, now, b)
					}
				case Job:
					if e.erasing[data.Env.Viewer.ID] == 0 {
						e.fireJob(e.ctx, data)
					}
				}
			}
			e.commit(e.ctx, b.pending)
			e.eraseMu.RUnlock()
			e.wheel.forget(chunk)
			e.inflight.Add(-1)
		}
	}
}

func jobKey(id string) string { return "j\x00" + id }

func newID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return prefix + hex.EncodeToString(b[:])
}

// counters are the engine's figures (see Stats).
type counters struct {
	evaluated, fired, prompts, dms, tags, webhooks atomic.Uint64
	consentSkipped, quietDeferred, quietDropped    atomic.Uint64
	hookDelivered, hookFailed, hookDropped, errors atomic.Uint64
	history, noRoom                                atomic.Uint64
}

func (c *counters) count(action string) {
	switch action {
	case ActPrompt:
		c.prompts.Add(1)
	case ActDM:
		c.dms.Add(1)
	case ActWebhook:
		c.webhooks.Add(1)
	case ActTag:
		c.tags.Add(1)
	}
}

// Stats are the engine's running totals, for metrics.
type Stats struct {
	Evaluated, Fired, Prompts, DMs, Tags, Webhooks uint64
	ConsentSkipped, QuietDeferred, QuietDropped    uint64
	WebhooksDelivered, WebhooksFailed              uint64
	WebhooksDropped, Errors                        uint64
	// History counts rules not fired because their event (or the event behind their
	// tag change) happened more than an hour before it reached them (imports).
	History uint64
	// NoRoom counts messages not sent because no room was known to send them in.
	NoRoom      uint64
	ArmedTimers int
}

// Stats returns the totals so far.
func (e *Engine) Stats() Stats {
	c := &e.stats
	return Stats{Evaluated: c.evaluated.Load(), Fired: c.fired.Load(), Prompts: c.prompts.Load(),
		DMs: c.dms.Load(), Tags: c.tags.Load(), Webhooks: c.webhooks.Load(),
		ConsentSkipped: c.consentSkipped.Load(), QuietDeferred: c.quietDeferred.Load(),
		QuietDropped: c.quietDropped.Load(), WebhooksDelivered: c.hookDelivered.Load(),
		WebhooksFailed: c.hookFailed.Load(), WebhooksDropped: c.hookDropped.Load(),
		Errors: c.errors.Load(), History: c.history.Load(), NoRoom: c.noRoom.Load(), ArmedTimers: e.wheel.len()}
}
