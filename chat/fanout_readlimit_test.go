package chat

import (
	"bytes"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wmu is held from the fan-out's partial write until the writer goroutine writes the
// rest (visit → outFrame.locked). The reader's 1009 for a message over the read limit
// (chat's own check, not gorilla's, which would write it without wmu) waits for it:
// the client reads the whole frame, then the close.
func TestReadLimitCloseAfterHalfFrame(t *testing.T) {
	ws, c := welcomed(t, DefaultConfig(), 0, 0)

	// Exactly what visit leaves behind on a partial write: wmu held, the header and
	// half the payload of a room frame on the wire, the rest waiting for the writer.
	payload := []byte(`[` + string(bytes.Repeat([]byte(`"x",`), 24)) + `"x"]`)
	frame := append(appendHeader(nil, opText, len(payload)), payload...)
	half := len(frame) / 2
	c.wmu.Lock()
	if n, err := c.writeNow(newSock(), frame[:half]); n != half || err != nil {
		t.Fatalf("wrote %d, %v", n, err)
	}

	// The client sends a frame over ReadLimit (documented: closes with 1009).
	if err := ws.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("a"), 9000)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)                                                     // the reader waits for wmu meanwhile
	if n, err := c.writeNow(newSock(), frame[half:]); n != len(frame)-half || err != nil { // as the writer would
		t.Fatalf("wrote the rest: %d, %v", n, err)
	}
	c.wmu.Unlock()

	// The client reads the whole room frame, then the 1009 close.
	typ, data, err := ws.ReadMessage()
	if err != nil || typ != websocket.TextMessage || !bytes.Equal(data, payload) {
		t.Fatalf("read %d %q %v; want the room frame whole", typ, data, err)
	}
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("then %v, want a 1009 close", err)
	}
}
