package media

import (
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// Stats describes one room's media now (GET /api/rooms/{room}/stats).
type Stats struct {
	Room      string          `json:"room"`
	Live      bool            `json:"live"`
	LiveID    string          `json:"live_id,omitempty"`
	Since     *time.Time      `json:"since,omitempty"`
	Publisher *PublisherStats `json:"publisher,omitempty"`
	Viewers   ViewerStats     `json:"viewers"`
}

// PublisherStats is what arrives from the publisher.
type PublisherStats struct {
	Tracks      []TrackStats `json:"tracks"`
	BitrateKbps float64      `json:"bitrate_kbps"`
	// Loss is the fraction of packets missing in sequence (0–1) since the start.
	Loss float64 `json:"loss"`
}

// TrackStats describes one published track (each layer of a simulcast section is one).
type TrackStats struct {
	Kind string `json:"kind"`
	// RID names a simulcast layer; Viewers counts the viewers getting it now.
	RID         string  `json:"rid,omitempty"`
	Viewers     *int    `json:"viewers,omitempty"`
	Codec       string  `json:"codec"`
	Fmtp        string  `json:"fmtp,omitempty"`
	Width       int     `json:"width,omitempty"`
	Height      int     `json:"height,omitempty"`
	FPS         float64 `json:"fps,omitempty"`
	BitrateKbps float64 `json:"bitrate_kbps"`
	Packets     uint64  `json:"packets"`
	Lost        uint64  `json:"lost"`
}

// ViewerStats aggregates the room's WHEP viewers.
type ViewerStats struct {
	Count int `json:"count"`
	// Loss is the mean fraction lost (0–1) in the viewers' latest receiver reports.
	Loss float64 `json:"loss"`
	// RTTMs is the mean round-trip time in milliseconds from receiver reports.
	RTTMs         float64 `json:"rtt_ms"`
	Sent          uint64  `json:"packets_sent"`
	Dropped       uint64  `json:"packets_dropped"`
	Retransmitted uint64  `json:"packets_retransmitted"`
	// LayerSwitches counts the viewers' moves from one simulcast layer to another,
	// those who left included (absent without simulcast).
	LayerSwitches *uint64 `json:"layer_switches,omitempty"`
}

// rateSampler turns counters into per-second rates over the time since the previous
// look (at least a second apart, so frequent polls see steady figures).
type rateSampler struct {
	mu    sync.Mutex
	at    time.Time
	prev  [maxStreamTracks][2]uint64 // bytes, frames
	rates [maxStreamTracks][2]float64
}

func (r *rateSampler) sample(now time.Time, tracks []*Track) [maxStreamTracks][2]float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	dt := now.Sub(r.at).Seconds()
	if r.at.IsZero() || dt >= 1 {
		for i, t := range tracks {
			cur := [2]uint64{t.bytes.Load(), t.frames.Load()}
			if !r.at.IsZero() {
				r.rates[i] = [2]float64{float64(cur[0]-r.prev[i][0]) * 8 / 1000 / dt, float64(cur[1]-r.prev[i][1]) / dt}
			}
			r.prev[i] = cur
		}
		r.at = now
	}
	return r.rates
}

// stats reads the stream's figures.
func (s *Stream) stats(now time.Time) (PublisherStats, ViewerStats) {
	tracks := s.Tracks()
	rates := s.rate.sample(now, tracks)
	var ps PublisherStats
	var pk, lost uint64
	var onLayer [maxStreamTracks]int
	simulcast := false
	s.mu.Lock()
	for v := range s.viewers {
		if v.sim != nil {
			if t := v.sim.sim.cur.Load(); t != nil {
				onLayer[t.idx]++
			}
		}
	}
	s.mu.Unlock()
	for i, t := range tracks {
		ts := TrackStats{
			Kind: t.kind.String(), Codec: strings.TrimPrefix(strings.TrimPrefix(t.codec.MimeType, "video/"), "audio/"),
			Fmtp: t.codec.SDPFmtpLine, BitrateKbps: rates[i][0], Packets: t.packets.Load(), Lost: t.lost.Load(),
		}
		if t.kind == webrtc.RTPCodecTypeVideo {
			ts.Width, ts.Height, ts.FPS = int(t.width.Load()), int(t.height.Load()), rates[i][1]
		}
		if t.group != nil {
			ts.RID, ts.Viewers, simulcast = t.rid, &onLayer[i], true
		}
		ps.Tracks = append(ps.Tracks, ts)
		ps.BitrateKbps += ts.BitrateKbps
		pk += ts.Packets
		lost += ts.Lost
	}
	if pk+lost > 0 {
		ps.Loss = float64(lost) / float64(pk+lost)
	}
	var vs ViewerStats
	var c viewerCounters
	s.mu.Lock()
	c.add(&s.gone) // under s.mu, as removeViewer moves a viewer's counts there
	var loss, rtt float64
	var rttN int
	for v := range s.viewers {
		vs.Count++
		c.add(&v.counters)
		loss += float64(v.loss.Load()) / 256
		if r := v.rtt.Load(); r > 0 {
			rtt += float64(r) / 1000
			rttN++
		}
	}
	s.mu.Unlock()
	if vs.Count > 0 {
		vs.Loss = loss / float64(vs.Count)
	}
	if rttN > 0 {
		vs.RTTMs = rtt / float64(rttN)
	}
	vs.Sent, vs.Dropped, vs.Retransmitted = c.sent.Load(), c.dropped.Load(), c.retransmitted.Load()
	if simulcast {
		n := c.switches.Load()
		vs.LayerSwitches = &n
	}
	return ps, vs
}
