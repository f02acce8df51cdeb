package media

import (
	"flag"
	"net"

	"github.com/liveroom/liveroom/setting"
)

// Config holds the media settings. Start from DefaultConfig.
type Config struct {
	// WebRTCUDP is the one UDP address all ICE traffic shares (UDP mux).
	WebRTCUDP string `yaml:"webrtc-udp"`
	// WebRTCTCP is the one TCP address for ICE-TCP.
	WebRTCTCP string `yaml:"webrtc-tcp"`
	// RTSP is the RTSP publish listener.
	RTSP string `yaml:"rtsp"`
	// PublicIP is announced in ICE candidates (1:1 NAT, cloud hosts).
	PublicIP string `yaml:"public-ip"`
	// ICEServers are STUN/TURN URLs handed to clients.
	ICEServers []string `yaml:"ice-servers"`
}

// DefaultConfig returns the media defaults.
func DefaultConfig() Config {
	return Config{WebRTCUDP: ":8189", WebRTCTCP: ":8189", RTSP: ":8554"}
}

// RegisterFlags binds the media flags to c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.WebRTCUDP, "webrtc-udp", c.WebRTCUDP, "UDP address shared by all WebRTC ICE traffic")
	fs.StringVar(&c.WebRTCTCP, "webrtc-tcp", c.WebRTCTCP, "TCP address for ICE over TCP")
	fs.StringVar(&c.RTSP, "rtsp", c.RTSP, "RTSP publish address (rtsp://HOST:PORT/live/ROOM)")
	fs.StringVar(&c.PublicIP, "public-ip", c.PublicIP, "IP address announced in ICE candidates (for 1:1 NAT / cloud hosts)")
	setting.ListVar(fs, &c.ICEServers, "ice-servers", "comma-separated STUN/TURN URLs handed to clients, e.g. stun:stun.example.com:3478")
}

// Validate checks c.
func (c *Config) Validate() error {
	for key, addr := range map[string]string{"webrtc-udp": c.WebRTCUDP, "webrtc-tcp": c.WebRTCTCP, "rtsp": c.RTSP} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return setting.Invalid(key, addr, "host:port or :port")
		}
	}
	if c.PublicIP != "" && net.ParseIP(c.PublicIP) == nil {
		return setting.Invalid("public-ip", c.PublicIP, "an IPv4 or IPv6 address")
	}
	return nil
}
