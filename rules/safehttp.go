package rules

import (
	"fmt"
	"net"
	"net/http"
	"syscall"
)

// webhookClient is the HTTP client of the webhook action. Rules are written by admins,
// but a rule must not turn the server into a way to reach what only it can reach: unless
// allowPrivate is set, it refuses to connect to loopback, private, link-local (cloud
// metadata) and other non-public addresses — checked on the address actually dialled, so
// DNS tricks do not help — and it never follows redirects.
func webhookClient(cfg Config) *http.Client {
	dialer := &net.Dialer{Timeout: cfg.WebhookTimeout, Control: func(_, address string, _ syscall.RawConn) error {
		if cfg.WebhookAllowPrivate {
			return nil
		}
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		if ip := net.ParseIP(host); ip == nil || !publicIP(ip) {
			return fmt.Errorf("%w: %s", ErrPrivateAddress, host)
		}
		return nil
	}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = dialer.DialContext
	return &http.Client{
		Timeout:       cfg.WebhookTimeout,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// cgnat is the carrier-grade NAT range (RFC 6598), not public either.
var cgnat = &net.IPNet{IP: net.IPv4(100, 64, 0, 0), Mask: net.CIDRMask(10, 32)}

func publicIP(ip net.IP) bool {
	return !(ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || cgnat.Contains(ip))
}
