package chat

import (
	"encoding/json"
	"time"

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
	evError    = "error"
	evReset    = "reset"
	evPong     = "pong"
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
	Seq     uint64   `json:"seq"`
	SlowMs  int64    `json:"slow_ms"`
	// Gifts is the catalog the player offers.
	Gifts []Gift `json:"gifts"`
	// MutedUntil is set (Unix ms) in a muted user's own welcome.
	MutedUntil int64 `json:"muted_until,omitempty"`
}

// PromptViewer is who a prompt is about.
type PromptViewer struct {
	ID   string   `json:"id"`
	Name string   `json:"name,omitempty"`
	Tags []string `json:"tags,omitempty"`
}

// promptEvent is a prompt as outEvent encodes it, field for field: encoding/json
// walks every field of a type, and outEvent's thirty cost a burst of prompts a sixth
// of its time (TestPromptEventEncodesAsOutEvent keeps the two alike).
type promptEvent struct {
	Type      string        `json:"type"`
	At        int64         `json:"at"`
	Viewer    *PromptViewer `json:"viewer,omitempty"`
	Reason    string        `json:"reason,omitempty"`
	Suggested string        `json:"suggested,omitempty"`
	PromptID  string        `json:"prompt_id,omitempty"`
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
