package gateway

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/media"
	"github.com/liveroom/liveroom/problem"
	"github.com/liveroom/liveroom/token"
)

// MediaService is what the gateway needs from media: sessions and figures.
type MediaService interface {
	MediaSessions
	MediaReports
}

// MediaSessions are the WHIP/WHEP sessions.
type MediaSessions interface {
	// Offer starts a WHIP (media.Publish) or WHEP (media.Watch) session from an SDP offer.
	Offer(ctx context.Context, kind media.Kind, room string, user event.User, offer string) (media.Answer, error)
	// Patch applies a trickle-ice-sdpfrag if the session's entity tag passes match (nil:
	// any); a non-nil answer is sent back (ICE restart). etag is the tag after it.
	Patch(ctx context.Context, kind media.Kind, room, id string, user event.User, match func(etag string) bool, frag []byte) (out []byte, etag string, err error)
	// End closes a session.
	End(ctx context.Context, kind media.Kind, room, id string, user event.User) error
	// ICEServers lists STUN/TURN servers for user (TURN credentials may be minted).
	ICEServers(user string) []media.ICEServer
}

// MediaReports are the figures of live rooms.
type MediaReports interface {
	// Stats describes a room's media.
	Stats(room string) media.Stats
	// LiveRooms lists the rooms live now.
	LiveRooms() []media.Stats
}

// offerTimeout bounds one WHIP/WHEP offer/answer exchange.
const offerTimeout = 10 * time.Second

// mountMedia registers the WHIP/WHEP routes (RFC 9725) when a media service is wired.
func (s *Server) mountMedia(mux *http.ServeMux) {
	if s.deps.Media == nil {
		return
	}
	for _, k := range []media.Kind{media.Publish, media.Watch} {
		base := "/" + k.String() + "/{room}"
		mux.HandleFunc("POST "+base, func(w http.ResponseWriter, r *http.Request) { s.mediaOffer(w, r, k) })
		mux.HandleFunc("OPTIONS "+base, s.mediaOptions)
		mux.HandleFunc("OPTIONS "+base+"/{id}", s.mediaOptions)
		mux.HandleFunc("PATCH "+base+"/{id}", func(w http.ResponseWriter, r *http.Request) { s.mediaPatch(w, r, k) })
		mux.HandleFunc("DELETE "+base+"/{id}", func(w http.ResponseWriter, r *http.Request) { s.mediaEnd(w, r, k) })
	}
	mux.HandleFunc("GET /api/rooms/{room}/stats", s.mediaStats)
	mux.HandleFunc("GET /api/rooms", s.liveRooms)
}

// mediaBody checks the Content-Type and reads the (size-limited) body.
func mediaBody(r *http.Request, want string) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != want {
		return nil, problem.New(problem.UnsupportedType, "Content-Type must be %s", want)
	}
	return io.ReadAll(r.Body)
}

func (s *Server) mediaOffer(w http.ResponseWriter, r *http.Request, kind media.Kind) {
	room, err := roomParam(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var roles []string
	if kind == media.Publish {
		roles = []string{event.RoleHost}
	}
	claims, err := s.Authorize(r, room, false, roles...)
	if err != nil {
		writeError(w, r, err)
		return
	}
	offer, err := mediaBody(r, "application/sdp")
	if err != nil {
		writeError(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), offerTimeout)
	defer cancel()
	ans, err := s.deps.Media.Offer(ctx, kind, room, claims.User(), string(offer))
	if err != nil {
		writeError(w, r, err)
		return
	}
	h := w.Header()
	s.iceLinks(h, claims.Subject)
	h.Set("Location", "/"+kind.String()+"/"+url.PathEscape(room)+"/"+ans.ID)
	h.Set("ETag", `"`+ans.ETag+`"`)
	h.Set("Content-Type", "application/sdp")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, ans.SDP)
}

// mediaOptions answers preflight and WHIP/WHEP OPTIONS (RFC 9725 §4.4, §4.6): ICE
// servers go in Link headers; TURN credentials only to a caller with a valid token.
func (s *Server) mediaOptions(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Accept-Post", "application/sdp")
	h.Set("Accept-Patch", "application/trickle-ice-sdpfrag")
	if room, err := roomParam(r); err == nil {
		if c, err := s.Authorize(r, room, false); err == nil {
			s.iceLinks(h, c.Subject)
		} else {
			s.iceLinks(h, "")
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// iceLinks adds one Link header per ICE server; with no user, TURN servers are left
// out (their credentials are for authenticated clients).
func (s *Server) iceLinks(h http.Header, user string) {
	for _, srv := range s.deps.Media.ICEServers(user) {
		turn := strings.HasPrefix(srv.URL, "turn")
		if turn && user == "" {
			continue
		}
		link := fmt.Sprintf(`<%s>; rel="ice-server"`, srv.URL)
		if srv.Username != "" {
			link += fmt.Sprintf(`; username=%q; credential=%q; credential-type="password"`, srv.Username, srv.Credential)
		}
		h.Add("Link", link)
	}
}

// sessionRequest authorizes a PATCH/DELETE on a session: any valid token for the room;
// media then checks that it is the session's owner.
func (s *Server) sessionRequest(r *http.Request) (room, id string, user event.User, err error) {
	if room, err = roomParam(r); err != nil {
		return
	}
	c, err := s.Authorize(r, room, false)
	if err != nil {
		return
	}
	return room, r.PathValue("id"), c.User(), nil
}

func (s *Server) mediaPatch(w http.ResponseWriter, r *http.Request, kind media.Kind) {
	room, id, user, err := s.sessionRequest(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	frag, err := mediaBody(r, "application/trickle-ice-sdpfrag")
	if err != nil {
		writeError(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), offerTimeout)
	defer cancel()
	out, etag, err := s.deps.Media.Patch(ctx, kind, room, id, user, ifMatch(r.Header.Values("If-Match")), frag)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", `"`+etag+`"`)
	if out == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/trickle-ice-sdpfrag")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// ifMatch turns If-Match header lines (RFC 9110 §13.1.1) into a test of a session's
// entity tag: nil (anything passes) without them or with "*", which is what an ICE
// restart sends (RFC 9725 §4.3.2); else the tag must be one of the listed strong tags.
func ifMatch(lines []string) func(etag string) bool {
	var tags []string
	for _, l := range lines {
		for t := range strings.SplitSeq(l, ",") {
			if t = strings.TrimSpace(t); t == "*" {
				return nil
			} else if t != "" {
				tags = append(tags, t)
			}
		}
	}
	if tags == nil {
		return nil
	}
	return func(etag string) bool { return slices.Contains(tags, `"`+etag+`"`) }
}

func (s *Server) mediaEnd(w http.ResponseWriter, r *http.Request, kind media.Kind) {
	room, id, user, err := s.sessionRequest(r)
	if err == nil {
		err = s.deps.Media.End(r.Context(), kind, room, id, user)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) mediaStats(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err == nil {
		_, err = s.Authorize(r, room, false, event.RoleHost, event.RoleAgent, event.RoleAdmin)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.deps.Media.Stats(room))
}

// liveRooms lists the rooms live now with their figures (agents and admins with "*").
func (s *Server) liveRooms(w http.ResponseWriter, r *http.Request) {
	if _, err := s.Authorize(r, token.AnyRoom, false, event.RoleAgent, event.RoleAdmin); err != nil {
		writeError(w, r, err)
		return
	}
	rooms := s.deps.Media.LiveRooms()
	if rooms == nil {
		rooms = []media.Stats{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"rooms": rooms})
}
