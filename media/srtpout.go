package media

import (
	"errors"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// srtpOut is a viewer's own way out: its PeerConnection's outbound SRTP context and
// the UDP address its media goes to. The relay encrypts with it and writes to the
// shared ICE socket itself, in batches, instead of handing each packet to pion's
// interceptors, SRTP session, ICE agent and UDP mux one at a time (about half of
// what a forwarded packet cost; docs/media.md). pion keeps everything else: ICE,
// DTLS, RTCP, and the viewers this path cannot serve (ICE over TCP, a pion whose
// internals moved), which keep its packet-by-packet path.
type srtpOut struct {
	ctx *srtp.Context
	mu  *sync.Mutex // pion's own lock around ctx
	to  atomic.Pointer[netip.AddrPort]
	ice *webrtc.ICETransport // whose selected pair gives to (nil in unit tests)
}

var errTooLarge = errors.New("packet larger than the relay sends")

var errNoSRTPContext = errors.New("pion's SRTP session is not where this build expects it")

// newSRTPOut reads the outbound SRTP context of a connected PeerConnection's DTLS
// transport. pion does not export it, so it is read by field name, with every type
// checked: a pion version that moved it yields an error, never a wrong pointer (the
// version is pinned in go.mod, and TestMediaRelayPionPeers fails if viewers lose the
// direct path).
func newSRTPOut(dt *webrtc.DTLSTransport) (*srtpOut, error) {
	if dt == nil {
		return nil, errNoSRTPContext
	}
	f := reflect.ValueOf(dt).Elem().FieldByName("srtpSession")
	if !f.IsValid() || f.Type() != reflect.TypeFor[atomic.Value]() {
		return nil, errNoSRTPContext
	}
	sess, ok := (*atomic.Value)(unsafe.Pointer(f.UnsafeAddr())).Load().(*srtp.SessionSRTP)
	if !ok || sess == nil {
		return nil, errNoSRTPContext // DTLS not finished yet
	}
	inner := reflect.ValueOf(sess).Elem().FieldByName("session")
	if !inner.IsValid() || inner.Kind() != reflect.Struct {
		return nil, errNoSRTPContext
	}
	mu, ctx := inner.FieldByName("localContextMutex"), inner.FieldByName("localContext")
	if !mu.IsValid() || mu.Type() != reflect.TypeFor[sync.Mutex]() ||
		!ctx.IsValid() || ctx.Type() != reflect.TypeFor[*srtp.Context]() {
		return nil, errNoSRTPContext
	}
	o := &srtpOut{mu: (*sync.Mutex)(unsafe.Pointer(mu.UnsafeAddr()))}
	o.mu.Lock()
	o.ctx = *(**srtp.Context)(unsafe.Pointer(ctx.UnsafeAddr()))
	o.mu.Unlock()
	if o.ctx == nil {
		return nil, errNoSRTPContext
	}
	return o, nil
}

// refresh routes the viewer's media by its ICE transport's selected pair now.
func (o *srtpOut) refresh() {
	p, err := o.ice.GetSelectedCandidatePair()
	if err != nil {
		p = nil
	}
	o.route(p)
}

// route sets where the viewer's media goes from its selected ICE pair: the remote
// address when the pair is UDP (on the shared socket), none otherwise.
func (o *srtpOut) route(p *webrtc.ICECandidatePair) {
	if p == nil || p.Remote == nil || p.Remote.Protocol != webrtc.ICEProtocolUDP {
		o.to.Store(nil)
		return
	}
	a, err := netip.ParseAddr(p.Remote.Address)
	if err != nil { // an mDNS name: pion resolves it, we leave this viewer to pion
		o.to.Store(nil)
		return
	}
	ap := netip.AddrPortFrom(a.Unmap(), p.Remote.Port)
	o.to.Store(&ap)
}

// addr is the viewer's current UDP address, if it has one.
func (o *srtpOut) addr() (netip.AddrPort, bool) {
	if p := o.to.Load(); p != nil {
		return *p, true
	}
	return netip.AddrPort{}, false
}

// add encrypts one packet (hdr and payload) for the viewer behind o and holds it for
// sending; the datagram is counted for owner when it leaves.
func (q *udpBatch) add(o *srtpOut, owner *viewerCounters, hdr *rtp.Header, payload []byte) error {
	to, ok := o.addr()
	if !ok {
		return errNoRoute
	}
	n := hdr.MarshalSize() + len(payload)
	if n > len(q.plain) {
		return errTooLarge
	}
	if !q.room(n + maxAuthTag) {
		q.flush()
	}
	hl, err := hdr.MarshalTo(q.plain)
	if err != nil {
		return err
	}
	copy(q.plain[hl:], payload)
	start := len(q.buf)
	o.mu.Lock()
	enc, err := o.ctx.EncryptRTP(q.buf[start:start], q.plain[:n], &q.hdr)
	o.mu.Unlock()
	if err != nil {
		return err
	}
	if len(enc) > 0 && &enc[0] != &q.buf[start : start+1][0] {
		return errTooLarge // cannot happen with room checked: never send a copy we do not hold
	}
	q.buf = q.buf[:start+len(enc)]
	q.push(owner, to, start)
	return nil
}

// maxAuthTag is the longest SRTP authentication tag (AES-GCM's).
const maxAuthTag = 16
