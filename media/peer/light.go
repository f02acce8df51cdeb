package peer

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
)

// A light viewer (Client.Light) lets pion decrypt and check its packets only until
// its first keyframe. From then on its socket counts the media packets by their RTP
// headers, which SRTP leaves in the clear, and pion never sees them: no decryption,
// no NACKs, no receiver-report statistics for them. It costs the load generator a
// fraction of a full viewer, so one core can watch as many viewers as the server
// under test can serve. Its loss figure is the raw one, before any repair.

// taps are the clients' UDP sockets by local address, so that a viewer can find the
// one its selected ICE pair reads from.
var taps sync.Map // netip.AddrPort → *tapConn

// tapConn is a client UDP socket that counts a light viewer's media itself. Until
// then it notes when each media packet reached the socket (the kernel's time where
// it tells), so a viewer's first keyframe is timed at its arrival, not when a busy
// load generator got round to decrypting it.
type tapConn struct {
	*net.UDPConn
	local netip.AddrPort
	v     atomic.Pointer[Viewer]

	// used by the one goroutine that reads: the reader, and what is left of the last
	// run of datagrams it read (rest, each seg bytes but the last, from, arrived at)
	rd   sockReader
	rest []byte
	seg  int
	from netip.AddrPort
	at   time.Time

	mu       sync.Mutex
	arrivals [256]arrival // by sequence number, modulo
}

type arrival struct {
	ssrc uint32
	seq  uint16
	at   time.Time
}

func newTapConn(c *net.UDPConn, gro bool) *tapConn {
	t := &tapConn{UDPConn: c, local: c.LocalAddr().(*net.UDPAddr).AddrPort()}
	t.rd.init(c, gro)
	taps.Store(t.local, t)
	return t
}

// ReadFrom hands pion everything but the media of the light viewer it serves, one
// datagram at a time.
func (t *tapConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		if len(t.rest) == 0 {
			b, seg, from, at, err := t.rd.read(t.UDPConn, p, t.v.Load() == nil) // a light viewer needs no times
			if err != nil {
				return 0, nil, err
			}
			t.rest, t.seg, t.from, t.at = b, max(seg, 1), from, at
		}
		d := t.rest[:min(t.seg, len(t.rest))]
		t.rest = t.rest[len(d):]
		if v := t.v.Load(); v != nil {
			if v.countRaw(d) {
				continue
			}
		} else if ssrc, seq, ok := rtpIDs(d); ok {
			t.mu.Lock()
			t.arrivals[seq%uint16(len(t.arrivals))] = arrival{ssrc, seq, t.at}
			t.mu.Unlock()
		}
		return copy(p, d), net.UDPAddrFromAddrPort(t.from), nil
	}
}

// arrived is when packet seq of ssrc reached the socket, if it is still noted.
func (t *tapConn) arrived(ssrc uint32, seq uint16) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.arrivals[seq%uint16(len(t.arrivals))]
	return a.at, a.ssrc == ssrc && a.seq == seq && !a.at.IsZero()
}

// rtpIDs reads the SSRC and sequence number of an RTP packet; RTCP, STUN and DTLS
// are not (RFC 5761 §4 tells RTP from RTCP by the payload type).
func rtpIDs(b []byte) (ssrc uint32, seq uint16, ok bool) {
	if len(b) < 12 || b[0]>>6 != 2 || (b[1] >= 192 && b[1] <= 223) {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(b[8:]), binary.BigEndian.Uint16(b[2:]), true
}

func (t *tapConn) Close() error {
	taps.CompareAndDelete(t.local, t)
	return t.UDPConn.Close()
}

var _ transport.UDPConn = (*tapConn)(nil)

// tap is the socket of v's selected ICE pair, when it is one of ours.
func (v *Viewer) tap() (*tapConn, bool) {
	pair, err := v.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil || pair.Local.Protocol != webrtc.ICEProtocolUDP {
		return nil, false
	}
	a, err := netip.ParseAddr(pair.Local.Address)
	if err != nil {
		return nil, false
	}
	t, ok := taps.Load(netip.AddrPortFrom(a, pair.Local.Port))
	if !ok {
		return nil, false
	}
	return t.(*tapConn), true
}

// goLight makes v count its own media from now on, on the socket of its selected ICE
// pair, and reports whether it could.
func (v *Viewer) goLight() bool {
	t, ok := v.tap()
	if !ok {
		return false
	}
	v.mu.Lock()
	v.light, v.gro = true, t.rd.coalesces()
	v.mu.Unlock()
	t.v.Store(v)
	return true
}

// countRaw counts b if it is an SRTP packet of one of v's tracks and reports whether
// it did.
func (v *Viewer) countRaw(b []byte) bool {
	ssrc, seq, ok := rtpIDs(b)
	if !ok {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	switch ssrc {
	case v.videoSSRC:
		v.video.add(seq)
	case v.audioSSRC:
		v.audio.add(seq)
	default:
		return false
	}
	v.bytes += uint64(len(b) - 12) // payload and authentication tag
	return true
}
