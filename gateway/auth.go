package gateway

import (
	"net/http"
	"strings"

	"github.com/liveroom/liveroom/problem"
	"github.com/liveroom/liveroom/token"
)

// bearer returns the token from "Authorization: Bearer TOKEN", or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// Authorize checks the request's Bearer token (or ?token= when fromQuery is set, as the
// WebSocket must) for room and roles. Errors map to 401/403 through writeError.
func (s *Server) Authorize(r *http.Request, room string, fromQuery bool, roles ...string) (*token.Claims, error) {
	raw := bearer(r)
	if raw == "" && fromQuery {
		raw = r.URL.Query().Get("token")
	}
	if raw == "" {
		how := "send Authorization: Bearer TOKEN"
		if fromQuery {
			how += " or ?token=TOKEN" // a browser's WebSocket cannot set headers
		}
		return nil, problem.New(problem.Unauthorized, "missing token: %s", how).WithCode("missing_token")
	}
	return s.signer.Authorize(raw, room, roles...)
}

// roomParam validates the {room} path value.
func roomParam(r *http.Request) (string, error) {
	room := r.PathValue("room")
	if err := token.ValidRoom(room); err != nil {
		return "", asBadRequest(err)
	}
	return room, nil
}

func asBadRequest(err error) error { return problem.Wrap(problem.BadRequest, err, "bad room id") }

// optionalRoom is the ?room= of r, "" when absent; a malformed one is a 400.
func optionalRoom(r *http.Request) (string, error) {
	room := r.URL.Query().Get("room")
	if room != "" {
		if err := token.ValidRoom(room); err != nil {
			return "", asBadRequest(err)
		}
	}
	return room, nil
}
