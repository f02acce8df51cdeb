package media

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// keyframeInterval is the least time between two keyframe requests sent to a source
// (viewers' PLI/FIR and joiners are folded into one).
const keyframeInterval = 500 * time.Millisecond

// maxTracks bounds the media sections of one publisher (audio, video and a spare).
const maxTracks = 4

// maxStreamTracks bounds the tracks of one stream: its sections, a simulcast one
// counting once per layer.
const maxStreamTracks = 8

// Source feeds a Stream: the WHIP publisher today; an RTSP publisher or a relay from
// another node later. It declares tracks with Stream.AddTrack (or AddLayers for a
// simulcast section), writes RTP with Track.WriteRTP, and is asked for keyframes here.
type Source interface {
	// RequestKeyframe asks for a new keyframe on the video track t, one of the
	// stream's (PLI for WebRTC, on the SSRC of t's layer).
	RequestKeyframe(t *Track)
}

// Stream is one live room's media: a packet ring that every viewer reads at its own
// cursor. The source's goroutines write; a few writer goroutines (shards) send to the
// viewers, so the source never waits for a viewer and one slow viewer only lags itself.
type Stream struct {
	live    string
	src     Source
	join    string
	backlog uint64

	putMu  sync.Mutex // serialises the source's tracks writing the ring
	ring   ring
	tracks []*Track

	// video is the first video track (of a simulcast section, its first layer): the
	// keyframe cache and keyframe requests of viewers that get one video track
	video   atomic.Pointer[Track]
	noVideo keyCache // the keyframe cache of a stream without video: always empty
	keyReqs atomic.Uint64

	// soon wakes the writers a little after a packet that did not end a video frame,
	// so that a frame's packets (and the audio beside them) leave together
	soonMu    sync.Mutex
	soon      *time.Timer
	soonDue   time.Time    // when soon fires; zero when it is not armed
	epoch     time.Time    // the stream's start, for monotonic times
	lastFrame atomic.Int64 // when a video frame last ended (ns since epoch, plus 1; 0: never)

	out     *udpOut   // the shared UDP socket for direct writes; nil in unit tests
	batches sync.Pool // of *udpBatch, for writes outside the shards (NACK answers, joins)

	mu      sync.Mutex
	shards  []*shard
	viewers map[*viewer]*shard
	stopped bool
	done    chan struct{}
	wg      sync.WaitGroup

	// departed viewers' counters, so totals survive them
	gone viewerCounters
	rate rateSampler
}

// newStream prepares a stream; it sends nothing until Start.
func newStream(live string, src Source, cfg Config, out *udpOut) *Stream {
	n := cfg.Writers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	s := &Stream{
		live: live, src: src, join: cfg.JoinKeyframe, backlog: uint64(cfg.Backlog), epoch: time.Now(),
		viewers: map[*viewer]*shard{}, done: make(chan struct{}), out: out,
	}
	for range n {
		s.shards = append(s.shards, &shard{wake: make(chan struct{}, 1), q: newUDPBatch(out)})
	}
	s.soon = time.AfterFunc(time.Hour, func() {
		s.soonMu.Lock()
		s.soonDue = time.Time{}
		s.soonMu.Unlock()
		s.wake()
	})
	s.soon.Stop()
	s.batches.New = func() any { return newUDPBatch(out) }
	return s
}

// batch lends a batch for writes outside the shards; retrans says how its packets
// count. Give it back with putBatch once flushed.
func (s *Stream) batch(retrans bool) *udpBatch {
	q := s.batches.Get().(*udpBatch)
	q.retrans = retrans
	return q
}

func (s *Stream) putBatch(q *udpBatch) { s.batches.Put(q) }

// AddTrack declares a track of codec before Start.
func (s *Stream) AddTrack(codec webrtc.RTPCodecParameters, kind webrtc.RTPCodecType) (*Track, error) {
	s.putMu.Lock()
	defer s.putMu.Unlock()
	if len(s.tracks) >= maxStreamTracks {
		return nil, ErrTrackTooMany
	}
	return s.newTrackLocked(codec, kind, "", nil), nil
}

// AddLayers declares the video layers of one simulcast section before Start, one
// track per RTP stream id: each viewer gets one of them at a time (layers.go).
func (s *Stream) AddLayers(codec webrtc.RTPCodecParameters, rids []string) ([]*Track, error) {
	s.putMu.Lock()
	defer s.putMu.Unlock()
	if len(rids) == 0 || len(rids) > maxLayers || len(s.tracks)+len(rids) > maxStreamTracks {
		return nil, ErrTrackTooMany
	}
	g := &layerGroup{}
	for _, rid := range rids {
		g.layers = append(g.layers, s.newTrackLocked(codec, webrtc.RTPCodecTypeVideo, rid, g))
	}
	return g.layers, nil
}

// newTrackLocked adds a track; s.putMu is held.
func (s *Stream) newTrackLocked(codec webrtc.RTPCodecParameters, kind webrtc.RTPCodecType, rid string, g *layerGroup) *Track {
	t := &Track{s: s, idx: uint8(len(s.tracks)), codec: codec, kind: kind, family: codecFamily(codec.MimeType), rid: rid, group: g}
	s.tracks = append(s.tracks, t)
	if kind == webrtc.RTPCodecTypeVideo {
		s.video.CompareAndSwap(nil, t)
	}
	return t
}

// Tracks lists the stream's tracks.
func (s *Stream) Tracks() []*Track {
	s.putMu.Lock()
	defer s.putMu.Unlock()
	return append([]*Track(nil), s.tracks...)
}

// Start runs the writer goroutines.
func (s *Stream) Start() {
	for _, sh := range s.shards {
		s.wg.Go(func() { sh.run(s) })
	}
}

// Stop ends the stream: writers stop and every viewer is told (its gone callback).
func (s *Stream) Stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	close(s.done)
	s.soon.Stop()
	vs := make([]*viewer, 0, len(s.viewers))
	for v := range s.viewers {
		vs = append(vs, v)
	}
	s.mu.Unlock()
	s.wg.Wait()
	for _, v := range vs {
		if v.gone != nil {
			v.gone()
		}
	}
}

// RequestKeyframe asks for a keyframe on the stream's video track (of a simulcast
// section, its first layer); see Track.RequestKeyframe.
func (s *Stream) RequestKeyframe() bool {
	if t := s.video.Load(); t != nil {
		return t.RequestKeyframe()
	}
	return false
}

// RequestKeyframe forwards a keyframe request for t to the source at most once per
// keyframeInterval and reports whether it did now. A request inside the interval is
// not lost: one more is sent when the interval ends, for whoever asked meanwhile.
// Each simulcast layer has its own interval: a request goes to that layer's SSRC.
func (t *Track) RequestKeyframe() bool {
	s := t.s
	now := time.Now().UnixNano()
	last := t.lastKeyReq.Load()
	if wait := int64(keyframeInterval) - (now - last); wait > 0 {
		if t.keyPending.CompareAndSwap(false, true) {
			time.AfterFunc(time.Duration(wait), func() {
				t.keyPending.Store(false)
				select {
				case <-s.done:
				default:
					t.RequestKeyframe()
				}
			})
		}
		return false
	}
	if !t.lastKeyReq.CompareAndSwap(last, now) {
		return false
	}
	s.keyReqs.Add(1)
	if s.src != nil {
		s.src.RequestKeyframe(t)
	}
	return true
}

// keyCache is where a track's latest keyframe starts in the ring, for joiners and
// for viewers that lag or switch layers.
type keyCache struct {
	start atomic.Uint64 // ring position + 1 of the keyframe's first packet; 0: none yet
	at    atomic.Int64  // when it arrived (Unix ns)
}

// maxReplayAge is the oldest cached keyframe a joiner starts from. Browsers send
// keyframes only when asked, so their cache can be many seconds old: replaying that much
// shows the joiner stale pictures for seconds, and asking for a fresh keyframe is faster.
const maxReplayAge = 2 * time.Second

// addViewer starts sending to v, from the cached keyframe when the strategy and the
// cache allow and the keyframe is recent, else from now with a keyframe request. A
// simulcast viewer starts on the layer its first choice picks (layers.go), from that
// layer's cache.
func (s *Stream) addViewer(v *viewer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrNotLive
	}
	v.key = &s.noVideo
	if t := s.video.Load(); t != nil {
		v.key = &t.key
	}
	if v.sim != nil {
		v.key = &v.sim.sim.start(time.Now()).key
	}
	head := s.ring.head.Load()
	v.joinPos, v.cursor = head, head
	fresh := time.Now().UnixNano()-v.key.at.Load() <= int64(maxReplayAge)
	if ks := v.key.start.Load(); s.join == JoinCache && ks > 0 && head-(ks-1) <= s.backlog && fresh {
		v.cursor = ks - 1
		// The first burst of the cached picture leaves now, from the joining goroutine
		// (no shard sees v yet), not at the writers' next pass, which under load can be
		// many milliseconds away.
		q := s.batch(false)
		v.drain(s, q, time.Now())
		s.putBatch(q)
	} else {
		v.requestKeyframe(s)
	}
	var best *shard
	for _, sh := range s.shards {
		if best == nil || sh.n < best.n {
			best = sh
		}
	}
	best.add(v)
	s.viewers[v] = best
	best.poke()
	return nil
}

// removeViewer stops sending to v and keeps its counters in the stream's totals.
func (s *Stream) removeViewer(v *viewer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sh, ok := s.viewers[v]; ok {
		delete(s.viewers, v)
		sh.remove(v)
		s.gone.add(&v.counters) // in the same step, for figures
	}
}

// coalesceWindow is the longest a video packet waits for the writers when it does not
// end a frame. A frame's packets then leave together, one segmented write per viewer
// for the whole run (a frame cannot be shown before its last packet anyway), and a
// writer wakes once per frame instead of once per packet.
const coalesceWindow = 5 * time.Millisecond

// audioWindow is the longest an audio packet waits for the next video frame while
// video flows, so that it leaves in the same pass: a writer's pass over its viewers
// costs per viewer, not only per packet. Without video it waits coalesceWindow.
const audioWindow = 40 * time.Millisecond

// videoFlowing is how recently a frame must have ended for audio to wait for the next.
const videoFlowing = 200 * time.Millisecond

// videoFlowing reports whether a video frame ended within videoFlowing before since
// (ns since the stream's epoch: monotonic, so a step of the wall clock cannot hold
// audio back).
func (s *Stream) videoFlowing(since int64) bool {
	last := s.lastFrame.Load()
	return last != 0 && since-(last-1) < int64(videoFlowing)
}

// wakeWithin wakes the writers within d of now (or sooner, if already due sooner).
func (s *Stream) wakeWithin(now time.Time, d time.Duration) {
	s.soonMu.Lock()
	if due := now.Add(d); s.soonDue.IsZero() || due.Before(s.soonDue) {
		s.soonDue = due
		s.soon.Reset(d)
	}
	s.soonMu.Unlock()
}

// wakeNow wakes the writers at once; what soon was armed for goes with them.
func (s *Stream) wakeNow() {
	s.soonMu.Lock()
	if !s.soonDue.IsZero() {
		s.soonDue = time.Time{}
		s.soon.Stop()
	}
	s.soonMu.Unlock()
	s.wake()
}

// wake tells every shard that there are new packets.
func (s *Stream) wake() {
	for _, sh := range s.shards {
		sh.poke()
	}
}

// Track is one media track of a stream.
type Track struct {
	s      *Stream
	idx    uint8
	codec  webrtc.RTPCodecParameters
	kind   webrtc.RTPCodecType
	family int
	rid    string      // the RTP stream id of a simulcast layer, else empty
	group  *layerGroup // the simulcast section this layer belongs to, else nil

	key        keyCache
	lastKeyReq atomic.Int64 // unix nanos of the last keyframe request
	keyPending atomic.Bool  // a deferred request is scheduled
	srcSSRC    atomic.Uint32
	rate       layerRate // kept for simulcast layers only, to choose between them

	// written only by the source's goroutine for this track
	frameTS, keyTS  uint32
	frameStart      uint64
	haveTS, haveSeq bool
	lastSeq         uint16

	seqIdx [ringSize]atomic.Uint64 // seq % ringSize → ring position + 1 (NACK cache)

	packets, bytes, frames, lost atomic.Uint64
	width, height                atomic.Int32
}

// Codec is the track's negotiated codec.
func (t *Track) Codec() webrtc.RTPCodecParameters { return t.codec }

// Kind is audio or video.
func (t *Track) Kind() webrtc.RTPCodecType { return t.kind }

// WriteRTP adds one RTP packet from the source. It copies pkt, so the caller may
// reuse it; it never blocks on viewers and does not allocate.
func (t *Track) WriteRTP(pkt []byte) error {
	h, err := parseRTP(pkt)
	if err != nil {
		return fmt.Errorf("track %d: %w", t.idx, err)
	}
	s := t.s
	// Only a keyframe carries the size (a VP8 keyframe header, an H.264 SPS), so
	// the size is looked for in keyframes only, not in every packet. The packet that
	// shows a new keyframe is marked in the ring: a viewer may switch layers there.
	isKey := t.kind == webrtc.RTPCodecTypeVideo && isKeyframe(t.family, pkt[h.off:h.end])
	newKey := isKey && (h.ts != t.keyTS || t.key.start.Load() == 0)
	s.putMu.Lock()
	pos := s.ring.put(t.idx, pkt, h, newKey)
	s.putMu.Unlock()
	if t.group != nil {
		t.rate.add(time.Now(), len(pkt))
	}
	t.seqIdx[h.seq%ringSize].Store(pos + 1)
	t.packets.Add(1)
	t.bytes.Add(uint64(len(pkt)))
	if t.haveSeq {
		if d := h.seq - t.lastSeq; d != 0 && d < 0x8000 {
			t.lost.Add(uint64(d - 1))
			t.lastSeq = h.seq
		}
	} else {
		t.haveSeq, t.lastSeq = true, h.seq
	}
	if t.kind == webrtc.RTPCodecTypeVideo {
		if !t.haveTS || h.ts != t.frameTS {
			t.haveTS, t.frameTS, t.frameStart = true, h.ts, pos
			t.frames.Add(1)
		}
		if isKey {
			if newKey {
				t.keyTS = h.ts
				t.key.start.Store(t.frameStart + 1)
				t.key.at.Store(time.Now().UnixNano())
			}
			if w, hh, ok := videoSize(t.family, pkt[h.off:h.end]); ok {
				t.width.Store(int32(w))
				t.height.Store(int32(hh))
			}
		}
	}
	now := time.Now()
	switch since := int64(now.Sub(s.epoch)); {
	case t.kind == webrtc.RTPCodecTypeVideo && h.marker:
		s.lastFrame.Store(since + 1)
		s.wakeNow()
	case t.kind == webrtc.RTPCodecTypeAudio && s.videoFlowing(since):
		s.wakeWithin(now, audioWindow)
	default:
		s.wakeWithin(now, coalesceWindow)
	}
	return nil
}

// lookup finds the ring position of seq on this track, if still cached.
func (t *Track) lookup(seq uint16) (uint64, bool) {
	p := t.seqIdx[seq%ringSize].Load()
	if p == 0 {
		return 0, false
	}
	return p - 1, true
}

// yieldEvery is how many viewers a writer serves between yields to other goroutines.
const yieldEvery = 64

// shard is one writer goroutine and the viewers it serves.
type shard struct {
	list atomic.Pointer[[]*viewer] // copy-on-write, changed under Stream.mu
	n    int
	wake chan struct{}
	q    *udpBatch // this writer's outgoing datagrams
}

func (sh *shard) poke() {
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

func (sh *shard) add(v *viewer) {
	var next []*viewer
	if cur := sh.list.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, v)
	sh.list.Store(&next)
	sh.n++
}

func (sh *shard) remove(v *viewer) {
	cur := sh.list.Load()
	if cur == nil {
		return
	}
	next := make([]*viewer, 0, len(*cur))
	for _, x := range *cur {
		if x != v {
			next = append(next, x)
		}
	}
	sh.list.Store(&next)
	sh.n--
}

func (sh *shard) run(s *Stream) {
	for {
		select {
		case <-s.done:
			return
		case <-sh.wake:
		}
		more := false
		if vs := sh.list.Load(); vs != nil {
			now := time.Now()
			for i, v := range *vs {
				more = v.drain(s, sh.q, now) || more
				if i%yieldEvery == yieldEvery-1 {
					// a pass over many viewers takes tens of milliseconds: let the
					// joiners' handshakes and the RTCP readers in between
					runtime.Gosched()
				}
			}
		}
		if more {
			sh.poke()
		}
	}
}
