package peer

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSeqCounter(t *testing.T) {
	var c seqCounter
	for _, s := range []uint16{65533, 65534, 65535, 0, 2, 3, 1, 1} { // wrap, a gap filled late, a duplicate
		c.add(s)
	}
	st := c.stats()
	if st.Expected != 7 || st.Unique != 7 || st.Packets != 8 || st.Lost() != 0 {
		t.Fatalf("%+v", st)
	}
	c.add(10) // 4..9 missing
	if st = c.stats(); st.Expected != 14 || st.Lost() != 6 {
		t.Fatalf("%+v", st)
	}
	c.add(65000) // far in the past: ignored
	if st = c.stats(); st.Expected != 14 {
		t.Fatalf("old packet moved the window: %+v", st)
	}
}

func TestRTPSeqPayload(t *testing.T) {
	pkt := []byte{0x90, 96, 0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 2, 0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0, 0x65, 0x01}
	seq, p, ok := rtpSeqPayload(pkt)
	if !ok || seq != 0x1234 || len(p) != 2 || p[0] != 0x65 {
		t.Fatalf("%v %x %v", seq, p, ok)
	}
	for _, bad := range [][]byte{nil, {0x80}, {0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe}} {
		if _, _, ok := rtpSeqPayload(bad); ok {
			t.Errorf("accepted %x", bad)
		}
	}
}

func TestDefaultClip(t *testing.T) {
	c, err := DefaultClip()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Video) != 60 || len(c.Audio) < 90 || c.FPS != 30 {
		t.Fatalf("clip: %d frames, %d audio packets, %d fps", len(c.Video), len(c.Audio), c.FPS)
	}
}
