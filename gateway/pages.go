package gateway

import (
	"io/fs"
	"net/http"

	"github.com/liveroom/liveroom/web"
)

// mountPages serves the four pages and their static assets from the embedded web/.
func (s *Server) mountPages(mux *http.ServeMux) {
	page := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if room := r.PathValue("room"); room != "" {
				if _, err := roomParam(r); err != nil {
					writeError(w, r, err)
					return
				}
			}
			b, err := fs.ReadFile(web.Files, name)
			if err != nil {
				writeError(w, r, err)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write(b)
		}
	}
	mux.HandleFunc("GET /studio/{room}", page("studio.html"))
	mux.HandleFunc("GET /r/{room}", page("player.html"))
	mux.HandleFunc("GET /console", page("console.html"))
	mux.HandleFunc("GET /dashboard", page("dashboard.html"))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/dashboard", http.StatusFound)
	})
	static, _ := fs.Sub(web.Files, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
}
