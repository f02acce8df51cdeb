package chat_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveroom/liveroom/chat"
	"github.com/liveroom/liveroom/config"
	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/gateway"
	"github.com/liveroom/liveroom/internal/pipenet"
	"github.com/liveroom/liveroom/token"
)

// bubbleServer is a gateway with a chat hub served over pipes.
type bubbleServer struct {
	t      *testing.T
	hub    *chat.Hub
	srv    *http.Server
	ln     *pipenet.Listener
	signer *token.Signer
	reg    *prometheus.Registry
	served chan struct{}
}

func startBubble(t *testing.T, cfg chat.Config) *bubbleServer {
	signer, err := token.NewSigner("0123456789abcdef0123456789abcdef-bubble")
	if err != nil {
		t.Fatal(err)
	}
	b := &bubbleServer{t: t, signer: signer, reg: prometheus.NewRegistry(), ln: pipenet.New(), served: make(chan struct{})}
	b.hub, err = chat.New(cfg, chat.Deps{Store: chat.NewMemoryStore(), Registry: b.reg})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(config.DefaultCore(), gateway.Deps{Signer: signer, Registry: b.reg, Chat: b.hub})
	if err != nil {
		t.Fatal(err)
	}
	b.srv = &http.Server{Handler: gw.Handler()}
	go func() { defer close(b.served); _ = b.srv.Serve(b.ln) }()
	return b
}

func (b *bubbleServer) stop() {
	if err := b.hub.Close(context.Background()); err != nil {
		b.t.Error(err)
	}
	b.srv.Close()
	<-b.served
}

func (b *bubbleServer) dial(room, role, user string) *websocket.Conn {
	tok, err := b.signer.Issue(token.Spec{User: user, Role: role, Room: room, TTL: 24 * time.Hour})
	if err != nil {
		b.t.Fatal(err)
	}
	d := websocket.Dialer{NetDialContext: b.ln.Dial}
	ws, _, err := d.Dial("ws://bubble/ws/"+room+"?token="+tok, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return ws
}

// expectConns checks the open connection count once everything has settled.
func (b *bubbleServer) expectConns(want float64, when string) {
	b.t.Helper()
	synctest.Wait()
	if n := b.conns(); n != want {
		b.t.Fatalf("%s: %v connections, want %v", when, n, want)
	}
}

func (b *bubbleServer) conns() float64 {
	mfs, _ := b.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "liveroom_chat_connections" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

type timed struct {
	at time.Time
	ev map[string]any
}

// readAll reads events into ch until the connection ends.
func readAll(ws *websocket.Conn, ch chan<- timed) {
	defer close(ch)
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var evs []map[string]any
		_ = json.Unmarshal(data, &evs)
		for _, e := range evs {
			ch <- timed{time.Now(), e}
		}
	}
}

// TestPresenceAtMostEveryInterval: joins in quick succession produce presence events
// no closer together than PresenceInterval, and the last one has the final count;
// then an unchanged count is sent every 10 intervals.
func TestPresenceAtMostEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := startBubble(t, chat.DefaultConfig())
		host := b.dial("p", event.RoleHost, "h")
		events := make(chan timed, 1024)
		go readAll(host, events)
		var viewers []*websocket.Conn
		for i := range 6 {
			v := b.dial("p", event.RoleViewer, string(rune('a'+i)))
			go readAll(v, make(chan timed, 1024))
			viewers = append(viewers, v)
			time.Sleep(300 * time.Millisecond)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		var presence []timed
		for len(events) > 0 {
			if e := <-events; e.ev["type"] == "presence" {
				presence = append(presence, e)
			}
		}
		if len(presence) < 2 {
			t.Fatalf("%d presence events", len(presence))
		}
		for i := 1; i < len(presence); i++ {
			if gap := presence[i].at.Sub(presence[i-1].at); gap < 2*time.Second {
				t.Fatalf("presence events %s apart", gap)
			}
		}
		if n := presence[len(presence)-1].ev["viewers"]; n != 6.0 {
			t.Fatalf("last presence %v, want 6", n)
		}
		// Unchanged, it still comes every 20 s (10 intervals): players keep the count
		// fresh and know the room is alive.
		last := presence[len(presence)-1].at
		time.Sleep(45 * time.Second)
		synctest.Wait()
		var beats []time.Duration
		for len(events) > 0 {
			if e := <-events; e.ev["type"] == "presence" && e.ev["viewers"] == 6.0 {
				beats = append(beats, e.at.Sub(last))
				last = e.at
			}
		}
		if len(beats) != 2 || beats[0] > 21*time.Second || beats[1] > 21*time.Second {
			t.Fatalf("unchanged presence came after %v, want twice in 45 s", beats)
		}
		for _, v := range viewers {
			v.Close()
		}
		host.Close()
		b.stop()
	})
}

// TestSilentClientClosedAfterPongWait: a client that never reads never answers pings
// and is closed after PongWait; one that reads (and so answers pings) stays.
func TestSilentClientClosedAfterPongWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := chat.DefaultConfig()
		b := startBubble(t, cfg)
		silent := b.dial("s", event.RoleViewer, "silent")
		alive := b.dial("s", event.RoleViewer, "alive")
		go readAll(alive, make(chan timed, 1024))
		b.expectConns(2, "at start")
		time.Sleep(cfg.PongWait + 5*time.Second)
		b.expectConns(1, "after the pong wait (only the reading client)")
		time.Sleep(10 * cfg.PongWait)
		b.expectConns(1, "long after (the answering client stays)")
		silent.Close()
		alive.Close()
		b.stop()
	})
}

// TestMuteExpiresAndRoomUnloads: a 1-minute mute lapses after a minute, and an empty
// room is unloaded after RoomIdle once its last event is older than HistoryAge.
func TestMuteExpiresAndRoomUnloads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := chat.DefaultConfig()
		b := startBubble(t, cfg)
		host := b.dial("m", event.RoleHost, "h")
		hostEvents := make(chan timed, 1024)
		go readAll(host, hostEvents)
		v := b.dial("m", event.RoleViewer, "v")
		vEvents := make(chan timed, 1024)
		go readAll(v, vEvents)
		_ = host.WriteJSON(map[string]any{"type": "mute", "user": "v", "for": "1m"})
		time.Sleep(time.Second)
		_ = v.WriteJSON(map[string]any{"type": "danmaku", "text": "muted?"})
		time.Sleep(time.Second)
		time.Sleep(time.Minute)
		_ = v.WriteJSON(map[string]any{"type": "danmaku", "text": "free"})
		time.Sleep(time.Second)
		synctest.Wait()
		var codes, texts []any
		for len(vEvents) > 0 {
			e := <-vEvents
			switch e.ev["type"] {
			case "error":
				codes = append(codes, e.ev["code"])
			case "danmaku":
				texts = append(texts, e.ev["text"])
			}
		}
		if len(codes) != 1 || codes[0] != "muted" || len(texts) != 1 || texts[0] != "free" {
			t.Fatalf("errors %v, danmaku %v", codes, texts)
		}
		host.Close()
		v.Close()
		loaded := func() float64 {
			mfs, _ := b.reg.Gather()
			for _, mf := range mfs {
				if mf.GetName() == "liveroom_chat_rooms" {
					return mf.GetMetric()[0].GetGauge().GetValue()
				}
			}
			return -1
		}
		// Empty for chat-room-idle, but its last event is younger than
		// chat-history-age: it stays, so a client can still resume.
		time.Sleep(cfg.RoomIdle + 2*time.Second)
		synctest.Wait()
		if loaded() != 1 {
			t.Fatal("the room was unloaded with events younger than chat-history-age")
		}
		time.Sleep(cfg.HistoryAge)
		synctest.Wait()
		if loaded() != 0 {
			t.Fatal("the empty room is still loaded after chat-room-idle and chat-history-age")
		}
		b.stop()
	})
}

// TestLikesSummedPerFrameInterval: a storm of taps becomes at most one likes event per
// chat-frame-interval, and their counts add up to every tap.
func TestLikesSummedPerFrameInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := chat.DefaultConfig()
		cfg.LikeRate = 1e6
		b := startBubble(t, cfg)
		fan := b.dial("l", event.RoleViewer, "v")
		events := make(chan timed, 4096)
		go readAll(fan, events)
		const taps = 200
		for range taps { // one tap every 5 ms for a second
			_ = fan.WriteJSON(map[string]any{"type": "like", "count": 1})
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		n, sum := 0, 0.0
		for len(events) > 0 {
			if e := <-events; e.ev["type"] == "likes" {
				n++
				sum += e.ev["count"].(float64)
			}
		}
		if limit := int(time.Second/cfg.FrameInterval) + 2; n > limit || sum != taps {
			t.Fatalf("%d likes events summing %v taps; want at most %d summing %d", n, sum, limit, taps)
		}
		fan.Close()
		b.stop()
	})
}
