package peer

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	lrmedia "github.com/liveroom/liveroom/media"
)

// Viewer receives a WHEP stream and counts what arrives.
type Viewer struct {
	c       *Client
	pc      *webrtc.PeerConnection
	Session string
	// Ended is closed when the connection fails or closes (e.g. the broadcast ended).
	Ended chan struct{}
	wg    sync.WaitGroup

	mu          sync.Mutex
	connectedAt time.Time
	firstKey    time.Time // when the first keyframe packet reached the socket
	firstRead   time.Time // when it was decrypted and read
	video       seqCounter
	audio       seqCounter
	bytes       uint64
	endOnce     sync.Once

	videoSSRC, audioSSRC uint32 // what a light viewer counts (light.go)
	light, gro           bool   // counting from RTP headers, on a socket that takes runs whole
}

// ViewerStats is what a viewer has seen so far.
type ViewerStats struct {
	Connected bool
	// FirstKeyframe is the time from the connection to the first keyframe packet's
	// arrival at the socket (kernel time on Linux); FirstKeyframeRead to its reading,
	// after decryption, which a busy client delays.
	FirstKeyframe, FirstKeyframeRead time.Duration
	KeyframeSeen                     bool
	Video, Audio                     SeqStats
	Bytes                            uint64
	// Light says the viewer counts its packets from their RTP headers now (Client.Light).
	Light bool
	// GRO says the light viewer's socket takes segmented sends whole (NewAPI's gro).
	GRO bool
}

// SeqStats counts one track's packets against its sequence numbers (RFC 3550 §6.4.1:
// expected − received, duplicates included in received).
type SeqStats struct {
	Packets, Unique, Expected uint64
}

// Lost is how many packets are missing (never below zero).
func (s SeqStats) Lost() uint64 {
	if s.Unique >= s.Expected {
		return 0
	}
	return s.Expected - s.Unique
}

// seqCounter tracks extended sequence numbers and which ones arrived, over a
// 32768-packet window so late retransmissions still count once.
type seqCounter struct {
	started     bool
	first, high uint64
	seen        [1024]uint64 // 65536 bits
	packets     uint64
	unique      uint64
}

func (c *seqCounter) add(seq uint16) {
	c.packets++
	if !c.started {
		c.started, c.first, c.high = true, uint64(seq)+1<<16, uint64(seq)+1<<16
	}
	// extend seq to the value nearest the highest so far
	ext := c.high&^0xffff | uint64(seq)
	switch {
	case ext+0x8000 < c.high:
		ext += 1 << 16
	case ext > c.high+0x8000:
		ext -= 1 << 16
	}
	if ext < c.first || ext+0x8000 < c.high {
		return // older than the window
	}
	for c.high < ext { // moving the window forgets the oldest half
		c.high++
		c.clear(c.high + 0x8000)
	}
	if i := ext & 0xffff; c.seen[i/64]&(1<<(i%64)) == 0 {
		c.seen[i/64] |= 1 << (i % 64)
		c.unique++
	}
}

func (c *seqCounter) clear(ext uint64) {
	i := ext & 0xffff
	c.seen[i/64] &^= 1 << (i % 64)
}

func (c *seqCounter) stats() SeqStats {
	s := SeqStats{Packets: c.packets, Unique: c.unique}
	if c.started {
		s.Expected = c.high - c.first + 1
	}
	return s
}

// Watch connects to a WHEP endpoint.
func (c *Client) Watch(ctx context.Context, endpoint string) (*Viewer, error) {
	pc, err := c.peerConnection()
	if err != nil {
		return nil, err
	}
	v := &Viewer{c: c, pc: pc, Ended: make(chan struct{})}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			pc.Close()
			return nil, err
		}
	}
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			v.mu.Lock()
			if v.connectedAt.IsZero() {
				v.connectedAt = time.Now()
			}
			v.mu.Unlock()
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateDisconnected:
			v.endOnce.Do(func() { close(v.Ended) })
		}
	})
	pc.OnTrack(func(t *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		v.mu.Lock()
		if t.Kind() == webrtc.RTPCodecTypeVideo {
			v.videoSSRC = uint32(t.SSRC())
		} else {
			v.audioSSRC = uint32(t.SSRC())
		}
		v.mu.Unlock()
		v.wg.Go(func() { v.read(t) })
		v.wg.Go(func() { // the sender reports feed this viewer's RTT in its receiver reports
			for {
				if _, _, err := recv.ReadRTCP(); err != nil {
					return
				}
			}
		})
	})
	if v.Session, err = c.negotiate(ctx, pc, endpoint); err != nil {
		_ = pc.GracefulClose()
		return nil, err
	}
	return v, nil
}

func (v *Viewer) read(tr *webrtc.TrackRemote) {
	mime := tr.Codec().MimeType
	isVideo := tr.Kind() == webrtc.RTPCodecTypeVideo
	buf := make([]byte, 1500)
	for {
		n, _, err := tr.Read(buf) // raw, so counting allocates nothing per packet
		if err != nil {
			return
		}
		seq, payload, ok := rtpSeqPayload(buf[:n])
		if !ok {
			continue
		}
		read := time.Now()
		now := read
		// only this goroutine writes firstKey
		first := isVideo && v.firstKey.IsZero() && lrmedia.IsKeyframe(mime, payload)
		if first { // timed at the socket: the generator's own lag is not the server's
			if t, ok := v.tap(); ok {
				if at, ok := t.arrived(uint32(tr.SSRC()), seq); ok {
					now = at
				}
			}
		}
		v.mu.Lock()
		v.bytes += uint64(len(payload))
		if isVideo {
			v.video.add(seq)
			if first {
				v.firstKey, v.firstRead = now, read
			}
		} else {
			v.audio.add(seq)
		}
		v.mu.Unlock()
		if first && v.c.Light {
			v.goLight()
		}
	}
}

// rtpSeqPayload reads the sequence number and payload of an RTP packet (RFC 3550 §5.1).
func rtpSeqPayload(b []byte) (uint16, []byte, bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return 0, nil, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < off+4 {
			return 0, nil, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	end := len(b)
	if b[0]&0x20 != 0 && end > off {
		end -= int(b[end-1])
	}
	if off > end {
		return 0, nil, false
	}
	return binary.BigEndian.Uint16(b[2:]), b[off:end], true
}

// Stats returns a snapshot of what arrived.
func (v *Viewer) Stats() ViewerStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := ViewerStats{Connected: !v.connectedAt.IsZero(), Video: v.video.stats(), Audio: v.audio.stats(), Bytes: v.bytes, Light: v.light, GRO: v.gro}
	if !v.firstKey.IsZero() && s.Connected {
		s.KeyframeSeen = true
		s.FirstKeyframe = max(v.firstKey.Sub(v.connectedAt), 0)
		s.FirstKeyframeRead = max(v.firstRead.Sub(v.connectedAt), 0)
	}
	return s
}

// Close leaves with DELETE (when del) and closes the peer.
func (v *Viewer) Close(ctx context.Context, del bool) error {
	var err error
	if del {
		err = v.c.deleteSession(ctx, v.Session)
	}
	_ = v.pc.GracefulClose()
	v.wg.Wait()
	return err
}
