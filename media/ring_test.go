package media

import (
	"encoding/binary"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

func rtpPacket(seq uint16, ts uint32, marker bool, payload []byte) []byte {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: 1234, Marker: marker}, Payload: payload}
	b, _ := p.Marshal()
	return b
}

func TestParseRTP(t *testing.T) {
	ext := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 100, SequenceNumber: 7, Timestamp: 9, SSRC: 5, CSRC: []uint32{1, 2}}, Payload: []byte{1, 2, 3}}
	_ = ext.Header.SetExtension(3, []byte{0xaa, 0xbb})
	b, _ := ext.Marshal()
	h, err := parseRTP(b)
	if err != nil || h.seq != 7 || h.ts != 9 || h.pt != 100 || string(b[h.off:h.end]) != "\x01\x02\x03" {
		t.Fatalf("parse: %+v %v", h, err)
	}
	padded := rtpPacket(1, 1, false, []byte{9, 9, 0, 0, 4})
	padded[0] |= 0x20 // last byte says 4 bytes of padding
	if h, err := parseRTP(padded); err != nil || h.end-h.off != 1 {
		t.Fatalf("padding: %+v %v", h, err)
	}
	for _, bad := range [][]byte{nil, {0x80}, make([]byte, 12), {0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, append([]byte{0xa0}, make([]byte, 11)...)} {
		if bad != nil && len(bad) == 12 {
			bad[0] = 0 // version 0
		}
		if _, err := parseRTP(bad); err == nil && len(bad) != 12 {
			t.Errorf("accepted %x", bad)
		}
	}
}

func FuzzParseRTP(f *testing.F) {
	f.Add(rtpPacket(1, 2, true, []byte{0x65, 1, 2}))
	f.Add([]byte{0x90, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseRTP(b)
		if err == nil && (h.off > h.end || h.end > len(b)) {
			t.Fatalf("bounds %+v for %d bytes", h, len(b))
		}
		fam := []int{codecH264, codecVP8}
		if err == nil {
			for _, c := range fam {
				isKeyframe(c, b[h.off:h.end])
				videoSize(c, b[h.off:h.end])
			}
		}
	})
}

// discard is a TrackLocalWriter that counts and drops.
type discard struct{ n atomic.Int64 }

func (d *discard) WriteRTP(h *rtp.Header, p []byte) (int, error) { d.n.Add(1); return len(p), nil }
func (d *discard) Write(b []byte) (int, error)                   { d.n.Add(1); return len(b), nil }

// testStream is a started-free stream with one H.264 track and n bound viewers.
func testStream(tb testing.TB, n int, join string) (*Stream, *Track, []*viewer, *discard) {
	cfg := DefaultConfig()
	cfg.JoinKeyframe = join
	s := newStream("live", nil, cfg, nil)
	tr, err := s.AddTrack(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}}, webrtc.RTPCodecTypeVideo)
	if err != nil {
		tb.Fatal(err)
	}
	d := &discard{}
	var vs []*viewer
	for range n {
		v := &viewer{}
		b := newBinding(tr)
		b.writer, b.hdr, b.ssrc = d, rtp.Header{Version: 2, PayloadType: 102, SSRC: 42}, 42
		v.binds[0] = b
		if err := s.addViewer(v); err != nil {
			tb.Fatal(err)
		}
		vs = append(vs, v)
	}
	return s, tr, vs, d
}

func TestFanOutAndKeyframeCache(t *testing.T) {
	s, tr, vs, d := testStream(t, 3, JoinCache)
	idr := []byte{0x65, 0x88, 0x84}
	p := []byte{0x41, 0x9a, 0x02}
	seq := uint16(65530) // wraps
	write := func(payload []byte, ts uint32) {
		seq++
		if err := tr.WriteRTP(rtpPacket(seq, ts, true, payload)); err != nil {
			t.Fatal(err)
		}
	}
	write(p, 1) // before any keyframe
	write(idr, 2)
	write(p, 3)
	write(p, 4)
	for _, v := range vs {
		v.drain(s, s.shards[0].q, time.Now())
	}
	if got := d.n.Load(); got != 12 {
		t.Fatalf("delivered %d packets, want 12", got)
	}
	// A joiner starts at the cached keyframe: it gets the IDR and the 2 frames after.
	late := &viewer{}
	b := newBinding(tr)
	b.writer, b.ssrc = d, 7
	late.binds[0] = b
	if err := s.addViewer(late); err != nil {
		t.Fatal(err)
	}
	if got := late.counters.sent.Load(); got != 3 {
		t.Fatalf("joiner got %d packets from the cache as it joined, want 3", got)
	}
	late.drain(s, s.shards[0].q, time.Now())
	if got := late.counters.sent.Load(); got != 3 {
		t.Fatalf("joiner got %d packets from the cache, want 3 (none twice)", got)
	}
	// NACK: a cached packet is resent; an unknown one is not.
	late.retransmit(s, b, []uint16{seq, seq - 100})
	if got := late.counters.retransmitted.Load(); got != 1 {
		t.Fatalf("retransmitted %d, want 1", got)
	}
	// A viewer lagging past the backlog skips to the latest keyframe and counts drops.
	for i := range 3000 {
		payload := p
		if i == 2990 {
			payload = idr
		}
		write(payload, uint32(10+i))
	}
	vs[0].drain(s, s.shards[0].q, time.Now())
	if vs[0].counters.dropped.Load() == 0 {
		t.Fatal("lagging viewer did not drop")
	}
	if vs[0].cursor != s.ring.head.Load() {
		t.Fatal("lagging viewer did not catch up")
	}
	s.Stop()
}

func TestJoinRequestStrategyAsksForKeyframe(t *testing.T) {
	s, tr, _, _ := testStream(t, 0, JoinRequest)
	_ = tr.WriteRTP(rtpPacket(1, 1, true, []byte{0x65, 1}))
	v := &viewer{}
	if err := s.addViewer(v); err != nil {
		t.Fatal(err)
	}
	if v.cursor != s.ring.head.Load() || s.keyReqs.Load() != 1 {
		t.Fatalf("request strategy: cursor %d head %d requests %d", v.cursor, s.ring.head.Load(), s.keyReqs.Load())
	}
	if s.RequestKeyframe() {
		t.Fatal("a second request within 500 ms was not folded")
	}
}

func TestFanOutDoesNotAllocate(t *testing.T) {
	s, tr, vs, _ := testStream(t, 50, JoinCache)
	pkt := rtpPacket(1, 1, true, make([]byte, 1100))
	var seq uint16
	allocs := testing.AllocsPerRun(200, func() {
		seq++
		binary.BigEndian.PutUint16(pkt[2:], seq)
		_ = tr.WriteRTP(pkt)
		for _, v := range vs {
			v.drain(s, s.shards[0].q, time.Now())
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per forwarded packet", allocs)
	}
}

// BenchmarkFanOut is the hot path: one packet in, one write per viewer out (the
// writer discards, so this is the relay's own cost without SRTP and the syscall).
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(strconv.Itoa(n)+"viewers", func(b *testing.B) {
			s, tr, vs, _ := testStream(b, n, JoinCache)
			pkt := rtpPacket(1, 1, true, make([]byte, 1100))
			var seq uint16
			b.ReportAllocs()
			for b.Loop() {
				seq++
				binary.BigEndian.PutUint16(pkt[2:], seq)
				_ = tr.WriteRTP(pkt)
				for _, v := range vs {
					v.drain(s, s.shards[0].q, time.Now())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/viewer-packet")
		})
	}
}
