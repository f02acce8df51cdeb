package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/media"
	"github.com/liveroom/liveroom/media/peer"
)

// simulcastH264 is what the test's simulcast publisher sends.
var simulcastH264 = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
	SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}

// publishLayers publishes clips as the layers of one simulcast section over WHIP,
// lowest first, with RIDs q, h, f, in real time. Every NAL unit of layer i is marked
// with nal_ref_idc i+1 (any non-zero value is valid for parameter sets and reference
// pictures, H.264 §7.4.1; SEI and delimiters, which must have 0, are left out), so a
// viewer can tell from each packet which layer it came from. A PLI on a layer's SSRC
// makes that layer send its next keyframe pliDelay later, as an encoder does: the
// frames between come first.
func publishLayers(t *testing.T, r *mediaRig, ctx context.Context, room string, clips []*peer.Clip) {
	t.Helper()
	pc := simulcastPeer(t)
	sender, tracks := addLayers(t, pc, simulcastH264, []string{"q", "h", "f"}[:len(clips)]...)
	r.connectWHIP(pc, room)
	hdrs := headersOf(pc, sender)
	run, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); _ = pc.GracefulClose(); wg.Wait() })
	for i, l := range tracks {
		var keyAsked atomic.Int64 // when a PLI came (Unix ns), until the keyframe is sent
		wg.Go(func() {
			for {
				pkts, _, err := sender.ReadSimulcastRTCP(l.RID())
				if err != nil {
					return
				}
				for _, p := range pkts {
					if _, ok := p.(*rtcp.PictureLossIndication); ok {
						keyAsked.CompareAndSwap(0, time.Now().UnixNano())
					}
				}
			}
		})
		frames, idr := markLayer(clips[i].Video, byte(i+1))
		wg.Go(func() {
			pk := rtp.NewPacketizer(1200, 0, 0, &codecs.H264Payloader{}, rtp.NewRandomSequencer(), 90000)
			start := time.Now()
			for n, f := 0, 0; run.Err() == nil; n, f = n+1, f+1 {
				if at := keyAsked.Load(); at != 0 && time.Since(time.Unix(0, at)) >= pliDelay {
					keyAsked.Store(0)
					f = nextIDR(idr, f, len(frames))
				}
				for _, p := range pk.Packetize(frames[f%len(frames)], 3000) {
					hdrs.set(p, l.RID())
					_ = l.WriteRTP(p)
				}
				select {
				case <-run.Done():
				case <-time.After(time.Until(start.Add(time.Duration(n+1) * time.Second / 30))):
				}
			}
		})
	}
	waitFor(t, 10*time.Second, "room live", func() bool { return r.media.Stats(room).Live })
}

// pliDelay is how long the test's publisher takes to answer a PLI with a keyframe.
const pliDelay = 100 * time.Millisecond

// markLayer sets nal_ref_idc to mark on each access unit's parameter sets and slices,
// drops its other NAL units, and lists the access units that start with an IDR.
func markLayer(aus [][]byte, mark byte) (out [][]byte, idr []int) {
	for i, au := range aus {
		var b []byte
		for nal := range bytes.SplitSeq(au, []byte{0, 0, 0, 1}) {
			switch typ := nal[0:min(len(nal), 1)]; {
			case len(typ) == 0:
			case typ[0]&0x1f == 1 || typ[0]&0x1f == 5 || typ[0]&0x1f == 7 || typ[0]&0x1f == 8:
				if typ[0]&0x1f == 5 && !slices.Contains(idr, i) {
					idr = append(idr, i)
				}
				b = append(b, 0, 0, 0, 1, nal[0]&0x9f|mark<<5)
				b = append(b, nal[1:]...)
			}
		}
		out = append(out, b)
	}
	return out, idr
}

// nextIDR is the index of the next access unit at or after f that is an IDR.
func nextIDR(idr []int, f, n int) int {
	cur := f % n
	for _, k := range idr {
		if k >= cur {
			return f + k - cur
		}
	}
	return f + n - cur + idr[0]
}

// layerOf reads the layer mark of an H.264 RTP payload: the NRI of a single NAL unit
// or FU-A, of the first unit in a STAP-A (whose own header pion sets to 3).
func layerOf(p []byte) int {
	switch {
	case len(p) == 0:
		return 0
	case p[0]&0x1f == 24 && len(p) > 3:
		return int(p[3] >> 5 & 3)
	}
	return int(p[0] >> 5 & 3)
}

// seenPacket is one video packet as a layer viewer got it first.
type seenPacket struct {
	layer int
	key   bool
	ts    uint32
	at    time.Time
}

// layerViewer is a pion WHEP viewer (NACK and receiver reports, as testPeer makes it) that records, for each sequence number, which layer's packet arrived first.
type layerViewer struct {
	pc *webrtc.PeerConnection
	wg sync.WaitGroup

	mu   sync.Mutex
	high uint64 // the highest extended sequence number
	pkts map[uint64]seenPacket
}

// watchLayers connects a layer viewer to room, through relay when it is not nil.
func watchLayers(t *testing.T, r *mediaRig, room, user string, relay *udpRelay) *layerViewer {
	t.Helper()
	pc := testPeer(t)
	v := &layerViewer{pc: pc, pkts: map[uint64]seenPacket{}}
	t.Cleanup(func() { _ = pc.GracefulClose(); v.wg.Wait() })
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		v.wg.Go(func() {
			for {
				if _, _, err := recv.ReadRTCP(); err != nil {
					return
				}
			}
		})
		v.wg.Go(func() {
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				v.add(p, time.Now())
			}
		})
	})
	resp, body := r.do("POST", "/whep/"+room, r.token(event.RoleViewer, room, user), "application/sdp", gatheredOffer(t, pc))
	if resp.StatusCode != 201 {
		t.Fatalf("WHEP: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(body, "a=rtcp-fb:") || !strings.Contains(body, " goog-remb") {
		t.Fatalf("the answer for a simulcast section does not ask for REMB:\n%s", body)
	}
	if relay != nil {
		body = relay.via(body)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("the viewer did not connect")
	}
	return v
}

func (v *layerViewer) add(p *rtp.Packet, at time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	ext := v.high&^0xffff | uint64(p.SequenceNumber)
	switch {
	case len(v.pkts) == 0:
		ext = 1<<16 | uint64(p.SequenceNumber)
	case ext+0x8000 < v.high:
		ext += 1 << 16
	case ext > v.high+0x8000:
		ext -= 1 << 16
	}
	v.high = max(v.high, ext)
	if _, dup := v.pkts[ext]; !dup {
		v.pkts[ext] = seenPacket{layer: layerOf(p.Payload), key: media.IsKeyframe(webrtc.MimeTypeH264, p.Payload), ts: p.Timestamp, at: at}
	}
}

// layer is the layer of the newest packet.
func (v *layerViewer) layer() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.pkts[v.high].layer
}

// sorted lists what arrived in sequence order.
func (v *layerViewer) sorted() ([]uint64, map[uint64]seenPacket) {
	v.mu.Lock()
	defer v.mu.Unlock()
	exts := make([]uint64, 0, len(v.pkts))
	for e := range v.pkts {
		exts = append(exts, e)
	}
	slices.Sort(exts)
	return exts, maps.Clone(v.pkts)
}

// checkTrack checks that the viewer saw one track: in sequence order the layer
// changes only at a keyframe (so a resent packet came from the layer that carried
// its number; where numbers are missing around a change this cannot be told),
// timestamps never go back, and, when whole, no number is missing. It returns the
// number of layer changes.
func (v *layerViewer) checkTrack(t *testing.T, name string, whole bool) (switches int) {
	t.Helper()
	exts, pkts := v.sorted()
	for i := 1; i < len(exts); i++ {
		prev, cur := pkts[exts[i-1]], pkts[exts[i]]
		if whole && exts[i] != exts[i-1]+1 {
			t.Errorf("%s: sequence numbers %d to %d: a gap", name, exts[i-1]&0xffff, exts[i]&0xffff)
		}
		if int32(cur.ts-prev.ts) < 0 {
			t.Errorf("%s: timestamp went back from %d to %d at sequence number %d", name, prev.ts, cur.ts, exts[i]&0xffff)
		}
		if cur.layer != prev.layer {
			switches++
			// where the packets around a change were lost, the keyframe may be among them
			if exts[i] == exts[i-1]+1 && !cur.key {
				t.Errorf("%s: layer %d to %d at sequence number %d, not at a keyframe", name, prev.layer, cur.layer, exts[i]&0xffff)
			}
		}
	}
	return switches
}

// timeOn is how long, of what arrived since from, each layer was arriving.
func (v *layerViewer) timeOn(from time.Time) map[int]time.Duration {
	v.mu.Lock()
	var ps []seenPacket
	for _, p := range v.pkts {
		if !p.at.Before(from) {
			ps = append(ps, p)
		}
	}
	v.mu.Unlock()
	slices.SortFunc(ps, func(a, b seenPacket) int { return a.at.Compare(b.at) })
	out := map[int]time.Duration{}
	for i := 1; i < len(ps); i++ {
		out[ps[i-1].layer] += ps[i].at.Sub(ps[i-1].at)
	}
	return out
}

// A viewer of a publisher without simulcast is answered as before: no REMB, which
// only the choice of a simulcast layer reads.
func TestWHEPAsksREMBForSimulcastOnly(t *testing.T) {
	r, _, _ := liveRig(t, 20*time.Second)
	resp, body := r.do("POST", "/whep/shop1", r.token(event.RoleViewer, "shop1", "v"), "application/sdp", viewerOffer(t))
	if resp.StatusCode != 201 {
		t.Fatalf("WHEP: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(body, "a=rtcp-fb:") || strings.Contains(body, "goog-remb") {
		t.Fatalf("the answer without simulcast: want rtcp-fb lines and no REMB:\n%s", body)
	}
	_, _ = r.do("DELETE", resp.Header.Get("Location"), r.token(event.RoleViewer, "shop1", "v"), "", "")
}

// A simulcast publisher's three layers are all relayed, and each viewer gets the one
// its link carries: a viewer behind a 200 kbit/s link (a policing relay: what does not
// fit is lost, as on a full link) is moved down to the 100 kbit/s layer by its loss
// and stays there but for brief probes; an unlimited one moves up to the 900 kbit/s
// layer. Both see one continuous track, switched at keyframes only; the limited
// viewer's link is then freed and it moves up.
func TestMediaSimulcastLayerPerViewer(t *testing.T) {
	requireFFmpeg(t)
	checkMediaLeaks(t)
	r := newMediaRig(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var clips []*peer.Clip
	for _, l := range []struct{ w, h, bps int }{{320, 180, 100_000}, {640, 360, 300_000}, {1280, 720, 900_000}} {
		c, err := peer.EncodeClipSize(ctx, l.w, l.h, l.bps, 2)
		if err != nil {
			t.Fatal(err)
		}
		clips = append(clips, c)
	}
	publishLayers(t, r, ctx, "shop1", clips)
	waitFor(t, 10*time.Second, "every layer flowing", func() bool {
		n := 0
		for _, tr := range r.media.Stats("shop1").Publisher.Tracks {
			if tr.RID != "" && tr.Packets > 0 {
				n++
			}
		}
		return n == 3
	})

	relay := newUDPRelay(t, r.media.UDPAddr().(*net.UDPAddr))
	relay.limit.Store(200_000)
	slow := watchLayers(t, r, "shop1", "slow", relay)
	fast := watchLayers(t, r, "shop1", "fast", nil)

	waitFor(t, 40*time.Second, "the fast viewer on the high layer", func() bool { return fast.layer() == 3 })
	waitFor(t, 40*time.Second, "the slow viewer on the low layer", func() bool { return slow.layer() == 1 })
	landed := time.Now()
	time.Sleep(10 * time.Second)
	on := slow.timeOn(landed)
	t.Logf("the slow viewer since it landed on the low layer: %v; the relay dropped %d packets", on, relay.dropped.Load())
	if on[3] > 0 || on[1] < on[2] {
		t.Fatalf("the slow viewer since it landed on the low layer: %v on each layer, want mostly the low one and never the high", on)
	}
	if fast.layer() != 3 {
		t.Fatal("the fast viewer left the high layer")
	}

	relay.limit.Store(0) // its link recovers
	// after probes undone, the viewer waits up to 64 s (upHoldMax) before the next
	waitFor(t, 90*time.Second, "the slow viewer moving up", func() bool { return slow.layer() >= 2 })

	st := r.media.Stats("shop1")
	js, _ := json.Marshal(st)
	t.Logf("%s", js)
	if st.Viewers.LayerSwitches == nil || *st.Viewers.LayerSwitches < 3 {
		t.Fatalf("layer switches %v, want at least 3 (fast: up; slow: down, up)", st.Viewers.LayerSwitches)
	}
	if n := fast.checkTrack(t, "fast viewer", true); n == 0 {
		t.Fatal("the fast viewer never changed layer")
	}
	if n := slow.checkTrack(t, "slow viewer", false); n < 2 {
		t.Fatalf("the slow viewer changed layer %d times, want at least 2", n)
	}
	if st.Viewers.Retransmitted == 0 {
		t.Fatal("no retransmissions to the slow viewer")
	}
}
