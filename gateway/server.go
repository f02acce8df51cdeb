package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveroom/liveroom/backup"
	"github.com/liveroom/liveroom/config"
	"github.com/liveroom/liveroom/token"
)

// ReadyCheck reports whether a dependency (a store, Redis) can take traffic.
type ReadyCheck func(ctx context.Context) error

// Deps are the services the gateway routes to. A nil service leaves its routes out.
type Deps struct {
	Signer   *token.Signer
	Registry *prometheus.Registry
	Chat     ChatService
	Media    MediaService
	Segment  SegmentService
	Rules    RulesService
	Actions  ViewerActions
	Orders   OrderSink
	Trends   TagTrends
	// ShopSecret verifies Shopify webhooks (--shop-secret).
	ShopSecret string
	// Ready lists the checks behind /readyz.
	Ready []ReadyCheck
	// Backup copies every store of the node (GET /api/backup); nil serves no backups.
	Backup func(context.Context) (*backup.Snapshot, error)
	Log    *slog.Logger
}

// Server is the HTTP front of liveroom.
type Server struct {
	cfg     config.Core
	signer  *token.Signer
	deps    Deps
	log     *slog.Logger
	handler http.Handler
	metrics *httpMetrics
	guests  *addrLimiter
	// shopSecret is deps.ShopSecret, kept apart so it is never logged with deps.
	shopSecret  string
	draining    atomic.Bool
	backingUp   atomic.Bool   // a backup is being taken (one at a time)
	backupStall time.Duration // backupStall, shorter in tests
}

// New builds the gateway's handler for cfg and deps.
func New(cfg config.Core, deps Deps) (*Server, error) {
	if deps.Signer == nil {
		return nil, errors.New("gateway: a token signer is required")
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	m, err := newHTTPMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:         cfg,
		signer:      deps.Signer,
		deps:        deps,
		log:         deps.Log,
		metrics:     m,
		guests:      newAddrLimiter(float64(cfg.GuestRate)/60, cfg.GuestRate),
		backupStall: backupStall,

		shopSecret: deps.ShopSecret,
	}
	mux := http.NewServeMux()
	s.routes(mux)
	s.handler = s.middleware(mux)
	return s, nil
}

// Handler is the root handler with every middleware applied.
func (s *Server) Handler() http.Handler { return s.handler }

// SetDraining makes /readyz fail and new sessions get 503 while true.
func (s *Server) SetDraining(v bool) { s.draining.Store(v) }

// Draining reports whether the server is draining.
func (s *Server) Draining() bool { return s.draining.Load() }

// HTTPServer returns an http.Server with the configured timeouts around the handler.
// WriteTimeout stays zero: WebSocket and long WHEP sessions outlive any fixed limit.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Addr:              s.cfg.HTTP,
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.HeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

func (s *Server) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metricsHandler())
	s.mountProfiling(mux)
	if s.deps.Backup != nil {
		mux.HandleFunc("/api/backup", s.backupArchive) // GET only: it answers other methods itself
	}
	mux.HandleFunc("POST /api/rooms/{room}/guest", s.guest)
	mux.HandleFunc("GET /api/me", s.me)
	s.mountPages(mux)
	s.mountChat(mux)
	s.mountMedia(mux)
	s.mountSegment(mux)
	s.mountRules(mux)
}

// opsPath reports whether a path stays served while draining.
func opsPath(p string) bool {
	return p == "/healthz" || p == "/readyz" || p == "/metrics" || strings.HasPrefix(p, "/debug/pprof/")
}

// drainWait is how long clients are told to wait before retrying on a draining node.
const drainWait = 2 * time.Second
