package gateway

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/liveroom/liveroom/problem"
)

// statusWriter records the status for metrics and can turn the mux's own plain-text
// 404/405 answers into the JSON error shape.
type statusWriter struct {
	http.ResponseWriter
	status    int
	jsonError bool // rewrite a plain error answer as JSON
	wrote     bool
	swallow   bool
	r         *http.Request
}

func (w *statusWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	w.status = code
	if w.jsonError && code >= 400 {
		w.swallow = true
		w.Header().Del("Content-Length")
		var err error
		switch code {
		case http.StatusNotFound:
			err = problem.New(problem.NotFound, "no such page or endpoint: %s", w.r.URL.Path)
		case http.StatusMethodNotAllowed:
			writeMethodNotAllowed(w.ResponseWriter, w.r.Method)
			return
		default:
			err = problem.New(problem.BadRequest, "%s", http.StatusText(code))
		}
		writeError(w.ResponseWriter, w.r, err)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.swallow {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Hijack lets the WebSocket upgrade take over the connection.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijack not supported")
	}
	if !w.wrote {
		w.wrote, w.status = true, http.StatusSwitchingProtocols
	}
	return h.Hijack()
}

// Flush passes through for streamed answers (CSV exports).
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// middleware wraps the mux: panic recovery, metrics by route, security headers, CORS,
// draining, body limits, and JSON for the mux's own errors.
func (s *Server) middleware(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		_, pattern := mux.Handler(r)
		sw := &statusWriter{ResponseWriter: w, r: r, jsonError: pattern == ""}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "path", r.URL.Path, "panic", fmt.Sprint(v))
				if !sw.wrote {
					writeError(sw, r, fmt.Errorf("panic: %v", v))
				}
			}
			route := pattern // known even when the mux was never reached (draining, 413)
			if route == "" {
				route = "unmatched"
			}
			s.metrics.observe(route, sw.status, time.Since(start))
		}()

		s.securityHeaders(sw.Header(), r)
		s.cors(sw.Header(), r)

		if s.Draining() && !opsPath(r.URL.Path) {
			sw.Header().Set("Retry-After", strconv.Itoa(int(drainWait.Seconds())))
			writeError(sw, r, problem.New(problem.Unavailable, "this node is draining; retry on another").WithCode("draining"))
			return
		}
		if r.Method == http.MethodOptions && pattern == "" && corsPath(r.URL.Path) {
			// A CORS preflight for a path with no OPTIONS handler of its own.
			sw.WriteHeader(http.StatusNoContent)
			return
		}
		if r.ContentLength > s.cfg.BodyLimit {
			writeError(sw, r, problem.New(problem.TooLarge, "request body of %d bytes is larger than the limit of %d", r.ContentLength, s.cfg.BodyLimit))
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(sw, r.Body, s.cfg.BodyLimit)
		}
		mux.ServeHTTP(sw, r)
	})
}

// securityHeaders are set on every answer; pages get a strict Content-Security-Policy.
func (s *Server) securityHeaders(h http.Header, r *http.Request) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
	h.Set("Permissions-Policy", "camera=(self), microphone=(self), geolocation=()")
	if s.cfg.TLSEnabled() {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	frameAncestors := "'self'"
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" {
			frameAncestors = "*"
			break
		}
		frameAncestors += " " + o
	}
	h.Set("Content-Security-Policy", strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data: blob: https: http:", // product images may be http(s), as the API takes them
		"media-src 'self' blob: mediastream:",
		"connect-src 'self' ws: wss:",
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors " + frameAncestors,
	}, "; "))
}

// cors allows the configured origins on the API, WHIP/WHEP and WebSocket paths. Tokens
// travel in headers, never cookies, so no credentials are allowed.
func (s *Server) cors(h http.Header, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" || !corsPath(r.URL.Path) {
		return
	}
	h.Add("Vary", "Origin")
	if !s.originAllowed(r) {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", "Location, Link, ETag, Retry-After, Accept-Patch")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
		h.Set("Access-Control-Max-Age", "600")
	}
}

func corsPath(p string) bool {
	for _, pre := range []string{"/api/", "/whip/", "/whep/", "/ws/", "/webhooks/"} {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// originAllowed reports whether the request's Origin is the server's own or listed in
// allowed-origins. Requests without Origin (OBS, ffmpeg, curl) are not browsers and pass.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if slices.Contains(s.cfg.AllowedOrigins, "*") || slices.Contains(s.cfg.AllowedOrigins, origin) {
		return true
	}
	host := strings.TrimPrefix(strings.TrimPrefix(origin, "https://"), "http://")
	return host == r.Host
}

// clientAddr is the caller's IP: the peer address, or the last X-Forwarded-For hop
// (the one the trusted proxy added) when the server sits behind one.
func (s *Server) clientAddr(r *http.Request) string {
	if s.cfg.TrustProxy {
		// The last hop is the one our proxy appended; earlier ones the client can forge.
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if ip := net.ParseIP(strings.TrimSpace(last)); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
