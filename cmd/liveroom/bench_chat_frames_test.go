package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// frame encodes a server frame (unmasked).
func frame(op byte, fin bool, payload string) []byte {
	b := []byte{op}
	if fin {
		b[0] |= 0x80
	}
	b = appendLen(b, len(payload))
	return append(b, payload...)
}

func appendLen(b []byte, n int) []byte {
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		return append(b, 126, byte(n>>8), byte(n))
	}
	return append(b, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func TestNextFrame(t *testing.T) {
	long := strings.Repeat("x", 70000)
	for _, p := range []string{"", "hi", strings.Repeat("y", 200), long} {
		f := frame(websocket.TextMessage, true, p)
		for cut := range min(len(f), 12) { // every short prefix is "not yet"
			if _, _, _, n, err := nextFrame(f[:cut]); n != 0 || err != nil {
				t.Fatalf("%d-byte payload cut at %d: n %d, err %v", len(p), cut, n, err)
			}
		}
		op, fin, payload, n, err := nextFrame(append(f, 0x81))
		if err != nil || op != websocket.TextMessage || !fin || string(payload) != p || n != len(f) {
			t.Fatalf("%d-byte payload: op %d fin %v len %d n %d err %v", len(p), op, fin, len(payload), n, err)
		}
	}
	for name, bad := range map[string][]byte{
		"masked":   {0x81, 0x82, 1, 2, 3, 4, 'a', 'b'},
		"reserved": {0xC1, 0},
		"too long": {0x81, 127, 0, 0, 0, 0, 0x7f, 0, 0, 0},
	} {
		if _, _, _, _, err := nextFrame(bad); err == nil {
			t.Errorf("%s frame accepted", name)
		}
	}
}

// feed counts messages however the bytes are split, joins fragments, skips pings'
// payloads and stops at a close.
func TestRawReceiverFeed(t *testing.T) {
	msg := func(sender, n int) string {
		return fmt.Sprintf(`{"type":"danmaku","at":1,"text":"bench message %d","id":"b~%d~%d~%d"}`, n, sender, n, 1000000+n)
	}
	var stream []byte
	stream = append(stream, frame(websocket.TextMessage, true, `[`+msg(1, 1)+`,`+msg(2, 2)+`]`)...)
	stream = append(stream, frame(websocket.TextMessage, false, `[`+msg(1, 3)[:20])...)
	stream = append(stream, frame(websocket.PingMessage, true, "b~ping~0~1")...) // between fragments
	stream = append(stream, frame(0, true, msg(1, 3)[20:]+`]`)...)
	stream = append(stream, frame(websocket.TextMessage, true, `[{"type":"error","code":"rate_limited"}]`)...)
	stream = append(stream, frame(websocket.CloseMessage, true, "")...)
	stream = append(stream, frame(websocket.TextMessage, true, `[`+msg(9, 9)+`]`)...) // after the close: ignored
	for _, chunk := range []int{1, 2, 3, 7, 64, len(stream)} {
		var d benchDelays
		var delivered, refused atomic.Uint64
		var pongs []string
		r := &rawReceiver{pong: func(p []byte) { pongs = append(pongs, string(p)) }}
		for rest := stream; len(rest) > 0; {
			n := min(chunk, len(rest))
			r.feed(bytes.Clone(rest[:n]), 2000000, &d, &delivered, &refused)
			rest = rest[n:]
		}
		if delivered.Load() != 3 || refused.Load() != 1 || !r.done || len(pongs) != 1 || pongs[0] != "b~ping~0~1" {
			t.Fatalf("chunks of %d: delivered %d, refused %d, done %v, pongs %q", chunk, delivered.Load(), refused.Load(), r.done, pongs)
		}
	}
}

// A server that writes its first frame in the same write as the handshake's answer:
// the dialer through byteConn leaves that frame in the socket, for the raw reads.
func TestByteConnLeavesTheFirstFrameInTheSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	first := frame(websocket.TextMessage, true, `[{"type":"welcome"}]`)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		answer := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n"
		c.Write(append([]byte(answer), first...)) // one write, one segment
		time.Sleep(time.Second)
	}()
	var nd net.Dialer
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := nd.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &byteConn{Conn: c}, nil
	}}
	ws, _, err := d.Dial("ws://"+ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	bc := ws.NetConn().(*byteConn)
	bc.whole.Store(true)
	got := make([]byte, 256)
	bc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := io.ReadAtLeast(bc, got, len(first))
	if err != nil || !bytes.Equal(got[:n], first) {
		t.Fatalf("read %q (%v) from the socket after the handshake, want the first frame %q", got[:n], err, first)
	}
}

func FuzzRawReceiverFeed(f *testing.F) {
	f.Add(frame(websocket.TextMessage, true, `[{"type":"danmaku","at":1,"id":"b~1~1~5"}]`), 3)
	f.Add(append(frame(websocket.TextMessage, false, "[a"), frame(0, true, "b]")...), 1)
	f.Add([]byte{0x81, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 2)
	f.Fuzz(func(t *testing.T, stream []byte, chunk int) {
		chunk = max(1, chunk%64+1)
		var d benchDelays
		var delivered, refused atomic.Uint64
		r := &rawReceiver{pong: func([]byte) {}}
		for rest := stream; len(rest) > 0 && !r.done; {
			n := min(chunk, len(rest))
			r.feed(rest[:n], 1, &d, &delivered, &refused)
			rest = rest[n:]
		}
		if len(r.pending) > maxBenchFrame+10 {
			t.Fatalf("pending grew to %d", len(r.pending))
		}
	})
}
