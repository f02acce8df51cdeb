package media

import (
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
)

// ringSize is how many packets a stream keeps: the fan-out window, the NACK cache and
// the keyframe cache at once (about 4 s of a 10 Mbit/s stream).
const ringSize = 4096

// maxPacket is the largest RTP packet accepted from a source.
const maxPacket = 1500

var errShortRTP = errors.New("not an RTP packet")

// slot is one packet in the ring. The publisher's goroutine fills it under mu; writer
// goroutines read it under the read lock (only a lagging reader ever meets the writer).
type slot struct {
	mu      sync.RWMutex
	pos     uint64 // ring position + 1; 0 while empty
	track   uint8
	marker  bool
	key     bool // the first packet of a keyframe (a layer switch may start here)
	seq     uint16
	ts      uint32
	buf     [maxPacket]byte
	payload []byte // buf[off:n], kept to avoid re-slicing per reader
}

// ring is a stream's packet history. Positions grow forever; position p lives in
// slots[p%ringSize] until it is overwritten ringSize packets later.
type ring struct {
	slots [ringSize]slot
	head  atomic.Uint64 // next position to write; readers read below it
}

// put copies one parsed RTP packet into the next slot and returns its position.
// Callers serialise put.
func (r *ring) put(track uint8, pkt []byte, h rtpInfo, key bool) uint64 {
	pos := r.head.Load()
	s := &r.slots[pos%ringSize]
	s.mu.Lock()
	s.pos, s.track, s.marker, s.key, s.seq, s.ts = pos+1, track, h.marker, key, h.seq, h.ts
	copy(s.buf[:], pkt[:h.end])
	s.payload = s.buf[h.off:h.end]
	s.mu.Unlock()
	r.head.Store(pos + 1)
	return pos
}

// rtpInfo is what the relay needs from an RTP header.
type rtpInfo struct {
	marker   bool
	pt       uint8
	seq      uint16
	ts       uint32
	off, end int // payload bounds (padding removed)
}

// parseRTP reads the fixed header, skips CSRCs and the extension (RFC 3550 §5.1,
// §5.3.1) and strips padding, without allocating.
func parseRTP(b []byte) (rtpInfo, error) {
	var h rtpInfo
	if len(b) < 12 || len(b) > maxPacket || b[0]>>6 != 2 {
		return h, errShortRTP
	}
	h.marker = b[1]&0x80 != 0
	h.pt = b[1] & 0x7f
	h.seq = binary.BigEndian.Uint16(b[2:])
	h.ts = binary.BigEndian.Uint32(b[4:])
	h.off = 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < h.off+4 {
			return h, errShortRTP
		}
		h.off += 4 + 4*int(binary.BigEndian.Uint16(b[h.off+2:]))
	}
	h.end = len(b)
	if b[0]&0x20 != 0 && h.end > h.off {
		h.end -= int(b[h.end-1])
	}
	if h.off > h.end {
		return h, errShortRTP
	}
	return h, nil
}
