//go:build linux

package peer

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sendSegmented sends b to to as one segmented send (UDP_SEGMENT) of seg-byte datagrams.
func sendSegmented(t *testing.T, to *net.UDPAddr, b []byte, seg int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	oob := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(seg))
	if err := unix.Sendmsg(fd, b, oob, &unix.SockaddrInet4{Port: to.Port, Addr: [4]byte{127, 0, 0, 1}}, 0); err != nil {
		t.Skipf("this kernel cannot send segmented: %v", err)
	}
}

func rtpDatagram(ssrc uint32, seq uint16, size int) []byte {
	b := make([]byte, size)
	b[0], b[1] = 0x80, 96
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	for i := 12; i < size; i++ {
		b[i] = byte(seq) + byte(i)
	}
	return b
}

func listenTap(t *testing.T, gro bool) *tapConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tc := newTapConn(c, gro)
	t.Cleanup(func() { _ = tc.Close() })
	return tc
}

// A socket taking segmented sends whole still hands pion one datagram per read, in
// order, and reads the run from the kernel at once.
func TestTapTakesASegmentedSendWhole(t *testing.T) {
	tc := listenTap(t, true)
	if !tc.rd.coalesces() {
		t.Fatal("UDP_GRO was not taken on this Linux socket")
	}
	var run []byte
	var want [][]byte
	for i, size := range []int{300, 300, 300, 120} {
		d := rtpDatagram(7, uint16(i), size)
		run, want = append(run, d...), append(want, d)
	}
	sendSegmented(t, tc.LocalAddr().(*net.UDPAddr), run, 300)
	p := make([]byte, 1500)
	for i, w := range want {
		n, _, err := tc.ReadFrom(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p[:n], w) {
			t.Fatalf("datagram %d: got %d bytes, want %d (%x…)", i, n, len(w), w[:4])
		}
		if i == 0 && len(tc.rest) != len(run)-300 {
			t.Fatalf("after the first datagram %d bytes of the run are held, want %d: the kernel did not coalesce it", len(tc.rest), len(run)-300)
		}
	}
}

// A light viewer counts every packet of a coalesced run, and what is not its media
// still reaches pion.
func TestLightViewerCountsACoalescedRun(t *testing.T) {
	tc := listenTap(t, true)
	v := &Viewer{videoSSRC: 7, audioSSRC: 8}
	tc.v.Store(v)
	var run []byte
	for i := range 10 {
		run = append(run, rtpDatagram(7, uint16(100+i), 1000)...)
	}
	run = append(run, rtpDatagram(8, 5, 90)...) // the audio packet as the short last one
	to := tc.LocalAddr().(*net.UDPAddr)
	sendSegmented(t, to, run, 1000)
	other := []byte("not media: pion's")
	sendSegmented(t, to, other, len(other))
	p := make([]byte, 1500)
	n, _, err := tc.ReadFrom(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(p[:n]) != string(other) {
		t.Fatalf("pion got %q", p[:n])
	}
	v.mu.Lock()
	video, audio := v.video.stats(), v.audio.stats()
	v.mu.Unlock()
	if video.Unique != 10 || video.Lost() != 0 || audio.Unique != 1 {
		t.Fatalf("counted video %+v audio %+v, want 10 and 1", video, audio)
	}
}

// Without GRO every datagram is read on its own.
func TestTapWithoutGRO(t *testing.T) {
	tc := listenTap(t, false)
	if tc.rd.coalesces() {
		t.Fatal("GRO on although not asked for")
	}
	run := append(rtpDatagram(7, 1, 200), rtpDatagram(7, 2, 200)...)
	sendSegmented(t, tc.LocalAddr().(*net.UDPAddr), run, 200)
	p := make([]byte, 1500)
	for i := range 2 {
		n, _, err := tc.ReadFrom(p)
		if err != nil || n != 200 || len(tc.rest) != 0 {
			t.Fatalf("read %d: %d bytes, %d held, %v", i, n, len(tc.rest), err)
		}
	}
}
