package media

import (
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// ICE timing: a publisher whose connection dies is noticed within a few seconds
// (3 s of silence: disconnected; 2 s more: failed, the broadcast ends).
const (
	iceDisconnected = 3 * time.Second
	iceFailed       = 2 * time.Second
	iceKeepalive    = 500 * time.Millisecond
	// viewerKeepalive is how often a viewer is pinged: a viewer that dies costs only
	// its own packets until it is noticed, and at 700–800 viewers pings every 500 ms
	// took about 4 % of the relay's CPU.
	viewerKeepalive = 2 * time.Second
)

// sockBuffer is the socket buffer size asked for the shared ICE UDP socket.
const sockBuffer = 8 << 20

// videoFeedback is what the relay understands from and asks of peers.
var videoFeedback = []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}

// simulcastFeedback is what a viewer of a simulcast section is asked for besides:
// REMB, its receive-side bandwidth estimate, for the choice of layer (layers.go).
var simulcastFeedback = append(slices.Clip(videoFeedback), webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBGoogREMB})

// Codecs lists what publishers may send and viewers receive, passed through unchanged:
// Opus, VP8 and H.264 (packetization-mode 1) in the usual profiles. The level is not
// part of the match (RFC 6184 §8.2.2), so one entry per profile is enough.
func Codecs() []webrtc.RTPCodecParameters {
	h264 := func(pt webrtc.PayloadType, profile string) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{PayloadType: pt, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profile,
			RTCPFeedback: videoFeedback,
		}}
	}
	return []webrtc.RTPCodecParameters{
		{PayloadType: 111, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}},
		{PayloadType: 96, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback}},
		h264(102, "42001f"), // baseline
		h264(108, "42e01f"), // constrained baseline
		h264(123, "4d001f"), // main
		h264(112, "64001f"), // high
		h264(127, "640c1f"), // constrained high (Chrome)
	}
}

// apis are the two pion APIs: publishers get NACK generation, receiver reports and
// transport-wide congestion feedback (so browsers raise their bitrate); viewers get
// no interceptor: the relay answers their NACKs from the stream's cache (rather than
// keeping a copy of every packet per viewer) and makes their sender reports itself.
type apis struct {
	pub, view *webrtc.API
	udp       net.PacketConn
	out       *udpOut // direct writes to udp (nil where the socket is not a UDPConn)
	tcp       net.Listener
	udpMux    ice.UDPMux
	tcpMux    ice.TCPMux
}

func newAPIs(cfg Config) (*apis, error) {
	a := &apis{}
	udp, err := net.ListenPacket("udp", cfg.WebRTCUDP)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (--webrtc-udp): %w", cfg.WebRTCUDP, err)
	}
	a.udp = udp
	if c, ok := udp.(*net.UDPConn); ok {
		// Best effort (capped by net.core.rmem_max/wmem_max): bursts of a publisher's
		// keyframe and of many viewers' writes share this one socket.
		_ = c.SetReadBuffer(sockBuffer)
		_ = c.SetWriteBuffer(sockBuffer)
		if a.out, err = newUDPOut(c); err != nil {
			udp.Close()
			return nil, fmt.Errorf("webrtc-udp socket: %w", err)
		}
	}
	logf := logging.NewDefaultLoggerFactory()
	logf.DefaultLogLevel = logging.LogLevelError
	a.udpMux = webrtc.NewICEUDPMux(logf.NewLogger("udpmux"), udp)
	se := webrtc.SettingEngine{LoggerFactory: logf}
	se.SetICEUDPMux(a.udpMux)
	types := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if cfg.WebRTCTCP != "" {
		tcp, err := net.Listen("tcp", cfg.WebRTCTCP)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("listen on %s (--webrtc-tcp): %w", cfg.WebRTCTCP, err)
		}
		a.tcp = tcp
		a.tcpMux = webrtc.NewICETCPMux(logf.NewLogger("tcpmux"), tcp, 32)
		se.SetICETCPMux(a.tcpMux)
		types = append(types, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(types)
	if ip := net.ParseIP(cfg.UDPHost()); ip != nil && ip.IsLoopback() {
		se.SetIncludeLoopbackCandidate(true)
	}
	if cfg.PublicIP != "" {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External: []string{cfg.PublicIP}, AsCandidateType: webrtc.ICECandidateTypeHost,
		}); err != nil {
			a.close()
			return nil, fmt.Errorf("public-ip: %w", err)
		}
	}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(iceDisconnected, iceFailed, iceKeepalive)
	se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	se.SetLite(false)

	if a.pub, err = newAPI(se, true); err == nil {
		view := se
		view.SetICETimeouts(iceDisconnected, iceFailed, viewerKeepalive)
		a.view, err = newAPI(view, false)
	}
	if err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

func newAPI(se webrtc.SettingEngine, publisher bool) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	for _, c := range Codecs() {
		kind := webrtc.RTPCodecTypeVideo
		if c.MimeType == webrtc.MimeTypeOpus {
			kind = webrtc.RTPCodecTypeAudio
		} else if !publisher {
			// a viewer's answer carries the feedback that both this and its codec
			// preferences (offeredCodecs) list: REMB only for a simulcast section
			c.RTCPFeedback = simulcastFeedback
		}
		if err := me.RegisterCodec(c, kind); err != nil {
			return nil, err
		}
	}
	ir := &interceptor.Registry{}
	if publisher {
		// A simulcast offer (the studio's three layers) is answered with a=simulcast and
		// a=rid, which browsers refuse unless the answer also has the RID extensions.
		if err := webrtc.ConfigureSimulcastExtensionHeaders(me); err != nil {
			return nil, err
		}
		gen, err := nack.NewGeneratorInterceptor()
		if err != nil {
			return nil, err
		}
		ir.Add(gen)
		rr, err := report.NewReceiverInterceptor()
		if err != nil {
			return nil, err
		}
		ir.Add(rr)
		if err := webrtc.ConfigureTWCCSender(me, ir); err != nil {
			return nil, err
		}
	}
	// Viewers get no interceptor: the relay answers their NACKs from the stream's
	// cache and makes their sender reports itself, for packets on both of its paths.
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir)), nil
}

func (a *apis) close() {
	if a.udpMux != nil {
		a.udpMux.Close()
	} else if a.udp != nil {
		a.udp.Close()
	}
	if a.tcpMux != nil {
		a.tcpMux.Close()
	} else if a.tcp != nil {
		a.tcp.Close()
	}
}

// UDPHost is the host part of WebRTCUDP.
func (c Config) UDPHost() string {
	h, _, _ := net.SplitHostPort(c.WebRTCUDP)
	return h
}
