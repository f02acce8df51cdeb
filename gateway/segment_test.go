package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/liveroom/liveroom/config"
	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/segment"
	"github.com/liveroom/liveroom/token"
)

// segmentServer runs the gateway over a real engine on a bbolt file, with a tap.
func segmentServer(t *testing.T) (*httptest.Server, *event.Queue, func(role, room string) string) {
	t.Helper()
	signer, err := token.NewSigner("segment-test-secret-of-at-least-32-bytes")
	if err != nil {
		t.Fatal(err)
	}
	store, err := segment.OpenBolt(filepath.Join(t.TempDir(), "segment.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tap := event.NewQueue(64)
	log := slog.New(slog.DiscardHandler)
	eng, err := segment.New(segment.DefaultConfig(), segment.Deps{Store: store, Tap: tap, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := New(config.DefaultCore(), Deps{Signer: signer, Segment: eng, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(func() {
		srv.Close()
		eng.Close(context.Background())
		store.Close()
	})
	issue := func(role, room string) string {
		raw, err := signer.Issue(token.Spec{User: role + "-1", Role: role, Room: room, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	return srv, tap, issue
}

type segAnswer struct {
	status int
	header http.Header
	body   string
}

func call(t *testing.T, srv *httptest.Server, method, path, tok, contentType, body string) segAnswer {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return segAnswer{resp.StatusCode, resp.Header, string(b)}
}

func TestSegmentAPI(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // first registered, runs after the server is closed
	srv, tap, issue := segmentServer(t)
	admin, agent, viewer := issue("admin", "*"), issue("agent", "*"), issue("viewer", "r1")
	now := time.Now().UTC()
	body := `[{"id":"e1","type":"order","viewer":"v1","room":"r1","at":"` + now.Add(-48*time.Hour).Format(time.RFC3339) +
		`","order_id":"o1","total":"19.90","currency":"USD","items":[{"sku":"s1","category":"shoes","price":"19.90","quantity":1}]},
	 {"id":"e2","type":"watch","viewer":"v1","room":"r1","at":` + jsonInt(now.Add(-time.Hour).UnixMilli()) + `,"seconds":700},
	 {"id":"e3","type":"order","viewer":"v1","at":"2026-01-01T00:00:00Z","order_id":"o2","total":"abc"}]`

	for _, c := range []struct {
		tok, ct string
		status  int
	}{{"", "application/json", 401}, {viewer, "application/json", 403}, {agent, "application/json", 403}, {admin, "text/plain", 415}} {
		if a := call(t, srv, "POST", "/api/events", c.tok, c.ct, body); a.status != c.status || !strings.Contains(a.body, `"error"`) {
			t.Errorf("POST /api/events: %d %s, want %d", a.status, a.body, c.status)
		}
	}
	a := call(t, srv, "POST", "/api/events", admin, "application/json", body)
	var res struct {
		Accepted int `json:"accepted"`
		Errors   []struct {
			Index int    `json:"index"`
			Error string `json:"error"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(a.body), &res); err != nil || a.status != 200 || res.Accepted != 2 || len(res.Errors) != 1 || res.Errors[0].Index != 2 {
		t.Fatalf("import: %d %s", a.status, a.body)
	}
	if a := call(t, srv, "POST", "/api/events", admin, "application/json", `{"id":"x"}`); a.status != 400 || !strings.Contains(a.body, "JSON array") {
		t.Errorf("object body: %d %s", a.status, a.body)
	}
	big := "[" + strings.Repeat(`{"id":"x","type":"danmaku","viewer":"v","at":"2026-01-01T00:00:00Z","text":"`+strings.Repeat("a", 400)+`"},`, 5000) + "1]"
	if a := call(t, srv, "POST", "/api/events", admin, "application/json", big); a.status != 413 {
		t.Errorf("2 MB body: %d %s", a.status, a.body)
	}
	// The same without a Content-Length (chunked): the limit trips while decoding.
	req, _ := http.NewRequest("POST", srv.URL+"/api/events", io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Authorization", "Bearer "+admin)
	if resp, err := srv.Client().Do(req); err != nil || resp.StatusCode != 413 {
		b, _ := io.ReadAll(resp.Body)
		t.Errorf("chunked 2 MB body: %v %v %s", resp.StatusCode, err, b)
	} else {
		resp.Body.Close()
	}

	// Live events from the tap reach the profile.
	tap.Publish(event.Event{ID: "t1", Type: event.Danmaku, Viewer: "v1", Role: "viewer", Room: "r1", At: now, Text: "nice"})
	deadline := time.Now().Add(10 * time.Second)
	var prof map[string]any
	for {
		a = call(t, srv, "GET", "/api/viewers/v1", agent, "", "")
		json.Unmarshal([]byte(a.body), &prof)
		if prof["comments"] == float64(1) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if a.status != 200 || prof["comments"] != float64(1) || prof["orders"] != float64(1) || prof["watch_seconds"] != float64(700) {
		t.Fatalf("profile: %d %s", a.status, a.body)
	}
	if !strings.Contains(a.body, `"spend":19.90`) || !strings.Contains(a.body, `"aov":19.90`) {
		t.Errorf("money not exact in %s", a.body)
	}
	for _, k := range []string{"id", "first_seen", "last_seen", "sessions", "watch_seconds", "orders", "spend", "aov", "tags", "rfm", "reasons", "recent_events"} {
		if _, ok := prof[k]; !ok {
			t.Errorf("profile lacks %q", k)
		}
	}
	tags := prof["tags"].(map[string]any)
	if tags["lifecycle"] != "first_purchase" || tags["activity"] != "medium" {
		t.Errorf("tags %v", tags)
	}
	if a := call(t, srv, "GET", "/api/viewers/nobody", agent, "", ""); a.status != 404 {
		t.Errorf("unknown viewer: %d", a.status)
	}
	if a := call(t, srv, "GET", "/api/viewers/v1", viewer, "", ""); a.status != 403 {
		t.Errorf("viewer reading a profile: %d", a.status)
	}

	if a := call(t, srv, "GET", "/api/segments", agent, "", ""); a.status != 200 || !strings.Contains(a.body, `"first_purchase":1`) {
		t.Errorf("segments: %d %s", a.status, a.body)
	}
	if a := call(t, srv, "GET", "/api/segments/lifecycle/first_purchase?limit=10", agent, "", ""); a.status != 200 || !strings.Contains(a.body, `"id":"v1"`) {
		t.Errorf("members: %d %s", a.status, a.body)
	}
	if a := call(t, srv, "GET", "/api/segments/preference/shoes?format=csv", admin, "", ""); a.status != 200 ||
		!strings.HasPrefix(a.header.Get("Content-Type"), "text/csv") || !strings.Contains(a.body, "\nv1,") {
		t.Errorf("csv: %d %v %s", a.status, a.header, a.body)
	}
	for path, status := range map[string]int{
		"/api/segments/mood/happy":              400,
		"/api/segments/activity/sleepy":         400,
		"/api/segments/activity/low?limit=0":    400,
		"/api/segments/activity/low?limit=x":    400,
		"/api/segments/activity/low?format=xml": 400,
		"/api/analytics?room=bad%20room":        400,
		// Stores key a viewer's records by its id and a NUL after it.
		"/api/viewers/v1%00x":        400,
		"/api/viewers/v1%0Ax/export": 400,
	} {
		if a := call(t, srv, "GET", path, admin, "", ""); a.status != status {
			t.Errorf("%s: %d %s, want %d", path, a.status, a.body, status)
		}
	}
	if a := call(t, srv, "GET", "/api/segments/activity/low?format=csv", agent, "", ""); a.status != 403 {
		t.Errorf("agent csv: %d", a.status)
	}
	a = call(t, srv, "GET", "/api/analytics?room=r1", agent, "", "")
	if a.status != 200 || !strings.Contains(a.body, `"dm_conversion":null`) || !strings.Contains(a.body, `"funnel":{"viewers":1,"engaged":1,"first_order":1,"repeat":0}`) {
		t.Errorf("analytics: %d %s", a.status, a.body)
	}
	// A room's agent sees its room's figures, asked with or without ?room=, and no
	// other room's.
	roomAgent := issue("agent", "r1")
	for _, path := range []string{"/api/analytics", "/api/analytics?room=r1"} {
		if a := call(t, srv, "GET", path, roomAgent, "", ""); a.status != 200 || !strings.Contains(a.body, `"room":"r1"`) {
			t.Errorf("%s with r1's agent: %d %s", path, a.status, a.body)
		}
	}
	if a := call(t, srv, "GET", "/api/analytics?room=r2", roomAgent, "", ""); a.status != 403 {
		t.Errorf("r2's figures with r1's agent: %d %s", a.status, a.body)
	}

	if a := call(t, srv, "GET", "/api/viewers/v1/export", agent, "", ""); a.status != 403 {
		t.Errorf("agent export: %d", a.status)
	}
	if a := call(t, srv, "GET", "/api/viewers/v1/export", admin, "", ""); a.status != 200 || !strings.Contains(a.body, `"order_id":"o1"`) || !strings.Contains(a.body, `"id":"e2"`) {
		t.Errorf("export: %d %s", a.status, a.body)
	}
	if a := call(t, srv, "DELETE", "/api/viewers/v1", agent, "", ""); a.status != 403 {
		t.Errorf("agent erase: %d", a.status)
	}
	if a := call(t, srv, "DELETE", "/api/viewers/v1", admin, "", ""); a.status != 204 {
		t.Errorf("erase: %d %s", a.status, a.body)
	}
	if a := call(t, srv, "GET", "/api/viewers/v1", admin, "", ""); a.status != 404 {
		t.Errorf("after erase: %d", a.status)
	}
	if a := call(t, srv, "DELETE", "/api/viewers/v1", admin, "", ""); a.status != 404 {
		t.Errorf("second erase: %d", a.status)
	}
}

func jsonInt(v int64) string { b, _ := json.Marshal(v); return string(b) }
