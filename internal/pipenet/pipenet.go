// Package pipenet is an in-memory network for tests: a listener whose connections
// are net.Pipe pairs. A pipe buffers nothing, so a client that stops reading blocks
// the server's next write at once, and a whole server can run inside a synctest
// bubble, whose timers run on the bubble's fake clock.
package pipenet

import (
	"context"
	"net"
	"sync"
)

// Listener hands the server ends of the pipes that Dial makes to whoever Accepts.
type Listener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// New returns a listener; close it when done.
func New() *Listener {
	return &Listener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept implements net.Listener.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (l *Listener) Close() error { l.once.Do(func() { close(l.done) }); return nil }

// Addr implements net.Listener.
func (l *Listener) Addr() net.Addr { return addr{} }

// Dial makes a pipe and returns its client end once the server has taken the other;
// its signature fits a dialer's DialContext (the network and address are ignored).
func (l *Listener) Dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		client.Close()
		return nil, net.ErrClosed
	case <-ctx.Done():
		client.Close()
		return nil, ctx.Err()
	}
}

type addr struct{}

func (addr) Network() string { return "pipe" }
func (addr) String() string  { return "pipe" }
