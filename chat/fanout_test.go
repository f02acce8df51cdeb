package chat

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// chain links batches of items after an empty head, as a room's log does.
func chain(batches ...[]string) (head *batch, tail *batch) {
	head = &batch{}
	tail = head
	for i, items := range batches {
		b := &batch{at: time.Unix(int64(i+1), 0)}
		for _, it := range items {
			b.items = append(b.items, []byte(it))
			b.size += len(it)
		}
		tail.next.Store(b)
		tail = b
	}
	return head, tail
}

// pull writes every batch after the cursor as one frame that a WebSocket client reads
// as the JSON array of their events, at each of the three header lengths; nothing
// after the cursor writes nothing.
func TestPullFrames(t *testing.T) {
	big := `"` + strings.Repeat("x", 70_000) + `"`
	for _, c := range []struct {
		name    string
		batches [][]string
		want    string
	}{
		{"short", [][]string{{`{"a":1}`}, {}, {`{"b":2}`, `{"c":3}`}}, `[{"a":1},{"b":2},{"c":3}]`},
		{"16-bit length", [][]string{{`"` + strings.Repeat("y", 300) + `"`}}, `["` + strings.Repeat("y", 300) + `"]`},
		{"64-bit length", [][]string{{big}, {`1`}}, `[` + big + `,1]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			head, tail := chain(c.batches...)
			buf, last, oldest := pull(head, []byte("keep"))
			if last != tail || !oldest.Equal(time.Unix(1, 0)) || string(buf[:4]) != "keep" {
				t.Fatalf("cursor %p (want %p), oldest %v, prefix %q", last, tail, oldest, buf[:4])
			}
			if got := readFrame(t, appendHeader(buf[4:], opPing, 0)); got != c.want {
				t.Fatalf("read %.80q…, want %.80q…", got, c.want)
			}
			if again, last2, oldest2 := pull(tail, nil); again != nil || last2 != tail || !oldest2.IsZero() {
				t.Fatalf("nothing after the tail, got %q", again)
			}
		})
	}
}

// readFrame writes raw to a gorilla client over TCP and returns the text message it
// reads (a ping after it is answered by the client on its own).
func readFrame(t *testing.T, raw []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		n, _ := c.Read(buf) // the client's handshake
		key := ""
		for _, line := range strings.Split(string(buf[:n]), "\r\n") {
			if k, v, ok := strings.Cut(line, ": "); ok && strings.EqualFold(k, "Sec-WebSocket-Key") {
				key = v
			}
		}
		c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + acceptKey(key) + "\r\n\r\n"))
		c.Write(raw)
		c.Read(buf) // until the client closes
	}()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	kind, data, err := ws.ReadMessage()
	if err != nil || kind != websocket.TextMessage || !json.Valid(data) {
		t.Fatalf("read kind %d, %d bytes, %v (valid JSON %v)", kind, len(data), err, json.Valid(data))
	}
	return string(data)
}

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// The cycle order keeps every connection's place when another leaves, except the last
// one's, which fills the gap; the index stays consistent.
func TestConnOrder(t *testing.T) {
	r := &room{conns: map[*conn]int{}}
	cs := make([]*conn, 5)
	for i := range cs {
		cs[i] = &conn{}
		r.addConn(cs[i])
	}
	if !r.removeConn(cs[1]) || r.removeConn(cs[1]) || !r.removeConn(cs[3]) {
		t.Fatal("remove reported wrongly")
	}
	want := []*conn{cs[0], cs[4], cs[2]}
	if len(r.order) != len(want) {
		t.Fatalf("order has %d, want %d", len(r.order), len(want))
	}
	for i, c := range want {
		if r.order[i] != c || r.conns[c] != i {
			t.Fatalf("place %d: %p (index %d), want %p", i, r.order[i], r.conns[c], c)
		}
	}
	if !r.removeConn(cs[2]) || len(r.order) != 2 || r.conns[cs[4]] != 1 { // the last one itself
		t.Fatalf("removing the last: %v", r.conns)
	}
}
