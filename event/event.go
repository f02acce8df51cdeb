package event

import "time"

// Type names what happened. The set matches the contract's "Generic events" and the
// interactions chat and media observe.
type Type string

// Event types. Join/Leave come from chat connections, WatchStart/WatchStop/Watch from
// media (WHEP) viewers, Order and Consent from the shop and the import API.
const (
	Join         Type = "join"
	Leave        Type = "leave"
	WatchStart   Type = "watch_start"
	WatchStop    Type = "watch_stop"
	Watch        Type = "watch"
	Danmaku      Type = "danmaku"
	Like         Type = "like"
	Gift         Type = "gift"
	ProductClick Type = "product_click"
	// Pin is a product pinned in a room: SKU, Category, Text (title), Value (price),
	// Currency. segment builds its product catalog from it.
	Pin       Type = "pin"
	DM        Type = "dm"
	Order     Type = "order"
	Consent   Type = "consent"
	LiveStart Type = "live_start"
	LiveEnd   Type = "live_end"
	TagChange Type = "tag_change"
)

// Roles a user can hold; they are the token's `role` claim.
const (
	RoleHost   = "host"
	RoleViewer = "viewer"
	RoleAgent  = "agent"
	RoleAdmin  = "admin"
)

// User is who did something: the token's subject, display name and role.
type User struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

// Event is one interaction. Only the fields that its Type uses are set.
type Event struct {
	// ID is unique per event; consumers apply an event at most once by it.
	ID   string    `json:"id"`
	Type Type      `json:"type"`
	At   time.Time `json:"at"`
	// Viewer is the user the event is about (for a DM from an agent, the viewer).
	Viewer string `json:"viewer"`
	Name   string `json:"name,omitempty"`
	Role   string `json:"role,omitempty"`
	Room   string `json:"room,omitempty"`
	// Live identifies one broadcast of a room (empty when the room is not live).
	Live string `json:"live,omitempty"`

	Text     string  `json:"text,omitempty"`
	Count    int     `json:"count,omitempty"`
	Gift     string  `json:"gift,omitempty"`
	Value    float64 `json:"value,omitempty"`
	Currency string  `json:"currency,omitempty"`
	SKU      string  `json:"sku,omitempty"`
	Category string  `json:"category,omitempty"`
	Seconds  float64 `json:"seconds,omitempty"`
	// Peer is the other party of a DM.
	Peer string `json:"peer,omitempty"`
	// Consent is set on Consent events.
	Consent *bool `json:"consent,omitempty"`
	// Order is set on Order events.
	Order *OrderInfo `json:"order,omitempty"`
	// Tag is set on TagChange events.
	Tag *TagInfo `json:"tag,omitempty"`
	// Received is when a live source handed the event in, when that was later than At:
	// a shop's order webhook (At is the order's creation; the shop retries a failed
	// delivery for up to two days). Zero for the tap and for imported history. Not
	// stored.
	Received time.Time `json:"-"`
	// Held is set on the last event an import (or a sweep) hands its subscribers when
	// they are held until handled (segment.Holder): the hold to release once they are.
	Held uint64 `json:"-"`
}

// News is when the event became known: Received, else At. Rules act on events that
// are news, not on history (rules.Engine.OnEvent).
func (e *Event) News() time.Time {
	if !e.Received.IsZero() {
		return e.Received
	}
	return e.At
}

// TagInfo describes one tag change on one dimension (activity, value, lifecycle,
// preference). A preference tag is a list, joined with commas in From and To.
type TagInfo struct {
	Dimension string `json:"dimension"`
	From      string `json:"from"`
	To        string `json:"to"`
	Reason    string `json:"reason"`
	// Cause is the id of the event that led to the change, empty for a sweep, and
	// CauseAt when that event became known (Event.News; for a sweep after an import,
	// the newest imported time): a change caused by imported history is old news.
	Cause   string    `json:"cause,omitempty"`
	CauseAt time.Time `json:"cause_at,omitzero"`
}

// OrderInfo is the part of an order the segment engine needs.
type OrderInfo struct {
	OrderID  string  `json:"order_id"`
	Total    string  `json:"total"` // decimal string, in Currency
	Currency string  `json:"currency"`
	Items    []Item  `json:"items,omitempty"`
	Customer *Person `json:"customer,omitempty"`
}

// Item is one order line.
type Item struct {
	SKU      string `json:"sku"`
	Category string `json:"category,omitempty"`
	Price    string `json:"price,omitempty"`
	Quantity int    `json:"quantity,omitempty"`
}

// Person links an order to a shop customer.
type Person struct {
	ID    string `json:"id,omitempty"`
	Email string `json:"email,omitempty"`
}
