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

func (s *stamper) read(c *net.UDPConn, p []byte) (int, netip.AddrPort, time.Time, error) {
	n, from, err := c.ReadFromUDPAddrPort(p)
	return n, from, time.Now(), err
}
