package segment

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/segment/rfm"
)

// The four dimensions, in the order of Tags.Since.
const (
	DimActivity   = "activity"
	DimValue      = "value"
	DimLifecycle  = "lifecycle"
	DimPreference = "preference"
)

// Dimensions lists the dimensions in order.
var Dimensions = []string{DimActivity, DimValue, DimLifecycle, DimPreference}

// Tag words (the contract's). Preference words are categories and the price bands.
const (
	High          = "high"
	Medium        = "medium"
	Low           = "low"
	Dormant       = "dormant"
	Churned       = "churned"
	NewViewer     = "new"
	FirstPurchase = "first_purchase"
	Repeat        = "repeat"
	Loyal         = "loyal"
	PriceLow      = pricePrefix + "low"
	PriceMid      = pricePrefix + "mid"
	PriceHigh     = pricePrefix + "high"
)

// pricePrefix begins every price band's word; no category may (validCategory).
const pricePrefix = "price:"

func priceBandWord(s string) bool { return strings.HasPrefix(s, pricePrefix) }

// TagWords lists the fixed words of each dimension (preference also has categories).
var TagWords = map[string][]string{
	DimActivity:   {High, Medium, Low, Dormant, Churned},
	DimValue:      {rfm.VIP, rfm.Important, rfm.Ordinary, rfm.Potential},
	DimLifecycle:  {NewViewer, FirstPurchase, Repeat, Loyal, Dormant, Churned},
	DimPreference: {PriceLow, PriceMid, PriceHigh},
}

// idle is how long since the viewer's last visit (watch or order), or since first
// seen when they never visited; and the word it earns past the thresholds.
func (e *Engine) idle(p *Profile, now int64) (int64, tagWord) {
	last := p.LastVisit
	if last == 0 {
		last = p.FirstSeen
	}
	d := now - last
	switch {
	case d > int64(e.cfg.ChurnedDays)*dayMs:
		return d, wordChurned
	case d > int64(e.cfg.DormantDays)*dayMs:
		return d, wordDormant
	}
	return d, 0
}

// text builds a reason: one is written for every tag change (one per event or more
// under load), and building it with fmt, or by concatenation with a string per figure,
// took most of that time. Each part appends to one buffer, on the stack while it is
// small, so a reason costs one allocation: its string.
type text []byte

func newText(buf *[256]byte) text { return text(buf[:0]) }

func (t text) s(parts ...string) text {
	for _, p := range parts {
		t = append(t, p...)
	}
	return t
}

func (t text) n(v int64) text { return strconv.AppendInt(t, v, 10) }

func (t text) money(m Money) text { return m.appendTo(t) }

func (t text) String() string { return string(t) }

func idleReason(word string, d int64, days int) string {
	var buf [256]byte
	return newText(&buf).s("no visit (watch or order) for ").n(d/dayMs).s(" days; ", word, " after ").n(int64(days)).String()
}

// idleTag is dormant or churned, with its reason when explain, for a viewer who has
// stopped visiting (activity and lifecycle both give way to it), else "".
func (e *Engine) idleTag(p *Profile, now int64, explain bool) (word tagWord, reason string) {
	d, w := e.idle(p, now)
	if w == 0 || !explain {
		return w, ""
	}
	days := e.cfg.DormantDays
	if w == wordChurned {
		days = e.cfg.ChurnedDays
	}
	return w, idleReason(w.String(), d, days)
}

// activity tags how engaged the viewer was in the activity window.
func (e *Engine) activity(p *Profile, now int64, explain bool) (tagWord, string) {
	if w, reason := e.idleTag(p, now, explain); w != 0 {
		return w, reason
	}
	return e.engaged(p, now, explain)
}

// engaged is activity's tag for a viewer who is not idle (idle checked).
func (e *Engine) engaged(p *Profile, now int64, explain bool) (tagWord, string) {
	c := &e.cfg
	sessions, watchSec, interactions := p.activityIn(dayOf(now), c.ActivityDays)
	word := wordLow
	switch {
	// The average (a division) last: only for a viewer high on the other two.
	case sessions >= c.HighSessions && interactions >= c.HighInteractions && averageWatch(watchSec, sessions) >= c.HighAvgWatch:
		word = wordHigh
	case sessions >= c.MediumSessions || interactions > 0:
		word = wordMedium
	}
	if !explain {
		return word, ""
	}
	avg := averageWatch(watchSec, sessions)
	var buf [256]byte
	t := newText(&buf).n(int64(sessions)).s(" live sessions, average watch ", avg.String(), ", ").
		n(int64(interactions)).s(" interactions in ").n(int64(c.ActivityDays)).s(" days")
	switch word {
	case wordHigh:
		t = t.s(" (high from ").n(int64(c.HighSessions)).s(" sessions, ", c.HighAvgWatch.String(), ", ").
			n(int64(c.HighInteractions)).s(" interactions)")
	case wordMedium:
		t = t.s(" (medium from ").n(int64(c.MediumSessions)).s(" sessions or any interaction)")
	default:
		t = t.s(" (low: visited, below medium)")
	}
	return word, t.String()
}

// averageWatch is the watch per session, in whole seconds (none without a session).
func averageWatch(watchSec int64, sessions int) time.Duration {
	if sessions <= 0 {
		return 0
	}
	return time.Duration(watchSec/int64(sessions)) * time.Second
}

// lifecycle tags where the viewer is on the way from new to loyal.
func (e *Engine) lifecycle(p *Profile, now int64, explain bool) (tagWord, string) {
	if w, reason := e.idleTag(p, now, explain); w != 0 {
		return w, reason
	}
	return e.stage(p, now, explain)
}

// stage is lifecycle's tag for a viewer who is not idle (idle checked).
func (e *Engine) stage(p *Profile, now int64, explain bool) (tagWord, string) {
	c := &e.cfg
	if p.Orders == 0 {
		return wordNew, reasonIf(explain, "has not ordered yet")
	}
	// The window's orders are among the viewer's: with fewer in all than repeat or loyal
	// take, the window (a walk of a year's buckets) cannot make either. Past the larger
	// of the two, more orders change nothing, unless the reason counts them.
	n := int(p.Orders)
	if explain || n >= min(c.RepeatOrders, c.LoyalOrders) {
		enough := max(c.RepeatOrders, c.LoyalOrders)
		if explain {
			enough = math.MaxInt
		}
		n = p.ordersIn(dayOf(now), c.OrderDays, enough)
	}
	word := wordFirstPurchase
	switch {
	case n >= c.LoyalOrders:
		word = wordLoyal
	case n >= c.RepeatOrders:
		word = wordRepeat
	}
	if !explain {
		return word, ""
	}
	var buf [256]byte
	return word, newText(&buf).n(int64(n)).s(" orders in ").n(int64(c.OrderDays)).s(" days, ").n(int64(p.Orders)).
		s(" in all (repeat from ").n(int64(c.RepeatOrders)).s(", loyal from ").n(int64(c.LoyalOrders)).s(")").String()
}

func reasonIf(explain bool, s string) string {
	if explain {
		return s
	}
	return ""
}

// value tags the viewer's RFM tier.
func (e *Engine) value(p *Profile, explain bool) (tagWord, string) {
	word := tierOf(p.RFM.Segment)
	if !explain {
		return word, ""
	}
	segment := p.RFM.Segment.String()
	if segment == rfm.NoOrders {
		return word, "has not ordered yet"
	}
	var buf [256]byte
	return word, newText(&buf).s("RFM ").n(int64(p.RFM.R)).s("/").n(int64(p.RFM.F)).s("/").n(int64(p.RFM.M)).
		s(" over ").n(int64(e.cfg.OrderDays)).s(" days of orders: ", segment).String()
}

// catN is a category's count of clicks and purchased items in the preference window.
type catN struct {
	cat category
	n   uint32
}

// topCategories counts p's clicks and purchases per category in the preference window
// at now into buf and returns the top ones, most first (ties by name).
func (e *Engine) topCategories(p *Profile, now int64, buf *[16]catN) []catN {
	from := dayOf(now) - int32(e.cfg.PreferenceDays)
	counts := buf[:0]
	for _, c := range p.Cats.get() {
		if c.Day() <= from {
			continue
		}
		i := slices.IndexFunc(counts, func(x catN) bool { return x.cat == c.cat })
		if i < 0 {
			counts = append(counts, catN{c.cat, c.N()})
		} else {
			counts[i].n += c.N()
		}
	}
	// The top few picked one at a time: a sort of every category took about a tenth of
	// a product click's instructions.
	top := min(len(counts), e.cfg.TopCategories)
	for i := range top {
		best := i
		for j := i + 1; j < len(counts); j++ {
			if counts[j].ahead(counts[best]) {
				best = j
			}
		}
		counts[i], counts[best] = counts[best], counts[i]
	}
	return counts[:top]
}

// ahead says whether a ranks before b: more counted, or as many and first by name.
func (a catN) ahead(b catN) bool {
	if a.n != b.n {
		return a.n > b.n
	}
	return a.cat.String() < b.cat.String()
}

// preferenceWords appends p's preference at now to words: its top categories, then
// its price band. It also returns the list's key (prefKey) and whether it has one.
func (e *Engine) preferenceWords(p *Profile, now int64, words []string) ([]string, uint64, bool) {
	var buf [16]catN
	counts := e.topCategories(p, now, &buf)
	for _, c := range counts {
		words = append(words, c.cat.String())
	}
	band, _, _ := e.catalog.band(p.Spend.Div(int64(p.Orders)), p.Orders > 0)
	if band != "" {
		words = append(words, band)
	}
	key, ok := prefKey(counts, band)
	return words, key, ok
}

// preferenceReason explains p's preference at now.
func (e *Engine) preferenceReason(p *Profile, now int64) string {
	var countBuf [16]catN
	counts := e.topCategories(p, now, &countBuf)
	aov := p.Spend.Div(int64(p.Orders))
	band, lo, hi := e.catalog.band(aov, p.Orders > 0)
	var buf [256]byte
	t := newText(&buf)
	days := int64(e.cfg.PreferenceDays)
	if len(counts) == 0 {
		t = t.s("no product clicks or purchases in the last ").n(days).s(" days")
	} else {
		t = t.s("most clicked and bought in ").n(days).s(" days: ")
		for i, c := range counts {
			if i > 0 {
				t = t.s(", ")
			}
			t = t.s(c.cat.String(), " (").n(int64(c.n)).s(")")
		}
	}
	switch {
	case band != "":
		t = t.s("; average order ").money(aov).s(" ", e.cfg.Currency, " against catalog price terciles ").money(lo).s(" and ").money(hi)
	case p.Orders > 0:
		t = t.s("; no price band: the catalog has fewer than 3 priced products")
	}
	return t.String()
}

// retag recomputes every dimension of p (its shard sh locked) at now and appends the
// changes to out as events (built only when someone subscribed to them).
func (e *Engine) retag(sh *shard, p *Profile, now int64, cause *event.Event, withPreference bool, out []event.Event) []event.Event {
	emit := e.wantTags.Load()
	changed := false
	// The idle words take precedence in both activity and lifecycle: checked once.
	_, a := e.idle(p, now)
	l := a
	if a == 0 {
		a, _ = e.engaged(p, now, false)
		l, _ = e.stage(p, now, false)
	}
	v, _ := e.value(p, false)
	for dim, word := range [3]tagWord{a, v, l} {
		old := p.Tags.word(dim)
		if *old == word {
			continue
		}
		if emit {
			out = append(out, e.tagEvent(p, Dimensions[dim], old.String(), word.String(), now, cause))
		}
		*old = word
		p.Tags.Since[dim] = now
		changed = true
	}
	if withPreference || p.Tags.Since[3] == 0 {
		var buf [8]string
		fresh, key, keyed := e.preferenceWords(p, now, buf[:0])
		// The first computation stamps since even when the list is still empty, but only a
		// list that differs is a change to report.
		differs := !slices.Equal(fresh, p.Tags.Preference.get())
		if differs || p.Tags.Since[3] == 0 {
			var pref prefList // off the stack buffer
			if keyed {
				pref = e.prefs.share(key, fresh)
			} else {
				pref.words = sh.sharedList(fresh)
			}
			if emit && differs {
				if !keyed {
					pref.joined = strings.Join(pref.words, ",")
				}
				out = append(out, e.tagEvent(p, DimPreference, strings.Join(p.Tags.Preference.get(), ","), pref.joined, now, cause))
			}
			p.Tags.Preference = packedOf(pref.words)
			p.Tags.Since[3] = now
			changed = true
		}
	}
	if changed {
		sh.markDirty(p) // stamped and written even when no event reports the change
	}
	return out
}

// word points at the tag of dimension dim (activity, value or lifecycle).
func (t *Tags) word(dim int) *tagWord {
	switch dim {
	case 0:
		return &t.Activity
	case 1:
		return &t.Value
	}
	return &t.Lifecycle
}

// tagEvent builds the TagChange event, with its reason explained when a subscriber asks
// for reasons (SubscribeWithReasons).
func (e *Engine) tagEvent(p *Profile, dim, from, to string, now int64, cause *event.Event) event.Event {
	ev := event.Event{Type: event.TagChange, At: time.UnixMilli(now).UTC(), Viewer: p.ID, Name: p.Name,
		Tag: &event.TagInfo{Dimension: dim, From: from, To: to}}
	if e.wantReasons.Load() {
		ev.Tag.Reason = e.reason(p, dim, now)
	}
	if cause != nil {
		ev.Tag.Cause, ev.Tag.CauseAt = cause.ID, cause.News()
		ev.Room, ev.Live = cause.Room, cause.Live
		ev.ID = cause.ID + "/" + dim
	} else {
		ev.ID = fmt.Sprintf("sweep/%d/%s/%s", now, p.ID, dim)
	}
	return ev
}

// reason explains the tag of one dimension.
func (e *Engine) reason(p *Profile, dim string, now int64) string {
	var r string
	switch dim {
	case DimActivity:
		_, r = e.activity(p, now, true)
	case DimValue:
		_, r = e.value(p, true)
	case DimLifecycle:
		_, r = e.lifecycle(p, now, true)
	case DimPreference:
		r = e.preferenceReason(p, now)
	}
	return r
}
