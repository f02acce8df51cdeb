package gateway

import "net/http"

// MediaService is what the gateway needs from media (see issue 4).
type MediaService interface{}

// mountMedia registers the WHIP/WHEP routes when a media service is wired.
func (s *Server) mountMedia(mux *http.ServeMux) {}
