package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/liveroom/liveroom/chat"
	"github.com/liveroom/liveroom/config"
	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/gateway"
	"github.com/liveroom/liveroom/token"
)

const testSecret = "0123456789abcdef0123456789abcdef-chat-tests"

// waitLimit bounds every wait so a broken server fails the test instead of hanging it.
const waitLimit = 20 * time.Second

// harness is a real gateway with a real chat hub behind an httptest server.
type harness struct {
	t      testing.TB
	hub    *chat.Hub
	srv    *httptest.Server
	signer *token.Signer
	tap    *event.Queue
	reg    *prometheus.Registry
	store  chat.Store
}

// testChatConfig is fast: short flush and presence intervals so tests wait little.
func testChatConfig() chat.Config {
	c := chat.DefaultConfig()
	c.FlushInterval = 5 * time.Millisecond
	c.PresenceInterval = 10 * time.Millisecond
	c.RoomIdle = 0
	return c
}

func newHarness(t testing.TB, cfg chat.Config, store chat.Store) *harness {
	t.Helper()
	return harnessWith(t, cfg, store, func(*config.Core) {})
}

// harnessWith is newHarness with the gateway's settings changed by edit.
func harnessWith(t testing.TB, cfg chat.Config, store chat.Store, edit func(*config.Core)) *harness {
	t.Helper()
	signer, err := token.NewSigner(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if store == nil {
		store = chat.NewMemoryStore()
	}
	h := &harness{t: t, signer: signer, tap: event.NewQueue(1 << 16), reg: prometheus.NewRegistry(), store: store}
	h.hub, err = chat.New(cfg, chat.Deps{Store: store, Tap: h.tap, Registry: h.reg})
	if err != nil {
		t.Fatal(err)
	}
	core := config.DefaultCore()
	core.HTTP = "127.0.0.1:0"
	edit(&core)
	gw, err := gateway.New(core, gateway.Deps{Signer: signer, Registry: h.reg, Chat: h.hub})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(gw.Handler())
	t.Cleanup(h.close)
	return h
}

// reopen restarts chat: it closes h and its store (the bbolt file at path) and starts
// a new harness on the same file.
func reopen(t testing.TB, h *harness, store *chat.BoltStore, path string) *harness {
	t.Helper()
	h.close()
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	store, err := chat.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return newHarness(t, testChatConfig(), store)
}

func (h *harness) close() {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := h.hub.Close(ctx); err != nil {
		h.t.Errorf("hub close: %v", err)
	}
	h.srv.Close()
}

func (h *harness) token(role, user, room string) string {
	h.t.Helper()
	raw, err := h.signer.Issue(token.Spec{User: user, Name: "name-" + user, Role: role, Room: room, TTL: time.Hour})
	if err != nil {
		h.t.Fatal(err)
	}
	return raw
}

func (h *harness) wsURL(room, tok string, extra url.Values) string {
	q := url.Values{"token": {tok}}
	for k, v := range extra {
		q[k] = v
	}
	return "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/ws/" + room + "?" + q.Encode()
}

// dialRaw dials and returns the connection or the HTTP answer of a refused upgrade.
func (h *harness) dialRaw(room, tok string, extra url.Values, header http.Header) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: waitLimit}
	return d.Dial(h.wsURL(room, tok, extra), header)
}

// client is a test WebSocket client that splits server frames into events.
type client struct {
	t       testing.TB
	ws      *websocket.Conn
	pending []map[string]any
	frames  int
}

func (h *harness) dial(room, role, user string, extra url.Values) *client {
	h.t.Helper()
	ws, resp, err := h.dialRaw(room, h.token(role, user, room), extra, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		h.t.Fatalf("dial %s as %s/%s: %v (status %d)", room, role, user, err, status)
	}
	c := &client{t: h.t, ws: ws}
	h.t.Cleanup(func() { ws.Close() })
	return c
}

// join dials and reads the welcome.
func (h *harness) join(room, role, user string) *client {
	h.t.Helper()
	c := h.dial(room, role, user, nil)
	c.expect("welcome")
	return c
}

func (c *client) send(v any) {
	c.t.Helper()
	if err := c.ws.WriteJSON(v); err != nil {
		c.t.Fatalf("send %v: %v", v, err)
	}
}

// next returns the next event, reading a frame (a JSON array) when needed.
func (c *client) next() (map[string]any, error) {
	for len(c.pending) == 0 {
		_ = c.ws.SetReadDeadline(time.Now().Add(waitLimit))
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return nil, err
		}
		c.frames++
		var evs []map[string]any
		if err := json.Unmarshal(data, &evs); err != nil {
			return nil, errors.New("server frame is not a JSON array: " + string(data))
		}
		if len(evs) == 0 {
			return nil, errors.New("server sent an empty array")
		}
		c.pending = evs
	}
	ev := c.pending[0]
	c.pending = c.pending[1:]
	return ev, nil
}

// expect returns the next event of type typ, skipping presence, likes and pong events
// unless they are asked for.
func (c *client) expect(typ string) map[string]any {
	c.t.Helper()
	// One limit for the whole wait: a frame skipped (a presence) does not renew it, or a
	// room that keeps counting viewers would keep a test waiting for good.
	deadline := time.Now().Add(waitLimit)
	for {
		ev, err := c.next()
		if err != nil {
			c.t.Fatalf("waiting for %q: %v", typ, err)
		}
		if ev["type"] == typ {
			return ev
		}
		switch ev["type"] {
		case "presence", "likes", "pong", "notice", "live":
			if time.Now().After(deadline) {
				c.t.Fatalf("waiting for %q: only %v frames for %v", typ, ev["type"], waitLimit)
			}
			continue
		}
		c.t.Fatalf("waiting for %q, got %v", typ, ev)
	}
}

// expectError returns the next error event and checks its code.
func (c *client) expectError(code string) map[string]any {
	c.t.Helper()
	ev := c.expect("error")
	if ev["code"] != code {
		c.t.Fatalf("error code %v, want %s (%v)", ev["code"], code, ev["message"])
	}
	return ev
}

// expectClose reads until the server closes and returns the close code.
func (c *client) expectClose() int {
	c.t.Helper()
	for {
		_, err := c.next()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		return -1
	}
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

// counter reads a counter or gauge value from the registry (0 when absent).
func counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
	}
	return 0
}

func matches(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// eventually polls cond until it holds or waitLimit passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// tapEvents drains the tap into a slice.
func (h *harness) tapEvents() []event.Event {
	var out []event.Event
	for {
		e, ok := h.tap.TryNext()
		if !ok {
			return out
		}
		out = append(out, e)
	}
}
