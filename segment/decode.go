package segment

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/problem"
	"github.com/liveroom/liveroom/token"
)

// Item is one decoded import item: its position in the input, the event, and the item
// as sent (kept for idempotency and export).
type Item struct {
	Index int
	Event event.Event
	Raw   json.RawMessage
}

// ItemError reports one refused item by its index in the input.
type ItemError struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// Limits on imported input.
const (
	MaxBatch   = 10_000    // items per import call
	maxItemLen = 64 << 10  // bytes per item
	maxIDLen   = 200       // characters of ids
	maxSeconds = 24 * 3600 // one watch visit
)

// importTypes are the generic event types the import takes (the contract's table).
var importTypes = []event.Type{event.Order, event.Watch, event.Danmaku, event.Like, event.Gift, event.ProductClick, event.Consent}

// wireItem is the contract's generic event.
type wireItem struct {
	ID       string        `json:"id"`
	Type     string        `json:"type"`
	Viewer   string        `json:"viewer"`
	Name     string        `json:"name,omitempty"`
	Room     string        `json:"room,omitempty"`
	Live     string        `json:"live,omitempty"`
	At       flexTime      `json:"at"`
	OrderID  string        `json:"order_id,omitempty"`
	Total    decimal       `json:"total,omitempty"`
	Currency string        `json:"currency,omitempty"`
	Items    []wireLine    `json:"items,omitempty"`
	Customer *event.Person `json:"customer,omitempty"`
	Seconds  *float64      `json:"seconds,omitempty"`
	Count    *int          `json:"count,omitempty"`
	Gift     string        `json:"gift,omitempty"`
	Value    decimal       `json:"value,omitempty"`
	SKU      string        `json:"sku,omitempty"`
	Category string        `json:"category,omitempty"`
	Text     string        `json:"text,omitempty"`
	Messages *bool         `json:"messages,omitempty"`
}

type wireLine struct {
	SKU      string  `json:"sku"`
	Category string  `json:"category,omitempty"`
	Price    decimal `json:"price,omitempty"`
	Quantity int     `json:"quantity,omitempty"`
}

// decimal is an exact amount sent as a JSON string ("12.50") or number (12.50).
type decimal string

func (d *decimal) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		*d = ""
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	if _, err := ParseMoney(s); err != nil {
		return err
	}
	*d = decimal(s)
	return nil
}

// flexTime is RFC 3339 text or Unix milliseconds.
type flexTime struct{ time.Time }

func (t *flexTime) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	} else {
		s = string(b)
	}
	return t.set(s)
}

func (t flexTime) MarshalJSON() ([]byte, error) { return json.Marshal(t.Time.Format(time.RFC3339Nano)) }

func (t *flexTime) set(s string) error {
	s = strings.TrimSpace(s)
	if s == "" || s == "null" {
		return errors.New("at is required")
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		t.Time = time.UnixMilli(ms).UTC()
		return nil
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("at %q is neither RFC 3339 (2026-01-02T15:04:05Z) nor Unix milliseconds", s)
	}
	t.Time = v.UTC()
	return nil
}

// bom is the UTF-8 byte-order mark some editors and spreadsheets put first in a file.
const bom = "\ufeff"

var earliest = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// validID checks an id: 1 to maxIDLen characters of valid UTF-8, no control characters.
func validID(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is required", what)
	}
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxIDLen {
		return fmt.Errorf("%s must be valid UTF-8 of at most %d characters", what, maxIDLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) { // C0, DEL and C1
			return fmt.Errorf("%s must not contain control characters", what)
		}
	}
	return nil
}

// validCategory checks an optional category like an id; one that reads like a price
// band ("price:low") is refused, as a preference it would pass for the band.
func validCategory(what, s string) error {
	if s == "" {
		return nil
	}
	if priceBandWord(s) {
		return fmt.Errorf("%s must not begin with %q (the price bands' words)", what, pricePrefix)
	}
	return validID(what, s)
}

// toEvent checks w and turns it into an event; now bounds how far in the future at may lie.
func (w *wireItem) toEvent(now time.Time) (event.Event, error) {
	for _, c := range []struct{ what, v string }{{"id", w.ID}, {"viewer", w.Viewer}} {
		if err := validID(c.what, c.v); err != nil {
			return event.Event{}, err
		}
	}
	// A live and a category are held once for the whole process (intern.go): checked
	// like ids, so an import cannot fill memory with long or arbitrary ones. A name is
	// shown to agents (prompts, the profile page, CSV): checked like an id too.
	for _, c := range []struct{ what, v string }{{"live", w.Live}, {"name", w.Name}} {
		if err := validID(c.what, c.v); c.v != "" && err != nil {
			return event.Event{}, err
		}
	}
	// A room as everywhere else (tokens, chat, analytics' ?room=): history filed under
	// a room no token can name could never be looked at per room.
	if err := token.ValidRoom(w.Room); w.Room != "" && err != nil {
		return event.Event{}, err
	}
	if err := validCategory("category", w.Category); err != nil {
		return event.Event{}, err
	}
	t := event.Type(w.Type)
	if !containsType(importTypes, t) {
		return event.Event{}, fmt.Errorf("type %q is not one of order, watch, danmaku, like, gift, product_click, consent", w.Type)
	}
	if w.At.IsZero() {
		return event.Event{}, errors.New("at is required (RFC 3339 or Unix milliseconds)")
	}
	if w.At.Before(earliest) || w.At.After(now.Add(24*time.Hour)) {
		return event.Event{}, fmt.Errorf("at %s lies outside 2000-01-01 .. one day from now", w.At.Format(time.RFC3339))
	}
	ev := event.Event{ID: w.ID, Type: t, At: w.At.Time, Viewer: w.Viewer, Name: w.Name, Room: w.Room, Live: w.Live, Role: event.RoleViewer}
	switch t {
	case event.Order:
		o, err := w.order()
		if err != nil {
			return event.Event{}, err
		}
		ev.Order = o
	case event.Watch:
		if w.Seconds == nil || !(*w.Seconds > 0 && *w.Seconds <= maxSeconds) { // so, NaN too
			return event.Event{}, fmt.Errorf("watch needs seconds between 0 and %d", maxSeconds)
		}
		ev.Seconds = *w.Seconds
	case event.Like, event.Gift:
		ev.Count = 1
		if w.Count != nil {
			if *w.Count < 1 || *w.Count > 1_000_000 {
				return event.Event{}, errors.New("count must be from 1 to 1000000")
			}
			ev.Count = *w.Count
		}
		if t == event.Gift {
			v, err := optionalMoney("value", w.Value)
			if err != nil {
				return event.Event{}, err
			}
			ev.Gift, ev.Value, ev.Currency = w.Gift, float64(v)/moneyScale, strings.ToUpper(w.Currency)
		}
	case event.ProductClick:
		if w.SKU == "" && w.Category == "" {
			return event.Event{}, errors.New("product_click needs sku or category")
		}
		ev.SKU, ev.Category = w.SKU, w.Category
	case event.Danmaku:
		ev.Text = clip(w.Text, 200)
	case event.Consent:
		if w.Messages == nil {
			return event.Event{}, errors.New("consent needs messages (true or false)")
		}
		v := *w.Messages
		ev.Consent = &v
	}
	return ev, nil
}

func (w *wireItem) order() (*event.OrderInfo, error) {
	if err := validID("order_id", w.OrderID); err != nil {
		return nil, err
	}
	if w.Total == "" {
		return nil, errors.New("order needs total (a decimal string such as \"19.90\")")
	}
	if m, _ := ParseMoney(string(w.Total)); m < 0 {
		return nil, errors.New("total must not be negative")
	}
	o := &event.OrderInfo{OrderID: w.OrderID, Total: string(w.Total), Currency: strings.ToUpper(w.Currency), Customer: w.Customer}
	for i, l := range w.Items {
		if l.Quantity < 0 {
			return nil, fmt.Errorf("items[%d].quantity must not be negative", i)
		}
		if m, _ := ParseMoney(string(l.Price)); m < 0 {
			return nil, fmt.Errorf("items[%d].price must not be negative", i)
		}
		if err := validCategory(fmt.Sprintf("items[%d].category", i), l.Category); err != nil {
			return nil, err
		}
		o.Items = append(o.Items, event.Item{SKU: l.SKU, Category: l.Category, Price: string(l.Price), Quantity: l.Quantity})
	}
	return o, nil
}

func optionalMoney(what string, d decimal) (Money, error) {
	if d == "" {
		return 0, nil
	}
	m, err := ParseMoney(string(d))
	if err == nil && m < 0 {
		err = fmt.Errorf("%s must not be negative", what)
	}
	return m, err
}

func containsType(list []event.Type, t event.Type) bool {
	for _, x := range list {
		if x == t {
			return true
		}
	}
	return false
}

// readLine reads the next line (without its newline), keeping at most an item's
// largest size and a byte of it: whole is false when the line was longer, its rest
// read and dropped. At the input's end (or on an error) it sets lr.err.
func (lr *LineReader) readLine() (line []byte, whole bool) {
	lr.buf = lr.buf[:0]
	whole = true
	for {
		chunk, err := lr.br.ReadSlice('\n')
		if whole && len(lr.buf)+len(chunk) <= maxItemLen+1 {
			lr.buf = append(lr.buf, chunk...)
		} else {
			whole = false
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err != nil:
			lr.err = err
		}
		return lr.buf, whole
	}
}

// decodeOne decodes one item's JSON into an Item or an ItemError.
func decodeOne(index int, raw []byte, now time.Time) (Item, *ItemError) {
	if len(raw) > maxItemLen {
		return Item{}, &ItemError{index, fmt.Sprintf("item is larger than %d bytes", maxItemLen)}
	}
	var w wireItem
	if err := json.Unmarshal(raw, &w); err != nil {
		return Item{}, &ItemError{index, "bad item: " + jsonProblem(err)}
	}
	ev, err := w.toEvent(now)
	if err != nil {
		return Item{}, &ItemError{index, err.Error()}
	}
	return Item{Index: index, Event: ev, Raw: bytes.Clone(raw)}, nil
}

// jsonProblem shortens encoding/json's messages to what a client can act on.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be %s, not %s", te.Field, jsonKind(te.Type), te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// jsonKind names what JSON a Go type takes, in the client's words rather than Go's
// (not "[]segment.wireLine").
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

// DecodeJSON reads the contract's JSON array of generic events. A body that is not an
// array is an error (problem.BadRequest); bad items are reported by index and the good
// ones returned.
func DecodeJSON(r io.Reader, now time.Time) ([]Item, []ItemError, error) {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, problem.Wrap(problem.BadRequest, err, "body must be a JSON array of events")
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, nil, problem.New(problem.BadRequest, "body must be a JSON array of events, e.g. [{\"id\":\"e1\",\"type\":\"order\",...}]")
	}
	var items []Item
	var errs []ItemError
	for i := 0; dec.More(); i++ {
		if i >= MaxBatch {
			return nil, nil, problem.New(problem.BadRequest, "at most %d events per request", MaxBatch)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, problem.Wrap(problem.BadRequest, err, fmt.Sprintf("item %d is not valid JSON", i))
		}
		it, ie := decodeOne(i, raw, now)
		if ie != nil {
			errs = append(errs, *ie)
			continue
		}
		items = append(items, it)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, problem.Wrap(problem.BadRequest, err, "the JSON array is not closed")
	}
	if dec.More() {
		return nil, nil, problem.New(problem.BadRequest, "unexpected data after the JSON array")
	}
	return items, errs, nil
}

// LineReader reads JSON lines (one generic event per line) in chunks.
type LineReader struct {
	br   *bufio.Reader
	buf  []byte // the line being read
	line int
	now  time.Time
	err  error // the reader's, once it has one
}

// NewLineReader reads JSON lines from r; blank lines are skipped.
func NewLineReader(r io.Reader, now time.Time) *LineReader {
	return &LineReader{br: bufio.NewReaderSize(r, 64<<10), now: now}
}

// Next returns up to n more items with their errors; indexes are 0-based line numbers.
// A line longer than an item may be is refused by its index and the rest read on.
// It returns io.EOF once the input is done and nothing was read.
func (lr *LineReader) Next(n int) ([]Item, []ItemError, error) {
	var items []Item
	var errs []ItemError
	for len(items)+len(errs) < n && lr.err == nil {
		line, whole := lr.readLine()
		if len(line) == 0 && lr.err != nil {
			break
		}
		i := lr.line
		lr.line++
		if i == 0 {
			line = bytes.TrimPrefix(line, []byte(bom)) // a file saved "UTF-8 with BOM"
		}
		if line = bytes.TrimSpace(line); len(line) == 0 {
			continue
		}
		if !whole {
			errs = append(errs, ItemError{i, fmt.Sprintf("item is larger than %d bytes", maxItemLen)})
			continue
		}
		it, ie := decodeOne(i, line, lr.now)
		if ie != nil {
			errs = append(errs, *ie)
		} else {
			items = append(items, it)
		}
	}
	if lr.err != nil && lr.err != io.EOF {
		return items, errs, fmt.Errorf("reading after %d lines: %w", lr.line, lr.err) // 0-based errors elsewhere: a count is neither
	}
	if len(items) == 0 && len(errs) == 0 {
		return nil, nil, io.EOF
	}
	return items, errs, nil
}
