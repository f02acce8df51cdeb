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

// addLayers adds a simulcast section of codec to pc, one track per RID.
func addLayers(t *testing.T, pc *webrtc.PeerConnection, codec webrtc.RTPCodecCapability, rids ...string) (*webrtc.RTPSender, []*webrtc.TrackLocalStaticRTP) {
	t.Helper()
	var layers []*webrtc.TrackLocalStaticRTP
	for _, rid := range rids {
		l, err := webrtc.NewTrackLocalStaticRTP(codec, "video", "cam", webrtc.WithRTPStreamID(rid))
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	sender, err := pc.AddTrack(layers[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers[1:] {
		if err := sender.AddEncoding(l); err != nil {
			t.Fatal(err)
		}
	}
	return sender, layers
}

// layerHeaders puts the mid and rid header extensions on a simulcast layer's packets:
// pion's sender leaves them to its caller.
type layerHeaders struct {
	mid          string
	midID, ridID uint8
}

// headersOf reads the negotiated extension ids and mid of sender (once connected).
func headersOf(pc *webrtc.PeerConnection, sender *webrtc.RTPSender) layerHeaders {
	var h layerHeaders
	for _, e := range sender.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			h.midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			h.ridID = uint8(e.ID)
		}
	}
	for _, tr := range pc.GetTransceivers() {
		if tr.Sender() == sender {
			h.mid = tr.Mid()
		}
	}
	return h
}

func (h layerHeaders) set(p *rtp.Packet, rid string) {
	_ = p.Header.SetExtension(h.midID, []byte(h.mid))
	_ = p.Header.SetExtension(h.ridID, []byte(rid))
}

// A simulcast section delivers one track per layer: two video layers arriving before
// the audio must not count as both offered sections, or the room goes live (and its
// tracks are fixed) without audio.
func TestWHIPSimulcastLayersCountAsOneSection(t *testing.T) {
	checkMediaLeaks(t)
	r := newMediaRig(t, nil)
	pc := simulcastPeer(t)
	sender, layers := addLayers(t, pc, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "q", "f")
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
	hdrs := headersOf(pc, sender)

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
					hdrs.set(p, tr.RID())
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
