package gateway

import (
	"context"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/token"
)

// healthz answers 200 while the process is up.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when the node takes traffic: not draining and every store reachable.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.Draining() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": "draining"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	for _, check := range s.deps.Ready {
		if err := check(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true})
}

// mountProfiling serves Go's runtime profiles (net/http/pprof) to a node-wide admin: a
// CPU, heap or goroutine profile of the running node is how a slow or large one is
// explained without a special build.
func (s *Server) mountProfiling(mux *http.ServeMux) {
	admin := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if _, err := s.Authorize(r, token.AnyRoom, false, event.RoleAdmin); err != nil {
				writeError(w, r, err)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /debug/pprof/", admin(pprof.Index)) // and every named profile: heap, goroutine, allocs…
	mux.HandleFunc("GET /debug/pprof/cmdline", admin(pprof.Cmdline))
	mux.HandleFunc("GET /debug/pprof/profile", admin(pprof.Profile))
	mux.HandleFunc("GET /debug/pprof/symbol", admin(pprof.Symbol))
	mux.HandleFunc("GET /debug/pprof/trace", admin(pprof.Trace))
}
