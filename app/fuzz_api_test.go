package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/liveroom/liveroom/token"
)

// apiRoutes are the HTTP API's routes that answer at once (not pprof's timed
// profiles, the backup archive, WHIP/WHEP offers or the WebSocket, fuzzed apart).
var apiRoutes = []string{
	"GET /api/rooms/{a}/dm/{b}", "GET /api/rooms/{a}/dm", "GET /api/rooms/{a}/stats", "GET /api/rooms",
	"PATCH /whip/{a}/{b}", "DELETE /whip/{a}/{b}", "PATCH /whep/{a}/{b}", "DELETE /whep/{a}/{b}", "OPTIONS /whep/{a}",
	"GET /api/rules", "PUT /api/rules", "GET /api/prompts", "POST /api/prompts/{a}/claim", "POST /api/prompts/{a}/resolve",
	"PUT /api/viewers/{a}/consent", "POST /api/viewers/{a}/notes", "GET /api/viewers/{a}/actions", "PUT /api/me/timezone",
	"GET /api/segments/changes", "POST /webhooks/orders/shopify", "POST /api/events", "GET /api/viewers/{a}",
	"DELETE /api/viewers/{a}", "GET /api/viewers/{a}/export", "GET /api/segments", "GET /api/segments/{a}/{b}",
	"GET /api/analytics", "POST /api/rooms/{a}/guest", "GET /api/me", "GET /r/{a}", "GET /studio/{a}", "GET /healthz",
}

// FuzzAPI: any request on any route of a running node, by any role, with any path
// values, query and body, is answered without a 5xx (the handlers' panics become
// 500s), and every 4xx carries the JSON error shape. The node's state carries over
// from one input to the next, as a live server's does.
func FuzzAPI(f *testing.F) {
	for i, r := range apiRoutes {
		f.Add(uint8(i), uint8(i), "r1", "v1", "", []byte(nil))
		switch {
		case strings.Contains(r, "/api/events"):
			f.Add(uint8(i), uint8(0), "r1", "v1", "", []byte(`[{"id":"a","type":"watch","viewer":"v1","at":"2026-06-15T10:00:00Z","seconds":600},{"id":"o","type":"order","viewer":"v1","at":1781517600000,"order_id":"1","total":"19.90","currency":"USD","items":[{"sku":"s","category":"c","price":"9.95","quantity":2}]}]`))
		case strings.Contains(r, "PUT /api/rules"):
			f.Add(uint8(i), uint8(0), "", "", "", []byte(`{"rules":[{"id":"r","trigger":{"event":["order"]},"when":"viewer.orders > 1","action":{"type":"dm","text":"{{.Viewer.Name}}"}}]}`))
		case strings.Contains(r, "consent"):
			f.Add(uint8(i), uint8(1), "v1", "", "", []byte(`{"messages":false}`))
		case strings.Contains(r, "notes"):
			f.Add(uint8(i), uint8(1), "v1", "", "", []byte(`{"text":"called back"}`))
		case strings.Contains(r, "timezone"):
			f.Add(uint8(i), uint8(2), "", "", "", []byte(`{"tz":"Asia/Shanghai"}`))
		case strings.Contains(r, "segments/{a}"):
			f.Add(uint8(i), uint8(0), "activity", "low", "format=csv&limit=2&after=v", []byte(nil))
		case strings.Contains(r, "PATCH"):
			f.Add(uint8(i), uint8(3), "r1", "s1", "", []byte("a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n"))
		}
	}
	cfg := testConfig(f)
	a, base := startApp(f, cfg)
	tok := func(role, room string) string {
		raw, err := a.Signer().Issue(token.Spec{User: "u-" + role, Role: role, Room: room, TTL: time.Hour})
		if err != nil {
			f.Fatal(err)
		}
		return raw
	}
	bearers := []string{tok("admin", token.AnyRoom), tok("agent", "r1"), tok("viewer", "r1"), tok("host", "r1"), ""}
	client := &http.Client{Timeout: 10 * time.Second}
	f.Fuzz(func(t *testing.T, route, who uint8, pa, pb, query string, body []byte) {
		method, path, _ := strings.Cut(apiRoutes[int(route)%len(apiRoutes)], " ")
		path = strings.NewReplacer("{a}", url.PathEscape(pa), "{b}", url.PathEscape(pb)).Replace(path)
		req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.URL.RawQuery = wireQuery(query)
		if b := bearers[int(who)%len(bearers)]; b != "" {
			req.Header.Set("Authorization", "Bearer "+b)
		}
		switch {
		case method == "PATCH":
			req.Header.Set("Content-Type", "application/trickle-ice-sdpfrag")
		case len(body) > 0:
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, req.URL, err)
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s %s with %q: %d %s", method, req.URL, body, res.StatusCode, out)
		}
		if res.StatusCode >= 400 {
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(out, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s %s: %d without the JSON error shape: %q", method, req.URL, res.StatusCode, out)
			}
		}
	})
}

// wireQuery percent-encodes what cannot stand in a request line (blanks, controls,
// '#', bytes past ASCII), which net/http's server refuses before any handler with a
// plain-text 400; anything else, malformed escapes included, goes as it is.
func wireQuery(q string) string {
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		if c := q[i]; c <= ' ' || c == '#' || c >= 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}
