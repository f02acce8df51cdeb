package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/crypto/acme/autocert"

	"github.com/liveroom/liveroom/backup"
	"github.com/liveroom/liveroom/config"
	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/gateway"
	"github.com/liveroom/liveroom/hugepage"
	"github.com/liveroom/liveroom/token"
)

// stopTimeout bounds how long the services may take to flush and stop after the drain.
const stopTimeout = 15 * time.Second

// TapSize is how many events the tap holds for the segment engine before dropping.
const TapSize = 1 << 16

// App is one running liveroom node.
type App struct {
	cfg      config.Config
	log      *slog.Logger
	signer   *token.Signer
	gw       *gateway.Server
	http     *http.Server
	ln       net.Listener
	tap      *event.Queue
	pub      event.Publisher               // the tap behind liveStamp: what chat and media publish to
	stops    []func(context.Context) error // run in reverse order on shutdown
	serveErr chan error
	wg       sync.WaitGroup

	// liveHook tells chat that a room went live or ended; set by wireChat, called by
	// media (nil when chat is not wired).
	liveHook func(room string, live bool)
	// huge is the huge-page watcher while Run runs one (for the metrics).
	huge atomic.Pointer[hugepage.Watcher]
	// backups copy the stores for GET /api/backup; each wiring file adds its own.
	backups []backup.Source
	// book feeds segment's events to the rules (nil when segment is not wired).
	book *playbook
	// chatHub is the chat hub (nil when chat is not wired).
	chatHub interface{ Disconnect(context.Context) error }
}

// New builds every part of the node but serves nothing yet.
func New(cfg config.Config, log *slog.Logger) (*App, error) {
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("data folder %s (--data): %w", cfg.Data, err)
	}
	secret, generated, err := LoadSecret(cfg.Secret, cfg.Data)
	if err != nil {
		return nil, err
	}
	if generated {
		log.Info("generated a development signing secret", "file", filepath.Join(cfg.Data, SecretFile))
	}
	signer, err := token.NewSigner(secret)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, signer: signer, tap: event.NewQueue(TapSize), serveErr: make(chan error, 1)}
	a.pub = newLiveStamp(a.tap)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hugeMetrics(reg, &a.huge)
	queueMetrics(reg, "tap", "the tap (chat's and media's events for segmentation)", a.tap)
	deps := gateway.Deps{Signer: signer, Registry: reg, Log: log}
	deps.Backup = func(ctx context.Context) (*backup.Snapshot, error) { return backup.Take(ctx, cfg.Data, a.backups...) }
	if err := a.wire(&deps); err != nil {
		a.stop(context.Background())
		return nil, err
	}
	// Only now that the stores are open (and locked) here: another node on the same
	// --data may be taking a backup until then.
	if err := backup.RemoveLeftovers(cfg.Data); err != nil {
		log.Warn("could not remove what a backup cut short left under --data", "err", err)
	}
	gw, err := gateway.New(cfg.Core, deps)
	if err != nil {
		a.stop(context.Background())
		return nil, err
	}
	a.gw = gw
	a.http = gw.HTTPServer()
	return a, nil
}

// wire builds the capability services in dependency order (segment answers through
// chat; media reports to chat); each wiring file adds its stop function.
func (a *App) wire(deps *gateway.Deps) error {
	for _, w := range []func(*gateway.Deps) error{a.wireChat, a.wireSegment, a.wireRules} {
		if err := w(deps); err != nil {
			return err
		}
	}
	// The stops run in reverse: chat's clients are told to reconnect (and each one's
	// leave goes onto the tap) once media has stopped, and before the rules and segment
	// stop taking events; chat itself stops last, taking the rules' last DMs. Clients
	// disconnected only then, a stop lost every connected viewer's time in the room
	// and whatever they sent meanwhile.
	if a.chatHub != nil {
		a.stops = append(a.stops, a.chatHub.Disconnect)
	}
	return a.wireMedia(deps)
}

// Signer is the node's token signer.
func (a *App) Signer() *token.Signer { return a.signer }

// Addr is the bound HTTP address once Start has returned.
func (a *App) Addr() net.Addr { return a.ln.Addr() }

// Start binds the HTTP listener and serves in the background.
func (a *App) Start() error {
	ln, err := net.Listen("tcp", a.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("listen on %s (--http): %w", a.cfg.HTTP, err)
	}
	a.ln = ln
	serve := func() error { return a.http.Serve(ln) }
	switch {
	case a.cfg.TLSCert != "":
		cert, err := tls.LoadX509KeyPair(a.cfg.TLSCert, a.cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("tls-cert/tls-key: %w", err)
		}
		a.http.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		serve = func() error { return a.http.ServeTLS(ln, "", "") }
	case a.cfg.ACMEDomain != "":
		a.http.TLSConfig = ACMEConfig(a.cfg.Core)
		if _, port, _ := net.SplitHostPort(a.cfg.HTTP); port != "443" {
			a.log.Warn("automatic certificates need the TLS-ALPN challenge on port 443; set --http :443", "http", a.cfg.HTTP)
		}
		serve = func() error { return a.http.ServeTLS(ln, "", "") }
	}
	a.wg.Go(func() {
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.serveErr <- err
		}
	})
	return nil
}

// BaseURL is the public base URL for links; with --http on port 0 it names the port
// actually bound.
func (a *App) BaseURL() string {
	core := a.cfg.Core
	if a.ln != nil {
		if host, port, err := net.SplitHostPort(core.HTTP); err == nil && port == "0" {
			_, bound, _ := net.SplitHostPort(a.ln.Addr().String())
			core.HTTP = net.JoinHostPort(host, bound)
		}
	}
	return core.BaseURL()
}

// ACMEConfig is the TLS configuration that obtains and renews a certificate for the
// configured domain automatically (TLS-ALPN-01), caching it under <data>/acme.
func ACMEConfig(c config.Core) *tls.Config {
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist(c.ACMEDomain),
		Cache:      autocert.DirCache(filepath.Join(c.Data, "acme")),
		Email:      c.ACMEEmail,
	}
	cfg := m.TLSConfig()
	cfg.MinVersion = tls.VersionTLS12
	return cfg
}

// Run starts the node, prints the demo links to out, and serves until ctx ends, then
// drains. A second cancellation is the caller's to handle (cmd exits at once).
func (a *App) Run(ctx context.Context, out io.Writer) error {
	if err := a.Start(); err != nil {
		a.stop(context.Background())
		return err
	}
	a.log.Info("serving", "http", a.ln.Addr().String(), "tls", a.cfg.TLSEnabled(), "data", a.cfg.Data, "cluster", a.cfg.Redis != "")
	if a.cfg.HugePages {
		if w, err := hugepage.Start(hugepage.Interval); err != nil {
			a.log.Info("huge pages off", "reason", err)
		} else {
			a.huge.Store(w)
			defer w.Stop()
			a.log.Info("huge pages on: the heap is collapsed into 2 MiB pages as it grows", "every", hugepage.Interval)
		}
	}
	if a.cfg.Secret == "" { // the embedded default's development secret: links to open at once
		links, err := DemoLinks(a.signer, a.BaseURL(), a.cfg.DemoRoom, 24*time.Hour)
		if err != nil {
			return err
		}
		links.Print(out, 24*time.Hour)
	} else {
		// A secret of the operator's: tokens printed here would stay in the logs (an
		// admin token for every room, a day long, at each start).
		PageLinks(a.BaseURL(), a.cfg.DemoRoom).PrintWithoutTokens(out)
	}
	select {
	case <-ctx.Done():
		a.log.Info("stopping: draining", "timeout", a.cfg.DrainTimeout)
		return a.Shutdown(context.Background())
	case err := <-a.serveErr:
		a.Shutdown(context.Background())
		return err
	}
}

// Shutdown drains: readiness goes false and new sessions are refused; for
// --drain-grace the listener stays open so that a load balancer polling /readyz sees
// the node leave (rather than a refused connection); then in-flight work gets up to
// --drain-timeout, and every service is stopped and waited for.
func (a *App) Shutdown(ctx context.Context) error {
	a.gw.SetDraining(true)
	if g := a.cfg.DrainGrace; g > 0 {
		a.log.Info("draining: still answering for the grace period", "grace", g)
		select {
		case <-time.After(g):
		case <-ctx.Done():
		}
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.DrainTimeout)
	defer cancel()
	err := a.http.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		a.log.Warn("drain timeout reached; closing remaining connections")
		err = a.http.Close()
	}
	a.wg.Wait()
	// The services get their own time to flush state, even when the drain used it all.
	sctx, scancel := context.WithTimeout(context.Background(), stopTimeout)
	defer scancel()
	if serr := a.stop(sctx); serr != nil && err == nil {
		err = serr
	}
	a.log.Info("stopped")
	return err
}

// stop runs the services' stop functions in reverse order of wiring.
func (a *App) stop(ctx context.Context) error {
	var errs []error
	for i := len(a.stops) - 1; i >= 0; i-- {
		if err := a.stops[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	a.stops = nil
	return errors.Join(errs...)
}
