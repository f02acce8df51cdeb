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
	noGSO atomic.Bool // the kernel refused a segmented send: send datagrams one by one
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
	return nil
}

// disableSegments makes every datagram its own write from now on.
func (s *sysSocket) disableSegments() { s.noGSO.Store(true) }

// sysBatch is a batch's kernel-facing scratch, kept so that a send allocates nothing.
type sysBatch struct {
	q     *udpBatch
	sock  *sysSocket
	write func(fd uintptr) bool // made once: a closure made per send would be allocated

	// the send in progress
	b      []byte
	seg, n int
	sent   int
	err    error

	sa4 unix.SockaddrInet4
	sa6 unix.SockaddrInet6
	oob []byte
}

func (s *sysBatch) init(q *udpBatch) {
	s.q, s.sock = q, &q.out.sys
	s.oob = make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&s.oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	s.write = func(fd uintptr) bool {
		s.sent, s.err = s.sendmsg(int(fd))
		return true // never wait for room: a full socket drops, like a full link
	}
}

// send writes n datagrams held back to back in b (each seg bytes but the last) to to,
// and reports how many system calls it took.
func (s *sysBatch) send(b []byte, seg, n int, to netip.AddrPort) (int, error) {
	s.b, s.seg, s.n = b, seg, n
	if err := s.sock.raw.Write(s.write); err != nil {
		return 0, err
	}
	s.b = nil
	return s.sent, s.err
}

func (s *sysBatch) sendmsg(fd int) (calls int, err error) {
	sa, err := s.sockaddr(s.q.to)
	if err != nil {
		return 0, err
	}
	if s.n > 1 && !s.sock.noGSO.Load() {
		*(*uint16)(unsafe.Pointer(&s.oob[unix.CmsgLen(0)])) = uint16(s.seg)
		_, err := unix.SendmsgN(fd, s.b, s.oob, sa, 0)
		if !errors.Is(err, unix.EIO) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOPROTOOPT) {
			return 1, err
		}
		// no segmentation offload here (or not for this route): from now on, one by one
		s.sock.noGSO.Store(true)
		calls = 1
	}
	for off := 0; off < len(s.b); off += s.seg {
		end := min(off+s.seg, len(s.b))
		calls++
		if e := unix.Sendto(fd, s.b[off:end], 0, sa); e != nil {
			err = e
		}
	}
	return calls, err
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
