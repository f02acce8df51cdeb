package media

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// A sender report maps now to the RTP time of the newest packet sent live: a resent
// packet (NACK answer) or a joiner's replayed picture carries an old timestamp and
// must not pull the mapping back, or the player's lip sync goes wrong.
func TestSenderReportFollowsLivePacketsOnly(t *testing.T) {
	b := &binding{ssrc: 1, clock: 90000}
	t0 := time.Now()
	b.sr.note(3, 8_000_000, 1000, t0, false) // replayed from the cache
	if sr, waiting := b.senderReport(t0); sr != nil || !waiting {
		t.Fatalf("a report before any live packet: %+v (waiting %v)", sr, waiting)
	}
	b.sr.note(10, 9_000_000, 1000, t0, true)
	b.sr.note(7, 8_973_000, 1000, t0.Add(5*time.Millisecond), false) // resent, 300 ms old
	b.sr.note(9, 8_997_000, 1000, t0.Add(6*time.Millisecond), true)  // late, out of order
	sr, _ := b.senderReport(t0.Add(10 * time.Millisecond))
	if sr == nil {
		t.Fatal("no report")
	}
	if want := uint32(9_000_000 + 900); sr.RTPTime < want-9 || sr.RTPTime > want+9 {
		t.Fatalf("RTP time %d, want about %d (10 ms after the newest packet)", sr.RTPTime, want)
	}
	if sr.PacketCount != 4 || sr.OctetCount != 4000 {
		t.Fatalf("counts %d packets %d octets, want 4 and 4000", sr.PacketCount, sr.OctetCount)
	}
	if sr, _ := b.senderReport(t0.Add(20 * time.Millisecond)); sr != nil {
		t.Fatal("a second report within the interval")
	}
}

// A joiner's first reports wait for its first live packet, then map to it.
func TestJoinerReportsAfterTheReplay(t *testing.T) {
	s, tr, _, d := testStream(t, 0, JoinCache)
	seq := uint16(0)
	for f := range 46 { // a keyframe and 1.5 s of frames after it
		payload := []byte{0x41, 1, 2}
		if f == 0 {
			payload = []byte{0x65, 0x88, 0x84}
		}
		seq++
		if err := tr.WriteRTP(rtpPacket(seq, uint32(f*3000), true, payload)); err != nil {
			t.Fatal(err)
		}
	}
	var got []rtcp.Packet
	v := &viewer{sendRTCP: func(p []rtcp.Packet) error { got = append(got, p...); return nil }}
	b := newBinding(tr)
	b.writer, b.hdr, b.ssrc, b.clock = d, rtp.Header{Version: 2, PayloadType: 102, SSRC: 42}, 42, 90000
	v.binds[0] = b
	if err := s.addViewer(v); err != nil {
		t.Fatal(err)
	}
	for v.drain(s, s.shards[0].q, time.Now()) {
	}
	if v.counters.sent.Load() != 46 || len(got) != 0 {
		t.Fatalf("replayed %d packets, %d reports; want 46 and none", v.counters.sent.Load(), len(got))
	}
	seq++
	if err := tr.WriteRTP(rtpPacket(seq, 46*3000, true, []byte{0x41, 1, 2})); err != nil {
		t.Fatal(err)
	}
	first := time.Now()
	v.drain(s, s.shards[0].q, first)
	if len(got) != 1 {
		t.Fatalf("%d reports after the first live packet, want 1", len(got))
	}
	if sr := got[0].(*rtcp.SenderReport); sr.RTPTime-46*3000 > 900 || sr.PacketCount != 47 {
		t.Fatalf("report maps now to RTP time %d (live is %d), %d packets", sr.RTPTime, 46*3000, sr.PacketCount)
	}
	// Later reports: looked for every reportCheckEvery, not on every pass, and not
	// starved by it. (The binding's last report is moved back a second to make the
	// next one due, since report reads the clock itself.)
	b.mu.Lock()
	b.sr.reportedAt = b.sr.reportedAt.Add(-senderReportInterval)
	b.mu.Unlock()
	v.drain(s, s.shards[0].q, first.Add(reportCheckEvery-time.Millisecond))
	if len(got) != 1 {
		t.Fatalf("%d reports: a pass before the next check looked for one", len(got))
	}
	v.drain(s, s.shards[0].q, first.Add(reportCheckEvery))
	if len(got) != 2 {
		t.Fatalf("%d reports: the due report was not sent at the next check", len(got))
	}
}
