package segment

import (
	"fmt"
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
	PriceLow      = "price:low"
	PriceMid      = "price:mid"
	PriceHigh     = "price:high"
)

// TagWords lists the fixed words of each dimension (preference also has categories).
var TagWords = map[string][]string{
	DimActivity:   {High, Medium, Low, Dormant, Churned},
	DimValue:      {rfm.VIP, rfm.Important, rfm.Ordinary, rfm.Potential},
	DimLifecycle:  {NewViewer, FirstPurchase, Repeat, Loyal, Dormant, Churned},
	DimPreference: {PriceLow, PriceMid, PriceHigh},
}

// idle is how long since the viewer's last visit (watch or order), or since first
// seen when they never visited; and the word it earns past the thresholds.
func (e *Engine) idle(p *Profile, now int64) (int64, string) {
	last := p.LastVisit
	if last == 0 {
		last = p.FirstSeen
	}
	d := now - last
	switch {
	case d > int64(e.cfg.ChurnedDays)*dayMs:
		return d, Churned
	case d > int64(e.cfg.DormantDays)*dayMs:
		return d, Dormant
	}
	return d, ""
}

// The reasons are built by concatenation, not fmt: they are written for every tag
// change (one per event or more under load), and fmt took most of that time.

func idleReason(word string, d int64, days int) string {
	return "no visit (watch or order) for " + strconv.FormatInt(d/dayMs, 10) + " days; " + word + " after " + strconv.Itoa(days)
}

// idleTag is dormant or churned, with its reason when explain, for a viewer who has
// stopped visiting (activity and lifecycle both give way to it), else "".
func (e *Engine) idleTag(p *Profile, now int64, explain bool) (word, reason string) {
	d, w := e.idle(p, now)
	if w == "" || !explain {
		return w, ""
	}
	days := e.cfg.DormantDays
	if w == Churned {
		days = e.cfg.ChurnedDays
	}
	return w, idleReason(w, d, days)
}

// activity tags how engaged the viewer was in the activity window.
func (e *Engine) activity(p *Profile, now int64, explain bool) (string, string) {
	c := &e.cfg
	if w, reason := e.idleTag(p, now, explain); w != "" {
		return w, reason
	}
	win := p.window(dayOf(now), c.ActivityDays)
	avg := time.Duration(0)
	if win.Sessions > 0 {
		avg = time.Duration(win.WatchSec/int64(win.Sessions)) * time.Second
	}
	word := Low
	switch {
	case win.Sessions >= c.HighSessions && avg >= c.HighAvgWatch && win.Interactions >= c.HighInteractions:
		word = High
	case win.Sessions >= c.MediumSessions || win.Interactions > 0:
		word = Medium
	}
	if !explain {
		return word, ""
	}
	figures := strconv.Itoa(win.Sessions) + " live sessions, average watch " + avg.String() + ", " +
		strconv.Itoa(win.Interactions) + " interactions in " + strconv.Itoa(c.ActivityDays) + " days"
	switch word {
	case High:
		return word, figures + " (high from " + strconv.Itoa(c.HighSessions) + " sessions, " + c.HighAvgWatch.String() + ", " +
			strconv.Itoa(c.HighInteractions) + " interactions)"
	case Medium:
		return word, figures + " (medium from " + strconv.Itoa(c.MediumSessions) + " sessions or any interaction)"
	}
	return word, figures + " (low: visited, below medium)"
}

// lifecycle tags where the viewer is on the way from new to loyal.
func (e *Engine) lifecycle(p *Profile, now int64, explain bool) (string, string) {
	c := &e.cfg
	if w, reason := e.idleTag(p, now, explain); w != "" {
		return w, reason
	}
	if p.Orders == 0 {
		return NewViewer, reasonIf(explain, "has not ordered yet")
	}
	n := p.window(dayOf(now), c.OrderDays).Orders
	word := FirstPurchase
	switch {
	case n >= c.LoyalOrders:
		word = Loyal
	case n >= c.RepeatOrders:
		word = Repeat
	}
	if !explain {
		return word, ""
	}
	return word, strconv.Itoa(n) + " orders in " + strconv.Itoa(c.OrderDays) + " days, " + strconv.FormatUint(uint64(p.Orders), 10) +
		" in all (repeat from " + strconv.Itoa(c.RepeatOrders) + ", loyal from " + strconv.Itoa(c.LoyalOrders) + ")"
}

func reasonIf(explain bool, s string) string {
	if explain {
		return s
	}
	return ""
}

// value tags the viewer's RFM tier.
func (e *Engine) value(p *Profile, explain bool) (string, string) {
	word := rfm.Tier(p.RFM.Segment)
	if !explain {
		return word, ""
	}
	if p.RFM.Segment == rfm.NoOrders {
		return word, "has not ordered yet"
	}
	return word, "RFM " + strconv.Itoa(int(p.RFM.R)) + "/" + strconv.Itoa(int(p.RFM.F)) + "/" + strconv.Itoa(int(p.RFM.M)) +
		" over " + strconv.Itoa(e.cfg.OrderDays) + " days of orders: " + p.RFM.Segment
}

// preference lists the top categories of the preference window, then the price band,
// appended to words: retag passes a buffer on its stack, so recomputing the tags of
// every viewer at each sweep allocates only for the few whose preference changed.
func (e *Engine) preference(p *Profile, now int64, explain bool, words []string) ([]string, string) {
	type catN struct {
		cat category
		n   uint32
	}
	from := dayOf(now) - int32(e.cfg.PreferenceDays)
	var countBuf [16]catN
	counts := countBuf[:0]
	for _, c := range p.Cats {
		if c.Day <= from {
			continue
		}
		i := slices.IndexFunc(counts, func(x catN) bool { return x.cat == c.cat })
		if i < 0 {
			counts = append(counts, catN{c.cat, c.N})
		} else {
			counts[i].n += c.N
		}
	}
	slices.SortFunc(counts, func(a, b catN) int {
		if a.n != b.n {
			return int(b.n) - int(a.n)
		}
		return strings.Compare(a.cat.String(), b.cat.String())
	})
	counts = counts[:min(len(counts), e.cfg.TopCategories)]
	for _, c := range counts {
		words = append(words, c.cat.String())
	}
	aov := p.Spend.Div(int64(p.Orders))
	band, lo, hi := e.catalog.band(aov, p.Orders > 0)
	if band != "" {
		words = append(words, band)
	}
	if !explain {
		return words, ""
	}
	days := strconv.Itoa(e.cfg.PreferenceDays)
	reason := "no product clicks or purchases in the last " + days + " days"
	if len(counts) > 0 {
		reason = "most clicked and bought in " + days + " days: "
		for i, c := range counts {
			if i > 0 {
				reason += ", "
			}
			reason += c.cat.String() + " (" + strconv.FormatUint(uint64(c.n), 10) + ")"
		}
	}
	switch {
	case band != "":
		reason += "; average order " + aov.String() + " " + e.cfg.Currency + " against catalog price terciles " + lo.String() + " and " + hi.String()
	case p.Orders > 0:
		reason += "; no price band: the catalog has fewer than 3 priced products"
	}
	return words, reason
}

// retag recomputes every dimension of p (its shard sh locked) at now and appends the
// changes to out as events (built only when someone subscribed to them).
func (e *Engine) retag(sh *shard, p *Profile, now int64, cause *event.Event, withPreference bool, out []event.Event) []event.Event {
	emit := e.wantTags.Load()
	changed := false
	a, _ := e.activity(p, now, false)
	v, _ := e.value(p, false)
	l, _ := e.lifecycle(p, now, false)
	for dim, word := range [3]string{a, v, l} {
		old := p.Tags.word(dim)
		if *old == word {
			continue
		}
		if emit {
			out = append(out, e.tagEvent(p, Dimensions[dim], *old, word, now, cause))
		}
		*old = word
		p.Tags.Since[dim] = now
		changed = true
	}
	if withPreference || p.Tags.Since[3] == 0 {
		var buf [8]string
		fresh, _ := e.preference(p, now, false, buf[:0])
		if !slices.Equal(fresh, p.Tags.Preference) || p.Tags.Since[3] == 0 {
			pref := sh.sharedList(fresh) // off the stack buffer
			if emit {
				out = append(out, e.tagEvent(p, DimPreference, strings.Join(p.Tags.Preference, ","), strings.Join(pref, ","), now, cause))
			}
			p.Tags.Preference = pref
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
func (t *Tags) word(dim int) *string {
	switch dim {
	case 0:
		return &t.Activity
	case 1:
		return &t.Value
	}
	return &t.Lifecycle
}

// tagEvent builds the TagChange event; its reason is explained now, once per change.
func (e *Engine) tagEvent(p *Profile, dim, from, to string, now int64, cause *event.Event) event.Event {
	ev := event.Event{Type: event.TagChange, At: time.UnixMilli(now).UTC(), Viewer: p.ID, Name: p.Name,
		Tag: &event.TagInfo{Dimension: dim, From: from, To: to, Reason: e.reason(p, dim, now)}}
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
		_, r = e.preference(p, now, true, nil)
	}
	return r
}
