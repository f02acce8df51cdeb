package gateway

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/problem"
	"github.com/liveroom/liveroom/rules"
	"github.com/liveroom/liveroom/segment"
	"github.com/liveroom/liveroom/token"
)

// ViewerService is the per-viewer part of segmentation: import, profile, export, erase.
type ViewerService interface {
	ImportJSON(ctx context.Context, body io.Reader) (segment.ImportResult, error)
	Viewer(ctx context.Context, id string) (segment.ViewerView, error)
	Export(ctx context.Context, id string) (segment.Export, error)
	Erase(ctx context.Context, id string) error
}

// SegmentReports is the population part: counts, members and figures.
type SegmentReports interface {
	Segments(ctx context.Context) segment.SegmentCounts
	Members(ctx context.Context, dim, tag, after string, limit int) (segment.MemberPage, error)
	MembersCSV(ctx context.Context, dim, tag string, w io.Writer) error
	Analytics(ctx context.Context, room string) segment.Analytics
}

// SegmentService is what the gateway needs from segment (see issues 5 and 6).
type SegmentService interface {
	ViewerService
	SegmentReports
}

var _ SegmentService = (*segment.Engine)(nil)

// defaultPage is the member page size without ?limit.
const defaultPage = 100

// mountSegment registers the segmentation API when a segment service is wired.
func (s *Server) mountSegment(mux *http.ServeMux) {
	if s.deps.Segment == nil {
		return
	}
	mux.HandleFunc("POST /api/events", s.importEvents)
	mux.HandleFunc("GET /api/viewers/{id}", s.viewerProfile)
	mux.HandleFunc("DELETE /api/viewers/{id}", s.eraseViewer)
	mux.HandleFunc("GET /api/viewers/{id}/export", s.exportViewer)
	mux.HandleFunc("GET /api/segments", s.segmentCounts)
	mux.HandleFunc("GET /api/segments/{dimension}/{tag}", s.segmentMembers)
	mux.HandleFunc("GET /api/analytics", s.analytics)
}

// viewerParam validates the {id} path value.
func viewerParam(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if id == "" || !utf8.ValidString(id) || utf8.RuneCountInString(id) > 200 || strings.IndexFunc(id, unicode.IsControl) >= 0 {
		return "", problem.New(problem.BadRequest, "bad viewer id: 1 to 200 characters of UTF-8, no control characters")
	}
	return event.EmailKey(id), nil // notes, consent and actions find it in any case too
}

func (s *Server) importEvents(w http.ResponseWriter, r *http.Request) {
	if _, err := s.Authorize(r, token.AnyRoom, false, event.RoleAdmin); err != nil {
		writeError(w, r, err)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" {
			writeError(w, r, problem.New(problem.UnsupportedType, "Content-Type must be application/json, not %q", ct))
			return
		}
	}
	res, err := s.deps.Segment.ImportJSON(r.Context(), r.Body)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		err = tooLarge // 413, not the decoder's 400
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) viewerProfile(w http.ResponseWriter, r *http.Request) {
	s.withViewer(w, r, []string{event.RoleAgent, event.RoleAdmin}, func(id string, _ event.User) (any, error) {
		v, err := s.deps.Segment.Viewer(r.Context(), id)
		if err != nil || s.deps.Actions == nil {
			return v, err
		}
		// What the rules did for this viewer, and agents' notes, with the rule behind each.
		acts, err := s.deps.Actions.Actions(r.Context(), v.ID)
		if acts == nil {
			acts = []rules.Action{}
		}
		return struct {
			segment.ViewerView
			Actions []rules.Action `json:"actions"`
		}{v, acts}, err
	})
}

func (s *Server) exportViewer(w http.ResponseWriter, r *http.Request) {
	s.withViewer(w, r, []string{event.RoleAdmin}, func(id string, _ event.User) (any, error) {
		exp, err := s.deps.Segment.Export(r.Context(), id)
		if err == nil {
			w.Header().Set("Content-Disposition", `attachment; filename="viewer-export.json"`)
		}
		return exp, err
	})
}

func (s *Server) eraseViewer(w http.ResponseWriter, r *http.Request) {
	s.withViewer(w, r, []string{event.RoleAdmin}, func(id string, _ event.User) (any, error) {
		return nil, s.deps.Segment.Erase(r.Context(), id)
	})
}

// withViewer authorizes roles, validates {id} and answers the result of fn (given the
// id and the caller), 204 when nil.
func (s *Server) withViewer(w http.ResponseWriter, r *http.Request, roles []string, fn func(id string, by event.User) (any, error)) {
	room := ""
	if len(roles) == 1 && roles[0] == event.RoleAdmin {
		room = token.AnyRoom // erasing or exporting a viewer spans every room
	}
	c, err := s.Authorize(r, room, false, roles...)
	if err != nil {
		writeError(w, r, err)
		return
	}
	id, err := viewerParam(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	v, err := fn(id, c.User())
	switch {
	case err != nil:
		writeError(w, r, err)
	case v == nil:
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

func (s *Server) segmentCounts(w http.ResponseWriter, r *http.Request) {
	if _, err := s.Authorize(r, "", false, event.RoleAgent, event.RoleAdmin); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.deps.Segment.Segments(r.Context()))
}

func (s *Server) segmentMembers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	dim, tag := r.PathValue("dimension"), r.PathValue("tag")
	switch q.Get("format") {
	case "csv":
		// A bulk export of personal data: admins only.
		if _, err := s.Authorize(r, token.AnyRoom, false, event.RoleAdmin); err != nil {
			writeError(w, r, err)
			return
		}
		s.streamMembersCSV(w, r, dim, tag)
		return
	case "", "json":
	default:
		writeError(w, r, problem.New(problem.BadRequest, "format must be json or csv"))
		return
	}
	if _, err := s.Authorize(r, "", false, event.RoleAgent, event.RoleAdmin); err != nil {
		writeError(w, r, err)
		return
	}
	limit := defaultPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, r, problem.New(problem.BadRequest, "limit must be a whole number from 1 to %d", segment.MaxPage))
			return
		}
		limit = n
	}
	page, err := s.deps.Segment.Members(r.Context(), dim, tag, q.Get("after"), limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// streamMembersCSV checks the tag first (so a bad one still gets a JSON 400), then
// streams rows as they are produced.
func (s *Server) streamMembersCSV(w http.ResponseWriter, r *http.Request, dim, tag string) {
	if _, err := s.deps.Segment.Members(r.Context(), dim, tag, "", 1); err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="segment-`+safeName(dim)+"-"+safeName(tag)+`.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	if err := s.deps.Segment.MembersCSV(r.Context(), dim, tag, w); err != nil && r.Context().Err() == nil {
		s.log.Warn("segment csv export stopped", "dimension", dim, "tag", tag, "err", err)
	}
}

// safeName keeps letters, digits, - and _ for a file name.
func safeName(s string) string {
	out := make([]rune, 0, len(s))
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			out = append(out, c)
		default:
			out = append(out, '_')
		}
	}
	return string(out)
}

func (s *Server) analytics(w http.ResponseWriter, r *http.Request) {
	room, err := optionalRoom(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	c, err := s.Authorize(r, room, false, event.RoleAgent, event.RoleAdmin)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if room == "" && c.Room != token.AnyRoom {
		room = c.Room // a room's token sees its room's figures, not every room's
	}
	writeJSON(w, http.StatusOK, s.deps.Segment.Analytics(r.Context(), room))
}
