package chat

import (
	"flag"
	"fmt"
	"regexp"
	"time"

	"github.com/liveroom/liveroom/setting"
)

// Gift is one entry of the gift catalog: what a viewer may send and what it is worth.
type Gift struct {
	ID        string  `yaml:"id" json:"id"`
	Name      string  `yaml:"name" json:"name"`
	Value     float64 `yaml:"value" json:"value"`
	Currency  string  `yaml:"currency" json:"currency"`
	Animation string  `yaml:"animation" json:"animation,omitempty"`
}

// Keyword filter actions.
const (
	KeywordMask  = "mask"
	KeywordBlock = "block"
)

// Config holds chat's settings. Zero values are not meaningful: start from DefaultConfig.
type Config struct {
	// FlushInterval is how often a room's new events join its log as one batch, which
	// the connections then pull (fanout.go).
	FlushInterval time.Duration `yaml:"chat-flush"`
	// FrameInterval is the least time between two frames of room events on one
	// connection: each carries every event up to its write, so a shorter interval is
	// fresher and costs more writes on both ends.
	FrameInterval time.Duration `yaml:"chat-frame-interval"`
	// ReadLimit is the largest client frame in bytes; a larger one closes with 1009.
	ReadLimit int64 `yaml:"chat-read-limit"`
	// PingInterval is how often the server pings each connection; PongWait is how long
	// it waits for any frame (a pong or a message) before closing it.
	PingInterval time.Duration `yaml:"chat-ping"`
	PongWait     time.Duration `yaml:"chat-pong-wait"`
	// WriteWait bounds one frame write to a slow socket.
	WriteWait time.Duration `yaml:"chat-write-wait"`
	// QueueFrames bounds how far a connection may fall behind: its oldest room event
	// not yet written older than this many FrameIntervals, or as many of its own frames
	// queued, and it is closed with 1013 (the client resumes with since).
	QueueFrames int `yaml:"chat-queue"`
	// History is how many room events are kept for resume (at least); HistoryAge keeps
	// younger events beyond that count, up to HistoryMax.
	History    int           `yaml:"chat-history"`
	HistoryAge time.Duration `yaml:"chat-history-age"`
	HistoryMax int           `yaml:"chat-history-max"`
	// WelcomeHistory is how many recent events a fresh welcome carries.
	WelcomeHistory int `yaml:"chat-welcome-history"`
	// PresenceInterval is the shortest time between two presence events of a room.
	PresenceInterval time.Duration `yaml:"chat-presence"`
	// ConnsPerAddr caps concurrent connections from one client address (0: no cap).
	ConnsPerAddr int `yaml:"chat-conns-per-addr"`
	// Per-user token buckets, per second (burst in brackets).
	DanmakuRate  float64 `yaml:"chat-danmaku-rate"`
	DanmakuBurst int     `yaml:"chat-danmaku-burst"`
	LikeRate     float64 `yaml:"chat-like-rate"`
	GiftRate     float64 `yaml:"chat-gift-rate"`
	DMRate       float64 `yaml:"chat-dm-rate"`
	// AbuseLimit is how many refused messages per minute a connection may send before it
	// is closed with 1008.
	AbuseLimit int `yaml:"chat-abuse-limit"`
	// SlowMode is the default per-viewer minimum interval between danmaku (0: off);
	// moderators change it per room with the `slow` message.
	SlowMode time.Duration `yaml:"chat-slow-mode"`
	// MuteFor is the mute duration when a `mute` gives none.
	MuteFor time.Duration `yaml:"chat-mute-for"`
	// KeywordAction is what the keyword filter does: mask or block.
	KeywordAction string `yaml:"chat-keyword-action"`
	// Keywords are filtered words (case-insensitive; YAML only).
	Keywords []string `yaml:"chat-keywords"`
	// Gifts is the gift catalog (YAML only).
	Gifts []Gift `yaml:"chat-gifts"`
	// RoomIdle is how long an empty room keeps its goroutine before it is unloaded; it
	// also stays while its last event is younger than HistoryAge (resumes need it).
	RoomIdle time.Duration `yaml:"chat-room-idle"`
}

// DefaultConfig returns chat's defaults.
func DefaultConfig() Config {
	return Config{
		FlushInterval:    10 * time.Millisecond,
		FrameInterval:    70 * time.Millisecond,
		ReadLimit:        8192, // a DM of 1,000 four-byte characters to a 128-byte id, with its 64-byte id, is 4,232
		PingInterval:     25 * time.Second,
		PongWait:         60 * time.Second,
		WriteWait:        10 * time.Second,
		QueueFrames:      64,
		History:          1000,
		HistoryAge:       10 * time.Minute,
		HistoryMax:       20000,
		WelcomeHistory:   50,
		PresenceInterval: 2 * time.Second,
		ConnsPerAddr:     50,
		DanmakuRate:      2,
		DanmakuBurst:     5,
		LikeRate:         20,
		GiftRate:         10,
		DMRate:           5,
		AbuseLimit:       30,
		MuteFor:          10 * time.Minute,
		KeywordAction:    KeywordMask,
		Gifts: []Gift{
			{ID: "rose", Name: "Rose", Value: 0.1, Currency: "USD", Animation: "float"},
			{ID: "heart", Name: "Heart", Value: 1, Currency: "USD", Animation: "pulse"},
			{ID: "rocket", Name: "Rocket", Value: 20, Currency: "USD", Animation: "launch"},
		},
		RoomIdle: time.Minute,
	}
}

// RegisterFlags binds chat's flags to c. The keyword list and the gift catalog are YAML only.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.FlushInterval, "chat-flush", c.FlushInterval, "how often a room's new chat events are batched for its connections")
	fs.DurationVar(&c.FrameInterval, "chat-frame-interval", c.FrameInterval, "least time between two frames of room events on one chat connection")
	fs.Int64Var(&c.ReadLimit, "chat-read-limit", c.ReadLimit, "largest client WebSocket frame in bytes (larger closes with 1009)")
	fs.DurationVar(&c.PingInterval, "chat-ping", c.PingInterval, "how often the server pings each chat connection")
	fs.DurationVar(&c.PongWait, "chat-pong-wait", c.PongWait, "how long a silent chat connection lives without answering pings")
	fs.DurationVar(&c.WriteWait, "chat-write-wait", c.WriteWait, "time allowed to write one frame to a chat connection")
	fs.IntVar(&c.QueueFrames, "chat-queue", c.QueueFrames, "frame intervals (or own frames queued) a chat connection may fall behind before it is closed as slow")
	fs.IntVar(&c.History, "chat-history", c.History, "room events kept for resume (at least)")
	fs.DurationVar(&c.HistoryAge, "chat-history-age", c.HistoryAge, "room events younger than this are kept for resume beyond chat-history")
	fs.IntVar(&c.HistoryMax, "chat-history-max", c.HistoryMax, "hard cap of room events kept for resume")
	fs.IntVar(&c.WelcomeHistory, "chat-welcome-history", c.WelcomeHistory, "recent events sent in a fresh welcome")
	fs.DurationVar(&c.PresenceInterval, "chat-presence", c.PresenceInterval, "shortest interval between two presence events of a room")
	fs.IntVar(&c.ConnsPerAddr, "chat-conns-per-addr", c.ConnsPerAddr, "concurrent chat connections per client address (0: no cap)")
	fs.Float64Var(&c.DanmakuRate, "chat-danmaku-rate", c.DanmakuRate, "danmaku per second per user")
	fs.IntVar(&c.DanmakuBurst, "chat-danmaku-burst", c.DanmakuBurst, "danmaku burst per user")
	fs.Float64Var(&c.LikeRate, "chat-like-rate", c.LikeRate, "like messages per second per user (burst the same)")
	fs.Float64Var(&c.GiftRate, "chat-gift-rate", c.GiftRate, "gift messages per second per user (burst the same)")
	fs.Float64Var(&c.DMRate, "chat-dm-rate", c.DMRate, "private messages per second per user (burst the same)")
	fs.IntVar(&c.AbuseLimit, "chat-abuse-limit", c.AbuseLimit, "refused messages per minute before a connection is closed with 1008")
	fs.DurationVar(&c.SlowMode, "chat-slow-mode", c.SlowMode, "default per-viewer minimum interval between danmaku (0: off)")
	fs.DurationVar(&c.MuteFor, "chat-mute-for", c.MuteFor, "mute duration when a mute gives none")
	fs.StringVar(&c.KeywordAction, "chat-keyword-action", c.KeywordAction, "what the keyword filter does: mask or block")
	fs.DurationVar(&c.RoomIdle, "chat-room-idle", c.RoomIdle, "how long an empty room stays loaded (and at least until its last event is chat-history-age old)")
}

// Validate checks c.
func (c *Config) Validate() error {
	durations := []struct {
		key      string
		d        time.Duration
		min, max time.Duration
	}{
		{"chat-flush", c.FlushInterval, 5 * time.Millisecond, time.Second},
		{"chat-frame-interval", c.FrameInterval, 5 * time.Millisecond, 5 * time.Second},
		{"chat-ping", c.PingInterval, 100 * time.Millisecond, 10 * time.Minute},
		{"chat-pong-wait", c.PongWait, 200 * time.Millisecond, time.Hour},
		{"chat-write-wait", c.WriteWait, 100 * time.Millisecond, time.Minute},
		{"chat-history-age", c.HistoryAge, 0, 24 * time.Hour},
		{"chat-presence", c.PresenceInterval, 10 * time.Millisecond, time.Minute},
		{"chat-slow-mode", c.SlowMode, 0, time.Hour},
		{"chat-mute-for", c.MuteFor, time.Second, 365 * 24 * time.Hour},
		{"chat-room-idle", c.RoomIdle, 0, 24 * time.Hour},
	}
	for _, d := range durations {
		if err := setting.InRange(d.key, d.d, d.min, d.max); err != nil {
			return err
		}
	}
	if c.PongWait <= c.PingInterval {
		return setting.Invalid("chat-pong-wait", c.PongWait.String(), "longer than chat-ping ("+c.PingInterval.String()+")")
	}
	ints := []struct {
		key      string
		v        int64
		min, max int64
	}{
		{"chat-read-limit", c.ReadLimit, 256, 1 << 20},
		{"chat-queue", int64(c.QueueFrames), 2, 1 << 16},
		{"chat-history", int64(c.History), 1, 1 << 20},
		{"chat-history-max", int64(c.HistoryMax), int64(c.History), 1 << 22},
		{"chat-welcome-history", int64(c.WelcomeHistory), 0, int64(c.History)},
		{"chat-conns-per-addr", int64(c.ConnsPerAddr), 0, 1 << 24},
		{"chat-danmaku-burst", int64(c.DanmakuBurst), 1, 1 << 20},
		{"chat-abuse-limit", int64(c.AbuseLimit), 1, 1 << 20},
	}
	for _, i := range ints {
		if i.v < i.min || i.v > i.max {
			return setting.Invalid(i.key, fmt.Sprint(i.v), fmt.Sprintf("between %d and %d", i.min, i.max))
		}
	}
	rates := []struct {
		key string
		v   float64
	}{
		{"chat-danmaku-rate", c.DanmakuRate}, {"chat-like-rate", c.LikeRate},
		{"chat-gift-rate", c.GiftRate}, {"chat-dm-rate", c.DMRate},
	}
	for _, r := range rates {
		if !(r.v > 0 && r.v <= 1e6) {
			return setting.Invalid(r.key, fmt.Sprint(r.v), "a rate per second above 0 and at most 1000000")
		}
	}
	if c.KeywordAction != KeywordMask && c.KeywordAction != KeywordBlock {
		return setting.Invalid("chat-keyword-action", c.KeywordAction, "mask or block")
	}
	for _, k := range c.Keywords {
		if k == "" || len(k) > 100 {
			return setting.Invalid("chat-keywords", k, "words of 1 to 100 bytes")
		}
	}
	seen := map[string]bool{}
	for _, g := range c.Gifts {
		if g.ID == "" || seen[g.ID] || !validID.MatchString(g.ID) {
			return setting.Invalid("chat-gifts", g.ID, "unique ids of letters, digits, '-' and '_'")
		}
		seen[g.ID] = true
		if g.Value < 0 || len(g.Currency) != 3 {
			return setting.Invalid("chat-gifts", g.ID, "a value of 0 or more and a 3-letter currency")
		}
	}
	return nil
}

var validID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
