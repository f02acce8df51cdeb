package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/token"
)

// Client message types (the contract's "Client → server" table, plus unmute/unban/slow).
const (
	msgDanmaku      = "danmaku"
	msgLike         = "like"
	msgGift         = "gift"
	msgDM           = "dm"
	msgProductClick = "product_click"
	msgMute         = "mute"
	msgUnmute       = "unmute"
	msgBan          = "ban"
	msgUnban        = "unban"
	msgDelete       = "delete"
	msgPin          = "pin"
	msgSlow         = "slow"
	msgPing         = "ping"
)

// Error codes of the `error` event.
const (
	codeRateLimited = "rate_limited"
	codeTooLong     = "too_long"
	codeForbidden   = "forbidden"
	codeBadRequest  = "bad_request"
	codeMuted       = "muted"
	// The contract's five codes cover these; the message says which case it was.
	codeBlocked     = codeBadRequest
	codeUnknownGift = codeBadRequest
	codeSlowMode    = codeRateLimited
	codeUnavailable = "unavailable"
)

// Limits of client fields.
const (
	maxTextRunes  = 200
	maxDMRunes    = 1000
	maxIDLen      = 64 // a client's message id, a gift id, a sku; user ids: token.MaxUserLen
	maxLikeCount  = 100
	maxGiftCount  = 100
	maxFieldRunes = 300
	maxURLLen     = 2048
)

// clientMsg is one decoded, validated client frame.
type clientMsg struct {
	Type    string
	Text    string
	ID      string
	Count   int
	Gift    string
	To      string
	SKU     string   // product_click
	Product *Product // pin (nil clears the pin)
	User    string   // mute, ban, unmute, unban
	For     time.Duration
	Seq     uint64 // delete
}

// wireMsg is the JSON shape clients send.
type wireMsg struct {
	Type    string          `json:"type"`
	Text    *string         `json:"text"`
	ID      string          `json:"id"`
	Count   *int            `json:"count"`
	Gift    string          `json:"gift"`
	To      string          `json:"to"`
	Product json.RawMessage `json:"product"`
	User    string          `json:"user"`
	For     json.RawMessage `json:"for"`
	Seq     *uint64         `json:"seq"`
}

// Product is a pinned product card.
type Product struct {
	SKU      string  `json:"sku"`
	Title    string  `json:"title"`
	Price    float64 `json:"price"`
	Currency string  `json:"currency,omitempty"`
	URL      string  `json:"url,omitempty"`
	Image    string  `json:"image,omitempty"`
	Category string  `json:"category,omitempty"`
}

// frameError is a refused client frame: the code and message of the `error` event.
type frameError struct {
	Code    string
	Message string
}

func (e *frameError) Error() string { return e.Code + ": " + e.Message }

func badRequest(format string, args ...any) *frameError {
	return &frameError{Code: codeBadRequest, Message: fmt.Sprintf(format, args...)}
}

// decodeFrame parses and validates one client text frame. Every error is a *frameError
// that names what was wrong; nothing a client sends can panic it.
func decodeFrame(b []byte) (clientMsg, error) {
	var w wireMsg
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return clientMsg{}, badRequest("a frame must be one JSON object: %v", err)
	}
	if dec.More() {
		return clientMsg{}, badRequest("a frame must hold exactly one JSON object")
	}
	m := clientMsg{Type: w.Type}
	switch w.Type {
	case msgDanmaku:
		text, err := cleanText(w.Text, maxTextRunes)
		if err != nil {
			return m, err
		}
		if len(w.ID) > maxIDLen {
			return m, badRequest("id: at most %d bytes", maxIDLen)
		}
		m.Text, m.ID = text, w.ID
	case msgLike:
		n, err := countField(w.Count, maxLikeCount, 1)
		if err != nil {
			return m, err
		}
		m.Count = n
	case msgGift:
		n, err := countField(w.Count, maxGiftCount, 1)
		if err != nil {
			return m, err
		}
		if w.Gift == "" || len(w.Gift) > maxIDLen {
			return m, badRequest("gift: a catalog id is required")
		}
		m.Gift, m.Count = w.Gift, n
	case msgDM:
		text, err := cleanText(w.Text, maxDMRunes)
		if err != nil {
			return m, err
		}
		if len(w.To) > token.MaxUserLen || len(w.ID) > maxIDLen {
			return m, badRequest("to: at most %d bytes, id: at most %d", token.MaxUserLen, maxIDLen)
		}
		m.Text, m.To, m.ID = text, w.To, w.ID
	case msgProductClick:
		var sku string
		if err := json.Unmarshal(w.Product, &sku); err != nil || sku == "" || len(sku) > maxIDLen || !printable(sku) {
			return m, badRequest("product: a sku string of 1 to %d characters is required", maxIDLen)
		}
		m.SKU = sku
	case msgMute, msgBan, msgUnmute, msgUnban:
		if w.User == "" || len(w.User) > token.MaxUserLen {
			return m, badRequest("user: a user id of 1 to %d bytes is required", token.MaxUserLen)
		}
		d, err := durationField(w.For)
		if err != nil {
			return m, err
		}
		if d == 0 && (m.Type == msgMute || m.Type == msgBan) && len(w.For) > 0 && string(w.For) != "null" {
			// A zero would silently mean the default mute or a ban until lifted.
			return m, badRequest("for: give more than 0, or leave it out (a mute's default length, a ban until lifted)")
		}
		m.User, m.For = w.User, d
	case msgSlow:
		d, err := durationField(w.For)
		if err != nil {
			return m, err
		}
		if d > time.Hour {
			return m, badRequest("for: slow mode is at most 1h")
		}
		m.For = d
	case msgDelete:
		if w.Seq == nil || *w.Seq == 0 {
			return m, badRequest("seq: the seq of the event to delete is required")
		}
		m.Seq = *w.Seq
	case msgPin:
		p, err := productField(w.Product)
		if err != nil {
			return m, err
		}
		m.Product = p
	case msgPing:
	case "":
		return m, badRequest("type is required")
	default:
		return m, badRequest("unknown type %q", clip(w.Type, 32))
	}
	return m, nil
}

// cleanText trims t and checks it is 1 to max characters with no control characters.
func cleanText(t *string, max int) (string, error) {
	if t == nil {
		return "", badRequest("text is required")
	}
	s := strings.TrimSpace(*t)
	if s == "" {
		return "", badRequest("text is empty")
	}
	if !utf8.ValidString(s) {
		return "", badRequest("text is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return "", &frameError{Code: codeTooLong, Message: fmt.Sprintf("text has %d characters; at most %d", n, max)}
	}
	if !printable(s) {
		return "", badRequest("text holds control characters")
	}
	return s, nil
}

func printable(s string) bool {
	for _, r := range s {
		if event.Unprintable(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

func countField(c *int, max, def int) (int, error) {
	if c == nil {
		return def, nil
	}
	if *c < 1 || *c > max {
		return 0, badRequest("count: between 1 and %d", max)
	}
	return *c, nil
}

// maxFor bounds a mute's duration, however it is written.
const maxFor = 365 * 24 * time.Hour

// durationField accepts "10m"-style strings or a number of seconds, 0 to a year;
// absent is 0.
func durationField(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	bad := badRequest(`for: a duration such as "10m" or a number of seconds (at most a year)`)
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > maxFor {
			return 0, bad
		}
		return d, nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f < 0 || f > maxFor.Seconds() || math.IsNaN(f) {
		return 0, bad
	}
	return time.Duration(f * float64(time.Second)), nil
}

func productField(raw json.RawMessage) (*Product, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var p Product
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, badRequest("product: an object with sku, title, price, currency, url, image, category: %v", err)
	}
	if p.SKU == "" || len(p.SKU) > maxIDLen || !printable(p.SKU) {
		return nil, badRequest("product.sku: 1 to %d characters", maxIDLen)
	}
	for name, v := range map[string]string{"title": p.Title, "category": p.Category} {
		if utf8.RuneCountInString(v) > maxFieldRunes || !printable(v) {
			return nil, badRequest("product.%s: at most %d printable characters", name, maxFieldRunes)
		}
	}
	if p.Price < 0 || math.IsInf(p.Price, 0) || p.Price > 1e12 {
		return nil, badRequest("product.price: a number of 0 or more")
	}
	if p.Currency != "" {
		// Upper case, as the rates are keyed (segment's catalog price): "usd" is USD.
		p.Currency = strings.ToUpper(p.Currency)
		if len(p.Currency) != 3 || strings.ContainsFunc(p.Currency, func(r rune) bool { return r < 'A' || r > 'Z' }) {
			return nil, badRequest("product.currency: a 3-letter code")
		}
	}
	for name, v := range map[string]string{"url": p.URL, "image": p.Image} {
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || len(v) > maxURLLen || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, badRequest("product.%s: an absolute http(s) URL", name)
		}
	}
	return &p, nil
}

// clip shortens s to n characters, marking the cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, k := 0, 0
	for i = range s {
		if k == n {
			break
		}
		k++
	}
	return s[:i] + "…"
}
