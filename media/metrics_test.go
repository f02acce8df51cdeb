package media

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveroom/liveroom/event"
)

// counterValue gathers reg and returns the value of one unlabelled counter.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}

// A live room's packet counters stay in the totals while its publisher ends: the room
// leaves the live set before its stream stops (which takes as long as its viewers take
// to leave), and the stream's figures join the retired totals only after. A scrape in
// between must not read less (Prometheus takes a fall for a reset: rate() spikes).
// The scrape runs from the stream's stop, as its viewer leaves.
func TestPacketCountersHoldWhilePublisherEnds(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WebRTCUDP, cfg.WebRTCTCP = "127.0.0.1:0", ""
	reg := prometheus.NewRegistry()
	s, err := New(cfg, Deps{Registry: reg, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	p := &publisher{s: s, sessionInfo: sessionInfo{id: newID(), room: "shop1", kind: Publish, user: event.User{ID: "host"}}}
	p.stream = newStream("live1", p, cfg, nil)
	audio, err := p.stream.AddTrack(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000}}, webrtc.RTPCodecTypeAudio)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		_ = audio.WriteRTP(rtpPacket(uint16(i), uint32(i*960), false, []byte{1}))
	}
	p.isLive, p.liveAt = true, time.Now()
	s.mu.Lock()
	s.rooms[p.room], s.sessions[p.id] = p, p
	s.mu.Unlock()

	const received = "liveroom_media_packets_received_total"
	before := counterValue(t, reg, received)
	var during float64
	if err := p.stream.addViewer(&viewer{gone: func() { during = counterValue(t, reg, received) }}); err != nil {
		t.Fatal(err)
	}
	p.end(false)
	if after := counterValue(t, reg, received); before != 100 || during != before || after != before {
		t.Fatalf("%s while the publisher ended: %v, then %v during, %v after; want 100 throughout", received, before, during, after)
	}
}
