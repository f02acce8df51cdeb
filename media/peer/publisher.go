package peer

import (
	"context"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// Publisher loops a Clip to a WHIP endpoint in real time.
type Publisher struct {
	c       *Client
	pc      *webrtc.PeerConnection
	Session string
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Publish connects to a WHIP endpoint and starts sending clip until Close.
func (c *Client) Publish(ctx context.Context, endpoint string, clip *Clip) (*Publisher, error) {
	api, err := c.api()
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
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
		p.wg.Go(func() { // read RTCP so NACK/PLI interceptors run
			for {
				if _, _, err := sender.Sender().ReadRTCP(); err != nil {
					return
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
	p.wg.Go(func() { loop(run, time.Second/time.Duration(clip.FPS), clip.Video, video) })
	if len(clip.Audio) > 0 {
		p.wg.Go(func() { loop(run, 20*time.Millisecond, clip.Audio, audio) })
	}
	return p, nil
}

// loop writes frames at a steady interval, over and over.
func loop(ctx context.Context, every time.Duration, frames [][]byte, t *webrtc.TrackLocalStaticSample) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; ; i++ {
		_ = t.WriteSample(media.Sample{Data: frames[i%len(frames)], Duration: every})
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// PeerConnection exposes the publisher's peer (tests read its state).
func (p *Publisher) PeerConnection() *webrtc.PeerConnection { return p.pc }

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
