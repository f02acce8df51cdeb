package gateway

import "net/http"

// SegmentService is what the gateway needs from segment (see issues 5 and 6).
type SegmentService interface{}

// mountSegment registers the segmentation API when a segment service is wired.
func (s *Server) mountSegment(mux *http.ServeMux) {}
