package media

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// recorder is a TrackLocalWriter that keeps what it is given.
type recorder struct {
	mu   sync.Mutex
	pkts []rtp.Packet
}

func (r *recorder) WriteRTP(h *rtp.Header, p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pkts = append(r.pkts, rtp.Packet{Header: *h, Payload: bytes.Clone(p)})
	return len(p), nil
}
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }

func (r *recorder) take() []rtp.Packet {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.pkts
	r.pkts = nil
	return out
}

var h264Codec = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}}

// simulcastViewer binds one viewer to a stream's simulcast layers, as a WHEP session does.
func simulcastViewer(layers []*Track, w webrtc.TrackLocalWriter) (*viewer, *binding) {
	v := &viewer{}
	b := newBinding(layers[0])
	b.writer, b.hdr, b.ssrc, b.clock = w, rtp.Header{Version: 2, PayloadType: 102, SSRC: 42}, 42, 90000
	for _, t := range layers {
		v.binds[t.idx] = b
	}
	v.sim = b
	return v, b
}

// twoLayers is a stream with a simulcast section of layers q and h, and a function
// that writes a one-packet frame to a layer.
func twoLayers(t *testing.T) (*Stream, []*Track, func(tr *Track, seq uint16, ts uint32, payload []byte)) {
	s := newStream("live", nil, DefaultConfig(), nil)
	layers, err := s.AddLayers(h264Codec, []string{"q", "h"})
	if err != nil {
		t.Fatal(err)
	}
	return s, layers, func(tr *Track, seq uint16, ts uint32, payload []byte) {
		t.Helper()
		if err := tr.WriteRTP(rtpPacket(seq, ts, true, payload)); err != nil {
			t.Fatal(err)
		}
	}
}

// A viewer of two layers moves from one to the other only at the other's keyframe,
// and sees one track: its sequence numbers follow on with no gap, its timestamps
// never go back; a NACK after the switch is answered from the layer that carried
// each packet, with the numbers the viewer saw.
func TestSimulcastSwitchAtKeyframeKeepsOneTrack(t *testing.T) {
	s, layers, write := twoLayers(t)
	q, h := layers[0], layers[1]
	idr, p := []byte{0x65, 0x88, 0x84}, []byte{0x41, 0x9a, 0x02}
	write(q, 100, 1000, idr)
	write(h, 5000, 700000, idr)
	write(q, 101, 4000, p)
	write(h, 5001, 703000, p)

	rec := &recorder{}
	v, b := simulcastViewer(layers, rec)
	if err := s.addViewer(v); err != nil { // starts on q (the lower of two), from its cached keyframe
		t.Fatal(err)
	}
	if got := rec.take(); len(got) != 2 || got[0].SequenceNumber != 100 || got[1].SequenceNumber != 101 {
		t.Fatalf("joiner got %v, want q's 100 and 101", seqs(got))
	}

	b.sim.target.Store(h) // the choice moves it up
	write(q, 102, 7000, p)
	write(h, 5002, 706000, p) // not a keyframe: stays on q
	v.drain(s, s.shards[0].q, time.Now())
	if got := rec.take(); len(got) != 1 || got[0].SequenceNumber != 102 || got[0].Timestamp != 7000 {
		t.Fatalf("before h's keyframe got %v, want q's 102 alone", seqs(got))
	}
	write(h, 5003, 709000, idr)
	write(q, 103, 10000, p)
	write(h, 5004, 712000, p)
	v.drain(s, s.shards[0].q, time.Now())
	got := rec.take()
	if len(got) != 2 || got[0].SequenceNumber != 103 || got[1].SequenceNumber != 104 {
		t.Fatalf("after h's keyframe got %v, want 103 and 104 (h's 5003 and 5004)", seqs(got))
	}
	if !bytes.Equal(got[0].Payload, idr) || got[0].SSRC != 42 {
		t.Fatalf("the switch's first packet %x on SSRC %d, want the keyframe on 42", got[0].Payload, got[0].SSRC)
	}
	if got[0].Timestamp <= 7000 || got[1].Timestamp-got[0].Timestamp != 3000 {
		t.Fatalf("timestamps %d, %d after 7000: want later, 3000 apart as h's", got[0].Timestamp, got[1].Timestamp)
	}
	if b.sim.cur.Load() != h || v.key != &h.key || v.counters.switches.Load() != 1 {
		t.Fatalf("after the switch: layer %v, key cache moved %v, switches %d", b.sim.cur.Load().rid, v.key == &h.key, v.counters.switches.Load())
	}

	ts104 := got[1].Timestamp
	v.retransmit(s, b, []uint16{101, 104, 105})
	got = rec.take()
	if len(got) != 2 || got[0].SequenceNumber != 101 || got[0].Timestamp != 4000 ||
		got[1].SequenceNumber != 104 || got[1].Timestamp != ts104 || !bytes.Equal(got[1].Payload, p) {
		t.Fatalf("NACK for 101, 104, 105 resent %v, want q's 101 as 101 and h's 5004 as 104 (105 was never sent)", seqs(got))
	}
}

func seqs(ps []rtp.Packet) []uint16 {
	var out []uint16
	for _, p := range ps {
		out = append(out, p.SequenceNumber)
	}
	return out
}

// The choice of layer, on feedback that a viewer sends: REMB and receiver reports.
func TestSimulcastChoice(t *testing.T) {
	now := time.Now()
	type step struct {
		at     time.Duration // since the viewer landed on its layer
		remb   float32       // 0: a receiver report instead
		loss   uint8
		want   string
		holdIs time.Duration // 0: not checked
	}
	for _, tc := range []struct {
		name  string
		rates []uint64 // q, h, f bits/s; 0: stopped
		from  string
		steps []step
	}{
		{"no feedback yet for minDwell", []uint64{100e3, 300e3, 900e3}, "h", []step{{at: time.Second, remb: 50e3, want: "h"}}},
		{"estimate fell below the layer", []uint64{100e3, 300e3, 900e3}, "f", []step{
			{at: 2500 * time.Millisecond, remb: 1300e3, want: "f"},
			{at: 3 * time.Second, remb: 250e3, want: "q"}, // to the highest that fits, past h
		}},
		{"a low estimate that never fell is a ramp", []uint64{100e3, 300e3, 900e3}, "h", []step{{at: 3 * time.Second, remb: 200e3, want: "h"}}},
		{"loss moves one down", []uint64{100e3, 300e3, 900e3}, "f", []step{
			{at: 3 * time.Second, loss: 12, want: "f"}, // 4.7 %
			{at: 4 * time.Second, loss: 40, want: "h"}, // 15.6 %
		}},
		{"capped estimate probes up after the hold", []uint64{100e3, 300e3, 900e3}, "q", []step{
			{at: 3 * time.Second, remb: 160e3, want: "q"},
			{at: 4500 * time.Millisecond, remb: 160e3, want: "h"},
		}},
		{"an undone probe doubles the hold", []uint64{100e3, 300e3, 900e3}, "q", []step{
			{at: 4500 * time.Millisecond, remb: 160e3, want: "h"},
			{at: 7 * time.Second, remb: 170e3, want: "h"}, // not a fall: a ramp
			{at: 7500 * time.Millisecond, remb: 150e3, want: "q", holdIs: 8 * time.Second},
			{at: 12 * time.Second, remb: 160e3, want: "q"}, // 4.5 s after: within the new hold
			{at: 16 * time.Second, remb: 160e3, want: "h"},
		}},
		{"a larger layer with fewer bits is no move up", []uint64{100e3, 30e3, 900e3}, "q", []step{{at: 5 * time.Second, remb: 160e3, want: "q"}}},
		{"loss blocks a probe", []uint64{100e3, 300e3, 900e3}, "q", []step{{at: 5 * time.Second, loss: 10, want: "q"}}},
		{"no REMB at all: receiver reports alone", []uint64{100e3, 300e3, 900e3}, "h", []step{{at: 5 * time.Second, loss: 0, want: "f"}}},
		{"a layer that stops is left", []uint64{100e3, 300e3, 0}, "f", []step{{at: 100 * time.Millisecond, loss: 0, want: "q"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStream("live", nil, DefaultConfig(), nil)
			defer s.Stop()
			layers, err := s.AddLayers(h264Codec, []string{"q", "h", "f"})
			if err != nil {
				t.Fatal(err)
			}
			byRID := map[string]*Track{}
			for i, l := range layers {
				byRID[l.rid] = l
				l.width.Store(int32(320 << i)) // as keyframes would show them
				l.height.Store(int32(180 << i))
				if tc.rates[i] > 0 {
					l.rate.bps.Store(tc.rates[i])
				}
			}
			m := newSimulcast(layers[0].group)
			m.movedAt = now
			m.target.Store(byRID[tc.from])
			for _, st := range tc.steps {
				at := now.Add(st.at)
				for i, l := range layers {
					if tc.rates[i] > 0 {
						l.rate.last.Store(at.UnixNano())
					}
				}
				m.cur.Store(m.target.Load()) // each switch done at once
				if st.remb > 0 {
					m.estimate(st.remb, at)
				} else {
					m.lossReport(st.loss, at)
				}
				if got := m.target.Load().rid; got != st.want {
					t.Fatalf("at %v: on %s, want %s", st.at, got, st.want)
				}
				if st.holdIs > 0 && m.hold != st.holdIs {
					t.Fatalf("at %v: hold %v, want %v", st.at, m.hold, st.holdIs)
				}
			}
		})
	}
}

// A viewer whose layer stops while another flows moves to that one at its next
// keyframe, with no RTCP from the viewer (the choice runs on feedback otherwise).
func TestSimulcastLayerStoppedMovesViewerWithoutFeedback(t *testing.T) {
	s, layers, write := twoLayers(t)
	q, h := layers[0], layers[1]
	idr, p := []byte{0x65, 0x88, 0x84}, []byte{0x41, 0x9a, 0x02}
	write(q, 100, 1000, idr)
	write(h, 5000, 700000, idr)
	rec := &recorder{}
	v, b := simulcastViewer(layers, rec)
	if err := s.addViewer(v); err != nil {
		t.Fatal(err)
	}
	b.sim.target.Store(h)
	write(h, 5001, 703000, idr)
	write(q, 101, 4000, p) // h flows: q's packet changes nothing
	v.drain(s, s.shards[0].q, time.Now())
	if b.sim.cur.Load() != h || b.sim.target.Load() != h {
		t.Fatalf("on a flowing layer: cur %v, target %v, want h", b.sim.cur.Load().rid, b.sim.target.Load().rid)
	}
	rec.take()

	h.rate.last.Store(time.Now().Add(-2 * layerStale).UnixNano()) // h stopped
	asked := q.lastKeyReq.Load()
	write(q, 102, 7000, p)
	v.drain(s, s.shards[0].q, time.Now())
	if b.sim.target.Load() != q || q.lastKeyReq.Load() == asked {
		t.Fatalf("h stopped: target %v, keyframe asked of q %v; want q, asked", b.sim.target.Load().rid, q.lastKeyReq.Load() != asked)
	}
	write(q, 103, 10000, idr)
	v.drain(s, s.shards[0].q, time.Now())
	if got := rec.take(); len(got) != 1 || !bytes.Equal(got[0].Payload, idr) || b.sim.cur.Load() != q {
		t.Fatalf("after q's keyframe got %v on %v, want q's keyframe", seqs(got), b.sim.cur.Load().rid)
	}
}
