package app

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/shopify"
	"github.com/liveroom/liveroom/token"
)

// TestMultilineDMDelivered: a dm action whose text has a line break (a YAML block
// scalar, `text: |`) reaches the buyer: chat refuses text with control characters, so
// the rendered text has them turned into spaces (before, the DM was counted against
// its cap and logged as sent, and never delivered).
func TestMultilineDMDelivered(t *testing.T) {
	cfg := testConfig(t)
	cfg.Segment.ShopSecret = shopSecret
	a, base := startApp(t, cfg)
	const room = "shop"
	admin, _ := a.Signer().Issue(token.Spec{User: "root", Role: event.RoleAdmin, Room: token.AnyRoom, TTL: time.Hour})
	doc := "rules:\n  - id: thanks\n    trigger: {event: [order]}\n    cap: 1\n    action:\n      type: dm\n      text: |\n        Thank you for your order!\n        Write to us here any time.\n"
	if code, b := api(t, "PUT", base+"/api/rules", admin, doc, "Content-Type", "application/yaml"); code != 200 {
		t.Fatalf("put rules: %d %s", code, b)
	}
	tok, buyer := guest(t, base, room)
	ws := dialRoom(t, base, room, tok)
	if code, b := shopifyOrder(t, base, "2001", buyer, room, true); code != 200 {
		t.Fatalf("webhook: %d %s", code, b)
	}
	waitUntil(t, "the dm in the action log", func() bool {
		_, acts := api(t, "GET", base+"/api/viewers/"+buyer+"/actions", admin, "")
		return bytes.Contains(acts, []byte(`"type":"dm"`))
	})
	deadline := time.Now().Add(3 * time.Second)
	for len(ws.of("dm")) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(ws.of("dm")); n == 0 {
		_, m := api(t, "GET", base+"/metrics", "", "")
		t.Fatalf("the thank-you DM is logged as sent (and its cap 1 used) but the buyer got no DM; %s", strings.TrimSpace(grepLines(string(m), "liveroom_rules_errors_total")))
	}
}

// TestOrderWithoutRoomReachesAgents: a Shopify order that names the viewer but no
// liveroom_room, for a viewer known in room "shop" and connected to its chat: the
// first-order thank-you DM and the 7-day follow-up prompt go to the room the viewer
// was last in (before, to room "", where no viewer or agent is).
func TestOrderWithoutRoomReachesAgents(t *testing.T) {
	cfg := testConfig(t)
	cfg.Segment.ShopSecret = shopSecret
	a, base := startApp(t, cfg)
	const room = "shop"
	issue := issuer(t, a, room)
	agentTok := issue(event.RoleAgent, "agent1")
	agent := dialRoom(t, base, room, agentTok)
	tok, buyer := guest(t, base, room)
	ws := dialRoom(t, base, room, tok)
	waitUntil(t, "the viewer's profile", func() bool {
		code, _ := api(t, "GET", base+"/api/viewers/"+buyer, agentTok, "")
		return code == 200
	})
	// Created 7 days less 3 seconds ago: its follow-up falls due in 3 seconds.
	created := time.Now().Add(-7*24*time.Hour + 3*time.Second)
	body := fmt.Sprintf(`{"id":3001,"total_price":"49.00","currency":"USD","created_at":%q,
		"line_items":[{"sku":"SKU-1","price":"49.00","quantity":1,"product_id":1}],
		"note_attributes":[{"name":"liveroom_viewer","value":%q}]}`, created.UTC().Format(time.RFC3339), buyer)
	if code, b := api(t, "POST", base+"/webhooks/orders/shopify", "", body,
		shopify.HMACHeader, shopify.Header([]byte(shopSecret), []byte(body)), shopify.WebhookIDHeader, "wh-3001"); code != 200 {
		t.Fatalf("webhook: %d %s", code, b)
	}
	waitUntil(t, "the follow-up in the action log", func() bool {
		_, acts := api(t, "GET", base+"/api/viewers/"+buyer+"/actions", agentTok, "")
		return bytes.Contains(acts, []byte(`"rule":"first-order-follow-up"`))
	})
	time.Sleep(500 * time.Millisecond)
	_, acts := api(t, "GET", base+"/api/viewers/"+buyer+"/actions", agentTok, "")
	_, queue := api(t, "GET", base+"/api/prompts?room="+room, agentTok, "")
	if len(ws.of("dm")) == 0 || len(agent.of("prompt")) == 0 || !bytes.Contains(queue, []byte(buyer)) {
		t.Fatalf("viewer got %d DMs, room %s's agent %d prompts, its queue %s; the rules' actions: %s",
			len(ws.of("dm")), room, len(agent.of("prompt")), queue, acts)
	}
}

// TestShopifyOrderWithoutViewerIgnored: an order that names no viewer and no customer (a
// sale at the till) is answered 200 and ignored: Shopify retries a delivery answered
// otherwise and deletes a subscription whose deliveries keep failing.
func TestShopifyOrderWithoutViewerIgnored(t *testing.T) {
	cfg := testConfig(t)
	cfg.Segment.ShopSecret = shopSecret
	a, base := startApp(t, cfg)
	admin, _ := a.Signer().Issue(token.Spec{User: "root", Role: event.RoleAdmin, Room: token.AnyRoom, TTL: time.Hour})
	body := `{"id":4001,"total_price":"12.00","currency":"USD","created_at":"2026-11-28T10:00:00Z",
		"line_items":[{"sku":"SKU-1","price":"12.00","quantity":1,"product_id":1}]}`
	code, b := api(t, "POST", base+"/webhooks/orders/shopify", "", body,
		shopify.HMACHeader, shopify.Header([]byte(shopSecret), []byte(body)), shopify.WebhookIDHeader, "wh-4001")
	if code != 200 || !strings.Contains(string(b), `"ignored"`) {
		t.Fatalf("webhook: %d %s", code, b)
	}
	if _, seg := api(t, "GET", base+"/api/segments", admin, ""); !strings.Contains(string(seg), `"viewers":0`) {
		t.Fatalf("an ignored order made a profile: %s", seg)
	}
	// An order in a currency with no rate is refused, for Shopify to retry once the
	// rate is configured.
	body = `{"id":4002,"total_price":"12.00","currency":"XYZ","created_at":"2026-11-28T10:00:00Z",
		"line_items":[{"sku":"SKU-1","price":"12.00","quantity":1,"product_id":1}],
		"note_attributes":[{"name":"liveroom_viewer","value":"g_someone"}]}`
	code, b = api(t, "POST", base+"/webhooks/orders/shopify", "", body,
		shopify.HMACHeader, shopify.Header([]byte(shopSecret), []byte(body)), shopify.WebhookIDHeader, "wh-4002")
	if code != 400 || !strings.Contains(string(b), "currency-rates") {
		t.Fatalf("an order in a currency with no rate: %d %s", code, b)
	}
}
