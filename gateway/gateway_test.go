package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/liveroom/liveroom/config"
	"github.com/liveroom/liveroom/problem"
	"github.com/liveroom/liveroom/token"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testSecret = "gateway-test-secret-0123456789abcdef"

type fixture struct {
	srv    *Server
	ts     *httptest.Server
	signer *token.Signer
}

func newFixture(t *testing.T, mut func(*config.Core, *Deps)) *fixture {
	t.Helper()
	signer, err := token.NewSigner(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	core := config.DefaultCore()
	core.GuestRate = 3
	deps := Deps{Signer: signer}
	if mut != nil {
		mut(&core, &deps)
	}
	s, err := New(core, deps)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return &fixture{srv: s, ts: ts, signer: signer}
}

func (f *fixture) tok(t *testing.T, role, room, user string, ttl time.Duration) string {
	t.Helper()
	raw, err := f.signer.Issue(token.Spec{User: user, Role: role, Room: room, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) errorCode(t *testing.T) string {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(a.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("status %d: body is not the JSON error shape: %q", a.status, a.body)
	}
	return e.Error.Code
}

func (f *fixture) do(t *testing.T, method, path, bearer, body string, hdr map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, f.ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, b}
}

func TestTokenMatrixOverHTTP(t *testing.T) {
	f := newFixture(t, nil)
	other, _ := token.NewSigner("another-secret-another-secret-another-secret")
	foreign, _ := other.Issue(token.Spec{User: "x", Role: "admin", Room: "*", TTL: time.Hour})
	expired := f.tok(t, "viewer", "r1", "v", time.Nanosecond)
	time.Sleep(1100 * time.Millisecond) // exp has one-second resolution
	cases := []struct {
		name   string
		bearer string
		query  string
		status int
		code   string
	}{
		{"missing", "", "?room=r1", 401, "missing_token"},
		{"garbage", "abc", "?room=r1", 401, "invalid_token"},
		{"alg none", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4Iiwicm9sZSI6ImFkbWluIiwicm9vbSI6IioiLCJleHAiOjQxMDI0NDQ4MDB9.", "?room=r1", 401, "invalid_token"},
		{"other secret", foreign, "?room=r1", 401, "invalid_token"},
		{"expired", expired, "?room=r1", 401, "token_expired"},
		{"wrong room", f.tok(t, "viewer", "r2", "v", time.Hour), "?room=r1", 403, "forbidden"},
		{"bad room id", f.tok(t, "viewer", "r1", "v", time.Hour), "?room=a%2Fb", 400, "bad_request"},
		{"ok", f.tok(t, "viewer", "r1", "v", time.Hour), "?room=r1", 200, ""},
		{"star room", f.tok(t, "admin", "*", "a", time.Hour), "?room=r1", 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := f.do(t, "GET", "/api/me"+tc.query, tc.bearer, "", nil)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if tc.code != "" {
				if got := a.errorCode(t); got != tc.code {
					t.Fatalf("code %q, want %q", got, tc.code)
				}
			}
			if tc.status == 401 && a.header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
}

func TestRoleCheckMapsTo403(t *testing.T) {
	f := newFixture(t, nil)
	h := func(w http.ResponseWriter, r *http.Request) {
		if _, err := f.srv.Authorize(r, "r1", true, "host", "admin"); err != nil {
			writeError(w, r, err)
			return
		}
		w.WriteHeader(204)
	}
	for _, tc := range []struct {
		role   string
		status int
	}{{"host", 204}, {"admin", 204}, {"viewer", 403}, {"agent", 403}} {
		raw := f.tok(t, tc.role, "r1", "u", time.Hour)
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest("GET", "/x?token="+raw, nil))
		if rec.Code != tc.status {
			t.Errorf("%s: %d, want %d", tc.role, rec.Code, tc.status)
		}
	}
}

func TestGuestTokens(t *testing.T) {
	f := newFixture(t, func(c *config.Core, _ *Deps) { c.GuestRate = 100 })
	var first guestResponse
	a := f.do(t, "POST", "/api/rooms/r1/guest", "", "", nil)
	if a.status != 200 || json.Unmarshal(a.body, &first) != nil || first.Token == "" || !strings.HasPrefix(first.ViewerID, "g_") {
		t.Fatalf("guest: %d %s", a.status, a.body)
	}
	c, err := f.signer.Authorize(first.Token, "r1", "viewer")
	if err != nil || c.Subject != first.ViewerID || !c.Guest {
		t.Fatalf("guest token claims %+v, %v", c, err)
	}

	// Renewal with the old token keeps the id, in any room.
	var again guestResponse
	a = f.do(t, "POST", "/api/rooms/r2/guest", "", `{"token":"`+first.Token+`","name":"Mia"}`, nil)
	if a.status != 200 || json.Unmarshal(a.body, &again) != nil || again.ViewerID != first.ViewerID {
		t.Fatalf("renew: %d %s", a.status, a.body)
	}
	if c, _ := f.signer.Verify(again.Token); c.Name != "Mia" || c.Room != "r2" {
		t.Fatalf("renewed claims %+v", c)
	}

	// A bare id, a forged token or a non-guest token never takes an identity.
	var fresh guestResponse
	a = f.do(t, "POST", "/api/rooms/r1/guest", "", `{"viewer_id":"`+first.ViewerID+`"}`, nil)
	if a.status != 200 || json.Unmarshal(a.body, &fresh) != nil || fresh.ViewerID == first.ViewerID {
		t.Fatalf("bare id took the identity: %s", a.body)
	}
	if a = f.do(t, "POST", "/api/rooms/r1/guest", "", `{"token":"`+first.Token+`x"}`, nil); a.status != 401 {
		t.Fatalf("forged: %d", a.status)
	}
	host := f.tok(t, "host", "r1", "h", time.Hour)
	if a = f.do(t, "POST", "/api/rooms/r1/guest", "", `{"token":"`+host+`"}`, nil); a.status != 403 {
		t.Fatalf("host token renewal: %d %s", a.status, a.body)
	}
	for _, body := range []string{`{`, `[]`, `{"token":5}`} {
		if a = f.do(t, "POST", "/api/rooms/r1/guest", "", body, nil); a.status != 400 {
			t.Fatalf("body %s: %d", body, a.status)
		}
	}
	for _, body := range []string{`{"name":"` + strings.Repeat("n", 41) + `"}`, `{"name":"a\u0007b"}`} {
		if a = f.do(t, "POST", "/api/rooms/r1/guest", "", body, nil); a.status != 400 {
			t.Fatalf("guest body %s: %d", body, a.status)
		}
	}
	if a = f.do(t, "POST", "/api/rooms/bad%20room/guest", "", "", nil); a.status != 400 {
		t.Fatalf("bad room: %d", a.status)
	}
}

func TestGuestRateLimit(t *testing.T) {
	f := newFixture(t, func(c *config.Core, _ *Deps) { c.GuestRate = 3 })
	for i := range 3 {
		if a := f.do(t, "POST", "/api/rooms/r1/guest", "", "", nil); a.status != 200 {
			t.Fatalf("request %d: %d", i, a.status)
		}
	}
	a := f.do(t, "POST", "/api/rooms/r1/guest", "", "", nil)
	if a.status != 429 || a.header.Get("Retry-After") == "" || a.errorCode(t) != "rate_limited" {
		t.Fatalf("4th: %d %q %s", a.status, a.header.Get("Retry-After"), a.body)
	}
	// Another address has its own bucket (X-Forwarded-For is only trusted when configured).
	g := newFixture(t, func(c *config.Core, _ *Deps) { c.GuestRate = 1; c.TrustProxy = true })
	for _, ip := range []string{"198.51.100.1", "198.51.100.2"} {
		if a := g.do(t, "POST", "/api/rooms/r1/guest", "", "", map[string]string{"X-Forwarded-For": ip}); a.status != 200 {
			t.Fatalf("%s: %d", ip, a.status)
		}
	}
	if a := g.do(t, "POST", "/api/rooms/r1/guest", "", "", map[string]string{"X-Forwarded-For": "198.51.100.1"}); a.status != 429 {
		t.Fatalf("repeat: %d", a.status)
	}
	// A client cannot dodge its bucket by prepending a made-up hop: the proxy's last hop counts.
	if a := g.do(t, "POST", "/api/rooms/r1/guest", "", "", map[string]string{"X-Forwarded-For": "203.0.113.77, 198.51.100.1"}); a.status != 429 {
		t.Fatalf("forged first hop: %d", a.status)
	}
}

func TestAddrLimiterRefillsAndSweeps(t *testing.T) {
	l := newAddrLimiter(1, 2)
	t0 := time.Unix(1000, 0)
	for i := range 2 {
		if ok, _ := l.allow("a", t0); !ok {
			t.Fatalf("burst %d refused", i)
		}
	}
	ok, wait := l.allow("a", t0)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("third: %v %v", ok, wait)
	}
	if ok, _ := l.allow("a", t0.Add(time.Second)); !ok {
		t.Fatal("no refill after 1s")
	}
	l.allow("b", t0)
	l.allow("c", t0.Add(10*time.Minute)) // sweeps idle buckets
	if _, kept := l.buckets["b"]; kept {
		t.Fatal("idle bucket not swept")
	}
}

func TestErrorsAreJSON(t *testing.T) {
	f := newFixture(t, func(c *config.Core, _ *Deps) { c.BodyLimit = 2048 })
	if a := f.do(t, "GET", "/no/such/thing", "", "", nil); a.status != 404 || a.errorCode(t) != "not_found" {
		t.Fatalf("404: %d %s", a.status, a.body)
	}
	if a := f.do(t, "DELETE", "/healthz", "", "", nil); a.status != 405 || a.errorCode(t) != "method_not_allowed" {
		t.Fatalf("405: %d %s", a.status, a.body)
	}
	big := strings.Repeat("x", 4096)
	if a := f.do(t, "POST", "/api/rooms/r1/guest", "", big, nil); a.status != 413 || a.errorCode(t) != "too_large" {
		t.Fatalf("413: %d %s", a.status, a.body)
	}
	// A body larger than the limit without Content-Length (chunked) is cut off too.
	req, _ := http.NewRequest("POST", f.ts.URL+"/api/rooms/r1/guest", io.NopCloser(strings.NewReader(big)))
	req.ContentLength = -1
	res, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 {
		t.Fatalf("chunked 413: %d", res.StatusCode)
	}
}

func TestProblemKindsMapToStatuses(t *testing.T) {
	for kind, status := range statusOf {
		rec := httptest.NewRecorder()
		writeError(rec, httptest.NewRequest("GET", "/", nil), problem.New(kind, "m"))
		if rec.Code != status {
			t.Errorf("kind %v: %d, want %d", kind, rec.Code, status)
		}
	}
	rec := httptest.NewRecorder()
	writeError(rec, httptest.NewRequest("GET", "/", nil), errors.New("db exploded: secret detail"))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "secret detail") {
		t.Fatalf("internal error leaked: %d %s", rec.Code, rec.Body)
	}
}

func TestPanicBecomes500(t *testing.T) {
	f := newFixture(t, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	ts := httptest.NewServer(f.srv.middleware(mux))
	defer ts.Close()
	res, err := http.Get(ts.URL + "/boom")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 500 || !strings.Contains(string(b), `"internal"`) {
		t.Fatalf("%d %s", res.StatusCode, b)
	}
}

func TestCORS(t *testing.T) {
	f := newFixture(t, func(c *config.Core, _ *Deps) { c.AllowedOrigins = []string{"https://shop.example"} })
	pre := map[string]string{"Origin": "https://shop.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"}
	a := f.do(t, "OPTIONS", "/api/rooms/r1/guest", "", "", pre)
	if a.status != 204 || a.header.Get("Access-Control-Allow-Origin") != "https://shop.example" ||
		!strings.Contains(a.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", a.status, a.header)
	}
	a = f.do(t, "POST", "/api/rooms/r1/guest", "", "", map[string]string{"Origin": "https://shop.example"})
	if a.header.Get("Access-Control-Allow-Origin") != "https://shop.example" || !strings.Contains(a.header.Get("Access-Control-Expose-Headers"), "Location") {
		t.Fatalf("simple: %v", a.header)
	}
	a = f.do(t, "POST", "/api/rooms/r1/guest", "", "", map[string]string{"Origin": "https://evil.example"})
	if a.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("disallowed origin got CORS")
	}
	// The server's own origin is always allowed.
	req, _ := http.NewRequest("GET", f.ts.URL+"/api/me", nil)
	req.Header.Set("Origin", f.ts.URL)
	if !f.srv.originAllowed(req) {
		t.Fatal("same origin refused")
	}
}

func TestPagesAndSecurityHeaders(t *testing.T) {
	f := newFixture(t, nil)
	for _, p := range []string{"/studio/demo", "/r/demo", "/console", "/dashboard"} {
		a := f.do(t, "GET", p, "", "", nil)
		if a.status != 200 || !strings.Contains(a.header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d", p, a.status)
		}
		csp := a.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "object-src 'none'") {
			t.Fatalf("%s: CSP %q", p, csp)
		}
		if a.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: no nosniff", p)
		}
	}
	if a := f.do(t, "GET", "/studio/bad%20room", "", "", nil); a.status != 400 {
		t.Fatalf("bad room page: %d", a.status)
	}
	if a := f.do(t, "GET", "/static/base.css", "", "", nil); a.status != 200 {
		t.Fatalf("static: %d", a.status)
	}
}

func TestOpsEndpoints(t *testing.T) {
	var storeDown error
	f := newFixture(t, func(_ *config.Core, d *Deps) {
		d.Ready = []ReadyCheck{func(context.Context) error { return storeDown }}
	})
	if a := f.do(t, "GET", "/healthz", "", "", nil); a.status != 200 {
		t.Fatalf("healthz %d", a.status)
	}
	if a := f.do(t, "GET", "/readyz", "", "", nil); a.status != 200 {
		t.Fatalf("readyz %d", a.status)
	}
	storeDown = errors.New("store unreachable")
	if a := f.do(t, "GET", "/readyz", "", "", nil); a.status != 503 || !strings.Contains(string(a.body), "store unreachable") {
		t.Fatalf("readyz with store down: %d %s", a.status, a.body)
	}
	storeDown = nil
	f.srv.SetDraining(true)
	if a := f.do(t, "GET", "/readyz", "", "", nil); a.status != 503 {
		t.Fatalf("readyz draining %d", a.status)
	}
	if a := f.do(t, "POST", "/api/rooms/r1/guest", "", "", nil); a.status != 503 || a.errorCode(t) != "draining" || a.header.Get("Retry-After") == "" {
		t.Fatalf("new session while draining: %d %s", a.status, a.body)
	}
	if a := f.do(t, "GET", "/healthz", "", "", nil); a.status != 200 {
		t.Fatalf("healthz while draining %d", a.status)
	}
	f.srv.SetDraining(false)
	a := f.do(t, "GET", "/metrics", "", "", nil)
	if a.status != 200 || !strings.Contains(string(a.body), `liveroom_http_requests_total{code="200",route="GET /healthz"}`) ||
		!strings.Contains(string(a.body), `liveroom_http_requests_total{code="503",route="POST /api/rooms/{room}/guest"}`) ||
		!strings.Contains(string(a.body), "liveroom_http_request_duration_seconds") {
		t.Fatalf("metrics: %s", a.body)
	}
}

// TestUnencodableResponseIs500: a response value that cannot be encoded is answered
// 500 with the contract's error body, not 200 with an empty body.
func TestUnencodableResponseIs500(t *testing.T) {
	rec := httptest.NewRecorder()
	writeJSON(rec, http.StatusOK, map[string]any{"broken": json.RawMessage{}})
	var body errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); rec.Code != 500 || err != nil || body.Error.Code != "internal" {
		t.Fatalf("%d %q (%v)", rec.Code, rec.Body, err)
	}
}

// The runtime's profiles are served to a node-wide admin only.
func TestProfilingForAdminsOnly(t *testing.T) {
	f := newFixture(t, nil)
	for _, c := range []struct {
		name, bearer string
		status       int
	}{
		{"no token", "", 401},
		{"viewer", f.tok(t, "viewer", "r1", "v", time.Hour), 403},
		{"agent of every room", f.tok(t, "agent", "*", "ag", time.Hour), 403},
		{"admin of one room", f.tok(t, "admin", "r1", "a", time.Hour), 403},
	} {
		if a := f.do(t, "GET", "/debug/pprof/heap?debug=1", c.bearer, "", nil); a.status != c.status {
			t.Errorf("%s: %d, want %d", c.name, a.status, c.status)
		}
	}
	admin := f.tok(t, "admin", "*", "root", time.Hour)
	if a := f.do(t, "GET", "/debug/pprof/heap?debug=1", admin, "", nil); a.status != 200 || !strings.Contains(string(a.body), "heap profile") {
		t.Fatalf("heap profile: %d %.200s", a.status, a.body)
	}
	if a := f.do(t, "GET", "/debug/pprof/goroutine?debug=1", admin, "", nil); a.status != 200 || !strings.Contains(string(a.body), "goroutine profile") {
		t.Fatalf("goroutine profile: %d %.200s", a.status, a.body)
	}
	if a := f.do(t, "GET", "/debug/pprof/", admin, "", nil); a.status != 200 || !strings.Contains(string(a.body), "allocs") {
		t.Fatalf("profile index: %d %.200s", a.status, a.body)
	}
}
