//go:build !linux

package peer

import (
	"net"
	"net/netip"
	"time"
)

// stamper reads datagrams with the time they were read (no kernel time here).
type stamper struct{}

func (s *stamper) init(*net.UDPConn) {}

// read reads one datagram, with the time it was read when want (else a zero time).
func (s *stamper) read(c *net.UDPConn, p []byte, want bool) (int, netip.AddrPort, time.Time, error) {
	n, from, err := c.ReadFromUDPAddrPort(p)
	if !want {
		return n, from, time.Time{}, err
	}
	return n, from, time.Now(), err
}
