package gateway

import (
	"net/http"
	"time"
)

// me answers who a token belongs to, so a page opened with ?token= can check it and
// show the user's name and role. With ?room=R it also checks the token grants R.
func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	room, err := optionalRoom(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	c, err := s.Authorize(r, room, false)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var exp int64
	if c.ExpiresAt != nil {
		exp = c.ExpiresAt.Time.UnixMilli()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": c.Subject, "name": c.Name, "role": c.Role, "room": c.Room, "guest": c.Guest,
		"expires": exp, "now": time.Now().UnixMilli(),
	})
}
