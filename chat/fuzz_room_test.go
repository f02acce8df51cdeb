package chat

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// FuzzMisbehavingViewer: whatever one viewer writes on its WebSocket (text or binary
// frames, any bytes, any number), another viewer in the same room still gets its own
// danmaku back, in order, within three seconds (a second is the aim; the slack is for a
// loaded test machine).
func FuzzMisbehavingViewer(f *testing.F) {
	for _, s := range []string{
		`{"type":"danmaku","text":"hi"}`,
		"{\"type\":\"like\",\"count\":100}\n{\"type\":\"like\",\"count\":100}\n{\"type\":\"gift\",\"gift\":\"rocket\",\"count\":100000}",
		"{\"type\":\"dm\",\"text\":\"x\"}\n{\"type\":\"product_click\",\"product\":\"S\"}\n{\"type\":\"ping\"}\n{\"type\":\"ping\"}\n{\"type\":\"ping\"}",
		"{\"type\":\"mute\",\"user\":\"b\",\"for\":\"1h\"}\n{\"type\":\"delete\",\"seq\":1}\n{\"type\":\"pin\",\"product\":{\"sku\":\"a\"}}",
		"\x02\xff\xfe\n[]\nnull\n{\"type\":\"danmaku\",\"text\":\"\\u0007\"}",
		string(bytes.Repeat([]byte("{\"type\":\"danmaku\",\"text\":\"spam\"}\n"), 40)),
	} {
		f.Add(s)
	}
	rs := startTCPHub(f, DefaultConfig(), 0)
	n := 0
	f.Fuzz(func(t *testing.T, script string) {
		n++
		room := "fz" + strconv.Itoa(n)
		a := rs.dial(t, room, "a", 0)
		b := rs.dial(t, room, "b", 0)
		for _, ws := range []*websocket.Conn{a, b} {
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := ws.ReadMessage(); err != nil { // the welcome
				t.Fatal(err)
			}
		}
		go func() { // the attacker's own answers are not read: its queue may fill
			for {
				if _, _, err := a.ReadMessage(); err != nil {
					return
				}
			}
		}()
		for i, fr := range bytes.Split([]byte(script), []byte("\n")) {
			if i == 64 {
				break
			}
			typ := websocket.TextMessage
			if len(fr) > 0 && fr[0] == 0x02 {
				typ, fr = websocket.BinaryMessage, fr[1:]
			}
			if a.WriteMessage(typ, fr) != nil {
				break // closed on the attacker, as abuse may be
			}
		}
		for i := range 2 {
			text := "ok" + strconv.Itoa(i)
			if err := b.WriteJSON(map[string]string{"type": "danmaku", "text": text}); err != nil {
				t.Fatal(err)
			}
			_ = b.SetReadDeadline(time.Now().Add(3 * time.Second))
			for found := false; !found; {
				_, data, err := b.ReadMessage()
				if err != nil {
					t.Fatalf("bystander waiting for %s: %v", text, err)
				}
				var evs []map[string]any
				if err := json.Unmarshal(data, &evs); err != nil {
					t.Fatalf("frame %q: %v", data, err)
				}
				for _, e := range evs {
					if e["type"] == "error" {
						t.Fatalf("bystander refused: %v", e)
					}
					found = found || e["type"] == "danmaku" && e["text"] == text
				}
			}
		}
	})
}
