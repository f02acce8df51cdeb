package rules

import (
	"strconv"
	"time"

	"github.com/liveroom/liveroom/event"
)

// Tags is a viewer's tag on each dimension (the contract's words) plus custom tags
// added by tag actions. In expressions: viewer.tags.activity == "high",
// "shoes" in viewer.tags.preference.
type Tags struct {
	Activity   string   `json:"activity" expr:"activity"`
	Value      string   `json:"value" expr:"value"`
	Lifecycle  string   `json:"lifecycle" expr:"lifecycle"`
	Preference []string `json:"preference" expr:"preference"`
	Custom     []string `json:"custom,omitempty" expr:"custom"`
}

// Viewer is the snapshot of a profile the segment engine hands the rules. Figures are
// lifetime figures; Spend and AOV are in the base currency.
type Viewer struct {
	ID           string  `json:"id" expr:"id"`
	Name         string  `json:"name" expr:"name"`
	Tags         Tags    `json:"tags" expr:"tags"`
	Sessions     int     `json:"sessions" expr:"sessions"`
	WatchSeconds float64 `json:"watch_seconds" expr:"watch_seconds"`
	Orders       int     `json:"orders" expr:"orders"`
	Spend        float64 `json:"spend" expr:"spend"`
	AOV          float64 `json:"aov" expr:"aov"`
	Comments     int     `json:"comments" expr:"comments"`
	Likes        int     `json:"likes" expr:"likes"`
	// LastComment is the text of the viewer's latest danmaku.
	LastComment string `json:"last_comment,omitempty" expr:"last_comment"`
	// LastSKU and LastCategory are the latest product the viewer clicked.
	LastSKU      string `json:"last_sku,omitempty" expr:"last_sku"`
	LastCategory string `json:"last_category,omitempty" expr:"last_category"`
	// Consent is false only for a viewer who opted out of private messages; such a
	// viewer gets no dm and no prompt.
	Consent bool `json:"consent" expr:"consent"`
	// TimeZone is the player's IANA zone name ("Asia/Shanghai"); empty means UTC.
	TimeZone string `json:"time_zone,omitempty" expr:"time_zone"`
}

// Session is the viewer's presence in the current live of a room.
type Session struct {
	Room string `json:"room" expr:"room"`
	// Live identifies the broadcast; empty when the room is not live.
	Live string `json:"live,omitempty" expr:"live"`
	// WatchSeconds is the time watched in this live up to the snapshot, open span
	// included.
	WatchSeconds float64 `json:"watch_seconds" expr:"watch_seconds"`
	Orders       int     `json:"orders" expr:"orders"`
	Comments     int     `json:"comments" expr:"comments"`
	// Watching is true while the viewer is present in this live (video or chat).
	Watching bool `json:"watching" expr:"watching"`
	// AsOf is when WatchSeconds was measured (zero: as the engine receives it). A
	// stay timer counts its threshold from there, so that the time a snapshot takes
	// to reach the engine does not delay the prompt.
	AsOf time.Time `json:"-" expr:"-"`
}

// Event is the triggering event as expressions see it. For a tag change, Type is
// "tag_change" and Dimension/From/To are set; for a timer, Type is "timer".
type Event struct {
	Type     string    `json:"type" expr:"type"`
	At       time.Time `json:"at" expr:"at"`
	Text     string    `json:"text,omitempty" expr:"text"`
	SKU      string    `json:"sku,omitempty" expr:"sku"`
	Category string    `json:"category,omitempty" expr:"category"`
	Count    int       `json:"count,omitempty" expr:"count"`
	Value    float64   `json:"value,omitempty" expr:"value"`
	OrderID  string    `json:"order_id,omitempty" expr:"order_id"`
	// Total is the order total in its own currency.
	Total     float64 `json:"total,omitempty" expr:"total"`
	Currency  string  `json:"currency,omitempty" expr:"currency"`
	Dimension string  `json:"dimension,omitempty" expr:"dimension"`
	From      string  `json:"from,omitempty" expr:"from"`
	To        string  `json:"to,omitempty" expr:"to"`
}

// TagChange is one tag change on one dimension (a preference list is joined with
// commas).
type TagChange struct {
	Dimension string
	From      string
	To        string
	At        time.Time
	// CauseAt is the time of the event that led to the change (zero for a sweep).
	CauseAt time.Time
}

// Env is what conditions and templates see: viewer.*, session.*, event.* in
// expressions; .Viewer, .Session, .Event in templates.
type Env struct {
	Viewer  Viewer  `json:"viewer" expr:"viewer"`
	Session Session `json:"session" expr:"session"`
	Event   Event   `json:"event" expr:"event"`
}

// EventOf turns a tap event into what expressions see.
func EventOf(ev event.Event) Event {
	out := Event{Type: string(ev.Type), At: ev.At, Text: ev.Text, SKU: ev.SKU,
		Category: ev.Category, Count: ev.Count, Value: ev.Value, Currency: ev.Currency}
	if o := ev.Order; o != nil {
		out.OrderID, out.Currency = o.OrderID, o.Currency
		out.Total, _ = strconv.ParseFloat(o.Total, 64) // a bad total reads as 0
		if out.Category == "" && len(o.Items) > 0 {
			out.Category = o.Items[0].Category
		}
		if out.SKU == "" && len(o.Items) > 0 {
			out.SKU = o.Items[0].SKU
		}
	}
	return out
}

func (c TagChange) event() Event {
	return Event{Type: string(event.TagChange), At: c.At, Dimension: c.Dimension, From: c.From, To: c.To}
}
