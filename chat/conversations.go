package chat

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/problem"
)

// The list of a room's conversations (GET /api/rooms/{room}/dm) is what a console needs
// after a reconnection to see who wrote while it was away: the viewers who wrote in the
// last ConversationWindow, at most ConversationLimit of them. A day covers an agent's
// shift and the night after it; a hundred is more than a console's queue can show and
// keeps the answer (and each room's index) a few tens of KiB.
const (
	ConversationWindow = 24 * time.Hour
	ConversationLimit  = 100
	// conversationClip is how much of the last message's text the list carries (a
	// preview; the conversation itself is read from its own history).
	conversationClip = 100
)

// Conversation sums up one viewer's private conversation in a room.
type Conversation struct {
	Viewer string `json:"viewer"`
	// Name is the viewer's, as its latest message in the conversation gave it.
	Name string `json:"name"`
	// At, From and Text are the last message's, whoever wrote it (the viewer or an
	// agent); Text is clipped to 100 characters.
	At   time.Time  `json:"at"`
	From event.User `json:"from"`
	Text string     `json:"text"`

	viewerAt time.Time // when the viewer last wrote: the window counts from it
}

// wroteIn reports whether d is the conversation's viewer writing (not an agent writing
// to it, nor one agent to another: their DMs are kept as a conversation of the
// addressee, who is no viewer).
func wroteIn(d DM) bool { return d.From.ID == d.Viewer && d.From.Role == event.RoleViewer }

// conversationIndex keeps, per room, the conversations the list shows, in memory. A
// room's entry is read from the store the first time it is asked for (so a restart
// loses nothing the store kept) and kept up to date by the DM writer from then on.
// Every change goes to the store first and to the index after, under mu, and a room is
// read from the store under mu: a write that the read did not see updates the index
// once the read is in, so none is lost and no erased viewer comes back.
type conversationIndex struct {
	mu    sync.Mutex
	rooms map[string]map[string]*Conversation // room → viewer → its conversation
}

func newConversationIndex() *conversationIndex {
	return &conversationIndex{rooms: map[string]map[string]*Conversation{}}
}

// note records d, just written to the store. Rooms nobody has asked for are left to
// the store.
func (x *conversationIndex) note(room string, d DM) {
	x.mu.Lock()
	defer x.mu.Unlock()
	convs := x.rooms[room]
	if convs == nil {
		return
	}
	c := convs[d.Viewer]
	if c == nil {
		if !wroteIn(d) {
			return // an agent's message to a viewer who has not written (lately)
		}
		c = &Conversation{Viewer: d.Viewer}
		convs[d.Viewer] = c
	}
	if wroteIn(d) {
		c.Name, c.viewerAt = d.From.Name, d.At
	}
	c.At, c.From, c.Text = d.At, d.From, clip(d.Text, conversationClip)
	if len(convs) > ConversationLimit {
		delete(convs, oldest(convs))
	}
}

// oldest is the viewer of convs' least recent conversation.
func oldest(convs map[string]*Conversation) string {
	var id string
	var at time.Time
	for v, c := range convs {
		if id == "" || c.At.Before(at) {
			id, at = v, c.At
		}
	}
	return id
}

// erase forgets viewers' conversations in every room.
func (x *conversationIndex) erase(viewers []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, convs := range x.rooms {
		for k := range convs {
			if slices.ContainsFunc(viewers, func(v string) bool { return sameViewer(k, v) }) {
				delete(convs, k)
			}
		}
	}
}

// list returns room's conversations whose viewer wrote since now-ConversationWindow,
// newest first, at most ConversationLimit.
func (x *conversationIndex) list(ctx context.Context, s Store, room string, now time.Time) ([]Conversation, error) {
	since := now.Add(-ConversationWindow)
	x.mu.Lock()
	defer x.mu.Unlock()
	convs := x.rooms[room]
	if convs == nil {
		found, err := s.Conversations(ctx, room, since)
		if err != nil {
			return nil, err
		}
		convs = make(map[string]*Conversation, len(found))
		for i := range found {
			c := found[i]
			c.Text = clip(c.Text, conversationClip)
			convs[c.Viewer] = &c
		}
		for len(convs) > ConversationLimit {
			delete(convs, oldest(convs))
		}
		x.rooms[room] = convs
	}
	out := make([]Conversation, 0, len(convs))
	for v, c := range convs {
		if c.viewerAt.Before(since) {
			delete(convs, v) // out of the window for good: only the viewer writing brings it back
			continue
		}
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b Conversation) int { return b.At.Compare(a.At) })
	return out, nil
}

// DMConversations returns the room's recent private conversations, newest first: the
// viewers who wrote in the last ConversationWindow (at most ConversationLimit), each
// with its last message. A DM shows here once it is written to the store, like in
// DMHistory.
func (h *Hub) DMConversations(ctx context.Context, roomID string) ([]Conversation, error) {
	out, err := h.convs.list(ctx, h.store, roomID, time.Now())
	if err != nil {
		return nil, problem.Wrap(problem.Unavailable, err, "chat history is unavailable")
	}
	return out, nil
}
