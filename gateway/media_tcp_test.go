package gateway

import (
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/media/peer"
)

// A viewer that reaches the relay over ICE-TCP only cannot have the direct UDP path:
// pion's path carries its packets, all of them, and no direct write is made.
func TestMediaICETCPViewerKeepsPionPath(t *testing.T) {
	r, ctx, _ := liveRig(t, 30*time.Second)

	c := tcpClient(t, r, "shop1", "tcp", nil)
	v, err := c.Watch(ctx, r.srv.URL+"/whep/shop1")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close(ctx, true)
	waitFor(t, 20*time.Second, "keyframe and steady packets over TCP", func() bool {
		s := v.Stats()
		return s.KeyframeSeen && s.Video.Packets > 100 && s.Audio.Packets > 50
	})
	if s := v.Stats(); s.Video.Lost() != 0 || s.Audio.Lost() != 0 {
		t.Errorf("lost over ICE-TCP: %+v", s)
	}
	if d := metricValue(t, r.srv.URL, "liveroom_media_udp_datagrams_total"); d != 0 {
		t.Errorf("%v datagrams went on the direct UDP path to a TCP-only viewer", d)
	}
}

// tcpClient is a viewer client of room that reaches the relay over ICE-TCP only: the
// answer's UDP candidates are dropped, and mangle (if not nil) changes it further.
func tcpClient(t *testing.T, r *mediaRig, room, user string, mangle func(string) string) *peer.Client {
	t.Helper()
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	c := r.client(event.RoleViewer, room, user)
	c.API = webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir))
	udp := regexp.MustCompile(`(?m)^a=candidate:[^\r\n]* udp [^\r\n]*\r\n`)
	c.Mangle = func(answer string) string {
		answer = udp.ReplaceAllString(answer, "")
		if mangle != nil {
			answer = mangle(answer)
		}
		return answer
	}
	return c
}
