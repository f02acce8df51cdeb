package chat

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/liveroom/liveroom/event"
)

// Server event types.
const (
	evWelcome  = "welcome"
	evDanmaku  = "danmaku"
	evLikes    = "likes"
	evGift     = "gift"
	evPin      = "pin"
	evDeleted  = "deleted"
	evLive     = "live"
	evNotice   = "notice"
	evPresence = "presence"
	evDM       = "dm"
	evPrompt   = "prompt"
	// evPromptUpdate tells agents a prompt was claimed or resolved.
	evPromptUpdate = "prompt_update"
	evError        = "error"
	evReset        = "reset"
	evPong         = "pong"
)

// outEvent is every server event; only the fields of its type are set. Numbers that
// may legitimately be zero (total, viewers, live) are pointers so they are always sent.
type outEvent struct {
	Type string      `json:"type"`
	Seq  uint64      `json:"seq,omitempty"`
	At   int64       `json:"at"`
	From *event.User `json:"from,omitempty"`
	ID   string      `json:"id,omitempty"`
	Text string      `json:"text,omitempty"`

	Count     int     `json:"count,omitempty"`
	Total     *int64  `json:"total,omitempty"`
	Gift      string  `json:"gift,omitempty"`
	Name      string  `json:"name,omitempty"`
	Value     float64 `json:"value,omitempty"`
	Currency  string  `json:"currency,omitempty"`
	Animation string  `json:"animation,omitempty"`
	// GiftTotal is the room's gift value in the gift's currency, this one included.
	GiftTotal *float64 `json:"gift_total,omitempty"`

	Product *Product `json:"product,omitempty"`
	Target  uint64   `json:"target,omitempty"` // deleted: the seq removed
	Live    *bool    `json:"live,omitempty"`
	Viewers *int     `json:"viewers,omitempty"`
	// To is a pointer so a dm always carries it ("" when a viewer wrote to all agents).
	To *string `json:"to,omitempty"`

	// notice
	Action string `json:"action,omitempty"`
	User   string `json:"user,omitempty"`
	Until  int64  `json:"until,omitempty"` // Unix ms; 0 = permanent / not applicable
	Slow   *int64 `json:"slow_ms,omitempty"`

	// error
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`

	// prompt
	Viewer    *PromptViewer `json:"viewer,omitempty"`
	Reason    string        `json:"reason,omitempty"`
	Suggested string        `json:"suggested,omitempty"`
	PromptID  string        `json:"prompt_id,omitempty"`
	// prompt_update
	ClaimedBy string `json:"claimed_by,omitempty"`
	Resolved  *bool  `json:"resolved,omitempty"`

	// welcome
	You  *event.User `json:"you,omitempty"`
	Room *roomState  `json:"room,omitempty"`
	// History is a pointer so a welcome always carries the list, empty or not.
	History *[]json.RawMessage `json:"history,omitempty"`
}

// roomState is the `room` object of a welcome.
type roomState struct {
	ID      string   `json:"id"`
	Live    bool     `json:"live"`
	Viewers int      `json:"viewers"`
	Pinned  *Product `json:"pinned"`
	Likes   int64    `json:"likes"`
	// GiftValue is the value of every gift sent in the room, per currency.
	GiftValue map[string]float64 `json:"gift_value"`
	Seq       uint64             `json:"seq"`
	SlowMs    int64              `json:"slow_ms"`
	// Gifts is the catalog the player offers.
	Gifts []Gift `json:"gifts"`
	// MutedUntil is set (Unix ms) in a muted user's own welcome.
	MutedUntil int64 `json:"muted_until,omitempty"`
}

// PromptViewer is who a prompt is about.
type PromptViewer struct {
	ID   string   `json:"id"`
	Name string   `json:"name"` // "" for a guest who gave none (the contract lists it)
	Tags []string `json:"tags,omitempty"`
}

// appendPromptEvent appends the prompt event of p at Unix ms at to b, byte for byte
// as encoding/json encodes it as an outEvent. A burst of stay prompts encodes
// thousands at once, and reflection over outEvent's thirty fields was a sixth of the
// node's time in it; FuzzPromptEvent keeps the two encodings equal.
func appendPromptEvent(b []byte, at int64, p *Prompt) []byte {
	b = append(b, `{"type":"`+evPrompt+`","at":`...)
	b = strconv.AppendInt(b, at, 10)
	b = append(b, `,"viewer":{"id":`...)
	b = appendJSONString(b, p.Viewer.ID)
	b = appendJSONString(append(b, `,"name":`...), p.Viewer.Name)
	if len(p.Viewer.Tags) > 0 {
		b = append(b, `,"tags":[`...)
		for i, t := range p.Viewer.Tags {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, t)
		}
		b = append(b, ']')
	}
	b = append(b, '}')
	for _, f := range [...]struct{ name, value string }{
		{`,"reason":`, p.Reason}, {`,"suggested":`, p.Suggested}, {`,"prompt_id":`, p.PromptID},
	} {
		if f.value != "" {
			b = appendJSONString(append(b, f.name...), f.value)
		}
	}
	return append(b, '}')
}

// plainJSON says which ASCII bytes encoding/json writes as they are (HTML-safe).
var plainJSON = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString appends s as encoding/json's Marshal writes a string: HTML-safe
// (<, > and & escaped), invalid UTF-8 as U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if plainJSON[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(append(b, s[start:i]...), `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(append(b, s[start:]...), '"')
}

// Prompt asks the room's agents to write to one viewer privately.
type Prompt struct {
	Viewer    PromptViewer
	Reason    string
	Suggested string
	PromptID  string
}

// DM is one private message of a conversation between a viewer and the room's agents.
type DM struct {
	ID   string     `json:"id"`
	At   time.Time  `json:"at"`
	From event.User `json:"from"`
	// To is the addressee's user id ("" when a viewer wrote to the room's agents).
	To     string `json:"to,omitempty"`
	Viewer string `json:"viewer"`
	Text   string `json:"text"`
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func ptr[T any](v T) *T { return &v }

// mustJSON encodes v; every event type here encodes without error.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("chat: encode event: " + err.Error())
	}
	return b
}

// jsonArray joins already-encoded events into one frame: [e1,e2,...].
func jsonArray(items [][]byte) []byte {
	n := 2
	for _, it := range items {
		n += len(it) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, ']')
}
