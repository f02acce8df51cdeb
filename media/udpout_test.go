package media

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// directRig is a sender socket with the relay's direct path and a plain receiving
// socket standing in for a viewer, both on loopback, sharing one SRTP key.
type directRig struct {
	out  *udpOut
	q    *udpBatch
	recv *net.UDPConn
	o    *srtpOut
	dec  *srtp.Context
}

func newDirectRig(t testing.TB) *directRig {
	t.Helper()
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	send, recv := listen(), listen()
	_ = recv.SetReadBuffer(4 << 20)
	out, err := newUDPOut(send)
	if err != nil {
		t.Fatal(err)
	}
	key, salt := bytes.Repeat([]byte{7}, 16), bytes.Repeat([]byte{9}, 12)
	enc, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		t.Fatal(err)
	}
	o := &srtpOut{ctx: enc, mu: &sync.Mutex{}}
	to := recv.LocalAddr().(*net.UDPAddr).AddrPort()
	o.to.Store(&to)
	return &directRig{out: out, q: newUDPBatch(out), recv: recv, o: o, dec: dec}
}

// sendFrame sends n packets of payload to the receiver as one frame.
func (r *directRig) sendFrame(owner *viewerCounters, hdr *rtp.Header, payload []byte, n int) {
	for range n {
		hdr.SequenceNumber++
		_ = r.q.add(r.o, owner, hdr, payload)
	}
	r.q.flush()
}

// receive reads n datagrams and decrypts them.
func (r *directRig) receive(t *testing.T, n int) []*rtp.Packet {
	t.Helper()
	var got []*rtp.Packet
	buf := make([]byte, 2048)
	_ = r.recv.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range n {
		k, err := r.recv.Read(buf)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", len(got), err)
		}
		plain, err := r.dec.DecryptRTP(nil, buf[:k], nil)
		if err != nil {
			t.Fatalf("datagram %d of %d bytes does not decrypt: %v", len(got), k, err)
		}
		p := &rtp.Packet{}
		if err := p.Unmarshal(plain); err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	return got
}

// A frame's run of equal packets and its shorter last one leave in one write; a
// packet of another size, or for another viewer, starts a new write. Every datagram
// arrives whole, in order, and decrypts.
func TestUDPBatchSendsRunsTogether(t *testing.T) {
	for _, gso := range []bool{true, false} {
		name := "segmented"
		if !gso {
			name = "one by one"
		}
		t.Run(name, func(t *testing.T) {
			r := newDirectRig(t)
			if !gso {
				r.out.sys.disableSegments()
			}
			var a, b viewerCounters
			sizes := []int{1000, 1000, 1000, 1000, 1000, 300, 100, 1000}
			owners := []*viewerCounters{&a, &a, &a, &a, &a, &a, &a, &b}
			for i, size := range sizes {
				hdr := rtp.Header{Version: 2, PayloadType: 102, SSRC: 42, SequenceNumber: uint16(i + 1), Timestamp: 9}
				if err := r.q.add(r.o, owners[i], &hdr, bytes.Repeat([]byte{byte(i)}, size)); err != nil {
					t.Fatal(err)
				}
			}
			r.q.flush()
			got := r.receive(t, len(sizes))
			for i, p := range got {
				if p.SequenceNumber != uint16(i+1) || len(p.Payload) != sizes[i] || p.Payload[0] != byte(i) {
					t.Fatalf("datagram %d: seq %d, %d bytes of %d", i, p.SequenceNumber, len(p.Payload), p.Payload[0])
				}
			}
			if a.sent.Load() != 7 || b.sent.Load() != 1 {
				t.Fatalf("counted %d and %d sent, want 7 and 1", a.sent.Load(), b.sent.Load())
			}
			// runs: [1000×5 + 300] [100] [1000 for b]
			wantWrites := uint64(3)
			if !gso || !segmentsHere {
				wantWrites = 8
			}
			if w, d := r.out.writes.Load(), r.out.datagrams.Load(); w != wantWrites || d != 8 {
				t.Fatalf("%d writes carried %d datagrams, want %d and 8", w, d, wantWrites)
			}
		})
	}
}

// A run stops at the most datagrams one segmented write may carry.
func TestUDPBatchSplitsLongRuns(t *testing.T) {
	r := newDirectRig(t)
	var a viewerCounters
	const n = maxSegments + 10
	for i := range n {
		hdr := rtp.Header{Version: 2, PayloadType: 102, SSRC: 42, SequenceNumber: uint16(i)}
		if err := r.q.add(r.o, &a, &hdr, make([]byte, 200)); err != nil {
			t.Fatal(err)
		}
	}
	r.q.flush()
	got := r.receive(t, n)
	for i, p := range got {
		if p.SequenceNumber != uint16(i) {
			t.Fatalf("datagram %d has seq %d", i, p.SequenceNumber)
		}
	}
	if segmentsHere && r.out.writes.Load() != 2 {
		t.Fatalf("%d writes for %d datagrams, want 2", r.out.writes.Load(), n)
	}
}

// A viewer the socket cannot reach has its packets counted as dropped, not sent.
func TestUDPBatchCountsUndeliverableAsDropped(t *testing.T) {
	r := newDirectRig(t)
	v6 := netip.MustParseAddrPort("[2001:db8::1]:5004") // an IPv4 socket cannot send there
	r.o.to.Store(&v6)
	var a viewerCounters
	for i := range 3 {
		hdr := rtp.Header{Version: 2, SSRC: 1, SequenceNumber: uint16(i)}
		if err := r.q.add(r.o, &a, &hdr, make([]byte, 500)); err != nil {
			t.Fatal(err)
		}
	}
	r.q.flush()
	if a.sent.Load() != 0 || a.dropped.Load() != 3 {
		t.Fatalf("sent %d dropped %d, want 0 and 3", a.sent.Load(), a.dropped.Load())
	}
	r.o.to.Store(nil)
	if err := r.q.add(r.o, &a, &rtp.Header{Version: 2}, nil); err != errNoRoute {
		t.Fatalf("no address: %v", err)
	}
}

func TestUDPBatchDoesNotAllocate(t *testing.T) {
	r := newDirectRig(t)
	var a viewerCounters
	payload := make([]byte, 1100)
	hdr := rtp.Header{Version: 2, PayloadType: 102, SSRC: 42}
	buf := make([]byte, 2048)
	allocs := testing.AllocsPerRun(100, func() {
		r.sendFrame(&a, &hdr, payload, 8)
		for range 8 { // keep the receiver's buffer from filling
			_, _ = r.recv.Read(buf)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch of 8", allocs)
	}
}

// BenchmarkDirectWrite is the direct path's cost per packet: SRTP encryption and the
// segmented write of a 9-packet frame to one loopback receiver (whose reads are
// outside the timer's core only when the scheduler puts them there).
func BenchmarkDirectWrite(b *testing.B) {
	r := newDirectRig(b)
	var a viewerCounters
	payload := make([]byte, 1150)
	hdr := rtp.Header{Version: 2, PayloadType: 102, SSRC: 42}
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, err := r.recv.Read(buf); err != nil {
				return
			}
		}
	}()
	_ = r.recv.SetReadDeadline(time.Time{})
	b.ReportAllocs()
	for b.Loop() {
		r.sendFrame(&a, &hdr, payload, 9)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/9, "ns/packet")
}
