package media

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/pion/rtp"
)

// maxSegments bounds the datagrams of one segmented (GSO) send; the kernel takes up
// to 64 everywhere it offers UDP_SEGMENT.
const maxSegments = 64

// maxBatchBytes bounds one segmented send: its datagrams travel as one IP packet of
// at most 64 KiB until they are cut.
const maxBatchBytes = 60 << 10

var errNoRoute = errors.New("viewer has no UDP address")

// udpOut writes viewers' media straight to the shared ICE UDP socket. Where the
// kernel can (Linux, UDP_SEGMENT), a run of same-sized packets to one viewer goes
// down in one system call and one trip through the IP stack, which is most of what a
// packet costs the relay (docs/media.md).
type udpOut struct {
	sys sysSocket

	writes, datagrams atomic.Uint64 // system calls, and the datagrams they carried
}

func newUDPOut(conn *net.UDPConn) (*udpOut, error) {
	u := &udpOut{}
	if err := u.sys.open(conn); err != nil {
		return nil, err
	}
	return u, nil
}

// udpBatch gathers encrypted packets for one destination so they leave together.
// Each writer goroutine owns one; it is not safe for concurrent use.
type udpBatch struct {
	out *udpOut
	buf []byte
	to  netip.AddrPort

	n, seg int  // datagrams held, and the size of each but the last
	short  bool // the last one held is shorter than seg: nothing may follow it

	// whose datagrams they are: sent (or retransmitted) counts them once the kernel
	// took them, dropped if it refused
	owner   *viewerCounters
	retrans bool

	plain []byte // scratch for the packet before encryption
	hdr   rtp.Header
	sys   sysBatch
}

func newUDPBatch(out *udpOut) *udpBatch {
	q := &udpBatch{out: out}
	if out != nil { // without a socket nothing is ever added: no buffers either
		q.buf, q.plain = make([]byte, 0, maxBatchBytes+maxPacket+64), make([]byte, maxPacket)
		q.sys.init(q)
	}
	return q
}

// room reports whether a datagram of up to n more bytes fits after those held.
func (q *udpBatch) room(n int) bool { return len(q.buf)+n <= cap(q.buf) }

// push adds the datagram just written at buf[start:] (for owner at to), sending what
// was held first when the two cannot go in one segmented send.
func (q *udpBatch) push(owner *viewerCounters, to netip.AddrPort, start int) {
	size := len(q.buf) - start
	if q.n > 0 && (owner != q.owner || to != q.to || q.short || size > q.seg || q.n == maxSegments || start+size > maxBatchBytes) {
		q.send(q.buf[:start])
		q.buf = append(q.buf[:0], q.buf[start:start+size]...)
	}
	if q.n == 0 {
		q.owner, q.to, q.seg = owner, to, size
	}
	q.n++
	q.short = size < q.seg
}

// flush sends whatever is held.
func (q *udpBatch) flush() {
	if q.n > 0 {
		q.send(q.buf)
	}
	q.buf, q.n, q.short = q.buf[:0], 0, false
}

// send writes the n held datagrams in b and forgets them.
func (q *udpBatch) send(b []byte) {
	n := q.n
	q.n, q.short = 0, false
	calls, ok := q.sys.send(b, q.seg, n, q.to)
	q.out.writes.Add(uint64(calls))
	q.out.datagrams.Add(uint64(ok))
	q.owner.dropped.Add(uint64(n - ok))
	if q.retrans {
		q.owner.retransmitted.Add(uint64(ok))
	} else {
		q.owner.sent.Add(uint64(ok))
	}
}
