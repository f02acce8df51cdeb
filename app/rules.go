package app

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liveroom/liveroom/backup"
	"github.com/liveroom/liveroom/chat"
	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/gateway"
	"github.com/liveroom/liveroom/problem"
	"github.com/liveroom/liveroom/rules"
	"github.com/liveroom/liveroom/segment"
)

// Files of the rules under --data: their state (prompts, limits, scheduled jobs, the
// action log) and the rules document in force.
const (
	RulesDB   = "rules.db"
	RulesFile = "rules.json"
)

// serviceUser signs the automatic private messages rules send.
var serviceUser = event.User{ID: "liveroom", Name: "Customer service", Role: event.RoleAgent}

// chatOut is what the rules need from chat: prompts to a room's agents and DMs.
type chatOut interface {
	Prompt(ctx context.Context, room string, p chat.Prompt) error
	SendEncodedPrompt(ctx context.Context, room string, e chat.EncodedPrompt) error
	PromptChanged(ctx context.Context, room string, u chat.PromptUpdate) error
	SendDM(ctx context.Context, room string, from event.User, to, text string) (chat.DM, error)
	ViewerDMs(ctx context.Context, viewer string) (map[string][]chat.DM, error)
	EraseViewer(ctx context.Context, viewers ...string) error
}

// outbox delivers the rules' prompts and DMs through chat.
type outbox struct{ chat chatOut }

func (o outbox) SendPrompt(ctx context.Context, room string, p rules.Prompt) error {
	return o.chat.Prompt(ctx, room, chatPrompt(p))
}

// EncodePrompt encodes the chat event of a prompt made ready ahead of its threshold,
// stamped with the threshold (rules.PromptEncoder).
func (o outbox) EncodePrompt(p rules.Prompt) (any, error) {
	return chat.EncodePrompt(chatPrompt(p), p.CreatedAt), nil
}

func (o outbox) SendEncodedPrompt(ctx context.Context, room string, encoded any) error {
	e, ok := encoded.(chat.EncodedPrompt)
	if !ok {
		return fmt.Errorf("app: not an encoded chat prompt: %T", encoded)
	}
	return o.chat.SendEncodedPrompt(ctx, room, e)
}

// PromptChanged tells the room's agents of a claim or a resolution (rules.PromptNotifier).
func (o outbox) PromptChanged(ctx context.Context, room string, p rules.Prompt) error {
	return o.chat.PromptChanged(ctx, room, chat.PromptUpdate{PromptID: p.ID, ClaimedBy: p.ClaimedBy, Resolved: !p.ResolvedAt.IsZero()})
}

func chatPrompt(p rules.Prompt) chat.Prompt {
	return chat.Prompt{
		Viewer:    chat.PromptViewer{ID: p.Viewer.ID, Name: p.Viewer.Name, Tags: tagWords(p.Viewer.Tags)},
		Reason:    p.Reason,
		Suggested: p.Suggested,
		PromptID:  p.ID,
	}
}

func (o outbox) SendDM(ctx context.Context, room, viewer, text, ruleID string) error {
	_, err := o.chat.SendDM(ctx, room, serviceUser, viewer, text)
	return err
}

func tagWords(t rules.Tags) []string {
	var out []string
	for _, w := range []string{t.Activity, t.Value, t.Lifecycle} {
		if w != "" {
			out = append(out, w)
		}
	}
	out = append(out, t.Preference...)
	return append(out, t.Custom...)
}

// playbook feeds what segment applied (events and tag changes) to the rules with a
// fresh snapshot of the viewer, and serves the gateway's rules, consent, notes and
// Shopify order routes.
type playbook struct {
	seg    *segment.Engine
	lives  *liveStamp
	rules  *rules.Engine
	file   string
	in     *event.Queue
	cancel func()
	mu     sync.Mutex           // serialises PutRules
	zones  *viewerMap[string]   // viewer id → IANA time zone seen on its events
	custom *viewerMap[[]string] // viewer id → custom tags (from the action log)
	// tagged is false while no viewer has a custom tag: then no log is read for them.
	tagged atomic.Bool
	// firings is the rules' state, where custom tags are read from (usable before
	// the engine is: a job due at start-up may tag a viewer at once).
	firings rules.Firings
	// holds keeps what imports hand over until handled (segment.Holder): run releases
	// each hold once its last event is handled, replay hands over again those a crash
	// left.
	holds holdStore
	drops uint64 // the queue's drops when take last looked (run's goroutine)
	log   *slog.Logger
	tagMu sync.Mutex // serialises AddTag's read-modify-write of custom
	trend *tagTrend
	// gdpr is held by a viewer's erasure and read by an export (analytics), so that an
	// export sees the viewer wholly before its erasure or not at all: the erasure goes
	// through the rules and chat before the profile, and an export in between found
	// the profile but what the rules and chat held of it already gone.
	gdpr sync.RWMutex
}

// run handles events until taking ends, then the ones still queued until none is
// left or ctx ends: segment answered for them (an order, an import) and will not
// hand them over again, so a clean stop must not leave them behind.
func (p *playbook) run(ctx, taking context.Context) {
	for {
		ev, err := p.in.Next(taking)
		if err != nil {
			break
		}
		p.take(ctx, ev)
	}
	for ctx.Err() == nil {
		ev, ok := p.in.TryNext()
		if !ok {
			return
		}
		p.take(ctx, ev)
	}
}

// handleHeld is handle for a replayed event: a panic is logged and the hold goes on,
// where it would end the process at every start, the hold being handed over first.
func (p *playbook) handleHeld(ctx context.Context, ev event.Event) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("rules: handling a held event panicked; skipped", "event", ev.ID, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	p.handle(ctx, ev)
}

// holdStore is the rules' state as it keeps imports' events until handled.
type holdStore interface {
	segment.Holder
	Release(ctx context.Context, seq uint64) error
	Held(ctx context.Context) ([]rules.HeldData, error)
}

// take handles ev, then releases the hold it closes, if any: unless the queue dropped
// events since the last hold it released (when full), one of which may be of this
// hold's import; the next start hands such a hold over again.
func (p *playbook) take(ctx context.Context, ev event.Event) {
	p.handle(ctx, ev)
	if ev.Held == 0 || p.holds == nil {
		return
	}
	if d := p.in.Dropped(); d != p.drops {
		p.drops = d
		p.log.Warn("rules: the queue dropped events; an import's hold is kept for the next start", "hold", ev.Held)
		return
	}
	p.release(ctx, ev.Held)
}

func (p *playbook) release(ctx context.Context, seq uint64) {
	if err := p.holds.Release(ctx, seq); err != nil {
		p.log.Error("rules: an import's hold not released; a restart hands its events over again", "hold", seq, "err", err)
	}
}

// replay hands the rules again the events of the holds a crash left, one by one (the
// queue could not take a large backlog at once): those of imports that were
// committed; a hold whose import was not committed, or that does not decode, is
// dropped. It runs before the rules take events from the queue.
func (p *playbook) replay(ctx context.Context) error {
	held, err := p.holds.Held(ctx)
	if err != nil {
		return err
	}
	for _, h := range held {
		evs, ids, err := segment.HeldEvents(h.Seq, h.Data)
		if err == nil {
			var committed bool
			if committed, err = p.seg.Imported(ctx, ids); err != nil {
				return err // the store is unreadable: keep the hold for the next start
			}
			if committed {
				p.log.Warn("rules: handing over again an import's events that a stop left unhandled", "hold", h.Seq, "events", len(evs))
				for _, ev := range evs {
					p.handleHeld(ctx, ev)
				}
				p.release(ctx, h.Seq)
				continue
			}
		} else {
			p.log.Error("rules: a held import's events do not decode; dropped", "hold", h.Seq, "err", err)
		}
		if err := p.holds.Release(ctx, h.Seq); err != nil {
			return err
		}
	}
	return nil
}

func (p *playbook) handle(ctx context.Context, ev event.Event) {
	if ev.Type == event.LiveStart && ev.Live != "" {
		// Viewers already in the room's chat are in the live now (segment moved their
		// presence when it applied this event), with no event of their own to say so.
		for _, id := range p.seg.PresentIn(ev.Live) {
			if v, s, ok := p.Snapshot(ctx, id, ev.Live); ok {
				p.rules.Present(v, s)
			}
		}
	}
	// A live's end is about the live: media's event carries the host, whose profile
	// (if any) has nothing to do with it.
	if ev.Type == event.LiveEnd || ev.Viewer == "" {
		if ev.Type == event.LiveEnd {
			p.rules.EndLive(ev.Live)
		}
		return
	}
	if ev.Live == "" && ev.Room != "" && p.lives != nil {
		ev.Live = p.lives.current(ev.Room) // orders and imports come without the live id
	}
	v, s, ok := p.Snapshot(ctx, ev.Viewer, ev.Live)
	if !ok {
		return
	}
	if s.Live == "" && ev.Room != "" {
		s.Room = ev.Room // the event's room, not the viewer's last (Snapshot)
	}
	if ev.Type == event.TagChange && ev.Tag != nil {
		p.trend.add(ev)
		p.rules.OnTagChange(ctx, v, s, rules.TagChange{Dimension: ev.Tag.Dimension, From: ev.Tag.From, To: ev.Tag.To, At: ev.At, CauseAt: ev.Tag.CauseAt})
		return
	}
	if ev.Type == event.Order {
		// The order may have merged the viewer into another profile (a guest who turns
		// out to be a known customer), or be for a profile others were merged into:
		// the prompts about any of its ids are converted, not only those filed under
		// the id it is known by now (OnEvent's).
		if ids, err := p.seg.Identities(ctx, v.ID); err == nil {
			at := ev.At
			if at.IsZero() {
				at = time.Now()
			}
			for _, id := range ids {
				if id == v.ID {
					continue
				}
				if err := p.rules.OnOrder(ctx, id, at); err != nil {
					p.log.Error("rules: marking a merged id's prompts ordered", "viewer", id, "err", err)
				}
			}
		}
	}
	p.rules.OnEvent(ctx, v, s, ev)
}

// Snapshot is the viewer and its presence in live as the rules see them now. It runs
// for every event segment applies and every stay timer that fires, so it reads the
// lean segment.Brief rather than the profile page's ViewerView.
func (p *playbook) Snapshot(ctx context.Context, id, live string) (rules.Viewer, rules.Session, bool) {
	b, err := p.seg.Brief(ctx, id, live)
	if err != nil {
		return rules.Viewer{}, rules.Session{}, false
	}
	v := rules.Viewer{
		ID: b.ID, Name: b.Name, Sessions: b.Sessions, WatchSeconds: b.Watch.Seconds(),
		Orders: b.Orders, Spend: money(b.Spend), AOV: money(b.AOV), Comments: b.Comments, Likes: b.Likes,
		Consent: b.Consent == nil || *b.Consent, LastComment: b.LastComment, LastSKU: b.LastSKU,
		Tags: rules.Tags{Activity: b.Activity, Value: b.Value, Lifecycle: b.Lifecycle, Preference: b.Preference},
	}
	if b.LastSKU != "" {
		v.LastCategory = p.seg.Category(b.LastSKU)
	}
	if z, ok := p.zones.load(id); ok {
		v.TimeZone = z
	}
	v.Tags.Custom = p.customTags(ctx, b.ID)
	var s rules.Session
	if l := b.Live; l.Live != "" {
		s = rules.Session{Room: l.Room, Live: l.Live, WatchSeconds: l.Watch.Seconds(), Watching: l.Watching,
			Comments: b.LiveComments, AsOf: l.AsOf}
		// Shops stamp orders to the second: one placed in the live's first second
		// still belongs to it.
		if !b.LastOrder.IsZero() && !b.LastOrder.Before(l.Start.Truncate(time.Second)) {
			s.Orders = 1
		}
	}
	if s.Room == "" {
		// Not in the live asked for (an order from the shop, a sweep's tag change):
		// its messages go to the room it was last in.
		s.Room = b.LastRoom
	}
	return v, s, true
}

var _ rules.ProfileVersions = (*playbook)(nil)

// Version stamps what a snapshot of the viewer is made of (rules.ProfileVersions): a
// stay prompt made ready ahead goes out as made only while the stamp is the same.
func (p *playbook) Version(ctx context.Context, id string) (uint64, bool) {
	st, ok := p.seg.Version(id)
	if !ok {
		return 0, false
	}
	category := ""
	if st.LastSKU != "" {
		category = p.seg.Category(st.LastSKU)
	}
	zone, _ := p.zones.load(id)
	return stamp(st.Version, category, zone, p.customTags(ctx, st.ID)), true
}

// stamp mixes what a snapshot is made of: the profile's latest change (segment), the
// category of the viewer's last product (from the catalog) and what the node keeps
// beside the profile (the player's time zone, custom tags of the profile the id leads
// to). Values, not change counts, so the order they are read in does not matter and a
// change elsewhere in the catalog does not count. Equal stamps from unequal parts would
// take a 64-bit hash collision.
func stamp(profile uint64, category, zone string, custom []string) uint64 {
	var h maphash.Hash
	h.SetSeed(stampSeed)
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], profile)
	h.Write(n[:])
	h.WriteString(category)
	h.WriteByte(0)
	h.WriteString(zone)
	for _, t := range custom {
		h.WriteByte(0)
		h.WriteString(t)
	}
	return h.Sum64()
}

var stampSeed = maphash.MakeSeed()

func money(m segment.Money) float64 { return float64(m) / 1e6 }

// RulesJSON is the document in force.
func (p *playbook) RulesJSON() []byte { return p.rules.Rules().Document().JSON() }

// PutRules compiles data first; only a good document is written (atomically, fsynced)
// and then put in force, so a refused or failed change leaves the old rules in force.
func (p *playbook) PutRules(ctx context.Context, data []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	set, err := rules.CompileUpdate(data)
	if err != nil {
		return err
	}
	if err := writeFileSync(p.file, set.Document().JSON()); err != nil {
		return problem.Wrap(problem.Unavailable, err, "rules could not be saved; the old rules stay in force")
	}
	p.rules.Use(set)
	return nil
}

func (p *playbook) Prompts(ctx context.Context, room string) ([]rules.Prompt, error) {
	return p.rules.Prompts(ctx, room)
}

func (p *playbook) Claim(ctx context.Context, id, agent string, allow func(room string) error) (rules.Prompt, error) {
	return p.rules.Claim(ctx, id, agent, allow)
}

func (p *playbook) Resolve(ctx context.Context, id, agent, outcome string, allow func(room string) error) (rules.Prompt, error) {
	return p.rules.Resolve(ctx, id, agent, outcome, allow)
}

func (p *playbook) Actions(ctx context.Context, viewer string) ([]rules.Action, error) {
	return p.rules.Actions(ctx, viewer)
}

// SetConsent records an agent's change of a viewer's consent as a consent event,
// durable before it returns.
func (p *playbook) SetConsent(ctx context.Context, viewer string, messages bool, by event.User) error {
	ev := event.Event{ID: fmt.Sprintf("consent:%s:%d", viewer, time.Now().UnixNano()), Type: event.Consent,
		Viewer: viewer, At: time.Now().UTC(), Consent: &messages}
	_, err := p.importOne(ctx, ev)
	return err
}

// importOne imports one event, durable before it returns; a refused event is a 400.
func (p *playbook) importOne(ctx context.Context, ev event.Event) (segment.ImportResult, error) {
	res, err := p.seg.Import(ctx, []segment.Item{{Event: ev}}, nil)
	if err == nil && len(res.Errors) > 0 {
		err = problem.New(problem.BadRequest, "%s", res.Errors[0].Error)
	}
	return res, err
}

// TagChanges are the tag changes per day, for the dashboard.
func (p *playbook) TagChanges(days int) []gateway.DayChanges { return p.trend.TagChanges(days) }

// AddTag gives the viewer a custom tag (a rule's tag action). The action log the rules
// keep is where it lasts; this keeps it at hand for the next snapshots.
func (p *playbook) AddTag(ctx context.Context, viewer, tag, ruleID string) error {
	p.tagMu.Lock()
	defer p.tagMu.Unlock()
	p.tagged.Store(true)
	tags := p.customTags(ctx, viewer)
	if !slices.Contains(tags, tag) {
		p.custom.store(viewer, append(slices.Clip(tags), tag))
	}
	return nil
}

// customTags are the viewer's custom tags, read once from its action log.
func (p *playbook) customTags(ctx context.Context, viewer string) []string {
	if !p.tagged.Load() {
		return nil
	}
	if t, ok := p.custom.load(viewer); ok {
		return t
	}
	var tags []string
	if acts, err := p.firings.Actions(ctx, viewer); err == nil {
		for _, a := range acts {
			if a.Type == rules.ActTag && !slices.Contains(tags, a.Detail) {
				tags = append(tags, a.Detail)
			}
		}
	}
	return p.custom.loadOrStore(viewer, tags)
}

// SetTimeZone keeps the viewer's zone in memory for quiet hours: after a restart the
// player sends it again when the viewer comes back.
func (p *playbook) SetTimeZone(viewer string, zone *time.Location) {
	// Under the id as segment keeps it (an e-mail key in lower case), which snapshots
	// read and an erasure forgets.
	p.zones.store(event.EmailKey(viewer), zone.String())
}

func (p *playbook) AddNote(ctx context.Context, viewer string, by event.User, text string) error {
	return p.rules.AddNote(ctx, viewer, by.ID, text)
}

// Order imports a verified shop order; it returns once the order is durable.
func (p *playbook) Order(ctx context.Context, ev event.Event) (bool, error) {
	res, err := p.importOne(ctx, ev)
	return err == nil && res.Duplicates > 0, err
}

// Category is the category the room's catalog knows for sku (pinned products).
func (p *playbook) Category(sku string) string { return p.seg.Category(sku) }

// analytics is segment's figures with dm_conversion from the prompts.
type analytics struct {
	*segment.Engine
	rules *rules.Engine
	chat  chatOut
	book  *playbook
	// caughtUp waits for segment to take the live events already queued (nil: none).
	caughtUp func(context.Context) error
}

// Export adds to the profile's export what the rules (actions, notes, prompts) and
// chat (private messages) hold about each of the viewer's ids.
func (a analytics) Export(ctx context.Context, id string) (segment.Export, error) {
	a.book.gdpr.RLock()
	defer a.book.gdpr.RUnlock()
	out, err := a.Engine.Export(ctx, id)
	var ids []string
	notFound := errors.Is(err, segment.ErrUnknownViewer)
	if notFound {
		// No profile: the rules and chat may still hold something under the id (an
		// agent's note or DM written for it).
		ids = []string{event.EmailKey(id)}
	} else if err != nil {
		return out, err
	} else if ids, err = a.Identities(ctx, id); err != nil {
		return segment.Export{}, err
	}
	held, dms, herr := a.elsewhere(ctx, ids)
	if herr != nil {
		return segment.Export{}, herr
	}
	if notFound {
		if len(held)+len(dms) == 0 {
			return segment.Export{}, err
		}
		out = segment.Export{Profile: json.RawMessage("null"), Events: []json.RawMessage{}, Orders: []json.RawMessage{}}
	}
	out.Elsewhere = map[string]any{"rules": held, "dms": dms}
	return out, nil
}

// elsewhere is what the rules and chat hold about each of ids, by id (those that hold
// something).
func (a analytics) elsewhere(ctx context.Context, ids []string) (map[string]rules.Held, map[string]map[string][]chat.DM, error) {
	held, dms := map[string]rules.Held{}, map[string]map[string][]chat.DM{}
	for _, v := range ids {
		h, err := a.rules.Held(ctx, v)
		if err != nil {
			return nil, nil, problem.Wrap(problem.Unavailable, err, "the rules state is unavailable")
		}
		if len(h.Actions)+len(h.Prompts)+len(h.Jobs) > 0 {
			held[v] = h
		}
		d, err := a.chat.ViewerDMs(ctx, v)
		if err != nil {
			return nil, nil, err
		}
		if len(d) > 0 {
			dms[v] = d
		}
	}
	return held, dms, nil
}

// Erase forgets the viewer everywhere: the rules' state, chat's private messages and
// the node's memory of its time zone and custom tags for each of its ids, then the
// profile. The profile goes last, so that an erase that fails part-way can be retried.
func (a analytics) Erase(ctx context.Context, id string) error {
	a.book.gdpr.Lock()
	defer a.book.gdpr.Unlock()
	if a.caughtUp != nil {
		if err := a.caughtUp(ctx); err != nil {
			return err
		}
	}
	ids, err := a.Identities(ctx, id)
	noProfile := errors.Is(err, segment.ErrUnknownViewer)
	if noProfile {
		// No profile: the rules and chat may still hold something under the id (an
		// agent's note or DM written for it); erased the same way, if so.
		ids = []string{event.EmailKey(id)}
		held, dms, herr := a.elsewhere(ctx, ids)
		if herr != nil {
			return herr
		}
		if len(held)+len(dms) == 0 {
			return err
		}
	} else if err != nil {
		return err
	}
	defer a.rules.Hold(ids...)() // until the profile is gone: queued events then find none
	// All ids at once: each store compacts its file once per erase.
	if err := a.rules.Erase(ctx, ids...); err != nil {
		return problem.Wrap(problem.Unavailable, err, "could not erase from the rules state; retry")
	}
	if err := a.chat.EraseViewer(ctx, ids...); err != nil {
		return err
	}
	for _, v := range ids {
		a.book.zones.delete(v)
		a.book.custom.delete(v)
	}
	if noProfile {
		return nil
	}
	return a.Engine.Erase(ctx, id)
}

func (a analytics) Analytics(ctx context.Context, room string) segment.Analytics {
	out := a.Engine.Analytics(ctx, room)
	if c, err := a.rules.DMConversion(ctx, room); err == nil && c.Resolved > 0 {
		rate := c.Rate
		out.DMConversion = &rate
	}
	return out
}

// writeFileSync replaces path with data durably: temp file, fsync, rename, fsync dir.
func writeFileSync(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

// loadRules reads the saved rules, or the shipped defaults on first start.
func loadRules(path string, stay time.Duration) (*rules.Set, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return rules.CompileDocument(rules.DefaultRules(stay))
	}
	if err != nil {
		return nil, err
	}
	set, err := rules.Compile(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return set, nil
}

// wireRules builds the rules engine on <data>/rules.db, feeds it what segment applies,
// and hands the rules, consent/notes and Shopify routes to the gateway.
func (a *App) wireRules(deps *gateway.Deps) error {
	seg, ok := deps.Segment.(*segment.Engine)
	if !ok || seg == nil {
		return nil
	}
	ch, ok := deps.Chat.(chatOut)
	if !ok {
		return errors.New("rules need chat to reach agents")
	}
	set, err := loadRules(filepath.Join(a.cfg.Data, RulesFile), a.cfg.Segment.StayThreshold)
	if err != nil {
		return err
	}
	state, err := rules.OpenBolt(filepath.Join(a.cfg.Data, RulesDB), a.cfg.Rules.FlushEvery)
	if err != nil {
		return a.inUse(err)
	}
	tagged, err := state.AnyTagged(context.Background())
	if err != nil {
		state.Close()
		return err
	}
	trendFile := filepath.Join(a.cfg.Data, TrendFile)
	p := &playbook{seg: seg, lives: a.pub.(*liveStamp), trend: loadTagTrend(trendFile, a.log), file: filepath.Join(a.cfg.Data, RulesFile),
		in: event.NewQueue(TapSize), zones: newViewerMap[string](), custom: newViewerMap[[]string](), firings: state,
		holds: state, log: a.log}
	p.tagged.Store(tagged) // before the engine starts: a due job may tag at once
	queueMetrics(deps.Registry, "rules_queue", "the rules' queue (segment's applied events and tag changes)", p.in)
	eng, err := rules.New(a.cfg.Rules, rules.Deps{Outbox: outbox{ch}, State: state, Profiles: p, Tagger: p, Log: a.log.With("part", "rules"), Rules: set})
	if err != nil {
		state.Close()
		return err
	}
	p.rules = eng
	if deps.Registry != nil {
		if err := deps.Registry.Register(eng.Collector()); err != nil {
			eng.Close(context.Background())
			state.Close()
			return err
		}
	}
	// A sweep's pass over every profile waits out a burst of prompts falling due.
	seg.SetYield(func() { eng.WaitIdle(500 * time.Millisecond) })
	p.cancel = seg.Subscribe(p.in)
	seg.SetHolder(state, rules.StaleAfter) // imports from now on are held until the rules handled them
	if err := p.replay(context.Background()); err != nil {
		p.cancel()
		seg.SetHolder(nil, 0)
		eng.Close(context.Background())
		state.Close()
		return fmt.Errorf("rules: handing over what a stop left: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	taking, stopTaking := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		wg.Go(func() { p.trend.keep(taking, trendFile, a.log) })
		p.run(ctx, taking)
		wg.Wait()
		p.trend.saveOrWarn(trendFile, a.log) // everything counted, on a clean stop
	}()
	a.book = p
	deps.Rules, deps.Actions, deps.Orders, deps.Trends = p, p, p, p
	deps.Ready = append(deps.Ready, state.Ready)
	a.backups = append(a.backups, state.Backup, backup.CopyFile(a.cfg.Data, RulesFile),
		func(ctx context.Context, dir string) error {
			p.trend.saveOrWarn(trendFile, a.log) // the counts so far, not as of the last save
			return backup.CopyFile(a.cfg.Data, TrendFile)(ctx, dir)
		})
	deps.Segment = analytics{Engine: seg, rules: eng, chat: ch, book: p,
		caughtUp: func(ctx context.Context) error { return caughtUp(ctx, a.tap, seg) }}
	deps.ShopSecret = a.cfg.Segment.ShopSecret
	a.stops = append(a.stops, func(ctx context.Context) error {
		p.cancel() // no new events; those queued are handled before the engine stops
		stopTaking()
		select {
		case <-done:
		case <-ctx.Done():
			cancel()
			<-done
		}
		if left := p.in.Len(); left > 0 {
			a.log.Warn("rules stopped before handling every event: the imports' ones are handed over at the next start, the others' actions are lost", "left", left)
		}
		cancel()
		seg.SetHolder(nil, 0) // an import from now on is not held (the state closes)
		return errors.Join(eng.Close(ctx), state.Close())
	})
	return nil
}
