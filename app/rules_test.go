package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/liveroom/liveroom/chat"
	"github.com/liveroom/liveroom/config"
	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/rules"
	"github.com/liveroom/liveroom/shopify"
	"github.com/liveroom/liveroom/token"
)

const shopSecret = "shop-secret-for-tests"

// wsClient is a real WebSocket client of the room that keeps every event it got.
type wsClient struct {
	conn   *websocket.Conn
	mu     sync.Mutex
	events []map[string]any
	done   chan struct{}
}

// wsURL is the chat WebSocket URL of room on the node at base.
func wsURL(base, room, tok string) string {
	return "ws" + strings.TrimPrefix(base, "http") + "/ws/" + room + "?token=" + url.QueryEscape(tok)
}

func dialRoom(t *testing.T, base, room, tok string) *wsClient {
	t.Helper()
	conn, res, err := websocket.DefaultDialer.Dial(wsURL(base, room, tok), nil)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", room, err, res)
	}
	c := &wsClient{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var batch []map[string]any
			if json.Unmarshal(b, &batch) == nil {
				c.mu.Lock()
				c.events = append(c.events, batch...)
				c.mu.Unlock()
			}
		}
	}()
	t.Cleanup(c.close)
	// Joined once welcomed: what the test sends next (a DM to this user, say) finds it
	// in the room.
	waitUntil(t, "the welcome", func() bool { return len(c.of("welcome")) >= 1 })
	return c
}

func (c *wsClient) close() { c.conn.Close(); <-c.done }

func (c *wsClient) send(t *testing.T, m map[string]any) {
	t.Helper()
	if err := c.conn.WriteJSON(m); err != nil {
		t.Fatal(err)
	}
}

// of returns the events of type typ received so far.
func (c *wsClient) of(typ string) []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, e := range c.events {
		if e["type"] == typ {
			out = append(out, e)
		}
	}
	return out
}

func guest(t *testing.T, base, room string) (tok, id string) {
	t.Helper()
	res, err := http.Post(base+"/api/rooms/"+room+"/guest", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var g struct {
		Token    string `json:"token"`
		ViewerID string `json:"viewer_id"`
	}
	if res.StatusCode != 200 || json.NewDecoder(res.Body).Decode(&g) != nil {
		t.Fatalf("guest: %d", res.StatusCode)
	}
	return g.Token, g.ViewerID
}

func api(t *testing.T, method, u, tok, body string, hdr ...string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// shopifyOrder posts a signed orders/create webhook for viewer.
func shopifyOrder(t *testing.T, base, orderID, viewer, room string, sign bool) (int, []byte) {
	t.Helper()
	return shopifyOrderAt(t, base, orderID, viewer, room, sign, time.Now())
}

// shopifyOrderAt posts the webhook of an order created at created.
func shopifyOrderAt(t *testing.T, base, orderID, viewer, room string, sign bool, created time.Time) (int, []byte) {
	t.Helper()
	body := fmt.Sprintf(`{"id":%s,"total_price":"49.00","currency":"USD","created_at":%q,
		"line_items":[{"sku":"SKU-1","price":"49.00","quantity":1,"product_id":1}],
		"note_attributes":[{"name":"liveroom_viewer","value":%q},{"name":"liveroom_room","value":%q}]}`,
		orderID, created.UTC().Format(time.RFC3339), viewer, room)
	mac := shopify.Header([]byte(shopSecret), []byte(body))
	if !sign {
		mac = shopify.Header([]byte("wrong"), []byte(body))
	}
	return api(t, "POST", base+"/webhooks/orders/shopify", "", body,
		shopify.HMACHeader, mac, shopify.WebhookIDHeader, "wh-"+orderID, shopify.TopicHeader, "orders/create")
}

// issuer signs tokens for room with a's secret: issue(role, user).
func issuer(t testing.TB, a *App, room string) func(role, user string) string {
	return func(role, user string) string {
		raw, err := a.Signer().Issue(token.Spec{User: user, Name: user, Role: role, Room: room, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStayPromptEndToEnd: with a 2-second threshold, exactly one prompt reaches the
// room's agents for the viewer who stayed without buying; none for the viewer who
// bought through a signed Shopify webhook, none for the one who opted out, none for
// the agents and the host in the room, none before the threshold. The buyer gets the thank-you DM; the prompt is claimed once, resolved,
// and counts as converted when its viewer orders.
func TestStayPromptEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	cfg.Segment.StayThreshold = 2 * time.Second
	cfg.Segment.ShopSecret = shopSecret
	a, base := startApp(t, cfg)
	const room = "shop"
	issue := issuer(t, a, room)
	agentTok, agent2Tok := issue(event.RoleAgent, "agent1"), issue(event.RoleAgent, "agent2")
	agent := dialRoom(t, base, room, agentTok)
	hostTok := issue(event.RoleHost, "host")
	stop := goLive(t, a, base, room, hostTok)
	defer stop()
	// Staff in the live room are not viewers: the second agent joins the chat and the
	// host watches its own stream (the studio's preview) past the threshold.
	agent2 := dialRoom(t, base, room, agent2Tok)
	defer watch(t, base, room, hostTok)()

	stayTok, stayer := guest(t, base, room)
	buyTok, buyer := guest(t, base, room)
	optTok, opter := guest(t, base, room)
	joined := time.Now()
	watchers := []*wsClient{dialRoom(t, base, room, stayTok), dialRoom(t, base, room, buyTok), dialRoom(t, base, room, optTok)}
	// Each also watches the video over WHEP, as the player does.
	for _, tok := range []string{stayTok, buyTok, optTok} {
		defer watch(t, base, room, tok)()
	}
	buyerWS := watchers[1]

	// The opted-out viewer and the buyer act before the threshold.
	if code, b := api(t, "PUT", base+"/api/viewers/"+opter+"/consent", agentTok, `{"messages":false}`); code != 204 {
		t.Fatalf("consent: %d %s", code, b)
	}
	if code, _ := shopifyOrder(t, base, "1001", buyer, room, false); code != 401 {
		t.Fatalf("unsigned webhook: %d", code)
	}
	if code, b := shopifyOrder(t, base, "1001", buyer, room, true); code != 200 || !strings.Contains(string(b), `"duplicate":false`) {
		t.Fatalf("webhook: %d %s", code, b)
	}
	if code, b := shopifyOrder(t, base, "1001", buyer, room, true); code != 200 || !strings.Contains(string(b), `"duplicate":true`) {
		t.Fatalf("repeated webhook: %d %s", code, b)
	}
	if time.Since(joined) < 1500*time.Millisecond {
		time.Sleep(1500*time.Millisecond - time.Since(joined))
	}
	if n := len(agent.of("prompt")); n != 0 && time.Since(joined) < 2*time.Second {
		t.Fatalf("%d prompts before the threshold", n)
	}

	waitUntil(t, "the stay prompt", func() bool { return len(agent.of("prompt")) >= 1 })
	time.Sleep(1500 * time.Millisecond) // room for a wrong second prompt to show up
	prompts := agent.of("prompt")
	if len(prompts) != 1 {
		_, acts := api(t, "GET", base+"/api/viewers/"+stayer+"/actions", agentTok, "")
		t.Fatalf("%d prompts, want exactly 1: %v\nstayer's actions: %s", len(prompts), prompts, acts)
	}
	p := prompts[0]
	if v, _ := p["viewer"].(map[string]any); v["id"] != stayer {
		t.Fatalf("prompt for %v, want the stayer %s (buyer %s, opted out %s)", v["id"], stayer, buyer, opter)
	}
	if p["reason"] == "" || p["suggested"] == "" || p["prompt_id"] == "" {
		t.Fatalf("prompt lacks reason/suggested/prompt_id: %v", p)
	}
	for _, w := range watchers {
		if n := len(w.of("prompt")); n != 0 {
			t.Fatalf("a viewer got %d prompts", n)
		}
	}
	for _, staff := range []string{"agent1", "agent2", "host"} {
		if code, b := api(t, "GET", base+"/api/viewers/"+staff, agentTok, ""); code != 404 {
			t.Fatalf("staff member %s has a profile: %d %s", staff, code, b)
		}
	}
	waitUntil(t, "the buyer's thank-you DM", func() bool { return len(buyerWS.of("dm")) >= 1 })
	// Operators see the same in /metrics.
	if _, m := api(t, "GET", base+"/metrics", "", ""); !strings.Contains(string(m), "liveroom_rules_prompts_total 1\n") ||
		!strings.Contains(string(m), "liveroom_rules_dms_total 1\n") || !strings.Contains(string(m), "liveroom_rules_consent_skipped_total") {
		t.Fatalf("/metrics lacks the rules' figures:\n%s", grepLines(string(m), "liveroom_rules_"))
	}
	// And what the queues between the parts took, and dropped (none here).
	_, m := api(t, "GET", base+"/metrics", "", "")
	for _, q := range []string{"liveroom_tap_", "liveroom_rules_queue_"} {
		took := regexp.MustCompile(`(?m)^` + q + `events_total ([1-9][0-9]*)$`)
		if !took.Match(m) || !strings.Contains(string(m), q+"dropped_total 0\n") {
			t.Errorf("/metrics lacks %sevents_total > 0 and %sdropped_total 0:\n%s", q, q, grepLines(string(m), q))
		}
	}

	// The queue over HTTP, one claim at a time, then resolve.
	id := p["prompt_id"].(string)
	code, b := api(t, "GET", base+"/api/prompts?room="+room, agentTok, "")
	if code != 200 || !strings.Contains(string(b), id) {
		t.Fatalf("prompts: %d %s", code, b)
	}
	// An agent of another room may not touch it, and its attempt changes nothing.
	otherRoom, _ := a.Signer().Issue(token.Spec{User: "agent9", Role: event.RoleAgent, Room: "elsewhere", TTL: time.Hour})
	if code, _ = api(t, "POST", base+"/api/prompts/"+id+"/claim", otherRoom, ""); code != 403 {
		t.Fatalf("claim from another room: %d", code)
	}
	if code, b = api(t, "POST", base+"/api/prompts/"+id+"/claim", agentTok, ""); code != 200 {
		t.Fatalf("claim: %d %s", code, b)
	}
	if code, _ = api(t, "POST", base+"/api/prompts/"+id+"/claim", agent2Tok, ""); code != 409 {
		t.Fatalf("second claim: %d", code)
	}
	// The other agent's console learns of the claim at once, and of the resolution.
	if code, b = api(t, "POST", base+"/api/prompts/"+id+"/claim", agentTok, ""); code != 200 { // again: a no-op
		t.Fatalf("repeated claim: %d %s", code, b)
	}
	waitUntil(t, "the claim's prompt_update", func() bool { return len(agent2.of("prompt_update")) >= 1 })
	if u := agent2.of("prompt_update")[0]; u["prompt_id"] != id || u["claimed_by"] != "agent1" || u["resolved"] != false {
		t.Fatalf("claim update: %v", u)
	}
	if code, b = api(t, "POST", base+"/api/prompts/"+id+"/resolve", agentTok, ""); code != 200 || !strings.Contains(string(b), `"outcome":"resolved"`) {
		t.Fatalf("resolve (bare POST): %d %s", code, b)
	}
	waitUntil(t, "the resolution's prompt_update", func() bool { return len(agent2.of("prompt_update")) >= 2 })
	if u := agent2.of("prompt_update")[1]; u["prompt_id"] != id || u["resolved"] != true {
		t.Fatalf("resolve update (the repeated claim must not send one): %v", u)
	}
	for _, w := range watchers {
		if n := len(w.of("prompt_update")); n != 0 {
			t.Fatalf("a viewer got %d prompt updates", n)
		}
	}
	if code, _ = api(t, "POST", base+"/api/prompts/nope/claim", agentTok, ""); code != 404 {
		t.Fatalf("unknown prompt: %d", code)
	}
	// The stayer buys after the prompt: the prompt converted.
	if code, b = shopifyOrder(t, base, "1002", stayer, room, true); code != 200 {
		t.Fatalf("stayer order: %d %s", code, b)
	}
	admin := issue(event.RoleAdmin, "admin")
	waitUntil(t, "dm_conversion", func() bool {
		_, b := api(t, "GET", base+"/api/analytics?room="+room, admin, "")
		var an struct {
			DM *float64 `json:"dm_conversion"`
		}
		return json.Unmarshal(b, &an) == nil && an.DM != nil && *an.DM == 1
	})
	// The profile shows what the rules did, with the rule behind it.
	_, b = api(t, "GET", base+"/api/viewers/"+stayer, agentTok, "")
	if !bytes.Contains(b, []byte(`"actions"`)) || !bytes.Contains(b, []byte(`"type":"prompt"`)) {
		t.Fatalf("stayer profile lacks the prompt action: %s", b)
	}
	_, b = api(t, "GET", base+"/api/viewers/"+buyer, agentTok, "")
	if !bytes.Contains(b, []byte(`"type":"dm"`)) {
		t.Fatalf("buyer profile lacks the thank-you DM action: %s", b)
	}

	// GDPR: the export has what the rules and chat hold too; the erase removes it
	// there as well as from the profile.
	root, _ := a.Signer().Issue(token.Spec{User: "root", Role: event.RoleAdmin, Room: token.AnyRoom, TTL: time.Hour})
	if code, b = api(t, "POST", base+"/api/viewers/"+buyer+"/notes", agentTok, `{"text":"asked about sizes"}`); code != 204 {
		t.Fatalf("note: %d %s", code, b)
	}
	code, b = api(t, "GET", base+"/api/viewers/"+buyer+"/export", root, "")
	var exp struct {
		Elsewhere struct {
			Rules map[string]rules.Held           `json:"rules"`
			DMs   map[string]map[string][]chat.DM `json:"dms"`
		} `json:"elsewhere"`
	}
	if err := json.Unmarshal(b, &exp); code != 200 || err != nil {
		t.Fatalf("export: %d %v %.300s", code, err, b)
	}
	held, dms := exp.Elsewhere.Rules[buyer], exp.Elsewhere.DMs[buyer][room]
	if len(held.Actions) < 2 || len(dms) == 0 || !bytes.Contains(b, []byte("asked about sizes")) {
		t.Fatalf("export lacks the buyer's actions, note or DMs: %s", b)
	}
	_, b = api(t, "GET", base+"/api/viewers/"+stayer+"/export", root, "")
	if !bytes.Contains(b, []byte(id)) {
		t.Fatalf("the stayer's export lacks its prompt %s: %s", id, b)
	}
	for _, v := range []string{buyer, stayer} {
		if code, b = api(t, "DELETE", base+"/api/viewers/"+v, root, ""); code != 204 {
			t.Fatalf("erase %s: %d %s", v, code, b)
		}
		if code, _ = api(t, "GET", base+"/api/viewers/"+v+"/export", root, ""); code != 404 {
			t.Fatalf("export after the erase: %d", code)
		}
		if _, b = api(t, "GET", base+"/api/viewers/"+v+"/actions", agentTok, ""); bytes.Contains(b, []byte(`"type"`)) {
			t.Fatalf("%s's actions after the erase: %s", v, b)
		}
		if _, b = api(t, "GET", base+"/api/rooms/"+room+"/dm/"+v, agentTok, ""); bytes.Contains(b, []byte(`"text"`)) {
			t.Fatalf("%s's DMs after the erase: %s", v, b)
		}
	}
	if _, b = api(t, "GET", base+"/api/prompts?room="+room, agentTok, ""); bytes.Contains(b, []byte(id)) {
		t.Fatalf("the stayer's prompt is still queued after the erase: %s", b)
	}
}

// TestRulesAPI: PUT /api/rules refuses a bad document with 400 and the reason, keeping
// the rules in force; a good one is durable across a restart; notes and time zones are
// taken and bad ones refused.
func TestRulesAPI(t *testing.T) {
	cfg := testConfig(t)
	a := runningApp(t, cfg)
	base := "http://" + a.Addr().String()
	admin, _ := a.Signer().Issue(token.Spec{User: "root", Role: event.RoleAdmin, Room: token.AnyRoom, TTL: time.Hour})
	agent, _ := a.Signer().Issue(token.Spec{User: "a1", Role: event.RoleAgent, Room: token.AnyRoom, TTL: time.Hour})

	code, before := api(t, "GET", base+"/api/rules", admin, "")
	if code != 200 || !bytes.Contains(before, []byte(`"stay`)) {
		t.Fatalf("default rules: %d %s", code, before)
	}
	if code, _ = api(t, "GET", base+"/api/rules", agent, ""); code != 403 {
		t.Fatalf("agent reads rules: %d", code)
	}
	roomAdmin, _ := a.Signer().Issue(token.Spec{User: "r-admin", Role: event.RoleAdmin, Room: "r1", TTL: time.Hour})
	if code, _ = api(t, "PUT", base+"/api/rules", roomAdmin, `{"rules":[]}`); code != 403 {
		t.Fatalf("a one-room admin changed the global rules: %d", code)
	}
	bad := `{"rules":[{"id":"x","trigger":{"event":["order"]},"when":"viewer.orders >","action":{"type":"prompt","text":"hi"}}]}`
	code, b := api(t, "PUT", base+"/api/rules", admin, bad)
	if code != 400 || !bytes.Contains(b, []byte(`rule 0`)) {
		t.Fatalf("bad rules: %d %s", code, b)
	}
	// A document without its rules list (empty, null, a mistyped key is refused as
	// unknown) would turn every rule off unnoticed: it is refused.
	for _, none := range []string{`{}`, `{"rules":null}`, "quiet_hours: {start: \"22:00\", end: \"08:00\"}"} {
		if code, b := api(t, "PUT", base+"/api/rules", admin, none); code != 400 || !bytes.Contains(b, []byte("turn every rule off")) {
			t.Fatalf("document %s: %d %s", none, code, b)
		}
	}
	if _, now := api(t, "GET", base+"/api/rules", admin, ""); !bytes.Equal(now, before) {
		t.Fatal("a refused document changed the rules in force")
	}
	if code, b := api(t, "PUT", base+"/api/rules", admin, `{"rules":[]}`); code != 200 || !bytes.Contains(b, []byte(`"rules": []`)) {
		t.Fatalf("no rules: %d %s", code, b)
	}
	good := `{"rules":[{"id":"thanks","trigger":{"event":["order"]},"action":{"type":"dm","text":"Thank you!"}}]}`
	if code, b = api(t, "PUT", base+"/api/rules", admin, good); code != 200 || !bytes.Contains(b, []byte(`"thanks"`)) {
		t.Fatalf("good rules: %d %s", code, b)
	}
	if code, _ = api(t, "PUT", base+"/api/rules", admin, good, "Content-Type", "text/plain"); code != 415 {
		t.Fatalf("wrong content type: %d", code)
	}
	// Over the document's bound, though under the body limit: too large, not bad.
	huge := `{"rules":[],"x":"` + strings.Repeat("a", rules.MaxDocumentBytes) + `"}`
	if code, b = api(t, "PUT", base+"/api/rules", admin, huge); code != 413 {
		t.Fatalf("a document over %d bytes: %d %s", rules.MaxDocumentBytes, code, b)
	}
	// Notes, consent and time zones: bad input is refused.
	if code, _ = api(t, "POST", base+"/api/viewers/v1/notes", agent, `{"text":"likes red"}`); code != 204 {
		t.Fatalf("note: %d", code)
	}
	if code, _ = api(t, "POST", base+"/api/viewers/v1/notes", agent, `{"text":""}`); code != 400 {
		t.Fatalf("empty note: %d", code)
	}
	if code, _ = api(t, "PUT", base+"/api/viewers/v1/consent", agent, `{"nope":1}`); code != 400 {
		t.Fatalf("bad consent body: %d", code)
	}
	if code, _ = api(t, "PUT", base+"/api/me/timezone", agent, `{"tz":"Asia/Shanghai"}`); code != 204 {
		t.Fatalf("tz: %d", code)
	}
	if code, _ = api(t, "PUT", base+"/api/me/timezone", agent, `{"tz":"Mars/Olympus"}`); code != 400 {
		t.Fatalf("bad tz: %d", code)
	}
	code, b = api(t, "GET", base+"/api/viewers/v1/actions", agent, "")
	if code != 200 || !bytes.Contains(b, []byte("likes red")) {
		t.Fatalf("actions: %d %s", code, b)
	}
	// An e-mail key is the same viewer whatever the case of its address.
	if code, _ = api(t, "POST", base+"/api/viewers/email:Ann@Shop.com/notes", agent, `{"text":"asked for a refund"}`); code != 204 {
		t.Fatalf("note by e-mail key: %d", code)
	}
	if _, b = api(t, "GET", base+"/api/viewers/email:ann@shop.com/actions", agent, ""); !bytes.Contains(b, []byte("refund")) {
		t.Fatalf("the note written under email:Ann@Shop.com is not under email:ann@shop.com: %s", b)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	// After a restart the saved rules are in force.
	a2, err := New(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := a2.Start(); err != nil {
		t.Fatal(err)
	}
	defer a2.Shutdown(context.Background())
	base = "http://" + a2.Addr().String()
	if _, b = api(t, "GET", base+"/api/rules", admin, ""); !bytes.Contains(b, []byte(`"thanks"`)) || bytes.Contains(b, []byte(`"stay`)) {
		t.Fatalf("rules after restart: %s", b)
	}
	if _, b = api(t, "GET", base+"/api/viewers/v1/actions", agent, ""); !bytes.Contains(b, []byte("likes red")) {
		t.Fatalf("note lost in restart: %s", b)
	}
}

// TestCustomTagRule: a rule's tag action gives the viewer a custom tag that later
// conditions see, and the profile lists it among the actions; after a restart the
// tag is still known (read back from the action log).
func TestCustomTagRule(t *testing.T) {
	cfg := testConfig(t)
	a := runningApp(t, cfg)
	base := a.BaseURL()
	admin, _ := a.Signer().Issue(token.Spec{User: "root", Role: event.RoleAdmin, Room: token.AnyRoom, TTL: time.Hour})
	doc := `{"rules":[
		{"id":"tag-talker","trigger":{"event":["danmaku"]},"action":{"type":"tag","tag":"talker"}},
		{"id":"dm-talker","trigger":{"event":["like"]},"when":"\"talker\" in viewer.tags.custom","action":{"type":"dm","text":"thanks, talker"}}]}`
	if code, b := api(t, "PUT", base+"/api/rules", admin, doc); code != 200 {
		t.Fatalf("rules: %d %s", code, b)
	}
	quietTok, _ := guest(t, base, "r1")
	talkTok, talker := guest(t, base, "r1")
	quiet, talk := dialRoom(t, base, "r1", quietTok), dialRoom(t, base, "r1", talkTok)
	talk.send(t, map[string]any{"type": "danmaku", "text": "hello"})
	waitUntil(t, "the tag", func() bool {
		_, b := api(t, "GET", base+"/api/viewers/"+talker+"/actions", admin, "")
		return bytes.Contains(b, []byte(`"detail":"talker"`))
	})
	quiet.send(t, map[string]any{"type": "like", "count": 1})
	talk.send(t, map[string]any{"type": "like", "count": 1})
	waitUntil(t, "the tagged viewer's DM", func() bool { return len(talk.of("dm")) == 1 })
	time.Sleep(300 * time.Millisecond)
	if n := len(quiet.of("dm")); n != 0 {
		t.Fatalf("an untagged viewer got %d DMs", n)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	_, base2 := startApp(t, cfg)
	again := dialRoom(t, base2, "r1", talkTok)
	again.send(t, map[string]any{"type": "like", "count": 1})
	waitUntil(t, "the tagged viewer's DM after a restart", func() bool { return len(again.of("dm")) == 1 })
}

// grepLines returns the lines of text that contain sub.
func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestImportedHistoryFiresNoRule: a shop's order history imported through
// POST /api/events sends no thank-you DM and no prompt (the orders are old news), and
// the profile's last_seen stays the order's time; an order arriving by the shop's
// webhook is thanked, even a late delivery.
func TestImportedHistoryFiresNoRule(t *testing.T) {
	cfg := testConfig(t)
	cfg.Segment.ShopSecret = shopSecret
	a, base := startApp(t, cfg)
	admin, _ := a.Signer().Issue(token.Spec{User: "root", Role: event.RoleAdmin, Room: token.AnyRoom, TTL: time.Hour})
	old := time.Now().UTC().Add(-300 * 24 * time.Hour).Truncate(time.Second)
	body := fmt.Sprintf(`[{"id":"imp-1","type":"order","viewer":"cust-d","room":"shop","at":%q,"order_id":"o-1","total":"25.00","currency":"USD"}]`,
		old.Format(time.RFC3339))
	if code, b := api(t, "POST", base+"/api/events", admin, body); code != 200 {
		t.Fatalf("import: %d %s", code, b)
	}
	// A webhook is news even when it comes late: Shopify retries a failed delivery
	// for two days, and this order was created three hours ago.
	code, b := shopifyOrderAt(t, base, "3001", "cust-live", "shop", true, time.Now().Add(-3*time.Hour))
	if code != 200 {
		t.Fatalf("late webhook order: %d %s", code, b)
	}
	waitUntil(t, "the late webhook order's thank-you", func() bool {
		_, b := api(t, "GET", base+"/api/viewers/cust-live/actions", admin, "")
		return bytes.Contains(b, []byte(`"type":"dm"`))
	})
	_, acts := api(t, "GET", base+"/api/viewers/cust-d/actions", admin, "")
	if bytes.Contains(acts, []byte(`"type"`)) {
		t.Fatalf("the imported order fired rules: %s", acts)
	}
	var v struct {
		LastSeen time.Time `json:"last_seen"`
	}
	_, b = api(t, "GET", base+"/api/viewers/cust-d", admin, "")
	if err := json.Unmarshal(b, &v); err != nil || !v.LastSeen.Equal(old) {
		t.Fatalf("last_seen %v, want the order's time %v (%v): %s", v.LastSeen, old, err, b)
	}
	if _, m := api(t, "GET", base+"/metrics", "", ""); !strings.Contains(string(m), "liveroom_rules_history_skipped_total") {
		t.Fatal("/metrics lacks liveroom_rules_history_skipped_total")
	}
}

// TestStopHandlesQueuedOrders: orders the node acknowledged but the rules had not
// taken when it was told to stop still get their follow-up jobs: segment does not hand
// an acknowledged event over again, so a stop that dropped the rules' queue lost them
// for good.
func TestStopHandlesQueuedOrders(t *testing.T) {
	cfg := testConfig(t)
	a, admin := stalledApp(t, cfg, func(*App) {})
	const n = 200
	if code, b := api(t, "POST", a.BaseURL()+"/api/events", admin, firstOrders(n, "v%d")); code != 200 {
		t.Fatalf("import: %d %s", code, b)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if jobs := followUps(t, cfg); len(jobs) != n {
		t.Fatalf("%d follow-up jobs after a clean stop, want one per first order (%d)", len(jobs), n)
	}
}

// TestCrashHandsHeldOrdersOverAgain: orders the node acknowledged but whose events
// the rules never handled (a crash took the queue) get their follow-up jobs at the
// next start: the import held them in the rules' state until handled.
func TestCrashHandsHeldOrdersOverAgain(t *testing.T) {
	cfg := testConfig(t)
	// The rest of the queue is thrown away at the stop, as a crash would lose it.
	a, admin := stalledApp(t, cfg, func(a *App) {
		for _, ok := a.book.in.TryNext(); ok; _, ok = a.book.in.TryNext() {
		}
	})
	const n = 50
	// Customers by e-mail too, whose ids segment applies in lower case: the held
	// items are as sent, and their viewers must be found again.
	body := firstOrders(n/2, "v%d")
	body = body[:len(body)-1] + "," + firstOrders(n/2, "email:V%d@Example.com")[1:]
	if code, b := api(t, "POST", a.BaseURL()+"/api/events", admin, body); code != 200 {
		t.Fatalf("import: %d %s", code, b)
	}
	waitUntil(t, "the rules to stall with the rest queued", func() bool { return a.book.in.Len() > 0 })
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// At most the stalled first order was handled (none, if the stop came before the
	// rules took it from the queue).
	if jobs := followUps(t, cfg); len(jobs) > 1 {
		t.Fatalf("%d viewers with a follow-up after the lost queue, want at most the stalled one", len(jobs))
	}
	// The next start hands the held import over again before anything else; its stop
	// handles what is queued.
	b := runningApp(t, cfg)
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if jobs := followUps(t, cfg); len(jobs) != n {
		t.Fatalf("%d viewers with a follow-up after the restart, want %d", len(jobs), n)
	}
	st, err := rules.OpenBolt(filepath.Join(cfg.Data, RulesDB), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if held, err := st.Held(context.Background()); err != nil || len(held) != 0 {
		t.Fatalf("holds left after they were handled: %d (%v)", len(held), err)
	}
	// The thank-you went out at the replay too (chat is up before the rules).
	for _, v := range []string{"v3", "email:v3@example.com"} {
		acts, err := st.Actions(context.Background(), v)
		if err != nil || !slices.ContainsFunc(acts, func(a rules.Action) bool { return a.Type == rules.ActDM }) {
			t.Errorf("%s's actions after the replay: %+v (%v), want the thank-you DM", v, acts, err)
		}
	}
}

// stalledApp is a node whose rules stall on viewer v0's first event (its snapshot's
// time zone) until the stop has begun, so that the events after it are still queued
// then, however fast the rules would take them; atStop runs at the stop, before the
// rules go on. It returns an admin token too.
func stalledApp(t *testing.T, cfg config.Config, atStop func(*App)) (*App, string) {
	a := runningApp(t, cfg)
	admin, _ := a.Signer().Issue(token.Spec{User: "root", Role: event.RoleAdmin, Room: token.AnyRoom, TTL: time.Hour})
	stall := &a.book.zones.stripe("v0").mu
	stall.Lock()
	unsubscribe := a.book.cancel
	a.book.cancel = func() {
		unsubscribe()
		atStop(a)
		stall.Unlock()
	}
	return a, admin
}

// firstOrders is an import of n orders of a minute ago, the first of n viewers whose
// ids are viewer's format with their number.
func firstOrders(n int, viewer string) string {
	at := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	orders := make([]string, n)
	for i := range orders {
		v := fmt.Sprintf(viewer, i)
		orders[i] = fmt.Sprintf(`{"id":"e-%s","type":"order","viewer":%q,"room":"shop","at":%q,"order_id":"o-%s","total":"5.00","currency":"USD"}`, v, v, at, v)
	}
	return "[" + strings.Join(orders, ",") + "]"
}

// followUps reads the stopped node's scheduled jobs: the viewers they are for.
func followUps(t *testing.T, cfg config.Config) map[string]bool {
	t.Helper()
	st, err := rules.OpenBolt(filepath.Join(cfg.Data, RulesDB), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	jobs, err := st.Jobs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	viewers := map[string]bool{}
	for _, j := range jobs {
		viewers[j.Env.Viewer.ID] = true
	}
	return viewers
}

// TestStayPromptForViewerWaitingBeforeTheLive: a viewer in the room's chat before the
// host goes live (waiting for the show, no player open) is in the live from its start:
// it gets the stay prompt once the threshold has passed since then, and its profile
// counts the session and the watch time from the live's start.
func TestStayPromptForViewerWaitingBeforeTheLive(t *testing.T) {
	cfg := testConfig(t)
	cfg.Segment.StayThreshold = 2 * time.Second
	a, base := startApp(t, cfg)
	const room = "early"
	issue := issuer(t, a, room)
	agentTok := issue(event.RoleAgent, "agent1")
	agent := dialRoom(t, base, room, agentTok)
	waiterTok, waiter := guest(t, base, room)
	dialRoom(t, base, room, waiterTok) // chat only, before the live
	waitUntil(t, "the waiting viewer's presence", func() bool {
		code, _ := api(t, "GET", base+"/api/viewers/"+waiter, agentTok, "")
		return code == 200
	})
	if n := len(agent.of("prompt")); n != 0 {
		t.Fatalf("%d prompts before the live", n)
	}
	stop := goLive(t, a, base, room, issue(event.RoleHost, "host"))
	defer stop()
	live := a.pub.(*liveStamp).current(room)

	waitUntil(t, "the waiting viewer's stay prompt", func() bool { return len(agent.of("prompt")) >= 1 })
	if v, _ := agent.of("prompt")[0]["viewer"].(map[string]any); v["id"] != waiter {
		t.Fatalf("prompt for %v, want the waiting viewer %s", v["id"], waiter)
	}
	code, b := api(t, "GET", base+"/api/viewers/"+waiter, agentTok, "")
	var prof struct {
		Sessions     int `json:"sessions"`
		LiveSessions []struct {
			Live     string `json:"live"`
			Watching bool   `json:"watching"`
		} `json:"live_sessions"`
	}
	if code != 200 || json.Unmarshal(b, &prof) != nil {
		t.Fatalf("profile: %d %s", code, b)
	}
	if prof.Sessions != 1 || len(prof.LiveSessions) != 1 || prof.LiveSessions[0].Live != live || !prof.LiveSessions[0].Watching {
		t.Fatalf("profile counts %d sessions, live sessions %+v; want 1, watching %s", prof.Sessions, prof.LiveSessions, live)
	}
}

// A hold is released when its last event is handled, unless the rules' queue dropped
// events since the last release (one may be of that import): then it is kept for the
// next start, which hands it over again.
func TestHoldKeptWhenTheQueueDropped(t *testing.T) {
	ctx := context.Background()
	st, err := rules.OpenBolt(filepath.Join(t.TempDir(), RulesDB), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	first, _ := st.Hold(ctx, []byte("[]"))
	second, _ := st.Hold(ctx, []byte("[]"))
	p := &playbook{in: event.NewQueue(1), holds: st, log: quietLog()}
	p.in.Publish(event.Event{ID: "queued"})
	p.in.Publish(event.Event{ID: "dropped"}) // full: dropped
	p.take(ctx, event.Event{ID: "last", Held: first})
	p.take(ctx, event.Event{ID: "last", Held: second}) // no drop since
	held, err := st.Held(ctx)
	if err != nil || len(held) != 1 || held[0].Seq != first {
		t.Fatalf("holds left %+v (%v), want the first alone", held, err)
	}
}

// A held event whose handling panics is skipped at replay (logged): the hold is handed
// over first at every start, and would otherwise end every start.
func TestReplayedEventPanicSkipped(t *testing.T) {
	p := &playbook{log: quietLog()} // no segment: handling any viewer's event panics
	p.handleHeld(context.Background(), event.Event{ID: "x", Type: event.Like, Viewer: "v"})
}
