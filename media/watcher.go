package media

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/liveroom/liveroom/event"
)

// watcher is a WHEP session: one viewer of a live stream.
type watcher struct {
	sessionInfo
	s      *Service
	stream *Stream
	v      *viewer

	mu       sync.Mutex
	joined   bool
	joinedAt time.Time
	ended    bool
	timer    *time.Timer
	once     sync.Once
}

// Watch starts a WHEP session on a live room: the answer offers the publisher's codecs
// and the viewer starts at the cached keyframe once connected.
func (s *Service) Watch(ctx context.Context, room string, user event.User, offer string) (Answer, error) {
	s.mu.Lock()
	p, isClosed := s.rooms[room], s.closed
	s.mu.Unlock()
	if isClosed {
		return Answer{}, closed()
	}
	var stream *Stream
	if p != nil {
		stream, _ = p.liveStream()
	}
	if stream == nil {
		return Answer{}, notLive(room)
	}
	sd, err := parseOffer(offer, sdp.AttrKeySendOnly)
	if err != nil {
		return Answer{}, err
	}
	pc, err := s.apis.view.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return Answer{}, err
	}
	w := &watcher{s: s, stream: stream, sessionInfo: sessionInfo{id: newID(), room: room, user: user, kind: Watch, pc: pc}}
	w.v = &viewer{gone: func() { w.end(true) }}
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			w.join()
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			w.end(true)
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		_ = pc.GracefulClose()
		return Answer{}, badSDP(err)
	}
	senders, err := w.addTracks(sd)
	if err == nil {
		var ans string
		if ans, err = finishAnswer(ctx, pc); err == nil {
			err = w.start(ans, senders)
			if err == nil {
				return Answer{ID: w.id, SDP: ans, ETag: etagOf(ans)}, nil
			}
		}
	}
	_ = pc.GracefulClose()
	return Answer{}, err
}

// addTracks binds each of the stream's tracks whose codec the viewer offered. The
// layers of a simulcast section share one binding: the viewer gets one of them at a
// time on one track.
func (w *watcher) addTracks(sd *sdp.SessionDescription) (map[*webrtc.RTPSender]*binding, error) {
	senders := map[*webrtc.RTPSender]*binding{}
	codecs := sd.GetCodecMap() // once: pion builds the whole map on every lookup
	for i, t := range w.stream.Tracks() {
		if t.group != nil && t != t.group.layers[0] {
			if w.v.sim != nil {
				w.v.binds[i] = w.v.sim
			}
			continue
		}
		prefs := offeredCodecs(sd, codecs, t)
		if len(prefs) == 0 {
			continue
		}
		b := newBinding(t)
		sender, err := w.pc.AddTrack(b)
		if err != nil {
			continue
		}
		for _, tr := range w.pc.GetTransceivers() {
			if tr.Sender() == sender {
				_ = tr.SetCodecPreferences(prefs)
			}
		}
		w.v.binds[i] = b
		if b.sim != nil {
			w.v.sim = b
		}
		senders[sender] = b
	}
	if len(senders) == 0 {
		return nil, noCommonCodec("the offer accepts none of the stream's tracks")
	}
	return senders, nil
}

// start registers the session once the answer is made and the tracks are bound.
func (w *watcher) start(ans string, senders map[*webrtc.RTPSender]*binding) error {
	bound := 0
	for _, b := range senders {
		if b.bound() {
			bound++
		}
	}
	if bound == 0 {
		return noCommonCodec("no codec in common with the publisher (" + codecList(w.stream) + ")")
	}
	if err := w.s.register(w); err != nil {
		return err
	}
	w.s.metrics.sessions.WithLabelValues("whep").Inc()
	for sender, b := range senders {
		w.s.track(func() {
			for {
				pkts, _, err := sender.ReadRTCP()
				if err != nil {
					return
				}
				w.v.handleRTCP(w.stream, b, pkts, time.Now())
			}
		})
	}
	w.mu.Lock()
	w.timer = time.AfterFunc(w.s.cfg.ConnectTimeout, func() {
		w.mu.Lock()
		joined := w.joined
		w.mu.Unlock()
		if !joined {
			w.end(false)
		}
	})
	w.mu.Unlock()
	return nil
}

// offeredCodecs lists the viewer's offered codecs (with the viewer's payload types)
// that can carry track t unchanged; they become the answer's only codecs for it.
// codecs is sd's codec map. A simulcast section's also ask for REMB, which the
// choice of layer reads.
func offeredCodecs(sd *sdp.SessionDescription, codecs map[uint8]sdp.Codec, t *Track) []webrtc.RTPCodecParameters {
	var out []webrtc.RTPCodecParameters
	kind := t.kind.String()
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != kind {
			continue
		}
		for _, f := range m.MediaName.Formats {
			pt, err := strconv.ParseUint(f, 10, 8)
			if err != nil {
				continue
			}
			c, ok := codecs[uint8(pt)]
			if !ok {
				continue
			}
			capab := webrtc.RTPCodecCapability{
				MimeType: kind + "/" + c.Name, ClockRate: c.ClockRate, SDPFmtpLine: c.Fmtp,
			}
			switch {
			case t.group != nil:
				capab.RTCPFeedback = simulcastFeedback
			case t.kind == webrtc.RTPCodecTypeVideo:
				capab.RTCPFeedback = videoFeedback
			}
			if ch, err := strconv.Atoi(c.EncodingParameters); err == nil {
				capab.Channels = uint16(ch)
			}
			if codecMatches(t.codec.RTPCodecCapability, capab) {
				out = append(out, webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(pt), RTPCodecCapability: capab})
			}
		}
	}
	return out
}

func codecList(s *Stream) string {
	out := ""
	for i, t := range s.Tracks() {
		if i > 0 {
			out += ", "
		}
		out += t.codec.MimeType
		if f := fmtpParam(t.codec.SDPFmtpLine, "profile-level-id"); f != "" {
			out += " " + f
		}
	}
	return out
}

// join starts the packets flowing once the peer is connected.
func (w *watcher) join() {
	// Joined only once the stream takes the viewer (a stream that ended between the
	// answer and the connection does not: no watch_start, so no watch_stop), and under
	// w.mu, so that an end racing this join either comes first (nothing is added) or
	// sees the viewer joined and its watch_start already on the tap.
	w.mu.Lock()
	if w.joined || w.ended {
		w.mu.Unlock()
		return
	}
	w.v.sendRTCP = w.pc.WriteRTCP
	w.direct()
	err := w.stream.addViewer(w.v)
	if err == nil {
		w.joined, w.joinedAt = true, w.s.now()
		w.s.publish(event.WatchStart, w.room, w.stream.live, w.user, 0)
	}
	w.mu.Unlock()
	if err != nil {
		w.end(true)
	}
}

// direct gives the viewer the relay's direct path when it can have one (its SRTP
// context is readable and its ICE pair is UDP on the shared socket; it follows later
// changes of the pair, such as an ICE restart). Otherwise pion's path serves it.
func (w *watcher) direct() {
	if w.stream.out == nil {
		return
	}
	dt := w.pc.SCTP().Transport()
	o, err := newSRTPOut(dt)
	if err != nil {
		w.s.log.Warn("media: viewer left on pion's packet path", "session", w.id, "err", err)
		return
	}
	o.ice = dt.ICETransport()
	// The handler reads the pair again rather than take its argument, so that a change
	// racing this setup cannot leave an older pair in place.
	o.ice.OnSelectedCandidatePairChange(func(*webrtc.ICECandidatePair) { o.refresh() })
	o.refresh()
	w.v.out.Store(o)
}

// iceRestarted drops the direct path's address until ICE selects a pair again (pion
// deselects the old pair on a restart without telling).
func (w *watcher) iceRestarted() {
	if o := w.v.out.Load(); o != nil {
		o.refresh()
	}
}

// end leaves: the viewer stops getting packets, its watch time goes on the tap and the
// peer is closed.
func (w *watcher) end(async bool) {
	w.once.Do(func() {
		w.mu.Lock()
		w.ended = true
		joined, at := w.joined, w.joinedAt
		if w.timer != nil {
			w.timer.Stop()
		}
		w.mu.Unlock()
		closed := w.s.unregister(w.id)
		w.stream.removeViewer(w.v)
		if joined {
			w.s.publish(event.WatchStop, w.room, w.stream.live, w.user, w.s.now().Sub(at).Seconds())
		}
		closePeer(w.pc, async, closed)
	})
}
