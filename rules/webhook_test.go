package rules

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
)

// receiver is a webhook endpoint that answers the given statuses in turn (then 200)
// and checks every signature.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	bodies   [][]byte
	ids      []string
	badSig   int
	done     chan struct{}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !VerifySignature([]byte(hookSecret), body, r.Header.Get(SignatureHeader)) {
		rc.badSig++
	}
	rc.bodies = append(rc.bodies, body)
	rc.ids = append(rc.ids, r.Header.Get(DeliveryHeader))
	status := http.StatusOK
	if len(rc.statuses) > 0 {
		status, rc.statuses = rc.statuses[0], rc.statuses[1:]
	}
	w.WriteHeader(status)
	if rc.done != nil && (status < 300 || len(rc.statuses) == 0) {
		select {
		case rc.done <- struct{}{}:
		default:
		}
	}
}

const hookSecret = "a-webhook-secret-of-some-length!"

func hookEngine(t *testing.T, url string, attempts int) *Engine {
	doc := Document{Rules: []RuleSpec{{ID: "crm", Trigger: TriggerSpec{Event: []string{"order"}},
		Action: ActionSpec{Type: ActWebhook, URL: url}}}}
	e, _, _ := start(t, mustCompile(t, doc), nil, func(c *Config, _ *Deps) {
		c.WebhookSecret, c.WebhookAttempts = hookSecret, attempts
		c.WebhookBackoff, c.WebhookMaxBackoff = time.Millisecond, 4*time.Millisecond
		c.WebhookAllowPrivate = true // the test receiver listens on loopback
	})
	return e
}

// TestWebhookRefusesPrivateAddresses: by default a rule cannot make the server call
// loopback, private or link-local (cloud metadata) addresses, nor follow a redirect.
func TestWebhookRefusesPrivateAddresses(t *testing.T) {
	rc := &receiver{statuses: []int{200}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	doc := Document{Rules: []RuleSpec{{ID: "crm", Trigger: TriggerSpec{Event: []string{"order"}},
		Action: ActionSpec{Type: ActWebhook, URL: srv.URL}}}}
	e, _, _ := start(t, mustCompile(t, doc), nil, func(c *Config, _ *Deps) {
		c.WebhookAttempts, c.WebhookBackoff, c.WebhookMaxBackoff = 2, time.Millisecond, time.Millisecond
	})
	e.OnEvent(context.Background(), viewer("v1"), Session{}, orderEvent("e1", time.Now()))
	waitFor(t, "the refusal", func() bool { return e.Stats().WebhooksFailed == 1 })
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bodies) != 0 {
		t.Fatalf("a loopback receiver got %d requests", len(rc.bodies))
	}
	for _, ip := range []string{"127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "::1", "fd00::1", "100.64.0.1", "0.0.0.0"} {
		if publicIP(net.ParseIP(ip)) {
			t.Errorf("%s counted as public", ip)
		}
	}
	for _, ip := range []string{"8.8.8.8", "2001:4860:4860::8888"} {
		if !publicIP(net.ParseIP(ip)) {
			t.Errorf("%s counted as private", ip)
		}
	}
	redirect := webhookClient(DefaultConfig()).CheckRedirect(nil, nil)
	if redirect != http.ErrUseLastResponse {
		t.Fatalf("redirects followed: %v", redirect)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestWebhookRetriesThenDelivers(t *testing.T) {
	rc := &receiver{statuses: []int{500, 503, 429}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	e := hookEngine(t, srv.URL, 6)
	v := viewer("v1")
	e.OnEvent(context.Background(), v, Session{Room: "r1"}, orderEvent("e1", time.Now()))
	waitFor(t, "delivery", func() bool { return e.Stats().WebhooksDelivered == 1 })
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bodies) != 4 || rc.badSig != 0 {
		t.Fatalf("%d attempts, %d bad signatures; want 4 and 0", len(rc.bodies), rc.badSig)
	}
	if rc.ids[0] == "" || rc.ids[0] != rc.ids[3] {
		t.Fatalf("delivery id changed across retries: %v", rc.ids)
	}
	var body WebhookBody
	if err := json.Unmarshal(rc.bodies[3], &body); err != nil || body.Rule != "crm" || body.Viewer.ID != "v1" ||
		body.Event.Type != string(event.Order) || body.Event.OrderID != "o-e1" || body.Event.Total != 59.9 {
		t.Fatalf("body: %+v %v", body, err)
	}
	if acts, _ := e.Actions(context.Background(), "v1"); len(acts) != 1 || acts[0].Detail != srv.URL {
		t.Fatalf("actions: %+v", acts)
	}
}

func TestWebhookGivesUp(t *testing.T) {
	rc := &receiver{statuses: []int{500, 500, 500, 500, 500, 500, 500, 500}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	e := hookEngine(t, srv.URL, 3)
	e.OnEvent(context.Background(), viewer("v1"), Session{}, orderEvent("e1", time.Now()))
	waitFor(t, "giving up", func() bool { return e.Stats().WebhooksFailed == 1 })
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bodies) != 3 {
		t.Fatalf("%d attempts, want the bound of 3", len(rc.bodies))
	}

	// A 4xx other than 408/429 is final at once.
	rc2 := &receiver{statuses: []int{400}}
	srv2 := httptest.NewServer(rc2)
	defer srv2.Close()
	e2 := hookEngine(t, srv2.URL, 5)
	e2.OnEvent(context.Background(), viewer("v1"), Session{}, orderEvent("e1", time.Now()))
	waitFor(t, "a final 400", func() bool { return e2.Stats().WebhooksFailed == 1 })
	rc2.mu.Lock()
	defer rc2.mu.Unlock()
	if len(rc2.bodies) != 1 {
		t.Fatalf("%d attempts after a 400, want 1", len(rc2.bodies))
	}
}

func TestSignature(t *testing.T) {
	body := []byte(`{"id":"w1"}`)
	sig := Sign([]byte("k"), body)
	if !VerifySignature([]byte("k"), body, sig) || VerifySignature([]byte("k2"), body, sig) ||
		VerifySignature([]byte("k"), []byte(`{"id":"w2"}`), sig) || VerifySignature([]byte("k"), body, "") {
		t.Fatal("signature check")
	}
}

func TestBackoffBounded(t *testing.T) {
	for attempt := range 40 {
		if d := backoff(time.Second, time.Minute, attempt); d < 0 || d > time.Minute {
			t.Fatalf("attempt %d: %v", attempt, d)
		}
	}
}

// An erased viewer's webhooks stop: the one being retried makes no further attempt
// and the one still queued is never posted; another viewer's goes out.
func TestEraseDropsWebhooks(t *testing.T) {
	var mu sync.Mutex
	var log []string // viewer and delivery id of each request, in arrival order
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body WebhookBody
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		log = append(log, body.Viewer.ID+" "+r.Header.Get(DeliveryHeader))
		mu.Unlock()
		if body.Viewer.ID == "v1" {
			w.WriteHeader(http.StatusServiceUnavailable) // v1's deliveries keep retrying
		}
	}))
	defer srv.Close()
	doc := Document{Rules: []RuleSpec{{ID: "crm", Trigger: TriggerSpec{Event: []string{"order"}},
		Action: ActionSpec{Type: ActWebhook, URL: srv.URL}}}}
	e, _, _ := start(t, mustCompile(t, doc), nil, func(c *Config, _ *Deps) {
		c.WebhookSecret, c.WebhookAttempts, c.WebhookWorkers = hookSecret, 20, 1         // one at a time, in order
		c.WebhookBackoff, c.WebhookMaxBackoff = 20*time.Millisecond, 40*time.Millisecond // 20 attempts take ~0.5 s
		c.WebhookAllowPrivate = true
	})
	ctx := context.Background()
	e.OnEvent(ctx, viewer("v1"), Session{}, orderEvent("e1", time.Now()))
	e.OnEvent(ctx, viewer("v1"), Session{}, orderEvent("e2", time.Now()))
	e.OnEvent(ctx, viewer("v2"), Session{}, orderEvent("e3", time.Now()))
	attempts := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(log)
	}
	waitFor(t, "v1's first delivery retrying", func() bool { return attempts() >= 3 })
	if err := e.Erase(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "v2's delivery", func() bool { return e.Stats().WebhooksDelivered == 1 })
	mu.Lock()
	defer mu.Unlock()
	ids := map[string]bool{}
	for i, entry := range log {
		viewer, id, _ := strings.Cut(entry, " ")
		if viewer == "v1" && i > 0 && strings.HasPrefix(log[i-1], "v2 ") {
			t.Fatalf("a request for the erased v1 after v2's: %v", log)
		}
		ids[id] = true
	}
	if len(ids) != 2 || !strings.HasPrefix(log[len(log)-1], "v2 ") {
		t.Fatalf("want v1's first delivery (retried) then v2's, v1's second never posted: %v", log)
	}
	if st := e.Stats(); st.WebhooksDropped != 2 || st.WebhooksFailed != 0 {
		t.Fatalf("dropped %d, failed %d; want v1's two dropped, none failed", st.WebhooksDropped, st.WebhooksFailed)
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// At shutdown every delivery is still counted once: a 2xx that arrives as the engine
// closes as delivered, one waiting to retry as failed.
func TestWebhookCountedAtShutdown(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	client := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		close(started)
		<-release // the engine closes while the receiver's 200 is on its way back
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	})}
	doc := Document{Rules: []RuleSpec{{ID: "crm", Trigger: TriggerSpec{Event: []string{"order"}},
		Action: ActionSpec{Type: ActWebhook, URL: "http://example.invalid/hook"}}}}
	e, _, _ := start(t, mustCompile(t, doc), nil, func(_ *Config, d *Deps) { d.HTTP = client })
	e.OnEvent(context.Background(), viewer("v1"), Session{}, orderEvent("e1", time.Now()))
	<-started
	closed := make(chan error, 1)
	go func() { closed <- e.Close(context.Background()) }()
	waitFor(t, "the engine closing", func() bool { return e.ctx.Err() != nil })
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.WebhooksDelivered != 1 {
		t.Fatalf("answered 200, counted delivered %d failed %d dropped %d", st.WebhooksDelivered, st.WebhooksFailed, st.WebhooksDropped)
	}

	rc := &receiver{statuses: []int{503, 503, 503}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	doc.Rules[0].Action.URL = srv.URL
	e2, _, _ := start(t, mustCompile(t, doc), nil, func(c *Config, _ *Deps) {
		c.WebhookAttempts, c.WebhookBackoff, c.WebhookMaxBackoff = 5, time.Minute, time.Minute
		c.WebhookAllowPrivate = true
	})
	e2.OnEvent(context.Background(), viewer("v1"), Session{}, orderEvent("e1", time.Now()))
	waitFor(t, "the first attempt", func() bool { rc.mu.Lock(); defer rc.mu.Unlock(); return len(rc.bodies) == 1 })
	if err := e2.Close(context.Background()); err != nil { // it waits to retry
		t.Fatal(err)
	}
	if st := e2.Stats(); st.Webhooks != 1 || st.WebhooksFailed != 1 {
		t.Fatalf("webhooks %d: delivered %d failed %d dropped %d; want the one failed", st.Webhooks, st.WebhooksDelivered, st.WebhooksFailed, st.WebhooksDropped)
	}
}

// FuzzVerifySignature: a receiver's check accepts a header only when it is the
// signature of the body by the secret (blanks around it allowed), and always the
// true one.
func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte("s3cret"), []byte(`{"rule":"r"}`), Sign([]byte("s3cret"), []byte(`{"rule":"r"}`)))
	f.Add([]byte(""), []byte(""), "sha256=")
	f.Add([]byte("k"), []byte("x"), " sha256=00 ")
	f.Fuzz(func(t *testing.T, secret, body []byte, header string) {
		if VerifySignature(secret, body, header) && strings.TrimSpace(header) != Sign(secret, body) {
			t.Fatalf("accepted %q", header)
		}
		if !VerifySignature(secret, body, " "+Sign(secret, body)+"\n") {
			t.Fatal("the true signature was refused")
		}
	})
}
