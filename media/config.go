package media

import (
	"flag"
	"net"
	"strconv"
	"time"

	"github.com/liveroom/liveroom/setting"
)

// Join strategies: how a viewer who joins mid-broadcast gets its first keyframe.
const (
	// JoinCache replays the cached group of pictures since the latest keyframe.
	JoinCache = "cache"
	// JoinRequest asks the publisher for a new keyframe (PLI).
	JoinRequest = "request"
)

// Config holds the media settings. Start from DefaultConfig.
type Config struct {
	// WebRTCUDP is the one UDP address all ICE traffic shares (UDP mux). Port 0 picks a
	// free port (tests); the bound port is what candidates carry.
	WebRTCUDP string `yaml:"webrtc-udp"`
	// WebRTCTCP is the one TCP address for ICE-TCP; empty turns ICE-TCP off.
	WebRTCTCP string `yaml:"webrtc-tcp"`
	// RTSP is the RTSP publish listener.
	RTSP string `yaml:"rtsp"`
	// PublicIP is announced in ICE candidates (1:1 NAT, cloud hosts).
	PublicIP string `yaml:"public-ip"`
	// ICEServers are STUN/TURN URLs handed to clients. Static TURN credentials may be
	// written in the URL as turn:USER:PASS@host:port.
	ICEServers []string `yaml:"ice-servers"`
	// TURNSecret is coturn's static-auth-secret (use-auth-secret); when set, TURN URLs
	// without credentials get time-limited ones. Zero: no generated credentials.
	TURNSecret string `yaml:"turn-secret"`
	// TURNTTL is how long generated TURN credentials stay valid.
	TURNTTL time.Duration `yaml:"turn-ttl"`
	// JoinKeyframe is how a joining viewer gets a keyframe: "cache" or "request".
	JoinKeyframe string `yaml:"join-keyframe"`
	// Writers is how many writer goroutines share one stream's viewers; 0 means one
	// per CPU.
	Writers int `yaml:"media-writers"`
	// Backlog is the most packets a viewer may fall behind before it skips ahead
	// (dropping and counting) to the latest keyframe.
	Backlog int `yaml:"media-backlog"`
	// ConnectTimeout is how long a WHEP session may take to connect, and a WHIP
	// session to connect and start sending media, before it is ended (a publisher that
	// never arrives would otherwise hold its room).
	ConnectTimeout time.Duration `yaml:"connect-timeout"`
}

// DefaultConfig returns the media defaults.
func DefaultConfig() Config {
	return Config{
		WebRTCUDP: ":8189", WebRTCTCP: ":8189", RTSP: ":8554",
		TURNTTL: 24 * time.Hour, JoinKeyframe: JoinCache, Backlog: 2048,
		ConnectTimeout: 20 * time.Second,
	}
}

// RegisterFlags binds the media flags to c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.WebRTCUDP, "webrtc-udp", c.WebRTCUDP, "UDP address shared by all WebRTC ICE traffic")
	fs.StringVar(&c.WebRTCTCP, "webrtc-tcp", c.WebRTCTCP, "TCP address for ICE over TCP (empty: off)")
	fs.StringVar(&c.RTSP, "rtsp", c.RTSP, "RTSP publish address (rtsp://HOST:PORT/live/ROOM); not served yet: RTSP ingest is still to be built (docs/media.md)")
	fs.StringVar(&c.PublicIP, "public-ip", c.PublicIP, "IP address announced in ICE candidates (for 1:1 NAT / cloud hosts)")
	setting.ListVar(fs, &c.ICEServers, "ice-servers", "comma-separated STUN/TURN URLs handed to clients, e.g. stun:stun.example.com:3478,turn:turn.example.com:3478?transport=udp (static credentials: turn:USER:PASS@host:port)")
	fs.StringVar(&c.TURNSecret, "turn-secret", c.TURNSecret, "coturn static-auth-secret: TURN URLs without credentials get time-limited ones")
	fs.DurationVar(&c.TURNTTL, "turn-ttl", c.TURNTTL, "lifetime of generated TURN credentials")
	fs.StringVar(&c.JoinKeyframe, "join-keyframe", c.JoinKeyframe, "how a joining viewer gets its first keyframe: cache (replay the latest one) or request (ask the publisher)")
	fs.IntVar(&c.Writers, "media-writers", c.Writers, "writer goroutines per stream (0: one per CPU)")
	fs.IntVar(&c.Backlog, "media-backlog", c.Backlog, "packets a viewer may lag before it skips to the latest keyframe")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", c.ConnectTimeout, "time a WHEP session may take to connect, and a WHIP session to connect and send media, before it is ended")
}

// Validate checks c.
func (c *Config) Validate() error {
	addrs := []struct{ key, addr string }{{"webrtc-udp", c.WebRTCUDP}, {"rtsp", c.RTSP}}
	if c.WebRTCTCP != "" {
		addrs = append(addrs, struct{ key, addr string }{"webrtc-tcp", c.WebRTCTCP})
	}
	for _, a := range addrs {
		if err := setting.Addr(a.key, a.addr); err != nil {
			return err
		}
	}
	if c.PublicIP != "" && net.ParseIP(c.PublicIP) == nil {
		return setting.Invalid("public-ip", c.PublicIP, "an IPv4 or IPv6 address")
	}
	for _, u := range c.ICEServers {
		if _, err := parseICEServer(u); err != nil {
			return setting.Invalid("ice-servers", u, "stun:, stun:, turn: or turns: URLs (RFC 7064/7065), optionally turn:USER:PASS@host:port")
		}
	}
	if err := setting.InRange("turn-ttl", c.TURNTTL, time.Minute, 7*24*time.Hour); err != nil {
		return err
	}
	if err := setting.InRange("connect-timeout", c.ConnectTimeout, 100*time.Millisecond, 10*time.Minute); err != nil {
		return err
	}
	if c.JoinKeyframe != JoinCache && c.JoinKeyframe != JoinRequest {
		return setting.Invalid("join-keyframe", c.JoinKeyframe, `"cache" or "request"`)
	}
	if c.Writers < 0 || c.Writers > 64 {
		return setting.Invalid("media-writers", strconv.Itoa(c.Writers), "between 0 and 64")
	}
	if c.Backlog < 64 || c.Backlog > ringSize/2 {
		return setting.Invalid("media-backlog", strconv.Itoa(c.Backlog), "between 64 and "+strconv.Itoa(ringSize/2))
	}
	return nil
}
