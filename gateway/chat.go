package gateway

import (
	"context"
	"net/http"
	"strconv"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/liveroom/liveroom/chat"
	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/problem"
	"github.com/liveroom/liveroom/token"
)

// ChatService is what the gateway needs from chat: admission before the WebSocket
// upgrade (so refusals are plain HTTP answers) and the DM history and list of
// conversations for the console.
type ChatService interface {
	Admit(ctx context.Context, room string, user event.User, addr string) (*chat.Ticket, error)
	DMHistory(ctx context.Context, room, viewer string) ([]chat.DM, error)
	DMConversations(ctx context.Context, room string) ([]chat.Conversation, error)
}

// Pooled write buffers keep an idle connection cheap: gorilla holds a write buffer
// only while a frame is being written. chat sets the read buffer (Ticket.Accept).
const wsWriteBuffer = 4096

var wsWritePool = &sync.Pool{}

// mountChat registers the chat routes when a chat service is wired.
func (s *Server) mountChat(mux *http.ServeMux) {
	if s.deps.Chat == nil {
		return
	}
	up := &websocket.Upgrader{
		WriteBufferSize: wsWriteBuffer,
		WriteBufferPool: wsWritePool,
		CheckOrigin:     s.originAllowed,
	}
	mux.HandleFunc("GET /ws/{room}", func(w http.ResponseWriter, r *http.Request) { s.chatSocket(w, r, up) })
	mux.HandleFunc("GET /api/rooms/{room}/dm/{viewer}", s.dmHistory)
	mux.HandleFunc("GET /api/rooms/{room}/dm", s.dmConversations)
}

// chatSocket authenticates (?token=), checks the origin, asks chat to admit the user,
// then upgrades and hands the connection to chat.
func (s *Server) chatSocket(w http.ResponseWriter, r *http.Request, up *websocket.Upgrader) {
	room, err := roomParam(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	claims, err := s.Authorize(r, room, true)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		// A browser cannot read why an upgrade was refused: a page asks again without
		// one to learn it (a banned viewer who reloads is told, not left reconnecting).
		ticket, ok := s.admit(w, r, room, claims)
		if !ok {
			return
		}
		ticket.Release()
		writeError(w, r, problem.New(problem.BadRequest, "this endpoint speaks WebSocket only").WithCode("websocket_required"))
		return
	}
	if !s.originAllowed(r) {
		writeError(w, r, problem.New(problem.Forbidden, "origin %q is not allowed", r.Header.Get("Origin")).WithCode("origin_not_allowed"))
		return
	}
	since := int64(-1)
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			writeError(w, r, problem.New(problem.BadRequest, "since: a room seq (a whole number of 0 or more)"))
			return
		}
		since = int64(n)
	}
	if ticket, ok := s.admit(w, r, room, claims); ok {
		ticket.Accept(up, w, r, since)
	}
}

// admit asks the room to take the user (a ban, the per-address cap); refused, it
// answers the request and reports false. An IPv6 client counts by its /64, as for
// guest tokens: one host usually holds a whole /64 and could take a new address for
// every connection.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, room string, claims *token.Claims) (*chat.Ticket, bool) {
	ticket, err := s.deps.Chat.Admit(r.Context(), room, claims.User(), limitKey(s.clientAddr(r)))
	if err != nil {
		writeError(w, r, err)
		return nil, false
	}
	return ticket, true
}

type dmHistoryBody struct {
	Room     string    `json:"room"`
	Viewer   string    `json:"viewer"`
	Messages []chat.DM `json:"messages"`
}

// dmHistory returns the last messages between a room's agents and one viewer: for the
// room's agents and admins, and for the viewer itself (its player shows what it missed
// while reconnecting: DMs have no seq to resume from).
func (s *Server) dmHistory(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	claims, err := s.Authorize(r, room, false, event.RoleAgent, event.RoleAdmin, event.RoleViewer)
	if err != nil {
		writeError(w, r, err)
		return
	}
	viewer := r.PathValue("viewer")
	if viewer == "" || len(viewer) > token.MaxUserLen {
		writeError(w, r, problem.New(problem.BadRequest, "bad viewer id"))
		return
	}
	if claims.Role == event.RoleViewer && claims.Subject != viewer {
		writeError(w, r, problem.New(problem.Forbidden, "a viewer may read only its own conversation"))
		return
	}
	msgs, err := s.deps.Chat.DMHistory(r.Context(), room, viewer)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, dmHistoryBody{Room: room, Viewer: viewer, Messages: msgs})
}

type dmConversationsBody struct {
	Room          string              `json:"room"`
	Conversations []chat.Conversation `json:"conversations"`
}

// dmConversations lists a room's recent private conversations, newest first, for its
// agents and admins: a console that was disconnected learns from it who wrote meanwhile
// (DMs have no seq to resume from).
func (s *Server) dmConversations(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if _, err := s.Authorize(r, room, false, event.RoleAgent, event.RoleAdmin); err != nil {
		writeError(w, r, err)
		return
	}
	convs, err := s.deps.Chat.DMConversations(r.Context(), room)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, dmConversationsBody{Room: room, Conversations: convs})
}
