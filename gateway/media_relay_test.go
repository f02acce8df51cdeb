package gateway

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/media/peer"
)

// udpRelay sits between a client and the server on loopback: it can drop a share of
// the server's large RTP packets (video), police them to a bitrate, or black-hole
// everything.
type udpRelay struct {
	front, back *net.UDPConn
	server      *net.UDPAddr
	client      atomic.Pointer[net.UDPAddr]
	dropEvery   atomic.Int64 // drop every Nth large RTP packet to the client; 0 = none
	// limit polices the large RTP packets to the client to this many bits/s (0: no
	// limit), as a token bucket that holds policeBurst of them: what does not fit is
	// dropped, as a link's full queue drops it
	limit     atomic.Int64
	blackhole atomic.Bool
	dropped   atomic.Int64
	wg        sync.WaitGroup
}

func newUDPRelay(t *testing.T, server *net.UDPAddr) *udpRelay {
	t.Helper()
	front, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &udpRelay{front: front, back: back, server: server}
	r.wg.Go(func() { // client → server
		buf := make([]byte, 2048)
		for {
			n, from, err := front.ReadFromUDP(buf)
			if err != nil {
				return
			}
			r.client.Store(from)
			if !r.blackhole.Load() {
				_, _ = back.WriteToUDP(buf[:n], server)
			}
		}
	})
	r.wg.Go(func() { // server → client
		buf := make([]byte, 2048)
		var rtp int64
		var tokens float64 // bytes
		last := time.Now()
		for {
			n, _, err := back.ReadFromUDP(buf)
			if err != nil {
				return
			}
			c := r.client.Load()
			if c == nil || r.blackhole.Load() {
				continue
			}
			isRTP := n > 300 && buf[0] >= 128 && buf[0] < 192 && (buf[1]&0x7f < 64 || buf[1]&0x7f > 95)
			if every := r.dropEvery.Load(); isRTP && every > 0 {
				if rtp++; rtp%every == 0 {
					r.dropped.Add(1)
					continue
				}
			}
			if limit := r.limit.Load(); isRTP && limit > 0 {
				now := time.Now()
				tokens = min(tokens+now.Sub(last).Seconds()*float64(limit)/8, policeBurst)
				last = now
				if tokens < float64(n) {
					r.dropped.Add(1)
					continue
				}
				tokens -= float64(n)
			}
			_, _ = front.WriteToUDP(buf[:n], c)
		}
	})
	t.Cleanup(func() { front.Close(); back.Close(); r.wg.Wait() })
	return r
}

// policeBurst is the most bytes a policed relay lets through at once: a low layer's
// keyframe.
const policeBurst = 24 << 10

// via rewrites the server's UDP host candidate to the relay and drops its TCP ones.
func (r *udpRelay) via(answer string) string {
	port := r.server.Port
	udp := regexp.MustCompile(fmt.Sprintf(` 127\.0\.0\.1 %d typ host`, port))
	answer = udp.ReplaceAllString(answer, fmt.Sprintf(" 127.0.0.1 %d typ host", r.front.LocalAddr().(*net.UDPAddr).Port))
	return regexp.MustCompile(`(?m)^a=candidate:[^\r\n]* tcp [^\r\n]*\r\n`).ReplaceAllString(answer, "")
}

func TestMediaNACKRepairsLoss(t *testing.T) {
	r, ctx, _ := liveRig(t, 40*time.Second)
	relay := newUDPRelay(t, r.media.UDPAddr().(*net.UDPAddr))
	relay.dropEvery.Store(20) // 5 % of the video packets
	c := r.client(event.RoleViewer, "shop1", "lossy")
	c.Mangle = relay.via
	v, err := c.Watch(ctx, r.srv.URL+"/whep/shop1")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close(ctx, true)
	waitFor(t, 20*time.Second, "losses injected", func() bool { return relay.dropped.Load() >= 30 })
	relay.dropEvery.Store(0)
	waitFor(t, 10*time.Second, "losses repaired", func() bool {
		s := v.Stats()
		return s.Video.Expected > 200 && s.Video.Lost() == 0
	})
	if st := r.media.Stats("shop1"); st.Viewers.Retransmitted == 0 {
		t.Errorf("no retransmissions counted: %+v", st.Viewers)
	}
	t.Logf("dropped %d, viewer %+v, server %+v", relay.dropped.Load(), v.Stats().Video, r.media.Stats("shop1").Viewers)
}

func TestMediaDeadPublisherEndsBroadcast(t *testing.T) {
	checkMediaLeaks(t)
	r := newMediaRig(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	relay := newUDPRelay(t, r.media.UDPAddr().(*net.UDPAddr))
	pc := r.client(event.RoleHost, "shop1", "host")
	pc.Mangle = relay.via
	pub, err := pc.Publish(ctx, r.srv.URL+"/whip/shop1", r.clip)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(ctx, false)
	waitFor(t, 10*time.Second, "live", func() bool { return r.media.Stats("shop1").Live })
	var viewers []*peer.Viewer
	for i := range 2 {
		v, err := r.client(event.RoleViewer, "shop1", fmt.Sprint("v", i)).Watch(ctx, r.srv.URL+"/whep/shop1")
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close(ctx, false)
		viewers = append(viewers, v)
		waitFor(t, 10*time.Second, "video", func() bool { return v.Stats().Video.Packets > 10 })
	}
	relay.blackhole.Store(true) // the publisher's network vanishes without a goodbye
	start := time.Now()
	waitFor(t, 15*time.Second, "broadcast end", func() bool { return !r.media.Stats("shop1").Live })
	for _, v := range viewers {
		select {
		case <-v.Ended:
		case <-time.After(10 * time.Second):
			t.Fatal("a viewer did not see the end")
		}
	}
	t.Logf("broadcast ended %v after the publisher went silent", time.Since(start).Round(100*time.Millisecond))
	var ended bool
	for _, e := range r.events() {
		ended = ended || e.Type == event.LiveEnd
	}
	if !ended {
		t.Error("no LiveEnd event on the tap")
	}
}
