package gateway

import "net/http"

// ChatService is what the gateway needs from chat (see issue 3).
type ChatService interface{}

// mountChat registers the chat routes when a chat service is wired.
func (s *Server) mountChat(mux *http.ServeMux) {}
