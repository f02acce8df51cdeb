package chat

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/liveroom/liveroom/event"
)

// tcpHub is a hub served over real TCP (so the fan-out's raw writes are used).
type tcpHub struct {
	hub *Hub
	srv *httptest.Server
}

// startTCPHub serves a new hub over loopback TCP; sndbuf > 0 shrinks the server
// sockets' send buffer (a slow client).
func startTCPHub(t testing.TB, cfg Config, sndbuf int) *tcpHub {
	t.Helper()
	return startTCPHubWith(t, cfg, sndbuf, NewMemoryStore())
}

// startTCPHubWith is startTCPHub on the given store.
func startTCPHubWith(t testing.TB, cfg Config, sndbuf int, store Store) *tcpHub {
	t.Helper()
	h, err := New(cfg, Deps{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	rs := &tcpHub{hub: h}
	up := &websocket.Upgrader{WriteBufferPool: &sync.Pool{}}
	rs.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		room := strings.TrimPrefix(r.URL.Path, "/")
		id := r.URL.Query().Get("u")
		tk, err := h.Admit(r.Context(), room, event.User{ID: id, Name: id, Role: event.RoleViewer}, id)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		tk.Accept(up, w, r, -1)
	}))
	if sndbuf > 0 {
		rs.srv.Listener = sndbufListener{rs.srv.Listener, sndbuf}
	}
	rs.srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Close(ctx)
		rs.srv.Close()
	})
	return rs
}

// sndbufListener shrinks the send buffer of every connection it accepts.
type sndbufListener struct {
	net.Listener
	size int
}

func (l sndbufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(l.size)
	}
	return c, err
}

// dial connects user to room; rcvbuf > 0 shrinks the client's receive buffer.
func (rs *tcpHub) dial(t testing.TB, room, user string, rcvbuf int) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nd := &net.Dialer{}
		if rcvbuf > 0 { // before connect, so that the window stays small
			nd.Control = func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) {
					_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
				})
			}
		}
		return nd.DialContext(ctx, network, addr)
	}}
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(rs.srv.URL, "http")+"/"+room+"?u="+user, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// serverConn returns the server side of user's connection in room, once joined.
func (rs *tcpHub) serverConn(t *testing.T, roomID, user string) *conn {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		rs.hub.mu.Lock()
		r := rs.hub.rooms[roomID]
		rs.hub.mu.Unlock()
		if r != nil {
			var found *conn
			_ = r.call(context.Background(), func(r *room) {
				for c := range r.conns {
					if c.user.ID == user {
						found = c
					}
				}
			})
			if found != nil {
				return found
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s never joined %s", user, roomID)
	return nil
}

// welcomed connects v1 to room r1 of a new hub (sndbuf and rcvbuf > 0 shrink the
// server's and the client's socket buffers), reads its welcome and returns both ends.
func welcomed(t *testing.T, cfg Config, sndbuf, rcvbuf int) (*websocket.Conn, *conn) {
	t.Helper()
	rs := startTCPHub(t, cfg, sndbuf)
	ws := rs.dial(t, "r1", "v1", rcvbuf)
	if _, _, err := ws.ReadMessage(); err != nil { // the welcome
		t.Fatal(err)
	}
	return ws, rs.serverConn(t, "r1", "v1")
}
