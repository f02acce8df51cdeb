package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/problem"
	"github.com/liveroom/liveroom/token"
)

type guestRequest struct {
	Token string `json:"token"`
	Name  string `json:"name"`
}

type guestResponse struct {
	Token    string `json:"token"`
	ViewerID string `json:"viewer_id"`
	Expires  int64  `json:"expires"` // Unix ms
}

// guest issues an anonymous viewer token for a room. A body {"token": OLD} holding a
// guest token this server signed (even expired, within 90 days) keeps OLD's viewer id;
// anything else gets a new random id, so a bare id can never take an identity.
func (s *Server) guest(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if ok, wait := s.guests.allow(s.clientAddr(r), time.Now()); !ok {
		writeRateLimited(w, r, wait, "guest token requests")
		return
	}
	var req guestRequest
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, r, problem.Wrap(problem.BadRequest, err, `body must be empty or {"token": "...", "name": "..."}`))
			return
		}
	}
	viewer, name := token.NewViewerID(), ""
	if req.Token != "" {
		old, err := s.signer.VerifyGuestForRenewal(req.Token)
		if err != nil {
			if errors.Is(err, token.ErrNotGuest) {
				writeError(w, r, problem.Wrap(problem.Forbidden, err, "only a guest token can be renewed here"))
				return
			}
			writeError(w, r, err)
			return
		}
		viewer, name = old.Subject, old.Name
	}
	if req.Name != "" {
		if len([]rune(req.Name)) > 40 || !utf8.ValidString(req.Name) || strings.ContainsFunc(req.Name, event.Unprintable) {
			// Chat shows it beside the viewer's comments, which refuse control characters too.
			writeError(w, r, problem.New(problem.BadRequest, "name: at most 40 characters of text, no control or bidi control characters"))
			return
		}
		name = req.Name
	}
	raw, err := s.signer.Issue(token.Spec{
		User: viewer, Name: name, Role: event.RoleViewer, Room: room, TTL: s.cfg.GuestTTL, Guest: true,
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, guestResponse{
		Token: raw, ViewerID: viewer, Expires: time.Now().Add(s.cfg.GuestTTL).UnixMilli(),
	})
}
