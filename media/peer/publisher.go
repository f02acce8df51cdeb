package peer

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// Publisher loops a Clip to a WHIP endpoint in real time.
type Publisher struct {
	// keyframeAsked is set by a PLI/FIR from the server: the next frame sent is the
	// clip's next keyframe, as an encoder asked for one would do.
	keyframeAsked atomic.Bool
	c             *Client
	pc            *webrtc.PeerConnection
	Session       string
	cancel        context.CancelFunc
	wg            sync.WaitGroup
}

// Publish connects to a WHIP endpoint and starts sending clip until Close.
func (c *Client) Publish(ctx context.Context, endpoint string, clip *Clip) (*Publisher, error) {
	pc, err := c.peerConnection()
	if err != nil {
		return nil, err
	}
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "peer")
	if err != nil {
		pc.Close()
		return nil, err
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "peer")
	if err != nil {
		pc.Close()
		return nil, err
	}
	p := &Publisher{c: c, pc: pc}
	for _, t := range []*webrtc.TrackLocalStaticSample{video, audio} {
		if len(clip.Audio) == 0 && t == audio {
			continue
		}
		sender, err := pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			pc.Close()
			return nil, err
		}
		p.wg.Go(func() { // read RTCP so NACK runs, and hear keyframe requests
			for {
				pkts, _, err := sender.Sender().ReadRTCP()
				if err != nil {
					return
				}
				for _, pk := range pkts {
					switch pk.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						p.keyframeAsked.Store(true)
					}
				}
			}
		})
	}
	if p.Session, err = c.negotiate(ctx, pc, endpoint); err != nil {
		pc.Close()
		p.wg.Wait()
		return nil, err
	}
	run, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Go(func() { loop(run, time.Second/time.Duration(clip.FPS), clip.Video, video, p.nextKeyframe(clip)) })
	if len(clip.Audio) > 0 {
		p.wg.Go(func() { loop(run, 20*time.Millisecond, clip.Audio, audio, nil) })
	}
	return p, nil
}

// nextKeyframe returns a function that, when a keyframe was asked for, gives the
// index of the clip's next IDR access unit after i (else i).
func (p *Publisher) nextKeyframe(clip *Clip) func(i int) int {
	var idr []int
	for i, au := range clip.Video {
		for _, nal := range bytes.Split(au, []byte{0, 0, 0, 1}) {
			if len(nal) > 0 && nal[0]&0x1f == 5 {
				idr = append(idr, i)
				break
			}
		}
	}
	return func(i int) int {
		if len(idr) == 0 || !p.keyframeAsked.CompareAndSwap(true, false) {
			return i
		}
		cur := i % len(clip.Video)
		for _, k := range idr {
			if k >= cur {
				return i + k - cur
			}
		}
		return i + len(clip.Video) - cur + idr[0]
	}
}

// loop writes frames at a steady interval, over and over; skip (may be nil) moves
// to a keyframe when one was asked for. Frame n is due at start + n×every: a frame
// that is late (a busy load generator) is sent late, not dropped, so the stream keeps
// its rate, as an encoder's would.
func loop(ctx context.Context, every time.Duration, frames [][]byte, t *webrtc.TrackLocalStaticSample, skip func(int) int) {
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for n, i := 0, 0; ; n, i = n+1, i+1 {
		if skip != nil {
			i = skip(i)
		}
		_ = t.WriteSample(media.Sample{Data: frames[i%len(frames)], Duration: every})
		timer.Reset(time.Until(start.Add(time.Duration(n+1) * every)))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// Stop stops sending media but keeps the connection (and the broadcast) up.
func (p *Publisher) Stop() {
	if p.cancel != nil {
		p.cancel()
	}
}

// Close ends the session with DELETE (when del) and closes the peer.
func (p *Publisher) Close(ctx context.Context, del bool) error {
	p.Stop()
	var err error
	if del {
		err = p.c.deleteSession(ctx, p.Session)
	}
	_ = p.pc.GracefulClose()
	p.wg.Wait()
	return err
}
