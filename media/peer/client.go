package peer

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
)

// Client signals over WHIP/WHEP with a Bearer token.
type Client struct {
	HTTP  *http.Client
	Token string
	// API builds the peers; NewAPI's default when nil.
	API *webrtc.API
	// Mangle, when set, rewrites the server's SDP answer before it is applied (tests
	// route media through a lossy relay this way).
	Mangle func(answer string) string
	// Light makes viewers count their media from the RTP headers once they have seen
	// a keyframe, instead of decrypting it (light.go); it needs an API from NewAPI.
	Light bool
}

// NewAPI builds a pion API for test and load clients: no mDNS, the default codecs,
// NACK (generator and responder) and RTCP reports — the per-packet work a browser
// does, without the statistics and congestion-control interceptors that would make
// a load generator heavier than the server it measures.
//
// With gro, the peers' sockets take a segmented send whole where the kernel can
// (UDP_GRO), as a receiver behind a NIC with segmentation offload would: on loopback,
// without it, the kernel cuts a server's segmented send into datagrams and queues each
// on its socket inside the server's own system call, charging the receivers' work to
// the server.
func NewAPI(loopbackOnly, gro bool) (*webrtc.API, error) {
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if n, err := stdnet.NewNet(); err == nil {
		se.SetNet(bigBufferNet{n, gro})
	}
	if loopbackOnly {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(me, ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir)), nil
}

// bigBufferNet gives every client socket a 1 MiB receive buffer (as far as
// net.core.rmem_max allows), so a cached GOP burst fits like it does in a browser.
type bigBufferNet struct {
	*stdnet.Net
	gro bool
}

func (n bigBufferNet) ListenUDP(network string, addr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, addr)
	if err != nil {
		return c, err
	}
	_ = c.SetReadBuffer(1 << 20)
	if u, ok := c.(*net.UDPConn); ok {
		return newTapConn(u, n.gro), nil
	}
	return c, nil
}

func (c *Client) api() (*webrtc.API, error) {
	if c.API != nil {
		return c.API, nil
	}
	a, err := NewAPI(true, true)
	c.API = a
	return a, err
}

// peerConnection makes a new peer connection on the client's API.
func (c *Client) peerConnection() (*webrtc.PeerConnection, error) {
	api, err := c.api()
	if err != nil {
		return nil, err
	}
	return api.NewPeerConnection(webrtc.Configuration{})
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// StatusError is a non-201 answer to an offer.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string { return fmt.Sprintf("status %d: %s", e.Status, e.Body) }

// negotiate sends pc's complete offer to endpoint and applies the answer; it returns
// the session URL (Location resolved against endpoint).
func (c *Client) negotiate(ctx context.Context, pc *webrtc.PeerConnection, endpoint string) (string, error) {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/sdp")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", &StatusError{Status: resp.StatusCode, Body: string(body)}
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return "", fmt.Errorf("answer without a usable Location header")
	}
	base, _ := url.Parse(endpoint)
	ans := string(body)
	if c.Mangle != nil {
		ans = c.Mangle(ans)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans}); err != nil {
		return "", err
	}
	return base.ResolveReference(loc).String(), nil
}

// deleteSession ends a WHIP/WHEP session with DELETE on its URL.
func (c *Client) deleteSession(ctx context.Context, session string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, session, nil)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return &StatusError{Status: resp.StatusCode}
	}
	return nil
}
