package rules

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Webhook headers. The signature is "sha256=" and the hex HMAC-SHA256 of the raw body
// keyed with Config.WebhookSecret; the delivery id repeats across retries so that the
// receiver can drop duplicates.
const (
	SignatureHeader = "X-Liveroom-Signature"
	DeliveryHeader  = "X-Liveroom-Delivery"
	RuleHeader      = "X-Liveroom-Rule"
)

// WebhookBody is the JSON a webhook action posts.
type WebhookBody struct {
	ID      string    `json:"id"`
	Rule    string    `json:"rule"`
	At      time.Time `json:"at"`
	Viewer  Viewer    `json:"viewer"`
	Session Session   `json:"session"`
	Event   Event     `json:"event"`
}

// Sign returns the signature header value for body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a signature header against body in constant time.
func VerifySignature(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(strings.TrimSpace(header)))
}

type delivery struct {
	id, url, rule string
	at            time.Time
	env           Env
	// ctx ends at shutdown or when the viewer is erased (forget): a delivery not yet
	// made is then dropped, and one being retried stops.
	ctx    context.Context
	cancel context.CancelFunc
}

// webhooks is a fixed pool of workers delivering from a bounded queue, with bounded
// retries; a full queue drops and counts.
type webhooks struct {
	ctx    context.Context
	cfg    Config
	client *http.Client
	log    *slog.Logger
	stats  *counters
	queue  chan *delivery
	wg     sync.WaitGroup

	mu      sync.Mutex
	pending map[string]map[*delivery]struct{} // by viewer: queued or being delivered
}

func newWebhooks(ctx context.Context, cfg Config, client *http.Client, log *slog.Logger, stats *counters) *webhooks {
	w := &webhooks{ctx: ctx, cfg: cfg, client: client, log: log, stats: stats, queue: make(chan *delivery, cfg.WebhookQueue),
		pending: map[string]map[*delivery]struct{}{}}
	for range cfg.WebhookWorkers {
		w.wg.Go(w.run)
	}
	return w
}

func (w *webhooks) wait() { w.wg.Wait() }

func (w *webhooks) enqueue(d delivery) {
	d.ctx, d.cancel = context.WithCancel(w.ctx)
	viewer := d.env.Viewer.ID
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case w.queue <- &d:
		if w.pending[viewer] == nil {
			w.pending[viewer] = map[*delivery]struct{}{}
		}
		w.pending[viewer][&d] = struct{}{}
	default:
		d.cancel()
		w.stats.hookDropped.Add(1)
		w.log.Warn("rules: webhook queue full, delivery dropped", "rule", d.rule, "url", d.url)
	}
}

// forget drops viewer's deliveries not yet made and stops those being retried (an
// erased viewer's data must not leave the server after the erasure).
func (w *webhooks) forget(viewer string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for d := range w.pending[viewer] {
		d.cancel()
	}
	delete(w.pending, viewer)
}

// done ends d's tracking.
func (w *webhooks) done(d *delivery) {
	d.cancel()
	w.mu.Lock()
	defer w.mu.Unlock()
	viewer := d.env.Viewer.ID
	if ds := w.pending[viewer]; ds != nil {
		delete(ds, d)
		if len(ds) == 0 {
			delete(w.pending, viewer)
		}
	}
}

func (w *webhooks) run() {
	for {
		select {
		case <-w.ctx.Done():
			return
		case d := <-w.queue:
			err := w.deliver(d)
			w.done(d)
			switch {
			case err == nil:
				w.stats.hookDelivered.Add(1)
			case w.ctx.Err() != nil: // shutdown: the delivery is given up
				w.stats.hookFailed.Add(1)
				return
			case errors.Is(err, errForgotten):
				w.stats.hookDropped.Add(1)
				w.log.Info("rules: webhook dropped, its viewer was erased", "rule", d.rule, "url", d.url)
			default:
				w.stats.hookFailed.Add(1)
				w.log.Warn("rules: webhook given up", "rule", d.rule, "url", d.url, "err", err)
			}
		}
	}
}

// errForgotten ends a delivery whose viewer was erased.
var errForgotten = errors.New("viewer erased")

// deliver posts d until a 2xx, a final 4xx, the attempt limit, shutdown or the
// viewer's erasure.
func (w *webhooks) deliver(d *delivery) error {
	if d.ctx.Err() != nil {
		return errForgotten
	}
	body, err := json.Marshal(WebhookBody{ID: d.id, Rule: d.rule, At: d.at, Viewer: d.env.Viewer, Session: d.env.Session, Event: d.env.Event})
	if err != nil {
		return err
	}
	sig := Sign([]byte(w.cfg.WebhookSecret), body)
	for attempt := 0; ; attempt++ {
		retry, err := w.post(d, body, sig)
		if err == nil {
			return nil
		}
		if !retry || attempt+1 >= w.cfg.WebhookAttempts {
			return fmt.Errorf("after %d attempts: %w", attempt+1, err)
		}
		t := time.NewTimer(backoff(w.cfg.WebhookBackoff, w.cfg.WebhookMaxBackoff, attempt))
		select {
		case <-d.ctx.Done():
			t.Stop()
			return errForgotten
		case <-t.C:
		}
	}
}

// backoff is "full jitter": uniform in [0, min(max, base·2^attempt)].
func backoff(base, maxD time.Duration, attempt int) time.Duration {
	d := maxD
	if attempt < 30 && base<<attempt < maxD && base<<attempt > 0 {
		d = base << attempt
	}
	return rand.N(d + 1)
}

func (w *webhooks) post(d *delivery, body []byte, sig string) (retry bool, err error) {
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, sig)
	req.Header.Set(DeliveryHeader, d.id)
	req.Header.Set(RuleHeader, d.rule)
	resp, err := w.client.Do(req)
	if err != nil {
		if d.ctx.Err() != nil {
			return false, errForgotten
		}
		return true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		return true, fmt.Errorf("status %d", resp.StatusCode)
	default:
		return false, fmt.Errorf("status %d (not retried)", resp.StatusCode)
	}
}
