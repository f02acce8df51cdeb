package config

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/liveroom/liveroom/setting"
)

// Core holds the settings of the process itself: listeners, storage, secrets, TLS,
// logging and HTTP limits.
type Core struct {
	HTTP           string        `yaml:"http"`
	PublicURL      string        `yaml:"public-url"`
	Data           string        `yaml:"data"`
	Secret         string        `yaml:"secret"`
	Redis          string        `yaml:"redis"`
	TLSCert        string        `yaml:"tls-cert"`
	TLSKey         string        `yaml:"tls-key"`
	ACMEDomain     string        `yaml:"acme-domain"`
	ACMEEmail      string        `yaml:"acme-email"`
	AllowedOrigins []string      `yaml:"allowed-origins"`
	LogFormat      string        `yaml:"log-format"`
	LogLevel       string        `yaml:"log-level"`
	DrainTimeout   time.Duration `yaml:"drain-timeout"`
	DrainGrace     time.Duration `yaml:"drain-grace"`
	BodyLimit      int64         `yaml:"body-limit"`
	HeaderTimeout  time.Duration `yaml:"read-header-timeout"`
	ReadTimeout    time.Duration `yaml:"read-timeout"`
	IdleTimeout    time.Duration `yaml:"idle-timeout"`
	GuestRate      int           `yaml:"guest-rate"`
	GuestTTL       time.Duration `yaml:"guest-ttl"`
	TrustProxy     bool          `yaml:"trust-proxy"`
	DemoRoom       string        `yaml:"demo-room"`
	HugePages      bool          `yaml:"huge-pages"`
}

// DefaultCore is the embedded default: no Redis, data in ./data, plain HTTP on :8080.
func DefaultCore() Core {
	return Core{
		HTTP:          ":8080",
		Data:          "./data",
		LogFormat:     "text",
		LogLevel:      "info",
		DrainTimeout:  10 * time.Second,
		BodyLimit:     1 << 20,
		HeaderTimeout: 10 * time.Second,
		ReadTimeout:   30 * time.Second,
		IdleTimeout:   120 * time.Second,
		GuestRate:     30,
		GuestTTL:      24 * time.Hour,
		DemoRoom:      "demo",
		HugePages:     true,
	}
}

// RegisterFlags binds the core flags to c.
func (c *Core) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.HTTP, "http", c.HTTP, "HTTP(S) listen address for the API, WHIP/WHEP, WebSocket and pages")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "base URL printed in links (default: derived from --http, TLS and --acme-domain)")
	fs.StringVar(&c.Data, "data", c.Data, "folder for the embedded store and the generated dev secret")
	fs.StringVar(&c.Secret, "secret", c.Secret, "token signing secret, at least 32 bytes (default: generated once and kept in <data>/secret)")
	fs.StringVar(&c.Redis, "redis", c.Redis, "Redis URL for cluster mode, e.g. redis://HOST:6379/0 (default: embedded, single node)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM certificate file: serve HTTPS (with --tls-key)")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM private key file for --tls-cert")
	fs.StringVar(&c.ACMEDomain, "acme-domain", c.ACMEDomain, "public domain to obtain a certificate for automatically (ACME / Let's Encrypt)")
	fs.StringVar(&c.ACMEEmail, "acme-email", c.ACMEEmail, "contact e-mail given to the ACME certificate authority")
	setting.ListVar(fs, &c.AllowedOrigins, "allowed-origins", "comma-separated origins allowed for CORS and WebSocket (e.g. https://shop.example); '*' allows any; empty: same origin only")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "on SIGTERM, how long to wait for work in flight before exiting")
	fs.DurationVar(&c.DrainGrace, "drain-grace", c.DrainGrace, "on SIGTERM, how long to keep accepting connections (answering /readyz 503 and new sessions 503 draining) before the drain, so a load balancer sees the node leave")
	fs.Int64Var(&c.BodyLimit, "body-limit", c.BodyLimit, "largest accepted request body in bytes (larger gets 413)")
	fs.DurationVar(&c.HeaderTimeout, "read-header-timeout", c.HeaderTimeout, "time allowed to read request headers")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", c.ReadTimeout, "time allowed to read a whole request")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "how long an idle keep-alive connection is kept")
	fs.IntVar(&c.GuestRate, "guest-rate", c.GuestRate, "guest tokens issued per minute per client address (burst the same)")
	fs.DurationVar(&c.GuestTTL, "guest-ttl", c.GuestTTL, "lifetime of a guest viewer token")
	fs.BoolVar(&c.TrustProxy, "trust-proxy", c.TrustProxy, "take the client address from X-Forwarded-For (only behind your own reverse proxy)")
	fs.StringVar(&c.DemoRoom, "demo-room", c.DemoRoom, "room used in the links printed at start-up")
	fs.BoolVar(&c.HugePages, "huge-pages", c.HugePages, "collapse the heap into 2 MiB transparent huge pages (Linux 6.1+): the segment engine's random profile reads miss the TLB less (docs/operations.md)")
}

// Validate checks every core setting.
func (c *Core) Validate() error {
	if err := setting.Addr("http", c.HTTP); err != nil {
		return err
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return setting.Invalid("public-url", c.PublicURL, "an absolute http:// or https:// URL")
		}
		if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
			// The pages load /static/..., /api/... and /whip/... from the host's root.
			return setting.Invalid("public-url", c.PublicURL, "a scheme and host only (no path): liveroom is served from the host's root")
		}
	}
	if c.Data == "" {
		return setting.Invalid("data", c.Data, "a folder path")
	}
	if c.Secret != "" && len(c.Secret) < 32 {
		return setting.Invalid("secret", "(hidden)", "at least 32 bytes")
	}
	if c.Redis != "" {
		u, err := url.Parse(c.Redis)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return setting.Invalid("redis", c.Redis, "a redis:// or rediss:// URL")
		}
		// Refused rather than ignored: nodes that silently ran alone would split rooms.
		// (Cluster mode will also need --secret set the same on every node.)
		return setting.Invalid("redis", c.Redis, "empty: cluster mode is not built into this version yet (docs/architecture.md)")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return setting.Invalid("tls-cert", c.TLSCert, "given together with tls-key")
	}
	if c.ACMEDomain != "" && c.TLSCert != "" {
		return setting.Invalid("acme-domain", c.ACMEDomain, "empty when tls-cert is set (choose one)")
	}
	if c.ACMEDomain != "" && (strings.ContainsAny(c.ACMEDomain, "/: ") || !strings.Contains(c.ACMEDomain, ".")) {
		return setting.Invalid("acme-domain", c.ACMEDomain, "a public DNS name such as live.example.com")
	}
	if c.ACMEEmail != "" && !strings.Contains(c.ACMEEmail, "@") {
		return setting.Invalid("acme-email", c.ACMEEmail, "an e-mail address")
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
			return setting.Invalid("allowed-origins", o, "'*' or origins like https://shop.example (scheme and host, no path)")
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return setting.Invalid("log-format", c.LogFormat, "text or json")
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return setting.Invalid("log-level", c.LogLevel, "debug, info, warn or error")
	}
	checks := []struct {
		key      string
		d        time.Duration
		min, max time.Duration
	}{
		{"drain-timeout", c.DrainTimeout, 0, time.Hour},
		{"drain-grace", c.DrainGrace, 0, 10 * time.Minute},
		{"read-header-timeout", c.HeaderTimeout, 100 * time.Millisecond, 10 * time.Minute},
		{"read-timeout", c.ReadTimeout, 100 * time.Millisecond, time.Hour},
		{"idle-timeout", c.IdleTimeout, time.Second, 24 * time.Hour},
		{"guest-ttl", c.GuestTTL, time.Minute, 365 * 24 * time.Hour},
	}
	for _, ch := range checks {
		if err := setting.InRange(ch.key, ch.d, ch.min, ch.max); err != nil {
			return err
		}
	}
	if c.BodyLimit < 1024 || c.BodyLimit > 1<<30 {
		return setting.Invalid("body-limit", fmt.Sprint(c.BodyLimit), "between 1024 and 1073741824 bytes")
	}
	if c.GuestRate < 1 || c.GuestRate > 100000 {
		return setting.Invalid("guest-rate", fmt.Sprint(c.GuestRate), "between 1 and 100000 per minute")
	}
	if c.DemoRoom == "" || strings.ContainsAny(c.DemoRoom, "/?#% ") {
		return setting.Invalid("demo-room", c.DemoRoom, "a room id of letters, digits, '-' and '_'")
	}
	return nil
}

// TLSEnabled reports whether the HTTP listener serves HTTPS.
func (c *Core) TLSEnabled() bool { return c.TLSCert != "" || c.ACMEDomain != "" }

// BaseURL is the URL printed in links.
func (c *Core) BaseURL() string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	scheme := "http"
	if c.TLSEnabled() {
		scheme = "https"
	}
	if c.ACMEDomain != "" {
		return scheme + "://" + c.ACMEDomain
	}
	host, port, err := net.SplitHostPort(c.HTTP)
	if err != nil {
		return scheme + "://localhost"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
