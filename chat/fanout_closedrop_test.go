package chat

import (
	"bytes"
	"io"
	"runtime"
	"testing"
	"time"
)

// visit hands the rest of a partially written frame to the writer goroutine with wmu
// held (outFrame.locked). A close before that writer has taken the rest (room ban, hub
// shutdown's 1001, refused-message abuse…) keeps the rest first: the client reads the
// whole frame, then the close, never the close's bytes as payload.
func TestCloseAfterHalfFrame(t *testing.T) {
	ws, c := welcomed(t, DefaultConfig(), 4096, 4096)
	for { // the welcome's writer has ended
		c.mu.Lock()
		w := c.writing
		c.mu.Unlock()
		if !w {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A room batch larger than the socket takes at once.
	item := `"` + string(bytes.Repeat([]byte("x"), 1<<20)) + `"`
	head, _ := chain([]string{item})
	c.mu.Lock()
	c.cursor = head
	c.mu.Unlock()
	frame, _, _ := pull(head, nil)

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // the writer goroutine starts, but runs after close
	c.visit(false, nil, newSock())
	c.mu.Lock()
	q0 := c.queue[0]
	c.mu.Unlock()
	if !q0.locked {
		t.Fatalf("expected a partial write handed off, queue[0] = %+v", q0.kind)
	}
	written := len(frame) - len(q0.data)
	c.close(1013, "too slow: resume with since") // as the room's close would

	raw := ws.NetConn()
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(raw)
	after := got[min(written, len(got)):]
	t.Logf("frame %d bytes, %d written by visit; client got %d bytes, then: % .40x", len(frame), written, len(got), after)
	if end := min(len(frame), len(got)); len(got) > written && !bytes.Equal(got[written:end], frame[written:end]) {
		t.Fatalf("a close frame was written %d bytes into a %d-byte room frame", written, len(frame))
	}
}
