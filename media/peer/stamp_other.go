//go:build !linux

package peer

import (
	"net"
	"net/netip"
	"time"
)

// sockReader reads datagrams one at a time, with the time they were read (no kernel
// time and no coalesced runs here).
type sockReader struct{}

func (r *sockReader) init(*net.UDPConn, bool) {}

// read reads one datagram into p, with the time it was read when want.
func (r *sockReader) read(c *net.UDPConn, p []byte, want bool) (b []byte, seg int, from netip.AddrPort, at time.Time, err error) {
	n, from, err := c.ReadFromUDPAddrPort(p)
	if want {
		at = time.Now()
	}
	return p[:n], n, from, at, err
}

// coalesces reports whether the socket takes segmented sends whole: never here.
func (r *sockReader) coalesces() bool { return false }
