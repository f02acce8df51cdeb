package media

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/liveroom/liveroom/event"
)

// trackWait is how long a broadcast waits for the rest of the offered tracks after
// the first one arrives before it goes live without them.
const trackWait = 2 * time.Second

// publisher is a WHIP session and the Source of its room's Stream.
type publisher struct {
	sessionInfo
	s *Service

	mu       sync.Mutex
	expected int // the answer's sections that take media
	stream   *Stream
	arrived  []*webrtc.RTPReceiver                     // one per offered section: a simulcast one has several tracks
	layers   map[*webrtc.RTPReceiver]map[string]*Track // a simulcast section's layers by RID
	hasVideo bool
	isLive   bool
	liveAt   time.Time
	ended    bool
	timer    *time.Timer // the wait for the rest of the tracks
	deadline *time.Timer // the wait for the broadcast to start
	once     sync.Once
}

var _ Source = (*publisher)(nil)

// Publish starts a WHIP session for room (RFC 9725 §4.2): the room goes live once the
// offered tracks arrive. A room has at most one publisher.
func (s *Service) Publish(ctx context.Context, room string, user event.User, offer string) (Answer, error) {
	if _, err := parseOffer(offer, sdp.AttrKeyRecvOnly); err != nil {
		return Answer{}, err
	}
	p := &publisher{s: s, sessionInfo: sessionInfo{id: newID(), room: room, user: user, kind: Publish}}
	// The peer connection exists before the publisher is registered, so a Close racing
	// with this Publish always finds it and closes it.
	pc, err := s.apis.pub.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return Answer{}, err
	}
	p.pc = pc
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		pc.Close()
		return Answer{}, closed()
	case s.rooms[room] != nil:
		s.mu.Unlock()
		pc.Close()
		return Answer{}, alreadyLive(room)
	}
	s.rooms[room] = p
	s.sessions[p.id] = p
	s.mu.Unlock()
	s.metrics.sessions.WithLabelValues("whip").Inc()

	pc.OnTrack(p.onTrack)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
			s.log.Info("publisher connection ended", "room", room, "state", st.String())
			p.end(true)
		}
	})
	ans, err := answer(ctx, pc, offer)
	// Sections whose codecs the relay cannot carry are refused (port 0): the room
	// waits for the others only, and an offer with none left must not hold it.
	accepted := acceptedSections(ans)
	if err == nil && accepted == 0 {
		err = noCommonCodec("the offer has no codec the relay carries (Opus, VP8, H.264 packetization-mode 1)")
	}
	if err != nil {
		p.end(false)
		return Answer{}, err
	}
	// A publisher that never connects, or connects and sends nothing, would hold the
	// room (a second publisher gets 409): it has until ConnectTimeout to go live.
	p.mu.Lock()
	p.expected = accepted
	p.deadline = time.AfterFunc(s.cfg.ConnectTimeout, func() {
		p.mu.Lock()
		waiting := !p.isLive && !p.ended
		p.mu.Unlock()
		if waiting {
			s.log.Info("publisher did not start in time", "room", room, "timeout", s.cfg.ConnectTimeout.String())
			p.end(false)
		}
	})
	p.mu.Unlock()
	return Answer{ID: p.id, SDP: ans, ETag: etagOf(ans)}, nil
}

// parseOffer parses an offer and checks that it has audio/video sections that can carry
// media the other way than skip (recvonly for a publisher, sendonly for a viewer), and
// not too many.
func parseOffer(offer, skip string) (*sdp.SessionDescription, error) {
	sd := &sdp.SessionDescription{}
	if err := sd.UnmarshalString(offer); err != nil {
		return nil, badSDP(err)
	}
	// Every section costs a pion transceiver, whether it carries media our way or not
	// (port 0, the other direction, data): all of them are bounded, not only those
	// counted as media.
	switch n := mediaSections(sd, skip); {
	case n == 0:
		return nil, badSDP(ErrNoMedia)
	case n > maxTracks || len(sd.MediaDescriptions) > maxSections:
		return nil, badSDP(ErrTrackTooMany)
	}
	return sd, nil
}

// maxSections bounds an offer's m= sections of any kind: the media ones (maxTracks)
// and as many others (a data channel, sections refused or sending the other way).
const maxSections = 2 * maxTracks

// acceptedSections counts the audio/video sections in which a publisher's answer
// receives media: a refused one has port 0, one the offer does not send on is inactive.
func acceptedSections(ans string) int {
	sd := &sdp.SessionDescription{}
	if sd.UnmarshalString(ans) != nil {
		return 0
	}
	return mediaSections(sd, sdp.AttrKeySendOnly)
}

// mediaSections counts the audio/video sections that carry media, except those with the
// direction skip.
func mediaSections(sd *sdp.SessionDescription, skip string) int {
	n := 0
	for _, m := range sd.MediaDescriptions {
		if k := m.MediaName.Media; (k != "audio" && k != "video") || m.MediaName.Port.Value == 0 {
			continue
		}
		if _, off := m.Attribute(skip); off {
			continue
		}
		if _, off := m.Attribute(sdp.AttrKeyInactive); off {
			continue
		}
		n++
	}
	return n
}

func (p *publisher) onTrack(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	p.mu.Lock()
	if p.ended {
		p.mu.Unlock()
		return
	}
	if p.stream == nil {
		p.stream = newStream(newID(), p, p.s.cfg, p.s.apis.out)
	}
	var t *Track
	video := remote.Kind() == webrtc.RTPCodecTypeVideo
	// Tracks are fixed once live, but a simulcast section's layers are all declared
	// when its first one arrives: the others may start later (browsers add their
	// higher layers as their uplink's estimate grows).
	switch {
	case video && remote.RID() != "":
		t = p.layerLocked(remote, recv)
	case !p.isLive && !(video && p.hasVideo):
		t, _ = p.stream.AddTrack(remote.Codec(), remote.Kind())
		p.hasVideo = p.hasVideo || video && t != nil
	}
	if t != nil && video {
		t.srcSSRC.Store(uint32(remote.SSRC()))
	}
	if !slices.Contains(p.arrived, recv) {
		p.arrived = append(p.arrived, recv)
	}
	if len(p.arrived) >= p.expected {
		p.goLive()
	} else if p.timer == nil {
		p.timer = time.AfterFunc(trackWait, func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.goLive()
		})
	}
	p.s.wg.Go(func() { p.read(remote, t) })
	p.s.wg.Go(func() { drainRTCP(recv, remote.RID()) })
	p.mu.Unlock()
}

// layerLocked is the stream's track for a simulcast layer, declaring the section's
// layers (every RID its receiver has) when its first one arrives before the stream is
// live; nil when the layer is not relayed. p.mu is held.
func (p *publisher) layerLocked(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) *Track {
	g, ok := p.layers[recv]
	if !ok && !p.isLive && !p.hasVideo {
		var rids []string
		for _, tr := range recv.Tracks() {
			if rid := tr.RID(); rid != "" && len(rids) < maxLayers && !slices.Contains(rids, rid) {
				rids = append(rids, rid)
			}
		}
		if ts, err := p.stream.AddLayers(remote.Codec(), rids); err == nil {
			g = map[string]*Track{}
			for _, t := range ts {
				g[t.rid] = t
			}
			p.hasVideo = true
		}
		if p.layers == nil {
			p.layers = map[*webrtc.RTPReceiver]map[string]*Track{}
		}
		p.layers[recv] = g
	}
	t := g[remote.RID()]
	if t == nil || !codecMatches(t.codec.RTPCodecCapability, remote.Codec().RTPCodecCapability) {
		return nil // a layer in another codec cannot follow on the viewers' one track
	}
	return t
}

// read copies the publisher's packets into the stream until the track ends.
func (p *publisher) read(remote *webrtc.TrackRemote, t *Track) {
	buf := make([]byte, maxPacket)
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		if t != nil {
			_ = t.WriteRTP(buf[:n]) // a malformed packet is skipped
		}
	}
}

// drainRTCP reads a receiver's RTCP so its interceptors (reports, NACK) keep working;
// a simulcast layer (rid set) has its own, which Read does not reach.
func drainRTCP(recv *webrtc.RTPReceiver, rid string) {
	buf := make([]byte, maxPacket)
	for {
		var err error
		if rid == "" {
			_, _, err = recv.Read(buf)
		} else {
			_, _, err = recv.ReadSimulcast(buf, rid)
		}
		if err != nil {
			return
		}
	}
}

// goLive starts the stream and announces it; p.mu is held.
func (p *publisher) goLive() {
	if p.isLive || p.ended || p.stream == nil {
		return
	}
	if p.timer != nil {
		p.timer.Stop()
	}
	p.isLive, p.liveAt = true, p.s.now()
	p.stream.Start()
	if p.s.live != nil {
		p.s.live.SetLive(p.room, true)
	}
	p.s.publish(event.LiveStart, p.room, p.stream.live, p.user, 0)
	p.s.log.Info("live", "room", p.room, "live", p.stream.live, "tracks", len(p.stream.Tracks()))
}

// liveStream is the stream while the room is live, else nil.
func (p *publisher) liveStream() (*Stream, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.isLive || p.ended {
		return nil, time.Time{}
	}
	return p.stream, p.liveAt
}

// RequestKeyframe sends a PLI for the video track t, on its layer's SSRC
// (RFC 4585 §6.3.1).
func (p *publisher) RequestKeyframe(t *Track) {
	if ssrc := t.srcSSRC.Load(); ssrc != 0 && p.pc != nil {
		_ = p.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
	}
}

// end stops the broadcast: viewers are closed, chat and the tap hear of it, and the
// peer is closed (in the background when called from one of pion's callbacks).
func (p *publisher) end(async bool) {
	p.once.Do(func() {
		s := p.s
		// Ended, unlisted and counted among the ending streams in one step under s.mu,
		// which a scrape holds: it finds the stream's figures in one place or another,
		// never in none, until retire moves them to the totals.
		s.mu.Lock()
		p.mu.Lock()
		p.ended = true
		wasLive, stream := p.isLive, p.stream
		for _, t := range []*time.Timer{p.timer, p.deadline} {
			if t != nil {
				t.Stop()
			}
		}
		p.mu.Unlock()
		if s.rooms[p.room] == p {
			delete(s.rooms, p.room)
		}
		delete(s.sessions, p.id)
		closed := s.closingLocked()
		if stream != nil {
			s.metrics.ending(stream)
		}
		s.mu.Unlock()
		if stream != nil {
			stream.Stop()
			s.metrics.retire(stream)
		}
		if wasLive {
			if s.live != nil {
				s.live.SetLive(p.room, false)
			}
			s.publish(event.LiveEnd, p.room, stream.live, p.user, s.now().Sub(p.liveAt).Seconds())
			s.log.Info("live ended", "room", p.room, "live", stream.live)
		}
		closePeer(p.pc, async, closed)
	})
}

// closePeer closes pc and waits for pion's goroutines, in the background when called
// from one of pion's own callbacks (which GracefulClose would wait for); closed is
// called once it has.
func closePeer(pc *webrtc.PeerConnection, async bool, closed func()) {
	if pc == nil {
		closed()
		return
	}
	if async {
		go func() {
			defer closed()
			_ = pc.GracefulClose()
		}()
		return
	}
	_ = pc.GracefulClose()
	closed()
}
