package segment

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/problem"
)

// ViewerView is GET /api/viewers/{id}: the contract's profile fields and more.
type ViewerView struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	Aliases      []string   `json:"aliases"`
	FirstSeen    time.Time  `json:"first_seen"`
	LastSeen     time.Time  `json:"last_seen"`
	LastVisit    *time.Time `json:"last_visit"`
	Sessions     int        `json:"sessions"`
	WatchSeconds int64      `json:"watch_seconds"`
	Comments     int        `json:"comments"`
	Likes        int        `json:"likes"`
	Gifts        int        `json:"gifts"`
	GiftValue    Money      `json:"gift_value"`
	Clicks       []Count    `json:"product_clicks"`
	Orders       int        `json:"orders"`
	Spend        Money      `json:"spend"`
	AOV          Money      `json:"aov"`
	Currency     string     `json:"currency"`
	LastOrder    *time.Time `json:"last_order"`
	Bought       []Count    `json:"categories_bought"`
	PriceBand    string     `json:"price_band"`
	Windows      struct {
		D30  window `json:"30d"`
		D90  window `json:"90d"`
		D365 window `json:"365d"`
	} `json:"windows"`
	LiveSessions []liveView        `json:"live_sessions"`
	Consent      *bool             `json:"consent"`
	Tags         map[string]any    `json:"tags"`
	TagsSince    map[string]string `json:"tags_since"`
	Reasons      map[string]string `json:"reasons"`
	RFM          RFM               `json:"rfm"`
	Recent       []recentView      `json:"recent_events"`
}

type liveView struct {
	Live         string    `json:"live"`
	Room         string    `json:"room"`
	Start        time.Time `json:"start"`
	WatchSeconds int64     `json:"watch_seconds"`
	Watching     bool      `json:"watching"`
}

type recentView struct {
	At     time.Time `json:"at"`
	Type   string    `json:"type"`
	Detail string    `json:"detail"`
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func msPtr(ms int64) *time.Time {
	if ms == 0 {
		return nil
	}
	t := msTime(ms)
	return &t
}

func notFound(id string) error {
	return problem.Wrap(problem.NotFound, ErrUnknownViewer, "no viewer "+quote(id))
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

// lookupAs is lookup(id, false) for an id as a person wrote it (an API caller): an
// e-mail key in any case.
func (e *Engine) lookupAs(id string) (*shard, *Profile) { return e.lookup(event.EmailKey(id), false) }

// Viewer returns the profile of id (a viewer id or any id merged into it).
func (e *Engine) Viewer(ctx context.Context, id string) (ViewerView, error) {
	sh, p := e.lookupAs(id)
	if p == nil {
		return ViewerView{}, notFound(id)
	}
	defer sh.mu.Unlock()
	return e.view(p), nil
}

// view builds the answer from p (its shard locked).
func (e *Engine) view(p *Profile) ViewerView {
	now := e.now().UnixMilli()
	today := dayOf(now)
	v := ViewerView{
		ID: p.ID, Name: p.Name, Aliases: listOf(p.Aliases()), // [] rather than absent: every documented field is there
		FirstSeen: msTime(p.FirstSeen), LastSeen: msTime(p.LastSeen), LastVisit: msPtr(p.LastVisit),
		Sessions: int(p.Sessions), WatchSeconds: p.WatchMs / 1000,
		Comments: int(p.Comments), Likes: int(p.Likes), Gifts: int(p.Gifts), GiftValue: p.GiftValue,
		Clicks: listOf(p.Clicks.get()), Orders: int(p.Orders), Spend: p.Spend, AOV: p.Spend.Div(int64(p.Orders)),
		Currency: e.cfg.Currency, LastOrder: msPtr(p.LastOrder), Bought: listOf(p.Bought()),
		Consent: p.Consent.get(), RFM: p.RFM, LiveSessions: []liveView{}, Recent: []recentView{},
	}
	v.PriceBand, _, _ = e.catalog.band(v.AOV, p.Orders > 0)
	v.Windows.D30, v.Windows.D90, v.Windows.D365 = p.window(today, 30), p.window(today, 90), p.window(today, 365)
	for _, l := range p.Lives.get() {
		lv := liveView{Live: l.Live(), Room: l.Room(), Start: msTime(l.Start)}
		watchMs := l.WatchMs()
		for _, s := range p.Open.get() {
			if s.Live() == lv.Live {
				lv.Watching = true
				watchMs += max(0, now-s.Start)
			}
		}
		lv.WatchSeconds = watchMs / 1000 // whole seconds of the sum, as the rules' Brief has it
		v.LiveSessions = append(v.LiveSessions, lv)
	}
	slices.SortFunc(v.LiveSessions, func(a, b liveView) int { return b.Start.Compare(a.Start) }) // latest first
	slices.SortStableFunc(v.Clicks, byCount)
	slices.SortStableFunc(v.Bought, byCount)
	v.Tags = map[string]any{DimActivity: p.Tags.Activity.String(), DimValue: p.Tags.Value.String(), DimLifecycle: p.Tags.Lifecycle.String(), DimPreference: listOf(p.Tags.Preference.get())}
	v.TagsSince, v.Reasons = map[string]string{}, map[string]string{}
	for i, d := range Dimensions {
		v.TagsSince[d] = msTime(p.Tags.Since[i]).Format(time.RFC3339Nano) // to the millisecond, as the page's other times
		v.Reasons[d] = e.reason(p, d, now)
	}
	var buf [maxRecent]Recent
	recent := p.recentInOrder(&buf)
	for i := len(recent) - 1; i >= 0; i-- {
		r := recent[i]
		v.Recent = append(v.Recent, recentView{At: msTime(r.At()), Type: string(r.Type()), Detail: r.detail()})
	}
	return v
}

// byCount orders per-category counts most first, then by category name: the order
// they were first counted in depends on the order history arrived in.
func byCount(a, b Count) int {
	if a.N != b.N {
		return cmp.Compare(b.N, a.N)
	}
	return strings.Compare(a.Cat(), b.Cat())
}

// listOf copies s, as [] rather than null in JSON when empty.
func listOf[T any](s []T) []T {
	return append(make([]T, 0, len(s)), s...)
}

// Count is how many profiles are held.
func (e *Engine) Count() int {
	n := 0
	for _, sh := range e.shards {
		sh.mu.Lock()
		n += sh.profiles.len()
		sh.mu.Unlock()
	}
	return n
}

// Export is everything held about one viewer: the stored profile record, the imported
// events as sent, the orders, and any stored profile set aside at a load.
type Export struct {
	Profile json.RawMessage   `json:"profile"` // null for a viewer known only by a quarantined record
	View    *ViewerView       `json:"view"`
	Events  []json.RawMessage `json:"events"`
	Orders  []json.RawMessage `json:"orders"`
	// Quarantined are the viewer's stored profiles that did not decode at a load and
	// were set aside (quarantine.go), with their bytes.
	Quarantined []Quarantined `json:"quarantined,omitempty"`
	// Elsewhere is what other parts of the node hold about the viewer, by part
	// (the node fills it: the rules' actions and prompts, chat's private messages).
	Elsewhere map[string]any `json:"elsewhere,omitempty"`
}

// Identities returns the ids that are id's profile: its own and those merged into it
// (guest ids, customer and e-mail links).
func (e *Engine) Identities(ctx context.Context, id string) ([]string, error) {
	e.eraseMu.RLock()
	defer e.eraseMu.RUnlock()
	sh, p := e.lookupAs(id)
	if p == nil {
		if owners, ok := e.erasing[event.EmailKey(id)]; ok {
			return slices.Clone(owners), nil // a failed erasure's, for its retry
		}
		return e.identitiesHeld(ctx, id)
	}
	ids := profileIDs(p)
	sh.mu.Unlock()
	return e.withErasing(ids), nil
}

// profileIDs are p's own id, the ids merged into it and, for an id stored before
// e-mail keys were kept in lower case, the key in lower case that leads to it (load):
// what the API keeps about it is under that key.
func profileIDs(p *Profile) []string {
	ids := append([]string{p.ID}, p.Aliases()...)
	for _, id := range ids[:len(ids):len(ids)] {
		if k := event.EmailKey(id); k != id && !slices.Contains(ids, k) {
			ids = append(ids, k)
		}
	}
	return ids
}

// Export returns everything held about id (GDPR access).
func (e *Engine) Export(ctx context.Context, id string) (Export, error) {
	e.eraseMu.RLock()
	defer e.eraseMu.RUnlock()
	out := Export{Profile: json.RawMessage("null"), Events: []json.RawMessage{}, Orders: []json.RawMessage{}}
	sh, p := e.lookupAs(id)
	var held map[Kind][]Record
	var err error
	if p == nil {
		// No profile: perhaps one set aside at load (quarantine.go), whose viewer has
		// not come back since.
		if held, err = e.heldOnly(ctx, id); err == nil && held == nil {
			return Export{}, notFound(id)
		}
	} else {
		ordered := *p // its recent events oldest first, as a stored record has them
		var buf [maxRecent]Recent
		ordered.Recent = packedOf(p.recentInOrder(&buf))
		out.Profile, _ = json.Marshal(&ordered)
		view := e.view(p)
		out.View = &view
		owners := append([]string{p.ID}, p.Aliases()...)
		sh.mu.Unlock()
		held, err = e.store.Held(ctx, owners)
	}
	if err != nil {
		return Export{}, problem.Wrap(problem.Unavailable, err, "segment store unavailable")
	}
	for _, r := range held[KindEvent] {
		out.Events = append(out.Events, heldJSON(r))
	}
	for _, r := range held[KindOrder] {
		out.Orders = append(out.Orders, heldJSON(r))
	}
	for _, r := range held[KindQuarantine] {
		out.Quarantined = append(out.Quarantined, Quarantined{Key: r.Key, Data: r.Data})
	}
	return out, nil
}

// identitiesHeld is Identities for an id with no profile: the id alone when the store
// holds a profile of it set aside at load (its aliases were in the bytes that did not
// decode), else not found.
func (e *Engine) identitiesHeld(ctx context.Context, id string) ([]string, error) {
	held, err := e.heldOnly(ctx, id)
	if err != nil {
		return nil, problem.Wrap(problem.Unavailable, err, "segment store unavailable")
	}
	if held == nil {
		return nil, notFound(id)
	}
	return []string{event.EmailKey(id)}, nil
}

// heldJSON is a held record as exported: its data as it was sent, or, for an event
// of the live room's tap (kept by id only, to apply it once), {"id": ...}.
func heldJSON(r Record) json.RawMessage {
	if len(r.Data) == 0 {
		data, _ := json.Marshal(map[string]string{"id": r.Key})
		return data
	}
	return r.Data
}

// Erase deletes id's profile, every id merged into it and everything they own, from
// memory and from the store (GDPR erasure). Events that arrive later start afresh.
func (e *Engine) Erase(ctx context.Context, id string) error {
	e.eraseMu.Lock()
	defer e.eraseMu.Unlock()
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	sh, p := e.lookupAs(id)
	if p == nil {
		if owners, ok := e.erasing[event.EmailKey(id)]; ok {
			return e.eraseStored(ctx, owners, false) // a retry
		}
		return e.eraseHeld(ctx, id)
	}
	p.mark(gone, true)
	// Its arrays may be in chunks that other profiles keep alive (compact.go).
	e.texts.wipeRecent(p.Recent.get()...)
	clear(p.Recent.get())
	clear(p.Days.get())
	clear(p.Cats.get())
	clear(p.Clicks.get())
	clear(p.Lives.get())
	clear(p.Open.get())
	sh.profiles.del(p.ID)
	delete(sh.open, p)
	owners := profileIDs(p)
	e.texts.wipe(string(p.orderIDList()))
	p.clearBuyer()
	buyer := p.Orders > 0
	sh.mu.Unlock()
	e.unstored.forget(owners) // a failed write-through's copies, or its retry writes them back
	for _, a := range owners[1:] {
		ash := e.shardOf(a)
		ash.mu.Lock()
		delete(ash.alias, a)
		ash.mu.Unlock()
	}
	return e.eraseStored(ctx, e.withErasing(owners), buyer)
}

// withErasing adds to ids, each once, the owners of a failed erasure of any of them
// (under eraseMu): an id that came back since (a new profile) finishes it.
func (e *Engine) withErasing(ids []string) []string {
	for _, id := range ids[:len(ids):len(ids)] {
		for _, o := range e.erasing[id] {
			if !slices.Contains(ids, o) {
				ids = append(ids, o)
			}
		}
	}
	return ids
}

// eraseStored erases owners' records from the store; when that fails it keeps them
// for a retry (erasing). buyer says whether the profile erased from memory had
// ordered: the other buyers' RFM scores were ranked with its orders.
func (e *Engine) eraseStored(ctx context.Context, owners []string, buyer bool) error {
	if buyer {
		e.requestSweep()
	}
	if err := e.store.Erase(ctx, owners); err != nil {
		e.metrics.storeErrors.Inc()
		if e.erasing == nil {
			e.erasing = map[string][]string{}
		}
		for _, o := range owners {
			e.erasing[o] = owners
		}
		return problem.Wrap(problem.Unavailable, err, "could not erase from the store; retry")
	}
	for _, o := range owners {
		delete(e.erasing, o)
	}
	return nil
}

// eraseHeld is Erase for an id with no profile: it erases what the store holds of a
// profile set aside at load (quarantine.go), else the id is not found.
func (e *Engine) eraseHeld(ctx context.Context, id string) error {
	ids, err := e.identitiesHeld(ctx, id)
	if err != nil {
		return err
	}
	if err := e.store.Erase(ctx, ids); err != nil {
		e.metrics.storeErrors.Inc()
		return problem.Wrap(problem.Unavailable, err, "could not erase from the store; retry")
	}
	return nil
}
