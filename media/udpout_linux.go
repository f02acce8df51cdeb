//go:build linux

package media

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// segmentsHere says whether a run of datagrams can leave in one write on this system.
const segmentsHere = true

// sysSocket is the shared socket as the kernel sees it.
type sysSocket struct {
	raw   syscall.RawConn
	inet6 bool        // an AF_INET6 socket: IPv4 destinations go as mapped addresses
	noGSO atomic.Bool // the kernel cannot segment (no UDP_SEGMENT, or the device): one by one
}

func (s *sysSocket) open(conn *net.UDPConn) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	s.raw = raw
	var sa unix.Sockaddr
	var serr error
	if err := raw.Control(func(fd uintptr) { sa, serr = unix.Getsockname(int(fd)) }); err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	_, s.inet6 = sa.(*unix.SockaddrInet6)
	// A kernel without UDP_SEGMENT (before 4.18) ignores the option it does not know
	// and sends a run as one big datagram; ask first, as quic-go does.
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		_, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	}); err != nil || gerr != nil {
		s.noGSO.Store(true)
	}
	// Best effort past net.core.wmem_max (needs CAP_NET_ADMIN): a keyframe burst to
	// many viewers must fit, since a full socket drops rather than waits.
	_ = raw.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sockBuffer)
	})
	return nil
}

// disableSegments makes every datagram its own write from now on.
func (s *sysSocket) disableSegments() { s.noGSO.Store(true) }

// sysBatch is a batch's kernel-facing scratch, kept so that a send allocates nothing.
type sysBatch struct {
	sock  *sysSocket
	write func(fd uintptr) bool // made once: a closure made per send would be allocated

	// the send in progress, and what it did
	b         []byte
	seg, n    int
	to        netip.AddrPort
	calls, ok int

	sa4 unix.SockaddrInet4
	sa6 unix.SockaddrInet6
	oob []byte
}

func (s *sysBatch) init(q *udpBatch) {
	s.sock = &q.out.sys
	s.oob = make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&s.oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	s.write = func(fd uintptr) bool {
		s.calls, s.ok = s.sendmsg(int(fd))
		return true // never wait for room: a full socket drops, like a full link
	}
}

// send writes n datagrams held back to back in b (each seg bytes but the last) to to,
// and reports how many system calls it took and how many datagrams the kernel took.
func (s *sysBatch) send(b []byte, seg, n int, to netip.AddrPort) (calls, ok int) {
	s.b, s.seg, s.n, s.to = b, seg, n, to
	if err := s.sock.raw.Write(s.write); err != nil {
		return 0, 0
	}
	s.b = nil
	return s.calls, s.ok
}

func (s *sysBatch) sendmsg(fd int) (calls, ok int) {
	sa, err := s.sockaddr(s.to)
	if err != nil {
		return 0, 0
	}
	if s.n > 1 && !s.sock.noGSO.Load() {
		*(*uint16)(unsafe.Pointer(&s.oob[unix.CmsgLen(0)])) = uint16(s.seg)
		_, err := unix.SendmsgN(fd, s.b, s.oob, sa, 0)
		switch {
		case err == nil:
			return 1, s.n
		case errors.Is(err, unix.EIO):
			// the device cannot segment: from now on, one by one
			s.sock.noGSO.Store(true)
		case !errors.Is(err, unix.EMSGSIZE) && !errors.Is(err, unix.EINVAL):
			return 1, 0
		}
		// EMSGSIZE (EINVAL on older kernels): a segment does not fit this route's MTU,
		// a path MTU learned for this viewer, say. Its datagrams go one by one, which
		// the kernel may fragment, as it did for pion's writes.
		calls = 1
	}
	for off := 0; off < len(s.b); off += s.seg {
		calls++
		if unix.Sendto(fd, s.b[off:min(off+s.seg, len(s.b))], 0, sa) == nil {
			ok++
		}
	}
	return calls, ok
}

func (s *sysBatch) sockaddr(to netip.AddrPort) (unix.Sockaddr, error) {
	a := to.Addr()
	switch {
	case a.Is4() && !s.sock.inet6:
		s.sa4.Addr, s.sa4.Port = a.As4(), int(to.Port())
		return &s.sa4, nil
	case s.sock.inet6:
		s.sa6.Addr, s.sa6.Port = a.As16(), int(to.Port())
		return &s.sa6, nil
	}
	return nil, errNoRoute
}
