package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/liveroom/liveroom/chat"
	"github.com/liveroom/liveroom/event"
)

func TestChatWelcomeDanmakuAndTap(t *testing.T) {
	h := newHarness(t, testChatConfig(), nil)
	v := h.dial("r1", event.RoleViewer, "v1", nil)
	w := v.expect("welcome")
	you := w["you"].(map[string]any)
	if you["id"] != "v1" || you["role"] != "viewer" || you["name"] != "name-v1" {
		t.Fatalf("welcome.you = %v", you)
	}
	room := w["room"].(map[string]any)
	for _, k := range []string{"live", "viewers", "pinned", "likes", "seq", "slow_ms", "gifts"} {
		if _, ok := room[k]; !ok {
			t.Fatalf("welcome.room lacks %q: %v", k, room)
		}
	}
	host := h.join("r1", event.RoleHost, "h1")

	v.send(map[string]any{"type": "danmaku", "text": "  hello world  ", "id": "c-1"})
	for _, c := range []*client{v, host} {
		ev := c.expect("danmaku")
		if ev["text"] != "hello world" || ev["id"] != "c-1" || num(ev["seq"]) < 1 || num(ev["at"]) == 0 {
			t.Fatalf("danmaku = %v", ev)
		}
		from := ev["from"].(map[string]any)
		if from["id"] != "v1" || from["role"] != "viewer" {
			t.Fatalf("danmaku.from = %v", from)
		}
	}
	host.send(map[string]any{"type": "danmaku", "text": "welcome all"})
	if ev := v.expect("danmaku"); ev["text"] != "welcome all" {
		t.Fatalf("host danmaku = %v", ev)
	}
	v.send(map[string]any{"type": "ping"})
	v.expect("pong")

	// The tap got the joins and both danmaku, each with a unique id.
	var types []event.Type
	ids := map[string]bool{}
	eventually(t, "tap events", func() bool {
		for _, e := range h.tapEvents() {
			types = append(types, e.Type)
			if ids[e.ID] || e.ID == "" || e.Room != "r1" {
				t.Fatalf("bad or repeated tap event %+v", e)
			}
			ids[e.ID] = true
		}
		return len(types) >= 4
	})
	want := map[event.Type]int{event.Join: 2, event.Danmaku: 2}
	for _, ty := range types {
		want[ty]--
	}
	for ty, n := range want {
		if n != 0 {
			t.Fatalf("tap types %v: %s off by %d", types, ty, n)
		}
	}
}

func TestChatLikesGiftsPinClicks(t *testing.T) {
	h := newHarness(t, testChatConfig(), nil)
	host := h.join("r", event.RoleHost, "h")
	v := h.join("r", event.RoleViewer, "v")

	for range 3 {
		v.send(map[string]any{"type": "like", "count": 3})
	}
	sum, total := 0.0, 0.0
	for sum < 9 {
		ev := host.expect("likes")
		sum += num(ev["count"])
		total = num(ev["total"])
		if num(ev["seq"]) == 0 {
			t.Fatalf("likes without seq: %v", ev)
		}
	}
	if sum != 9 || total != 9 {
		t.Fatalf("likes sum %v total %v, want 9 and 9", sum, total)
	}

	v.send(map[string]any{"type": "gift", "gift": "rocket", "count": 2})
	g := host.expect("gift")
	if g["gift"] != "rocket" || num(g["count"]) != 2 || num(g["value"]) != 40 || g["currency"] != "USD" || g["animation"] != "launch" {
		t.Fatalf("gift = %v", g)
	}
	v.expect("gift")
	// Each gift event carries the room's running total in its currency, and a welcome
	// the totals, so the studio's figure survives a reload.
	v.send(map[string]any{"type": "gift", "gift": "rocket"})
	if g := host.expect("gift"); num(g["gift_total"]) != 60 {
		t.Fatalf("gift_total %v, want 60 (40 + 20)", g["gift_total"])
	}
	v.expect("gift")
	if room := h.dial("r", event.RoleHost, "h2", nil).expect("welcome")["room"].(map[string]any); fmt.Sprint(room["gift_value"]) != "map[USD:60]" {
		t.Fatalf("welcome gift_value %v, want USD 60", room["gift_value"])
	}
	v.send(map[string]any{"type": "gift", "gift": "yacht"})
	v.expectError("bad_request")

	product := map[string]any{"sku": "SKU-1", "title": "Red shoes", "price": 59.5, "currency": "EUR",
		"url": "https://shop.example/p/1", "image": "https://shop.example/i/1.jpg", "category": "shoes"}
	host.send(map[string]any{"type": "pin", "product": product})
	p := v.expect("pin")
	if pp := p["product"].(map[string]any); pp["sku"] != "SKU-1" || pp["category"] != "shoes" {
		t.Fatalf("pin = %v", p)
	}
	host.expect("pin")
	v.send(map[string]any{"type": "pin", "product": product})
	v.expectError("forbidden")
	v.send(map[string]any{"type": "product_click", "product": "SKU-1"})
	host.send(map[string]any{"type": "like"})
	host.expectError("forbidden")

	// A late joiner sees the pin and the likes total in its welcome.
	late := h.dial("r", event.RoleViewer, "late", nil)
	room := late.expect("welcome")["room"].(map[string]any)
	if num(room["likes"]) != 9 || room["pinned"].(map[string]any)["sku"] != "SKU-1" {
		t.Fatalf("late welcome room = %v", room)
	}
	var click, pin, gift event.Event
	eventually(t, "product_click on the tap", func() bool {
		for _, e := range h.tapEvents() {
			switch e.Type {
			case event.ProductClick:
				click = e
			case event.Pin:
				pin = e
			case event.Gift:
				if gift.ID == "" { // the first: two rockets
					gift = e
				}
			}
		}
		return click.ID != ""
	})
	if click.SKU != "SKU-1" || click.Category != "shoes" || click.Viewer != "v" {
		t.Fatalf("click = %+v", click)
	}
	if pin.SKU != "SKU-1" || pin.Text != "Red shoes" || pin.Value != 59.5 || pin.Currency != "EUR" || pin.Category != "shoes" {
		t.Fatalf("pin tap = %+v", pin)
	}
	if gift.Gift != "rocket" || gift.Value != 40 || gift.Count != 2 {
		t.Fatalf("gift tap = %+v", gift)
	}
}

func TestChatPresence(t *testing.T) {
	h := newHarness(t, testChatConfig(), nil)
	host := h.join("p", event.RoleHost, "h")
	for _, id := range []string{"a", "b"} {
		h.dial("p", event.RoleViewer, id, nil).expect("welcome")
	}
	for {
		ev := host.expect("presence")
		if num(ev["viewers"]) == 2 {
			if _, has := ev["seq"]; has {
				t.Fatalf("presence carries a seq: %v", ev)
			}
			return
		}
	}
}

func TestChatLiveAndPrompt(t *testing.T) {
	h := newHarness(t, testChatConfig(), nil)
	agent := h.join("l", event.RoleAgent, "ag")
	v := h.join("l", event.RoleViewer, "v")
	h.hub.SetLive("l", true)
	for _, c := range []*client{agent, v} {
		ev := c.expect("live")
		if ev["live"] != true || num(ev["seq"]) == 0 {
			t.Fatalf("live = %v", ev)
		}
	}
	if room := h.dial("l", event.RoleViewer, "v2", nil).expect("welcome")["room"].(map[string]any); room["live"] != true {
		t.Fatalf("welcome after live: %v", room)
	}
	err := h.hub.Prompt(context.Background(), "l", chat.Prompt{
		Viewer: chat.PromptViewer{ID: "v", Name: "Vi", Tags: []string{"activity:high"}},
		Reason: "watched 6m12s, 3 comments, no order", Suggested: "Hi! Need help?", PromptID: "p1"})
	if err != nil {
		t.Fatalf("prompt: %v", err)
	}
	pr := agent.expect("prompt")
	if pr["prompt_id"] != "p1" || pr["suggested"] != "Hi! Need help?" || pr["viewer"].(map[string]any)["id"] != "v" {
		t.Fatalf("prompt = %v", pr)
	}
	// Encoded ahead (a stay prompt made ready before its threshold), stamped with the
	// moment it is for: the agent gets the same event.
	at := time.Now().Add(time.Second).Truncate(time.Millisecond)
	enc := chat.EncodePrompt(chat.Prompt{Viewer: chat.PromptViewer{ID: "v", Name: "Vi", Tags: []string{"activity:high"}},
		Reason: "watched 6m12s, 3 comments, no order", Suggested: "Hi! Need help?", PromptID: "p2"}, at)
	if err := h.hub.SendEncodedPrompt(context.Background(), "l", enc); err != nil {
		t.Fatalf("encoded prompt: %v", err)
	}
	pr2 := agent.expect("prompt")
	if pr2["prompt_id"] != "p2" || int64(num(pr2["at"])) != at.UnixMilli() {
		t.Fatalf("encoded prompt = %v, want p2 at %d", pr2, at.UnixMilli())
	}
	delete(pr, "prompt_id")
	delete(pr, "at")
	delete(pr2, "prompt_id")
	delete(pr2, "at")
	if !reflect.DeepEqual(pr, pr2) {
		t.Fatalf("encoded prompt %v differs from the one sent plainly %v", pr2, pr)
	}
	if err := h.hub.SendEncodedPrompt(context.Background(), "l", chat.EncodedPrompt{}); err == nil {
		t.Fatal("an empty encoded prompt was accepted")
	}
	h.hub.SetLive("l", false)
	if ev := v.expect("live"); ev["live"] != false {
		t.Fatalf("live end = %v", ev)
	}
}

// TestChatPromptBurstReachesAgent: thousands of prompts handed to chat at once (a
// wave of viewers crossing the stay threshold together) all reach the agent, in order:
// the ones that queue up while the agent's socket is busy merge into one frame, so the
// connection is not closed as too slow although its queue holds only chat-queue frames.
func TestChatPromptBurstReachesAgent(t *testing.T) {
	h := newHarness(t, testChatConfig(), nil)
	agent := h.join("l", event.RoleAgent, "ag")
	const n = 5000
	for i := range n {
		err := h.hub.Prompt(context.Background(), "l", chat.Prompt{
			Viewer: chat.PromptViewer{ID: fmt.Sprint("v", i), Name: "Viewer"}, Reason: "watched 5m0s, 0 comments, no order",
			Suggested: "Hi there! Anything I can help you find?", PromptID: fmt.Sprint("p", i)})
		if err != nil {
			t.Fatalf("prompt %d: %v", i, err)
		}
	}
	for i := range n {
		if pr := agent.expect("prompt"); pr["prompt_id"] != fmt.Sprint("p", i) {
			t.Fatalf("prompt %d: got %v", i, pr["prompt_id"])
		}
	}
}

func TestChatDM(t *testing.T) {
	h := newHarness(t, testChatConfig(), nil)
	agent := h.join("d", event.RoleAgent, "ag")
	agent2 := h.join("d", event.RoleAgent, "ag2")
	v := h.join("d", event.RoleViewer, "v")
	vTab2 := h.join("d", event.RoleViewer, "v")
	other := h.join("d", event.RoleViewer, "other")

	agent.send(map[string]any{"type": "dm", "to": "v", "text": "Hi, can I help?"})
	for _, c := range []*client{v, vTab2, agent} {
		ev := c.expect("dm")
		if ev["text"] != "Hi, can I help?" || ev["to"] != "v" || ev["from"].(map[string]any)["id"] != "ag" {
			t.Fatalf("dm = %v", ev)
		}
	}
	// The viewer answers without `to`: it goes to the agent who wrote last only.
	v.send(map[string]any{"type": "dm", "text": "Yes, the size?"})
	if ev := agent.expect("dm"); ev["text"] != "Yes, the size?" || ev["to"] != "ag" {
		t.Fatalf("reply = %v", ev)
	}
	vTab2.expect("dm") // the sender's own other tab
	// Nobody else saw a DM: their next event is this danmaku.
	v.expect("dm")
	agent.send(map[string]any{"type": "danmaku", "text": "marker"})
	for _, c := range []*client{other, agent2, v, agent} {
		if ev := c.expect("danmaku"); ev["text"] != "marker" {
			t.Fatalf("unexpected %v", ev)
		}
	}
	// A viewer may not write to another viewer; an agent's dm needs `to`.
	v.send(map[string]any{"type": "dm", "to": "other", "text": "psst"})
	v.expectError("forbidden")
	agent.send(map[string]any{"type": "dm", "text": "to whom?"})
	agent.expectError("bad_request")
	// Between staff a DM is delivered but is no viewer's conversation: not on the tap.
	agent.send(map[string]any{"type": "dm", "to": "ag2", "text": "cover me"})
	if ev := agent2.expect("dm"); ev["text"] != "cover me" {
		t.Fatalf("agent to agent: %v", ev)
	}
	agent.expect("dm")
	agent.send(map[string]any{"type": "danmaku", "text": "after the staff dm"}) // the tap is in room order
	var tapped []event.Event
	eventually(t, "the marker on the tap", func() bool {
		tapped = append(tapped, h.tapEvents()...)
		return slices.ContainsFunc(tapped, func(e event.Event) bool { return e.Text == "after the staff dm" })
	})
	for _, e := range tapped {
		if e.Type == event.DM && e.Viewer == "ag2" {
			t.Fatalf("a DM between agents was tapped as ag2's: %+v", e)
		}
	}
	for _, c := range []*client{other, agent2, v, vTab2, agent} {
		c.expect("danmaku")
	}
	// The system writes on an agent's behalf.
	if _, err := h.hub.SendDM(context.Background(), "d", event.User{ID: "ag", Name: "Ann", Role: event.RoleAgent}, "v", "A coupon for you"); err != nil {
		t.Fatal(err)
	}
	if ev := v.expect("dm"); ev["text"] != "A coupon for you" {
		t.Fatalf("system dm = %v", ev)
	}

	// The console reads the conversation over HTTP.
	var body struct {
		Messages []chat.DM `json:"messages"`
	}
	eventually(t, "dm history", func() bool {
		body.Messages = nil
		getJSON(t, h, "/api/rooms/d/dm/v", h.token(event.RoleAgent, "ag", "d"), http.StatusOK, &body)
		return len(body.Messages) == 3
	})
	if body.Messages[0].Text != "Hi, can I help?" || body.Messages[1].From.ID != "v" || body.Messages[2].Text != "A coupon for you" {
		t.Fatalf("history = %+v", body.Messages)
	}
	// The viewer reads its own conversation (what it missed while reconnecting), not
	// another viewer's; a host reads none.
	var own struct {
		Messages []chat.DM `json:"messages"`
	}
	getJSON(t, h, "/api/rooms/d/dm/v", h.token(event.RoleViewer, "v", "d"), http.StatusOK, &own)
	if len(own.Messages) != 3 || own.Messages[2].Text != "A coupon for you" {
		t.Fatalf("the viewer's own history = %+v", own.Messages)
	}
	getJSON(t, h, "/api/rooms/d/dm/v", h.token(event.RoleViewer, "v2", "d"), http.StatusForbidden, nil)
	getJSON(t, h, "/api/rooms/d/dm/v", h.token(event.RoleViewer, "v", "other"), http.StatusForbidden, nil)
	getJSON(t, h, "/api/rooms/d/dm/v", h.token(event.RoleHost, "h", "d"), http.StatusForbidden, nil)
	getJSON(t, h, "/api/rooms/d/dm/v", "", http.StatusUnauthorized, nil)

	// The agent who wrote last leaves: the viewer's next reply reaches the room's agents.
	agent.ws.Close()
	eventually(t, "the room to see the agent leave", func() bool {
		for _, e := range h.tapEvents() {
			if e.Type == event.Leave && e.Viewer == "ag" {
				return true
			}
		}
		return false
	})
	v.send(map[string]any{"type": "dm", "text": "anyone there?"})
	if ev := agent2.expect("dm"); ev["text"] != "anyone there?" {
		t.Fatalf("after the agent left: %v", ev)
	}
}

func getJSON(t *testing.T, h *harness, path, tok string, status int, into any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != status {
		t.Fatalf("GET %s: status %d, want %d", path, resp.StatusCode, status)
	}
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatal(err)
		}
	}
}

func TestChatUpgradeRefusals(t *testing.T) {
	cfg := testChatConfig()
	cfg.ConnsPerAddr = 2
	h := newHarness(t, cfg, nil)
	tok := h.token(event.RoleViewer, "v", "u")
	cases := []struct {
		name   string
		room   string
		tok    string
		extra  url.Values
		header http.Header
		status int
	}{
		{"no token", "u", "", nil, nil, http.StatusUnauthorized},
		{"bad token", "u", "nope", nil, nil, http.StatusUnauthorized},
		{"other room", "other", tok, nil, nil, http.StatusForbidden},
		{"bad since", "u", tok, url.Values{"since": {"abc"}}, nil, http.StatusBadRequest},
		{"foreign origin", "u", tok, nil, http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := h.dialRaw(tc.room, tc.tok, tc.extra, tc.header)
			if err == nil || resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("err %v resp %v, want status %d", err, resp, tc.status)
			}
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			if json.NewDecoder(resp.Body).Decode(&body) != nil || body.Error.Code == "" {
				t.Fatalf("refusal without a JSON error body")
			}
		})
	}
	// Plain HTTP on the WebSocket endpoint is a clear 400.
	getJSON(t, h, "/ws/u?token="+tok, "", http.StatusBadRequest, nil)
	// The per-address cap: the third connection from 127.0.0.1 gets 429.
	h.dial("u", event.RoleViewer, "a", nil).expect("welcome")
	h.dial("u", event.RoleViewer, "b", nil).expect("welcome")
	if _, resp, err := h.dialRaw("u", tok, nil, nil); err == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection: %v %v, want 429", err, resp)
	}
}

func TestChatBadFramesAndLimits(t *testing.T) {
	cfg := testChatConfig()
	cfg.DanmakuRate, cfg.DanmakuBurst = 0.001, 5
	h := newHarness(t, cfg, nil)
	v := h.join("b", event.RoleViewer, "v")
	for _, tc := range []struct{ frame, code string }{
		{`not json`, "bad_request"},
		{`[1,2]`, "bad_request"},
		{`{"type":"danmaku"}`, "bad_request"},
		{`{"type":"danmaku","text":"   "}`, "bad_request"},
		{`{"type":"danmaku","text":"a\u0007b"}`, "bad_request"},
		{`{"type":"danmaku","text":"` + strings.Repeat("é", 201) + `"}`, "too_long"},
		{`{"type":"warp"}`, "bad_request"},
		{`{"type":"like","count":101}`, "bad_request"},
		{`{"type":"danmaku","text":"x","extra":1}`, "bad_request"},
		{`{"type":"mute","user":"x"}`, "forbidden"},
		{`{"type":"ban","user":"x"}`, "forbidden"},
		{`{"type":"delete","seq":1}`, "forbidden"},
		{`{"type":"slow","for":"5s"}`, "forbidden"},
		{`{"type":"dm","to":"x","text":"hi"}`, "forbidden"},
	} {
		if err := v.ws.WriteMessage(websocket.TextMessage, []byte(tc.frame)); err != nil {
			t.Fatal(err)
		}
		if ev := v.expect("error"); ev["code"] != tc.code {
			t.Fatalf("frame %s: error %v, want %s", tc.frame, ev, tc.code)
		}
	}
	if err := v.ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	v.expectError("bad_request")
	// Danmaku: a burst of 5 passes, the sixth is rate limited; the connection stays.
	for i := range 5 {
		v.send(map[string]any{"type": "danmaku", "text": "m" + string(rune('a'+i))})
		v.expect("danmaku")
	}
	v.send(map[string]any{"type": "danmaku", "text": "one too many"})
	v.expectError("rate_limited")
	v.send(map[string]any{"type": "ping"})
	v.expect("pong")
	if counter(t, h.reg, "liveroom_chat_refused_total", map[string]string{"code": "rate_limited"}) != 1 {
		t.Fatal("rate_limited refusal not counted")
	}
}

func TestChatAbuseClosesWith1008(t *testing.T) {
	cfg := testChatConfig()
	cfg.AbuseLimit = 3
	h := newHarness(t, cfg, nil)
	v := h.join("a", event.RoleViewer, "v")
	for range 4 {
		_ = v.ws.WriteMessage(websocket.TextMessage, []byte("garbage"))
	}
	if code := v.expectClose(); code != websocket.ClosePolicyViolation {
		t.Fatalf("close code %d, want 1008", code)
	}
}

func TestChatReadLimitClosesWith1009(t *testing.T) {
	h := newHarness(t, testChatConfig(), nil)
	v := h.join("big", event.RoleViewer, "v")
	_ = v.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"danmaku","text":"`+strings.Repeat("x", 9000)+`"}`))
	if code := v.expectClose(); code != websocket.CloseMessageTooBig {
		t.Fatalf("close code %d, want 1009", code)
	}
}

func TestChatKeywordFilter(t *testing.T) {
	for _, action := range []string{chat.KeywordMask, chat.KeywordBlock} {
		t.Run(action, func(t *testing.T) {
			cfg := testChatConfig()
			cfg.Keywords, cfg.KeywordAction = []string{"scam", "fake"}, action
			h := newHarness(t, cfg, nil)
			v := h.join("k", event.RoleViewer, "v")
			v.send(map[string]any{"type": "danmaku", "text": "this is a SCAM"})
			if action == chat.KeywordBlock {
				v.expectError("bad_request")
				return
			}
			if ev := v.expect("danmaku"); ev["text"] != "this is a ****" {
				t.Fatalf("masked = %v", ev["text"])
			}
		})
	}
}

func TestChatShutdownTellsClientsToReconnect(t *testing.T) {
	h := newHarness(t, testChatConfig(), nil)
	v := h.join("bye", event.RoleViewer, "v")
	if err := h.hub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code := v.expectClose(); code != websocket.CloseGoingAway {
		t.Fatalf("close code %d, want 1001", code)
	}
	if _, resp, err := h.dialRaw("bye", h.token(event.RoleViewer, "v", "bye"), nil, nil); err == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after shutdown: %v %v, want 503", err, resp)
	}
}

func TestChatPingIsRateLimited(t *testing.T) {
	h := newHarness(t, testChatConfig(), nil)
	v := h.join("ping", event.RoleViewer, "v")
	for range 11 {
		v.send(map[string]any{"type": "ping"})
	}
	for range 10 {
		v.expect("pong")
	}
	v.expectError("rate_limited")
}

// Gift values and totals are exact to a millionth: three rose at 0.1 are 0.3 (not a
// float's 0.30000000000000004), and three-decimal currencies keep their last digit.
func TestChatGiftTotalsKeepSubCents(t *testing.T) {
	cfg := testChatConfig()
	cfg.Gifts = append(cfg.Gifts, chat.Gift{ID: "fils", Name: "Fils", Value: 0.004, Currency: "BHD", Animation: "float"})
	h := newHarness(t, cfg, nil)
	host := h.join("g", event.RoleHost, "h")
	v := h.join("g", event.RoleViewer, "v")
	v.send(map[string]any{"type": "gift", "gift": "rose", "count": 3})
	if g := host.expect("gift"); g["value"] != 0.3 || g["gift_total"] != 0.3 {
		t.Fatalf("three roses: value %v total %v, want 0.3 and 0.3", g["value"], g["gift_total"])
	}
	v.expect("gift")
	for _, want := range []float64{0.004, 0.008} {
		v.send(map[string]any{"type": "gift", "gift": "fils"})
		if g := host.expect("gift"); g["gift_total"] != want || g["currency"] != "BHD" {
			t.Fatalf("fils: total %v %v, want %v BHD", g["gift_total"], g["currency"], want)
		}
		v.expect("gift")
	}
	if room := h.dial("g", event.RoleHost, "h2", nil).expect("welcome")["room"].(map[string]any); fmt.Sprint(room["gift_value"]) != "map[BHD:0.008 USD:0.3]" {
		t.Fatalf("welcome gift_value %v", room["gift_value"])
	}
}
