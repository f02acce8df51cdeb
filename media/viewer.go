package media

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// viewerCounters are one viewer's delivery figures (also summed for departed viewers).
type viewerCounters struct {
	sent, dropped, retransmitted atomic.Uint64
	switches                     atomic.Uint64 // simulcast layer switches
}

func (c *viewerCounters) add(o *viewerCounters) {
	c.sent.Add(o.sent.Load())
	c.dropped.Add(o.dropped.Load())
	c.retransmitted.Add(o.retransmitted.Load())
	c.switches.Add(o.switches.Load())
}

// viewer is one WHEP peer's view of a stream: its read cursor into the ring and one
// binding per track.
type viewer struct {
	binds [maxStreamTracks]*binding
	// sim is the binding of a simulcast section's layers (each of them in binds points
	// to it), else nil
	sim *binding
	// cursor is the next ring position to send; only the owning shard moves it after
	// addViewer has set it.
	cursor, joinPos uint64
	// key is the keyframe cache the viewer skips to when it lags: its video track's,
	// or the simulcast layer it gets now (moved by the owning shard at a switch)
	key      *keyCache
	counters viewerCounters
	// loss (fraction lost ×256) and rtt (µs) from the viewer's receiver reports
	loss, rtt atomic.Uint32
	gone      func() // called when the stream ends

	// out is the viewer's direct path (nil: pion's path); sendRTCP reaches its peer
	// with the sender reports the relay makes for it.
	out      atomic.Pointer[srtpOut]
	sendRTCP func([]rtcp.Packet) error
	// reportCheck is when drain next looks for due sender reports (drain's alone)
	reportCheck time.Time
}

// reportCheckEvery is how often a viewer's tracks are checked for due sender reports
// once each has sent a live packet: a report is at most this late, and a pass does
// not lock every binding to find out. Until then they are checked on every pass, so
// a joiner's first report leaves with its first live packet.
const reportCheckEvery = senderReportInterval / 10

// drainBurst is the most packets one viewer gets per pass of its writer: a joiner's
// cached GOP goes out in bursts its socket buffer can hold, not all at once.
const drainBurst = 48

// drain sends the packets the viewer has not had yet, at most drainBurst, through q
// (flushed before it returns), and reports whether more are waiting. A viewer that
// lags more than the backlog skips ahead to the latest keyframe (or to now, asking for
// one); the skipped packets count as dropped.
func (v *viewer) drain(s *Stream, q *udpBatch, now time.Time) (more bool) {
	head := s.ring.head.Load()
	if head-v.cursor > s.backlog {
		target := head
		if ks := v.key.start.Load(); ks > 0 && ks-1 > v.cursor && head-(ks-1) <= s.backlog {
			target = ks - 1
		} else {
			v.requestKeyframe(s)
		}
		v.counters.dropped.Add(target - v.cursor)
		v.cursor = target
	}
	if head-v.cursor > drainBurst {
		head, more = v.cursor+drainBurst, true
	}
	for ; v.cursor < head; v.cursor++ {
		sl := &s.ring.slots[v.cursor%ringSize]
		sl.mu.RLock()
		switch b := v.binds[sl.track]; {
		case sl.pos != v.cursor+1:
			v.counters.dropped.Add(1) // overwritten before we got to it
		case b == nil:
		case v.cursor < v.joinPos && b.kind == webrtc.RTPCodecTypeAudio:
			// replaying the cached picture: old audio would only be late
		case b.sim != nil:
			b.forward(v, sl, q, now, v.cursor >= v.joinPos)
		default:
			b.write(v, sl, q, now, v.cursor >= v.joinPos, nil)
		}
		sl.mu.RUnlock()
	}
	q.flush()
	if !now.Before(v.reportCheck) && !v.report() {
		v.reportCheck = now.Add(reportCheckEvery)
	}
	return more
}

// report sends the viewer's sender reports that are due, and reports whether a track
// still waits for its first live packet (and so for its first report). The relay
// makes them for both of its paths (pion's reporting interceptor is not used: it would
// count only what went through pion); their NTP time is the time of sending, so that
// the RTT the viewer's receiver reports give back is not inflated by the writer's pass.
func (v *viewer) report() (waiting bool) {
	if v.sendRTCP == nil {
		return false
	}
	now := time.Now()
	var due []rtcp.Packet
	for _, b := range v.binds {
		if b != nil {
			sr, unmapped := b.senderReport(now)
			if sr != nil {
				due = append(due, sr)
			}
			waiting = waiting || unmapped
		}
	}
	if len(due) > 0 {
		_ = v.sendRTCP(due)
	}
	return waiting
}

// requestKeyframe asks for a keyframe of the video the viewer gets (of a simulcast
// section, the layer it is to get).
func (v *viewer) requestKeyframe(s *Stream) {
	if v.sim != nil {
		v.sim.sim.target.Load().RequestKeyframe()
		return
	}
	s.RequestKeyframe()
}

// retransmit answers a NACK for seqs from the stream's cache (RFC 4585 §6.2.1). A
// simulcast viewer's sequence numbers are mapped back to the layer that carried them.
func (v *viewer) retransmit(s *Stream, b *binding, seqs []uint16) {
	q := s.batch(true)
	defer s.putBatch(q)
	now := time.Now()
	for _, seq := range seqs {
		t, in, out := b.track, seq, (*rewrite)(nil)
		if b.sim != nil {
			off, ok := rewrite{}, false
			if t, in, off, ok = b.sim.origin(&b.mu, seq); !ok {
				continue
			}
			out = &off
		}
		pos, ok := t.lookup(in)
		if !ok {
			continue
		}
		sl := &s.ring.slots[pos%ringSize]
		sl.mu.RLock()
		if sl.pos == pos+1 && sl.track == t.idx && sl.seq == in {
			b.write(v, sl, q, now, false, out)
		}
		sl.mu.RUnlock()
	}
	q.flush()
}

// binding is one track bound to one viewer's PeerConnection: pion's TrackLocal, with
// the viewer's own SSRC and payload type.
type binding struct {
	track *Track
	kind  webrtc.RTPCodecType
	id    string

	mu     sync.Mutex // guards hdr, writer and sr: the shard and the RTCP reader both write
	hdr    rtp.Header
	writer webrtc.TrackLocalWriter
	ssrc   uint32
	clock  uint32
	sr     senderStats

	// retransmission budget, used only by this binding's RTCP reader
	rtxSince time.Time
	rtxCount int

	sim *simulcast // a simulcast section's layers: which one this viewer gets
}

// maxRetransmits bounds the packets resent to one viewer per second, so a viewer
// whose link (or CPU) is saturated cannot turn its losses into a NACK storm that
// costs the relay more than its live packets.
const maxRetransmits = 150

// retransmitBudget reports whether n more retransmissions fit this second's budget.
func (b *binding) retransmitBudget(now time.Time, n int) bool {
	if now.Sub(b.rtxSince) >= time.Second {
		b.rtxSince, b.rtxCount = now, 0
	}
	if b.rtxCount+n > maxRetransmits {
		return false
	}
	b.rtxCount += n
	return true
}

var _ webrtc.TrackLocal = (*binding)(nil)

func newBinding(t *Track) *binding {
	b := &binding{track: t, kind: t.kind, id: t.kind.String()}
	if t.group != nil {
		b.sim = newSimulcast(t.group)
	}
	return b
}

// write sends one cached packet with this viewer's SSRC and payload type: into q on
// the viewer's direct path, else through pion. Either way it is counted for the viewer
// (as sent, or retransmitted for a retransmission batch). live says the packet is
// sent as it happens (not replayed to a joiner, not resent): only those set the
// sender reports' clock. The header lives in the binding, so nothing is allocated per
// packet.
//
// out moves the packet's sequence number and timestamp onto the viewer's track: nil
// but for a simulcast section (layers.go). A pointer, so that the arguments still
// fit the registers on the plain path.
func (b *binding) write(v *viewer, sl *slot, q *udpBatch, now time.Time, live bool, out *rewrite) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.writer == nil {
		return
	}
	b.hdr.Marker, b.hdr.SequenceNumber, b.hdr.Timestamp = sl.marker, sl.seq, sl.ts
	if out != nil {
		b.hdr.SequenceNumber += out.seq
		b.hdr.Timestamp += out.ts
	}
	if o := v.out.Load(); o != nil {
		if q.add(o, &v.counters, &b.hdr, sl.payload) == nil {
			b.sr.note(b.hdr.SequenceNumber, b.hdr.Timestamp, len(sl.payload), now, live)
			return
		}
		// no UDP route (the pair is TCP now): pion's path still reaches the viewer
	}
	if _, err := b.writer.WriteRTP(&b.hdr, sl.payload); err != nil {
		return
	}
	b.sr.note(b.hdr.SequenceNumber, b.hdr.Timestamp, len(sl.payload), now, live)
	if q.retrans {
		v.counters.retransmitted.Add(1)
	} else {
		v.counters.sent.Add(1)
	}
}

// senderStats are what a sender report says about a track.
type senderStats struct {
	packets, octets uint32
	mapped          bool   // a live packet was sent: lastTS and lastAt hold
	lastSeq         uint16 // of the newest live packet
	lastTS          uint32
	lastAt          time.Time // when the first packet with lastTS was sent
	reportedAt      time.Time
}

// senderReportInterval is how often the direct path reports each track (pion's
// interceptor uses the same).
const senderReportInterval = time.Second

// note counts a packet sent; a live one newer than any before also moves the clock
// (as pion's interceptor does: a resent or replayed packet's timestamp is old).
func (st *senderStats) note(seq uint16, ts uint32, octets int, now time.Time, live bool) {
	st.packets++
	st.octets += uint32(octets)
	if !live || (st.mapped && seq-st.lastSeq >= 0x8000) {
		return
	}
	if !st.mapped || ts != st.lastTS {
		st.lastTS, st.lastAt = ts, now
	}
	st.mapped, st.lastSeq = true, seq
}

// senderReport returns the track's sender report when one is due: the RTP time of now
// extrapolated from the last packet sent, as RFC 3550 §6.4.1 asks, so that the player
// can line audio and video up. unmapped says no live packet was sent yet.
func (b *binding) senderReport(now time.Time) (sr *rtcp.SenderReport, unmapped bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := &b.sr
	if !st.mapped {
		return nil, true
	}
	if now.Sub(st.reportedAt) < senderReportInterval {
		return nil, false
	}
	st.reportedAt = now
	return &rtcp.SenderReport{
		SSRC:        b.ssrc,
		NTPTime:     ntpTime(now),
		RTPTime:     st.lastTS + uint32(now.Sub(st.lastAt).Seconds()*float64(b.clock)),
		PacketCount: st.packets,
		OctetCount:  st.octets,
	}, false
}

// Bind picks the negotiated codec that matches the source's and records the SSRC and
// payload type this viewer expects.
func (b *binding) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if codecMatches(b.track.codec.RTPCodecCapability, c.RTPCodecCapability) {
			b.mu.Lock()
			b.ssrc, b.clock = uint32(ctx.SSRC()), c.ClockRate
			b.hdr = rtp.Header{Version: 2, PayloadType: uint8(c.PayloadType), SSRC: b.ssrc}
			b.writer = ctx.WriteStream()
			b.mu.Unlock()
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
}

// Unbind stops writes to the PeerConnection.
func (b *binding) Unbind(webrtc.TrackLocalContext) error {
	b.mu.Lock()
	b.writer = nil
	b.mu.Unlock()
	return nil
}

func (b *binding) bound() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.writer != nil
}

// ID is "audio" or "video".
func (b *binding) ID() string { return b.id }

// RID is empty: viewers get one layer (of a simulcast section, one at a time).
func (b *binding) RID() string { return "" }

// StreamID groups the tracks for the player's MediaStream.
func (b *binding) StreamID() string { return "liveroom" }

// Kind is the track's kind.
func (b *binding) Kind() webrtc.RTPCodecType { return b.kind }

// handleRTCP acts on one viewer's feedback: NACKs are answered from the cache,
// PLI/FIR go to the source (rate-limited), receiver reports feed the stats; for a
// simulcast section, receiver reports and REMB also choose the layer.
func (v *viewer) handleRTCP(s *Stream, b *binding, pkts []rtcp.Packet, now time.Time) {
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.TransportLayerNack:
			for _, pair := range p.Nacks {
				if seqs := pair.PacketList(); b.retransmitBudget(now, len(seqs)) {
					v.retransmit(s, b, seqs)
				}
			}
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			v.requestKeyframe(s)
		case *rtcp.ReceiverEstimatedMaximumBitrate:
			if b.sim != nil {
				b.sim.estimate(p.Bitrate, now)
			}
		case *rtcp.ReceiverReport:
			for _, r := range p.Reports {
				if r.SSRC != b.ssrc {
					continue
				}
				v.loss.Store(uint32(r.FractionLost))
				if b.sim != nil {
					b.sim.lossReport(r.FractionLost, now)
				}
				if r.LastSenderReport != 0 {
					// RTT = arrival − LSR − DLSR, all in 1/65536 s (RFC 3550 §6.4.1).
					if d := ntpMiddle(now) - r.LastSenderReport - r.Delay; d < 1<<20 {
						v.rtt.Store(uint32(uint64(d) * 1e6 >> 16))
					}
				}
			}
		}
	}
}

// ntpTime is t as a 64-bit NTP timestamp.
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}

// ntpMiddle is the middle 32 bits of the NTP timestamp of t.
func ntpMiddle(t time.Time) uint32 { return uint32(ntpTime(t) >> 16) }

// codecMatches says whether a viewer-side codec can carry the source's codec
// unchanged: same MIME type and clock rate; for H.264 the same packetization mode and
// profile (profile_idc and constraint flags; the level may differ).
func codecMatches(src, c webrtc.RTPCodecCapability) bool {
	if !strings.EqualFold(src.MimeType, c.MimeType) || src.ClockRate != c.ClockRate {
		return false
	}
	if codecFamily(src.MimeType) != codecH264 {
		return true
	}
	pm := func(f string) string {
		if v := fmtpParam(f, "packetization-mode"); v != "" {
			return v
		}
		return "0"
	}
	prof := func(f string) string {
		v := strings.ToLower(fmtpParam(f, "profile-level-id"))
		if len(v) < 4 {
			return "4200" // RFC 6184 §8.1: the default profile-level-id is 420010
		}
		return v[:4]
	}
	return pm(src.SDPFmtpLine) == pm(c.SDPFmtpLine) && prof(src.SDPFmtpLine) == prof(c.SDPFmtpLine)
}

// fmtpParam reads key from an a=fmtp parameter list "k=v;k=v".
func fmtpParam(fmtp, key string) string {
	for _, kv := range strings.Split(fmtp, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}
