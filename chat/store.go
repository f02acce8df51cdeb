package chat

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/liveroom/liveroom/event"
)

// Store keeps what must survive a restart: each room's likes total, pinned product and
// seq ceiling, its mutes and bans, and the recent private messages of each conversation.
// The embedded default is BoltStore; MemoryStore serves tests; a Redis one may follow.
type Store interface {
	// LoadRoom returns a room's saved state (zero for a room never seen).
	LoadRoom(ctx context.Context, room string) (RoomRecord, error)
	// SaveRoom replaces a room's likes and gift totals, pinned product and seq ceiling.
	SaveRoom(ctx context.Context, room string, rec RoomRecord) error
	// SetSanction records (or, with Kind and Until zero, lifts) a user's mute or ban.
	SetSanction(ctx context.Context, room string, s Sanction) error
	// AppendDMs adds each message to the conversation of (its room, its viewer), in
	// order, keeping the last keep of each; all of them or none (one write).
	AppendDMs(ctx context.Context, dms []RoomDM, keep int) error
	// DMs returns a conversation, oldest first.
	DMs(ctx context.Context, room, viewer string) ([]DM, error)
	// ViewerDMs returns every conversation of viewer, by room (GDPR access).
	ViewerDMs(ctx context.Context, viewer string) (map[string][]DM, error)
	// EraseViewer removes every conversation of each of viewers (GDPR erasure).
	EraseViewer(ctx context.Context, viewers ...string) error
	// Conversations returns room's conversations whose viewer wrote at or after since,
	// each summed up by its last message, in no particular order.
	Conversations(ctx context.Context, room string, since time.Time) ([]Conversation, error)
}

// conversationRoom returns the room of a conversation key (room/viewer) of viewer;
// room ids have no '/' (token.ValidRoom), viewer ids may.
func conversationRoom(key, viewer string) (string, bool) {
	room, v, ok := strings.Cut(key, "/")
	return room, ok && sameViewer(v, viewer)
}

// sameViewer reports whether a and b name the same viewer: chat keeps ids as tokens
// have them, segment an e-mail key's address in lower case (event.EmailKey).
func sameViewer(a, b string) bool { return a == b || event.EmailKey(a) == event.EmailKey(b) }

// RoomRecord is a room's durable state.
type RoomRecord struct {
	Likes int64 `json:"likes"`
	// GiftValue is the value of every gift sent in the room, per currency.
	GiftValue map[string]float64 `json:"gift_value,omitempty"`
	Pin       *Product           `json:"pin,omitempty"`
	// SeqCeiling is the highest seq the room may hand out before reserving more; after
	// a restart the room starts above it, so seq never goes back.
	SeqCeiling uint64 `json:"seq_ceiling"`
	// Sanctions are the users muted or banned (loaded only; written by SetSanction).
	Sanctions []Sanction `json:"-"`
}

// Sanction kinds.
const (
	SanctionMute = "mute"
	SanctionBan  = "ban"
)

// Sanction is a mute or a ban of one user in one room. A zero Until never expires.
type Sanction struct {
	User  string    `json:"user"`
	Kind  string    `json:"kind"`
	Until time.Time `json:"until"`
	// Lift removes the user's sanction of this Kind instead of setting it.
	Lift bool `json:"-"`
}

// Active reports whether s is in force at now.
func (s Sanction) Active(now time.Time) bool { return s.Until.IsZero() || now.Before(s.Until) }

// MemoryStore is the in-memory Store (tests; nothing survives the process).
type MemoryStore struct {
	mu        sync.Mutex
	rooms     map[string]RoomRecord
	sanctions map[string]map[string]Sanction // room → user/kind → sanction
	dms       map[string][]DM                // room/viewer → messages
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{rooms: map[string]RoomRecord{}, sanctions: map[string]map[string]Sanction{}, dms: map[string][]DM{}}
}

// LoadRoom implements Store.
func (m *MemoryStore) LoadRoom(_ context.Context, room string) (RoomRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec := m.rooms[room]
	for _, s := range m.sanctions[room] {
		rec.Sanctions = append(rec.Sanctions, s)
	}
	return rec, nil
}

// SaveRoom implements Store.
func (m *MemoryStore) SaveRoom(_ context.Context, room string, rec RoomRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec.Sanctions = nil
	rec.GiftValue = maps.Clone(rec.GiftValue)
	m.rooms[room] = rec
	return nil
}

// SetSanction implements Store.
func (m *MemoryStore) SetSanction(_ context.Context, room string, s Sanction) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sanctions[room] == nil {
		m.sanctions[room] = map[string]Sanction{}
	}
	key := sanctionKey(s)
	if s.Lift {
		delete(m.sanctions[room], key)
		return nil
	}
	m.sanctions[room][key] = s
	return nil
}

// RoomDM is a private message with its room (AppendDMs).
type RoomDM struct {
	Room string
	DM   DM
}

// AppendDMs implements Store.
func (m *MemoryStore) AppendDMs(_ context.Context, dms []RoomDM, keep int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range dms {
		k := d.Room + "/" + d.DM.Viewer
		list := append(m.dms[k], d.DM)
		if len(list) > keep {
			list = append([]DM(nil), list[len(list)-keep:]...)
		}
		m.dms[k] = list
	}
	return nil
}

// DMs implements Store.
func (m *MemoryStore) DMs(_ context.Context, room, viewer string) ([]DM, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]DM(nil), m.dms[room+"/"+viewer]...), nil
}

// ViewerDMs implements Store.
func (m *MemoryStore) ViewerDMs(_ context.Context, viewer string) (map[string][]DM, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]DM{}
	for k, list := range m.dms {
		if room, ok := conversationRoom(k, viewer); ok {
			out[room] = append([]DM(nil), list...)
		}
	}
	return out, nil
}

// EraseViewer implements Store.
func (m *MemoryStore) EraseViewer(_ context.Context, viewers ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.dms {
		if ofAny(k, viewers) {
			delete(m.dms, k)
		}
	}
	return nil
}

// Conversations implements Store.
func (m *MemoryStore) Conversations(_ context.Context, room string, since time.Time) ([]Conversation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Conversation
	for k, list := range m.dms {
		viewer, ok := strings.CutPrefix(k, room+"/")
		if !ok {
			continue
		}
		i := len(list)
		c, ok, _ := summarize(viewer, since, func() (DM, bool, error) {
			if i == 0 {
				return DM{}, false, nil
			}
			i--
			return list[i], true, nil
		})
		if ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// summarize sums up viewer's conversation from its messages, newest first (next), or
// reports false when the viewer has not written in it since since. It reads back only
// to the viewer's last message.
func summarize(viewer string, since time.Time, next func() (DM, bool, error)) (Conversation, bool, error) {
	var c Conversation
	for first := true; ; first = false {
		d, ok, err := next()
		if err != nil || !ok || d.At.Before(since) {
			return Conversation{}, false, err
		}
		if first {
			c = Conversation{Viewer: viewer, At: d.At, From: d.From, Text: d.Text}
		}
		if wroteIn(d) {
			c.Name, c.viewerAt = d.From.Name, d.At
			return c, true, nil
		}
	}
}

// ofAny reports whether the conversation key (room/viewer) is one of viewers'.
func ofAny(key string, viewers []string) bool {
	return slices.ContainsFunc(viewers, func(v string) bool {
		_, ok := conversationRoom(key, v)
		return ok
	})
}

func sanctionKey(s Sanction) string { return s.Kind + "\x00" + s.User }
