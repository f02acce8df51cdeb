package media

import (
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// soonDue reads when the writers' timer is due (zero: not armed).
func soonDue(s *Stream) time.Time {
	s.soonMu.Lock()
	defer s.soonMu.Unlock()
	return s.soonDue
}

// TestAudioWaitsForTheFrame checks when the writers are woken: a frame's last packet
// wakes them at once; other video packets within coalesceWindow; audio within
// audioWindow while video flows, so that it leaves in the frame's pass, and within
// coalesceWindow when there is no video.
func TestAudioWaitsForTheFrame(t *testing.T) {
	s := newStream("live", nil, DefaultConfig(), nil)
	video, err := s.AddTrack(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}}, webrtc.RTPCodecTypeVideo)
	if err != nil {
		t.Fatal(err)
	}
	audio, err := s.AddTrack(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000}}, webrtc.RTPCodecTypeAudio)
	if err != nil {
		t.Fatal(err)
	}
	d := &discard{}
	v := &viewer{}
	for i, tr := range []*Track{video, audio} {
		b := newBinding(tr)
		b.writer, b.hdr, b.ssrc = d, rtp.Header{Version: 2, PayloadType: 96, SSRC: uint32(40 + i)}, uint32(40+i)
		v.binds[i] = b
	}
	if err := s.addViewer(v); err != nil {
		t.Fatal(err)
	}
	var seq uint16
	send := func(tr *Track, marker bool, want time.Duration) {
		t.Helper()
		seq++
		before := time.Now()
		if err := tr.WriteRTP(rtpPacket(seq, uint32(seq), marker, []byte{0x41, 1})); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		due := soonDue(s)
		switch {
		case want == 0 && !due.IsZero():
			t.Fatalf("packet %d: timer still due at %v after the frame's end woke the writers", seq, due)
		case want > 0 && (due.Before(before.Add(want)) || due.After(after.Add(want))):
			t.Fatalf("packet %d: timer due %v after it, want %v", seq, due.Sub(before), want)
		}
	}
	send(audio, false, coalesceWindow) // no video yet
	send(video, true, 0)
	send(audio, false, audioWindow) // video flows: waits for the next frame
	send(video, false, coalesceWindow)
	send(video, true, 0)

	// A wake already due sooner is never put off: audio after a frame's first packet
	// leaves with that frame, not 40 ms later.
	send(video, false, coalesceWindow)
	due := soonDue(s)
	seq++
	if err := audio.WriteRTP(rtpPacket(seq, uint32(seq), false, []byte{1})); err != nil {
		t.Fatal(err)
	}
	if got := soonDue(s); !got.Equal(due) {
		t.Fatalf("audio moved the frame's wake from %v to %v", due, got)
	}
	send(video, true, 0)

	// Video stopped (its last frame ended 300 ms ago): audio waits coalesceWindow again.
	s.lastFrame.Store(int64(time.Since(s.epoch)-300*time.Millisecond) + 1)
	send(audio, false, coalesceWindow)

	// The frame that the audio waits for never comes: the timer still delivers it.
	s.Start()
	defer s.Stop()
	waitSent := func(n uint64) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); v.counters.sent.Load() < n; {
			if time.Now().After(deadline) {
				t.Fatalf("sent %d of %d packets", v.counters.sent.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	send(video, true, 0) // disarms the timer the last audio armed
	waitSent(uint64(seq))
	// a frame "just ended" (set here, not sent: on a busy machine the wait above can
	// outlast videoFlowing)
	s.lastFrame.Store(int64(time.Since(s.epoch)) + 1)
	send(audio, false, audioWindow)
	waitSent(uint64(seq))
	if !soonDue(s).IsZero() {
		t.Fatal("the timer is still armed after it fired")
	}
}
