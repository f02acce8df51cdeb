package app

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/shopify"
	"github.com/liveroom/liveroom/token"
)

// TestPromptConvertedWhenOrderMergesViewer: a returning customer (an order of theirs is
// on file, customer 42) watches as a fresh guest, stays past the threshold and gets a
// stay prompt; an agent claims and resolves it; the guest then orders through Shopify
// as customer 42, which merges the guest's profile into the customer's. The order is
// the prompted viewer's: the prompt must count as converted (ordered_24h,
// dm_conversion 1).
func TestPromptConvertedWhenOrderMergesViewer(t *testing.T) {
	const room = "shop"
	a, base, issue, agentTok, agent := promptRoom(t, room)
	admin, _ := a.Signer().Issue(token.Spec{User: "root", Role: event.RoleAdmin, Room: token.AnyRoom, TTL: time.Hour})

	// Customer 42's order of last month, imported from the shop.
	old := time.Now().Add(-30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	if code, b := api(t, "POST", base+"/api/events", admin, `[{"id":"hist-1","type":"order","viewer":"returning","at":"`+old+
		`","order_id":"o-old","total":"20.00","currency":"USD","customer":{"id":"42"}}]`); code != 200 || !strings.Contains(string(b), `"accepted":1`) {
		t.Fatalf("import: %d %s", code, b)
	}

	guestID, p := stayPrompt(t, a, base, room, issue, agent)
	if v, _ := p["viewer"].(map[string]any); v["id"] != guestID {
		t.Fatalf("prompt for %v, want %s", v["id"], guestID)
	}
	id := p["prompt_id"].(string)
	if code, b := api(t, "POST", base+"/api/prompts/"+id+"/claim", agentTok, ""); code != 200 {
		t.Fatalf("claim: %d %s", code, b)
	}
	if code, b := api(t, "POST", base+"/api/prompts/"+id+"/resolve", agentTok, `{"outcome":"messaged"}`); code != 200 {
		t.Fatalf("resolve: %d %s", code, b)
	}

	// A little later (the shop stamps orders to the second), the guest orders as
	// customer 42 (the shop knows them): a signed webhook.
	time.Sleep(1100 * time.Millisecond)
	body := fmt.Sprintf(`{"id":2001,"total_price":"49.00","currency":"USD","created_at":%q,
		"customer":{"id":42,"email":"ret@example.com"},
		"line_items":[{"sku":"SKU-1","price":"49.00","quantity":1,"product_id":1}],
		"note_attributes":[{"name":"liveroom_viewer","value":%q},{"name":"liveroom_room","value":%q}]}`,
		time.Now().UTC().Format(time.RFC3339), guestID, room)
	if code, b := api(t, "POST", base+"/webhooks/orders/shopify", "", body, shopify.HMACHeader, shopify.Header([]byte(shopSecret), []byte(body)),
		shopify.WebhookIDHeader, "wh-2001", shopify.TopicHeader, "orders/create"); code != 200 {
		t.Fatalf("webhook: %d %s", code, b)
	}
	// The merge happened (the guest's profile is the customer's now).
	waitUntil(t, "the guest merged into the customer", func() bool {
		_, b := api(t, "GET", base+"/api/viewers/"+guestID, agentTok, "")
		return strings.Contains(string(b), `"id":"returning"`)
	})

	converted := func() (bool, string) {
		_, b := api(t, "GET", base+"/api/prompts?room="+room, agentTok, "")
		var list struct {
			Prompts []struct {
				ID         string `json:"id"`
				Ordered24h bool   `json:"ordered_24h"`
			} `json:"prompts"`
		}
		_ = json.Unmarshal(b, &list)
		for _, q := range list.Prompts {
			if q.ID == id {
				return q.Ordered24h, string(b)
			}
		}
		return false, string(b)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, b := converted()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			_, an := api(t, "GET", base+"/api/analytics?room="+room, admin, "")
			t.Fatalf("the prompt's viewer ordered right after it, but ordered_24h stays false (prompts %s; analytics %.200s)", b, an)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPromptConvertedByOrderInItsSecond: the viewer orders right after the stay
// prompt, within the same second; Shopify stamps created_at to the second (before the
// prompt's nanoseconds). The order came after the prompt: ordered_24h must be set.
func TestPromptConvertedByOrderInItsSecond(t *testing.T) {
	const room = "shop"
	a, base, issue, agentTok, agent := promptRoom(t, room)
	guestID, p := stayPrompt(t, a, base, room, issue, agent)
	id := p["prompt_id"].(string)
	var created time.Time
	_, b := api(t, "GET", base+"/api/prompts?room="+room, agentTok, "")
	var list struct {
		Prompts []struct {
			ID         string    `json:"id"`
			CreatedAt  time.Time `json:"created_at"`
			Ordered24h bool      `json:"ordered_24h"`
		} `json:"prompts"`
	}
	if err := json.Unmarshal(b, &list); err != nil || len(list.Prompts) != 1 || list.Prompts[0].ID != id {
		t.Fatalf("prompts: %v %s", err, b)
	}
	created = list.Prompts[0].CreatedAt
	// Ordered now, after the prompt, in the second it was made: the shop's created_at.
	if code, b := shopifyOrderAt(t, base, "3001", guestID, room, true, created); code != 200 {
		t.Fatalf("webhook: %d %s", code, b)
	}
	admin, _ := a.Signer().Issue(token.Spec{User: "root", Role: event.RoleAdmin, Room: token.AnyRoom, TTL: time.Hour})
	waitUntil(t, "the order applied", func() bool {
		_, b := api(t, "GET", base+"/api/viewers/"+guestID, admin, "")
		return strings.Contains(string(b), `"orders":1`)
	})
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, b = api(t, "GET", base+"/api/prompts?room="+room, agentTok, "")
		if json.Unmarshal(b, &list) == nil && len(list.Prompts) == 1 && list.Prompts[0].Ordered24h {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("order stamped %s (the prompt's second, created %s): ordered_24h stays false",
				created.UTC().Format(time.RFC3339), created.Format(time.RFC3339Nano))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// promptRoom is a running node with a 2-second stay threshold that takes signed Shopify
// orders, and an agent of room connected to its chat (closed when the test ends).
func promptRoom(t *testing.T, room string) (*App, string, func(role, user string) string, string, *wsClient) {
	t.Helper()
	cfg := testConfig(t)
	cfg.Segment.StayThreshold = 2 * time.Second
	cfg.Segment.ShopSecret = shopSecret
	a, base := startApp(t, cfg)
	issue := issuer(t, a, room)
	agentTok := issue(event.RoleAgent, "agent1")
	agent := dialRoom(t, base, room, agentTok)
	t.Cleanup(agent.close)
	return a, base, issue, agentTok, agent
}

// stayPrompt puts room live and a guest in it, watching, until the stay prompt about
// the guest reaches agent; it returns the guest's id and the prompt.
func stayPrompt(t *testing.T, a *App, base, room string, issue func(role, user string) string, agent *wsClient) (string, map[string]any) {
	t.Helper()
	t.Cleanup(goLive(t, a, base, room, issue(event.RoleHost, "host")))
	tok, guestID := guest(t, base, room)
	ws := dialRoom(t, base, room, tok)
	t.Cleanup(ws.close)
	t.Cleanup(watch(t, base, room, tok))
	waitUntil(t, "the stay prompt", func() bool { return len(agent.of("prompt")) >= 1 })
	return guestID, agent.of("prompt")[0]
}
