package shopify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/liveroom/liveroom/event"
)

// Note attributes the player appends to product links (cart attributes end up in the
// order's note_attributes).
const (
	ViewerAttribute = "liveroom_viewer"
	RoomAttribute   = "liveroom_room"
)

// Limits on a payload.
const (
	MaxBody  = 1 << 20
	maxItems = 1000
	maxField = 256
)

// ID is a Shopify id: a JSON number (too large for float64) or a string.
type ID string

// UnmarshalJSON keeps the number's digits exactly.
func (id *ID) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*id = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = ID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	if _, err := strconv.ParseUint(n.String(), 10, 64); err != nil {
		return fmt.Errorf("id %s is not a whole number", n)
	}
	*id = ID(n.String())
	return nil
}

// Order is the part of Shopify's order payload liveroom reads.
type Order struct {
	ID             ID          `json:"id"`
	Name           string      `json:"name"`
	TotalPrice     string      `json:"total_price"`
	Currency       string      `json:"currency"`
	CreatedAt      string      `json:"created_at"`
	LineItems      []LineItem  `json:"line_items"`
	Customer       *Customer   `json:"customer"`
	Email          string      `json:"email"`
	NoteAttributes []Attribute `json:"note_attributes"`
}

// LineItem is one line of the order; Shopify gives no category.
type LineItem struct {
	ProductID ID     `json:"product_id"`
	SKU       string `json:"sku"`
	Title     string `json:"title"`
	Price     string `json:"price"`
	Quantity  int    `json:"quantity"`
}

// Customer is the shop's customer record, linkable to a viewer.
type Customer struct {
	ID    ID     `json:"id"`
	Email string `json:"email"`
}

// Attribute is one of the order's note attributes.
type Attribute struct {
	Name  string `json:"name"`
	Value any    `json:"value"` // usually a string; Shopify has sent numbers
}

var (
	decimal  = regexp.MustCompile(`^[0-9]{1,12}(\.[0-9]{1,4})?$`)
	currency = regexp.MustCompile(`^[A-Z]{3}$`)
)

// DecodeOrder parses and checks an orders/create body. Unknown fields are ignored
// (Shopify's payload has hundreds).
func DecodeOrder(body []byte) (Order, error) {
	var o Order
	if len(body) > MaxBody {
		return o, badPayload(fmt.Sprintf("body is %d bytes, more than %d", len(body), MaxBody))
	}
	if err := json.Unmarshal(body, &o); err != nil {
		return o, badPayload("not an order: " + err.Error())
	}
	switch {
	case o.ID == "":
		return o, badPayload("order has no id")
	case !decimal.MatchString(o.TotalPrice):
		return o, badPayload(fmt.Sprintf("total_price %q is not a decimal amount", clip(o.TotalPrice)))
	case !currency.MatchString(o.Currency):
		return o, badPayload(fmt.Sprintf("currency %q is not an ISO 4217 code", clip(o.Currency)))
	case len(o.LineItems) > maxItems:
		return o, badPayload(fmt.Sprintf("%d line items, at most %d", len(o.LineItems), maxItems))
	}
	if _, err := o.Time(); err != nil {
		return o, badPayload(fmt.Sprintf("created_at %q is not an RFC 3339 time", clip(o.CreatedAt)))
	}
	for i, li := range o.LineItems {
		switch {
		case li.Price != "" && !decimal.MatchString(li.Price):
			return o, badPayload(fmt.Sprintf("line_items[%d].price %q is not a decimal amount", i, clip(li.Price)))
		case li.Quantity < 0 || li.Quantity > 1_000_000:
			return o, badPayload(fmt.Sprintf("line_items[%d].quantity %d is out of range", i, li.Quantity))
		case len(li.SKU) > maxField:
			return o, badPayload(fmt.Sprintf("line_items[%d].sku is longer than %d bytes", i, maxField))
		}
	}
	if len(o.Attribute(ViewerAttribute)) > maxField || len(o.Attribute(RoomAttribute)) > maxField {
		return o, badPayload("a liveroom note attribute is too long")
	}
	return o, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Time is the order's created_at.
func (o Order) Time() (time.Time, error) {
	return time.Parse(time.RFC3339, o.CreatedAt)
}

// Attribute returns the value of the named note attribute, or "".
func (o Order) Attribute(name string) string {
	for _, a := range o.NoteAttributes {
		if a.Name == name {
			switch v := a.Value.(type) {
			case string:
				return strings.TrimSpace(v)
			case float64:
				return strconv.FormatFloat(v, 'f', -1, 64)
			}
		}
	}
	return ""
}

// Keys are the idempotency keys the caller stores: a repeated webhook delivery has
// the same webhook id, and the same order seen twice (two subscriptions, a replay
// with a new webhook id) has the same order id.
func Keys(webhookID string, o Order) (webhook, order string) {
	return "shopify:webhook:" + webhookID, "shopify:order:" + string(o.ID)
}

// Event turns the order into the tap's order event. category maps a SKU to its
// category (the room's product catalog); it may be nil. The viewer comes from the
// liveroom_viewer note attribute; when that is absent Viewer is empty and the caller
// resolves the customer (Order.Customer, Order.Email) to a linked viewer.
func (o Order) Event(category func(sku string) string) event.Event {
	at, _ := o.Time() // checked by DecodeOrder
	info := &event.OrderInfo{OrderID: string(o.ID), Total: o.TotalPrice, Currency: o.Currency}
	for _, li := range o.LineItems {
		it := event.Item{SKU: li.SKU, Price: li.Price, Quantity: li.Quantity}
		if it.SKU == "" && li.ProductID != "" {
			it.SKU = "product:" + string(li.ProductID) // items without a SKU still count
		}
		if category != nil && it.SKU != "" {
			it.Category = category(it.SKU)
		}
		info.Items = append(info.Items, it)
	}
	if c := o.Customer; c != nil && (c.ID != "" || c.Email != "") {
		info.Customer = &event.Person{ID: string(c.ID), Email: c.Email}
	} else if o.Email != "" {
		info.Customer = &event.Person{Email: o.Email}
	}
	_, orderKey := Keys("", o)
	return event.Event{ID: orderKey, Type: event.Order, At: at.UTC(), Viewer: o.Attribute(ViewerAttribute),
		Room: o.Attribute(RoomAttribute), Currency: o.Currency, Order: info}
}
