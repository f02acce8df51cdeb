package gateway

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// simulcastPeer is a loopback pion peer that can send simulcast (the RID header
// extensions registered), closed when the test ends.
func simulcastPeer(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(me); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.GracefulClose() })
	return pc
}

// A simulcast section delivers one track per layer: two video layers arriving before
// the audio must not count as both offered sections, or the room goes live (and its
// tracks are fixed) without audio.
func TestWHIPSimulcastLayersCountAsOneSection(t *testing.T) {
	checkMediaLeaks(t)
	r := newMediaRig(t, nil)
	pc := simulcastPeer(t)
	vp8 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	var layers []*webrtc.TrackLocalStaticRTP
	for _, rid := range []string{"q", "f"} {
		l, err := webrtc.NewTrackLocalStaticRTP(vp8, "video", "cam", webrtc.WithRTPStreamID(rid))
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	sender, err := pc.AddTrack(layers[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := sender.AddEncoding(layers[1]); err != nil {
		t.Fatal(err)
	}
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "cam")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(audio); err != nil {
		t.Fatal(err)
	}
	r.connectWHIP(pc, "shop1")
	if !strings.Contains(pc.RemoteDescription().SDP, "a=simulcast:") {
		t.Fatalf("the answer does not take the simulcast layers:\n%s", pc.RemoteDescription().SDP)
	}

	// pion's sender leaves the mid and rid header extensions to its caller.
	ext := map[string]uint8{}
	for _, h := range sender.GetParameters().HeaderExtensions {
		ext[h.URI] = uint8(h.ID)
	}
	mid := ""
	for _, tr := range pc.GetTransceivers() {
		if tr.Sender() == sender {
			mid = tr.Mid()
		}
	}

	// Both video layers first, for a while inside the relay's 2 s wait for the rest
	// of the tracks; then the audio too.
	ctx, cancel := context.WithCancel(context.Background())
	var senders sync.WaitGroup
	defer func() { cancel(); senders.Wait() }()
	send := func(tracks ...*webrtc.TrackLocalStaticRTP) {
		for seq := uint16(0); ctx.Err() == nil; seq++ {
			for _, tr := range tracks {
				p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 3000}, Payload: []byte{0x10, 0, 0, 0}}
				if tr.RID() != "" {
					_ = p.Header.SetExtension(ext[sdp.SDESMidURI], []byte(mid))
					_ = p.Header.SetExtension(ext[sdp.SDESRTPStreamIDURI], []byte(tr.RID()))
				}
				_ = tr.WriteRTP(p)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	senders.Go(func() { send(layers...) })
	time.Sleep(700 * time.Millisecond)
	senders.Go(func() { send(audio) })
	waitFor(t, 10*time.Second, "room live", func() bool { return r.media.Stats("shop1").Live })
	if !r.hasAudioAndVideo("shop1") {
		t.Fatalf("live with tracks %+v, want audio and video", r.media.Stats("shop1").Publisher.Tracks)
	}
}
