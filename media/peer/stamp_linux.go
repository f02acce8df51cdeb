//go:build linux

package peer

import (
	"net"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// stamper reads datagrams with the time the kernel received them (SO_TIMESTAMPNS).
type stamper struct {
	on  bool
	oob []byte
}

func (s *stamper) init(c *net.UDPConn) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err == nil && serr == nil {
		s.on, s.oob = true, make([]byte, unix.CmsgSpace(16))
	}
}

// read reads one datagram, with the time it arrived when want (else a zero time).
func (s *stamper) read(c *net.UDPConn, p []byte, want bool) (int, netip.AddrPort, time.Time, error) {
	if !want {
		n, from, err := c.ReadFromUDPAddrPort(p)
		return n, from, time.Time{}, err
	}
	if !s.on {
		n, from, err := c.ReadFromUDPAddrPort(p)
		return n, from, time.Now(), err
	}
	n, oobn, _, from, err := c.ReadMsgUDPAddrPort(p, s.oob)
	if err == nil && oobn >= unix.CmsgLen(16) {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&s.oob[0]))
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_TIMESTAMPNS {
			ts := (*unix.Timespec)(unsafe.Pointer(&s.oob[unix.CmsgLen(0)]))
			return n, from, time.Unix(ts.Unix()), nil
		}
	}
	return n, from, time.Now(), err
}
