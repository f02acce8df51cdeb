package shopify

import (
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/problem"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "shpss_0123456789abcdef0123456789abcdef"

func sample(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/orders_create.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerify(t *testing.T) {
	body := sample(t)
	good := Header([]byte(secret), body)
	flipped := []byte(good)
	flipped[3] ^= 1
	cases := []struct {
		name, secret, header string
		body                 []byte
		ok                   bool
	}{
		{"good", secret, good, body, true},
		{"good with spaces", secret, " " + good + "\n", body, true},
		{"missing", secret, "", body, false},
		{"not base64", secret, "%%%", body, false},
		{"short", secret, base64.StdEncoding.EncodeToString([]byte("abc")), body, false},
		{"wrong secret", "another-secret", good, body, false},
		{"changed body", secret, good, append([]byte(" "), body...), false},
		{"flipped bit", secret, string(flipped), body, false},
		{"hex instead of base64", secret, strings.Repeat("ab", 32), body, false},
		{"no secret configured", "", good, body, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Verify([]byte(c.secret), c.body, c.header)
			if c.ok != (err == nil) {
				t.Fatalf("Verify: %v", err)
			}
			if err != nil && (!errors.Is(err, ErrSignature) || problem.KindOf(err) != problem.Unauthorized) {
				t.Fatalf("error %v is not an Unauthorized ErrSignature", err)
			}
		})
	}
}

func TestDecodeRealisticOrder(t *testing.T) {
	o, err := DecodeOrder(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	catalog := map[string]string{"TR-GTX-38-RED": "shoes"}
	ev := o.Event(func(sku string) string { return catalog[sku] })
	want := time.Date(2026, 3, 2, 12, 14, 7, 0, time.UTC)
	if ev.Type != event.Order || ev.ID != "shopify:order:5614906392812345678" || !ev.At.Equal(want) ||
		ev.Viewer != "g_7f3a9c2e51" || ev.Room != "spring-sale" || ev.Currency != "CNY" {
		t.Fatalf("event: %+v", ev)
	}
	oi := ev.Order
	if oi.OrderID != "5614906392812345678" || oi.Total != "619.00" || oi.Currency != "CNY" || len(oi.Items) != 2 {
		t.Fatalf("order: %+v", oi)
	}
	if oi.Items[0] != (event.Item{SKU: "TR-GTX-38-RED", Category: "shoes", Price: "499.00", Quantity: 1}) {
		t.Fatalf("item 0: %+v", oi.Items[0])
	}
	if oi.Items[1] != (event.Item{SKU: "product:8823746509999", Price: "49.00", Quantity: 2}) {
		t.Fatalf("item without a SKU: %+v", oi.Items[1])
	}
	if oi.Customer == nil || oi.Customer.ID != "7301928374651234567" || oi.Customer.Email != "mei.lin@example.com" {
		t.Fatalf("customer: %+v", oi.Customer)
	}
	hook, order := Keys("b54557e4-bdd9-4b37-8a5f-bf7d70fcd043", o)
	if hook != "shopify:webhook:b54557e4-bdd9-4b37-8a5f-bf7d70fcd043" || order != ev.ID {
		t.Fatalf("keys: %s %s", hook, order)
	}
}

func TestOrderWithoutViewer(t *testing.T) {
	o, err := DecodeOrder([]byte(`{"id":"1001","total_price":"10.00","currency":"USD","created_at":"2026-01-02T03:04:05Z",
		"customer":null,"email":"a@example.com","line_items":[{"sku":"A","price":"10.00","quantity":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	ev := o.Event(nil)
	if ev.Viewer != "" || ev.Order.Customer == nil || ev.Order.Customer.Email != "a@example.com" || ev.Order.Items[0].Category != "" {
		t.Fatalf("event: %+v %+v", ev, ev.Order)
	}
}

func TestDecodeBadOrders(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"not json", `{"id":`, "not an order"},
		{"array", `[]`, "not an order"},
		{"no id", `{"total_price":"1.00","currency":"USD","created_at":"2026-01-02T03:04:05Z"}`, "order has no id"},
		{"fractional id", `{"id":1.5,"total_price":"1.00","currency":"USD","created_at":"2026-01-02T03:04:05Z"}`, "not a whole number"},
		{"total", `{"id":1,"total_price":"ten","currency":"USD","created_at":"2026-01-02T03:04:05Z"}`, `total_price "ten"`},
		{"total number", `{"id":1,"total_price":10,"currency":"USD","created_at":"2026-01-02T03:04:05Z"}`, "not an order"},
		{"currency", `{"id":1,"total_price":"1.00","currency":"dollars","created_at":"2026-01-02T03:04:05Z"}`, `currency "dollars"`},
		{"time", `{"id":1,"total_price":"1.00","currency":"USD","created_at":"yesterday"}`, `created_at "yesterday"`},
		{"item price", `{"id":1,"total_price":"1.00","currency":"USD","created_at":"2026-01-02T03:04:05Z","line_items":[{"price":"-1"}]}`, "line_items[0].price"},
		{"quantity", `{"id":1,"total_price":"1.00","currency":"USD","created_at":"2026-01-02T03:04:05Z","line_items":[{"price":"1.00","quantity":-2}]}`, "line_items[0].quantity"},
		{"viewer too long", `{"id":1,"total_price":"1.00","currency":"USD","created_at":"2026-01-02T03:04:05Z","note_attributes":[{"name":"liveroom_viewer","value":"` + strings.Repeat("v", 300) + `"}]}`, "too long"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeOrder([]byte(c.body))
			if err == nil || !errors.Is(err, ErrPayload) || problem.KindOf(err) != problem.BadRequest {
				t.Fatalf("error %v is not a BadRequest ErrPayload", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
	if _, err := DecodeOrder(make([]byte, MaxBody+1)); !errors.Is(err, ErrPayload) {
		t.Fatalf("oversized body: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	body := sample(f)
	f.Add([]byte(secret), body, Header([]byte(secret), body))
	f.Add([]byte(secret), []byte("{}"), "")
	f.Add([]byte(""), []byte("x"), "AAAA")
	f.Fuzz(func(t *testing.T, key, body []byte, header string) {
		err := Verify(key, body, header)
		if err != nil && !errors.Is(err, ErrSignature) {
			t.Fatalf("error without ErrSignature: %v", err)
		}
		// Accepted only with the true signature.
		if err == nil && strings.TrimSpace(header) != Header(key, body) {
			t.Fatalf("accepted a header that is not the signature: %q", header)
		}
		if len(key) > 0 && Verify(key, body, Header(key, body)) != nil {
			t.Fatal("the true signature was refused")
		}
	})
}

func FuzzDecodeOrder(f *testing.F) {
	f.Add(sample(f))
	f.Add([]byte(`{"id":"1","total_price":"1.00","currency":"USD","created_at":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte(`{"id":1,"note_attributes":[{"name":"liveroom_viewer","value":5}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := DecodeOrder(body)
		if err != nil {
			if !errors.Is(err, ErrPayload) {
				t.Fatalf("error without ErrPayload: %v", err)
			}
			return
		}
		ev := o.Event(func(string) string { return "c" })
		if ev.Type != event.Order || ev.Order == nil || ev.Order.OrderID == "" || ev.At.IsZero() {
			t.Fatalf("accepted order gave a bad event: %+v", ev)
		}
	})
}
