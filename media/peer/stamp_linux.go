//go:build linux

package peer

import (
	"net"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockReader reads a client socket's datagrams with the time the kernel received them
// (SO_TIMESTAMPNS) and, when asked to, takes a segmented send whole (UDP_GRO): the
// kernel then queues a sender's run of datagrams as one buffer, with the size of each,
// instead of cutting it up and queueing every datagram on its own.
type sockReader struct {
	stamps, gro bool
	buf, oob    []byte
}

func (r *sockReader) init(c *net.UDPConn, gro bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		r.stamps = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) == nil
		r.gro = gro && unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, 1) == nil
	})
	if r.gro {
		r.buf = make([]byte, 1<<16) // a whole segmented send
	}
	// room for more than the two control messages asked for: were the kernel to cut
	// them short, a run's segment size would be lost with them
	r.oob = make([]byte, 128)
}

// read reads what arrived next: one datagram, or with GRO a run of them, each seg
// bytes but the last. It reads into p unless GRO needs its own larger buffer. The
// time it arrived is wanted only when want (else it may be zero).
func (r *sockReader) read(c *net.UDPConn, p []byte, want bool) (b []byte, seg int, from netip.AddrPort, at time.Time, err error) {
	if !r.gro && (!want || !r.stamps) {
		n, from, err := c.ReadFromUDPAddrPort(p)
		if want {
			at = time.Now()
		}
		return p[:n], n, from, at, err
	}
	buf := p
	if r.gro {
		buf = r.buf
	}
	n, oobn, _, from, err := c.ReadMsgUDPAddrPort(buf, r.oob)
	if err != nil {
		return nil, 0, from, at, err
	}
	seg = n
	for oob := r.oob[:oobn]; len(oob) >= unix.CmsgLen(0); {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.CmsgLen(0) || l > len(oob) {
			break
		}
		data := oob[unix.CmsgLen(0):l]
		switch {
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SO_TIMESTAMPNS && len(data) >= 16:
			ts := (*unix.Timespec)(unsafe.Pointer(&data[0]))
			at = time.Unix(ts.Unix())
		case h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && len(data) >= 4:
			if s := int(*(*int32)(unsafe.Pointer(&data[0]))); s > 0 {
				seg = s
			}
		}
		oob = oob[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(oob)):]
	}
	if want && at.IsZero() {
		at = time.Now()
	}
	return buf[:n], seg, from, at, nil
}

// coalesces reports whether the socket takes segmented sends whole.
func (r *sockReader) coalesces() bool { return r.gro }
