package media

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
)

// FuzzICEFrag: a PATCH body (RFC 8840 trickle-ice-sdpfrag) is refused with
// ErrBadFrag or read into at most maxFragLines candidates that pion parses again,
// with ICE credentials that come in pairs.
func FuzzICEFrag(f *testing.F) {
	good := "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n" +
		"a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n"
	for _, s := range []string{good, "", "a=candidate:nonsense", "a=ice-ufrag:x", "garbage line",
		strings.Repeat("a=mid:0\n", 300), "a=candidate:1 1 tcp 1 ::1 9 typ host tcptype passive\n",
		"a=candidate:842163049 1 udp 1677729535 192.0.2.1 53705 typ srflx raddr 0.0.0.0 rport 0 generation 0\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := parseICEFrag(b)
		if err != nil {
			if !errors.Is(err, ErrBadFrag) {
				t.Fatalf("error without ErrBadFrag: %v", err)
			}
			return
		}
		if (fr.ufrag == "") != (fr.pwd == "") || len(fr.candidates) > maxFragLines {
			t.Fatalf("accepted %+v", fr)
		}
		for _, c := range fr.candidates {
			if _, err := ice.UnmarshalCandidate(strings.TrimPrefix(c, "candidate:")); err != nil {
				t.Fatalf("accepted candidate %q: %v", c, err)
			}
		}
	})
}

// FuzzICEServer: an --ice-servers entry is refused or gives a URL without
// credentials, credentials only for TURN.
func FuzzICEServer(f *testing.F) {
	for _, s := range []string{"stun:stun.l.google.com:19302", "turn:turn.example.com:3478?transport=udp",
		"turns:a:b@turn.example.com:5349?transport=tcp", "", "http://x", "stun:u:p@host:1", "turn:@host", "turn:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseICEServer(s)
		if err != nil {
			return
		}
		if c.user != "" && !c.turn || strings.Contains(c.url, "@") && c.user != "" {
			t.Fatalf("%q read as %+v", s, c)
		}
	})
}

// FuzzH264SPS: a publisher's SPS gives a picture size within the bounds the parser
// allows (1024 macroblocks a side) or none.
func FuzzH264SPS(f *testing.F) {
	for _, s := range [][]byte{
		{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0c, 0x83, 0xc6, 0x0c, 0xa8},
		{0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc6, 0x58},
		{0x67, 0x64, 0, 0}, {},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, nal []byte) {
		w, h, ok := h264SPSSize(nal)
		if ok && (w <= 0 || h <= 0 || w > 1024*16 || h > 2*1024*16) {
			t.Fatalf("size %dx%d", w, h)
		}
		if !ok && (w != 0 || h != 0) {
			t.Fatalf("no size but %dx%d", w, h)
		}
	})
}

// FuzzViewerRTCP: whatever RTCP a viewer sends, answering it costs at most the
// retransmission budget a second and at most one keyframe request to the source;
// the other viewers of the room lose nothing.
func FuzzViewerRTCP(f *testing.F) {
	for _, p := range [][]rtcp.Packet{
		{&rtcp.TransportLayerNack{MediaSSRC: 42, Nacks: []rtcp.NackPair{{PacketID: 10, LostPackets: 0xffff}, {PacketID: 100, LostPackets: 3}}}},
		{&rtcp.PictureLossIndication{MediaSSRC: 42}, &rtcp.FullIntraRequest{MediaSSRC: 42}, &rtcp.PictureLossIndication{MediaSSRC: 42}},
		{&rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{{SSRC: 42, FractionLost: 12, LastSenderReport: 0xffffffff, Delay: 1}}}},
	} {
		b, err := rtcp.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pkts, err := rtcp.Unmarshal(b)
		if err != nil {
			return
		}
		s, tr, vs, d := testStream(t, 2, JoinCache)
		for seq := range uint16(400) {
			if err := tr.WriteRTP(rtpPacket(seq, uint32(seq), true, []byte{0x41, 1, 2})); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Now()
		for _, v := range vs {
			v.drain(s, s.shards[0].q, now)
		}
		live, reqs := d.n.Load(), s.keyReqs.Load()
		for range 3 { // the same second: one budget
			vs[0].handleRTCP(s, vs[0].binds[0], pkts, now)
		}
		if n := d.n.Load() - live; n > maxRetransmits {
			t.Fatalf("%d retransmissions in a second, over %d", n, maxRetransmits)
		}
		if n := s.keyReqs.Load() - reqs; n > 1 {
			t.Fatalf("%d keyframe requests at once", n)
		}
		if l := vs[1].loss.Load(); l != 0 {
			t.Fatalf("another viewer's loss set to %d", l)
		}
	})
}

// FuzzPublisherRTP: whatever packets a publisher sends (any header, extensions,
// padding, sequence and timestamp jumps, broken SPS), the stream takes or refuses each
// without a panic, two viewers that joined together get the same packets, and a viewer
// joining halfway is served too.
func FuzzPublisherRTP(f *testing.F) {
	idr := rtpPacket(1, 1, true, []byte{0x65, 0x88, 0x84})
	sps := rtpPacket(2, 2, false, []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0c, 0x83, 0xc6, 0x0c, 0xa8})
	stapA := rtpPacket(3, 3, true, []byte{0x78, 0x00, 0x04, 0x67, 0x42, 0xc0, 0x1f, 0x00, 0x02, 0x65, 0x88})
	frame := func(pkts ...[]byte) []byte {
		var b []byte
		for _, p := range pkts {
			b = append(b, byte(len(p)>>8), byte(len(p)))
			b = append(b, p...)
		}
		return b
	}
	f.Add(frame(idr, rtpPacket(2, 1, false, []byte{0x41, 1}), rtpPacket(65535, 9, true, []byte{0x41})))
	f.Add(frame(sps, idr, stapA, []byte{0x90, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0}))
	f.Add(frame([]byte{0xa0, 0x60, 0, 5, 0, 0, 0, 1, 0, 0, 0, 1, 0x65, 0, 0, 9}))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, tr, vs, _ := testStream(t, 2, JoinCache)
		ds := []*discard{{}, {}}
		for i, v := range vs {
			v.binds[0].writer = ds[i]
		}
		var late *viewer
		lateD := &discard{}
		for n := 0; len(b) >= 2 && n < 256; n++ {
			size := int(b[0])<<8 | int(b[1])
			b = b[2:]
			size = min(size, len(b))
			_ = tr.WriteRTP(b[:size])
			b = b[size:]
			now := time.Now()
			for _, v := range vs {
				v.drain(s, s.shards[0].q, now)
			}
			if late != nil {
				late.drain(s, s.shards[0].q, now)
			}
			if n == 3 {
				late = &viewer{}
				lb := newBinding(tr)
				lb.writer, lb.ssrc = lateD, 43
				late.binds[0] = lb
				if err := s.addViewer(late); err != nil {
					t.Fatal(err)
				}
			}
		}
		if a, c := ds[0].n.Load(), ds[1].n.Load(); a != c {
			t.Fatalf("viewers who joined together got %d and %d packets", a, c)
		}
	})
}
