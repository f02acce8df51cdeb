//go:build !linux

package media

import (
	"net"
	"net/netip"
)

// segmentsHere says whether a run of datagrams can leave in one write on this system.
const segmentsHere = false

// sysSocket is the shared socket; without segmentation offload each datagram is
// written on its own.
type sysSocket struct{ conn *net.UDPConn }

func (s *sysSocket) open(conn *net.UDPConn) error {
	s.conn = conn
	return nil
}

// disableSegments does nothing: every datagram is its own write here already.
func (s *sysSocket) disableSegments() {}

type sysBatch struct{ sock *sysSocket }

func (s *sysBatch) init(q *udpBatch) { s.sock = &q.out.sys }

// send writes n datagrams held back to back in b (each seg bytes but the last) to to,
// and reports how many system calls it took and how many datagrams went.
func (s *sysBatch) send(b []byte, seg, n int, to netip.AddrPort) (calls, ok int) {
	for off := 0; off < len(b); off += seg {
		calls++
		if _, err := s.sock.conn.WriteToUDPAddrPort(b[off:min(off+seg, len(b))], to); err == nil {
			ok++
		}
	}
	return calls, ok
}
