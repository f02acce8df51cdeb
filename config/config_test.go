package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "liveroom.yml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsAreValid(t *testing.T) {
	cfg, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP != ":8080" || cfg.Data != "./data" || cfg.Redis != "" || cfg.Media.WebRTCUDP != ":8189" ||
		cfg.Media.RTSP != ":8554" || cfg.Segment.StayThreshold != 5*time.Minute {
		t.Fatalf("defaults differ from the contract: %+v", cfg)
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "http: \":1001\"\nlog-level: warn\ndrain-timeout: 3s\nstay-threshold: 2m\nallowed-origins: [\"https://a.example\"]\n")
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want func(Config) bool
	}{
		{"file over default", []string{"--config", file}, nil,
			func(c Config) bool {
				return c.HTTP == ":1001" && c.LogLevel == "warn" && c.Segment.StayThreshold == 2*time.Minute
			}},
		{"env over file", []string{"--config", file}, map[string]string{"LIVEROOM_HTTP": ":1002", "LIVEROOM_STAY_THRESHOLD": "90s"},
			func(c Config) bool {
				return c.HTTP == ":1002" && c.LogLevel == "warn" && c.Segment.StayThreshold == 90*time.Second
			}},
		{"flag over env", []string{"--config", file, "--http", ":1003"}, map[string]string{"LIVEROOM_HTTP": ":1002"},
			func(c Config) bool { return c.HTTP == ":1003" && c.DrainTimeout == 3*time.Second }},
		{"config path from env", nil, map[string]string{"LIVEROOM_CONFIG": file},
			func(c Config) bool { return c.HTTP == ":1001" && c.File == file }},
		{"list from env replaces file", []string{"--config", file}, map[string]string{"LIVEROOM_ALLOWED_ORIGINS": "https://b.example, https://c.example"},
			func(c Config) bool {
				return len(c.AllowedOrigins) == 2 && c.AllowedOrigins[0] == "https://b.example" && c.AllowedOrigins[1] == "https://c.example"
			}},
		{"bool env", nil, map[string]string{"LIVEROOM_TRUST_PROXY": "true"}, func(c Config) bool { return c.TrustProxy }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(tc.args, env(tc.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(cfg) {
				t.Fatalf("unexpected config: %+v", cfg.Core)
			}
		})
	}
}

func TestBadInputNamesKeyValueAndAllowed(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		env   map[string]string
		file  string
		wants []string // all must appear in the message
	}{
		{"bad log format flag", []string{"--log-format", "xml"}, nil, "", []string{"log-format", `"xml"`, "text or json"}},
		{"bad duration env", nil, map[string]string{"LIVEROOM_DRAIN_TIMEOUT": "soon"}, "", []string{"drain-timeout", "LIVEROOM_DRAIN_TIMEOUT", "soon"}},
		{"duration out of range", []string{"--stay-threshold", "10ms"}, nil, "", []string{"stay-threshold", "10ms", "between"}},
		{"unknown flag", []string{"--nope"}, nil, "", []string{"nope"}},
		{"stray argument", []string{"extra"}, nil, "", []string{"extra"}},
		{"bad http addr", []string{"--http", "8080"}, nil, "", []string{"http", "8080", "host:port"}},
		{"unknown yaml key", nil, nil, "htpp: \":1\"\n", []string{"htpp"}},
		{"yaml wrong type", nil, nil, "guest-rate: lots\n", []string{"guest-rate"}},
		{"yaml syntax", nil, nil, "http: [\n", []string{"config file"}},
		// A wrong value or an unknown field inside a list (the gift catalog) is on a
		// line below its key: the message still names the setting.
		{"yaml wrong type in a list item", nil, nil, "chat-gifts:\n  - {id: rose, name: Rose, value: 0.1, currency: USD}\n  - {id: heart, name: Heart, value: lots, currency: USD}\n", []string{"chat-gifts", "lots"}},
		{"yaml unknown field in a list item", nil, nil, "chat-gifts:\n  - id: rose\n    name: Rose\n    value: 0.1\n    currency: USD\n    animaton: float\n", []string{"chat-gifts", "animaton"}},
		{"redis url", []string{"--redis", "localhost:6379", "--secret", strings.Repeat("s", 32)}, nil, "", []string{"redis", "localhost:6379", "redis://"}},
		// The first message names what stops it: asking for a secret sent the operator
		// to set one, only to be refused for cluster mode next.
		{"cluster mode not built, without a secret", []string{"--redis", "redis://127.0.0.1:6379/0"}, nil, "", []string{"redis", "not built"}},
		{"port out of range", []string{"--http", ":99999"}, nil, "", []string{"http", ":99999", "0 to 65535"}},
		{"port by name", []string{"--http", ":http-alt-x"}, nil, "", []string{"http", "0 to 65535"}},
		{"media port out of range", []string{"--webrtc-udp", ":70000"}, nil, "", []string{"webrtc-udp", ":70000", "0 to 65535"}},
		{"public url with a path", []string{"--public-url", "https://shop.example/live"}, nil, "", []string{"public-url", "no path"}},
		// A password in a refused URL is masked (the message reaches the logs).
		{"redis password", []string{"--redis", "redis://:hunter2@10.0.0.5:6379/0"}, nil, "", []string{"redis://:xxxxx@10.0.0.5:6379/0"}},
		{"turn password", []string{"--ice-servers", "turn:alice:hunter2@turn.example.com:34x78"}, nil, "", []string{"turn:alice:xxxxx@turn.example.com"}},
		{"cluster mode not built yet", []string{"--redis", "redis://127.0.0.1:6379/0", "--secret", strings.Repeat("s", 32)}, nil, "", []string{"redis", "not built"}},
		{"short secret", []string{"--secret", "abc"}, nil, "", []string{"secret", "32 bytes"}},
		{"tls half", []string{"--tls-cert", "c.pem"}, nil, "", []string{"tls-cert", "tls-key"}},
		{"acme and cert", []string{"--tls-cert", "c", "--tls-key", "k", "--acme-domain", "a.example"}, nil, "", []string{"acme-domain"}},
		{"origin with path", []string{"--allowed-origins", "https://a.example/x"}, nil, "", []string{"allowed-origins", "https://a.example/x"}},
		{"public ip", []string{"--public-ip", "not-an-ip"}, nil, "", []string{"public-ip", "not-an-ip"}},
		{"body limit", []string{"--body-limit", "10"}, nil, "", []string{"body-limit", "10"}},
		// Gifts' values are kept in the base currency: the default gifts are in USD.
		{"gift currency without a rate", nil, nil, "currency: EUR\n", []string{"chat-gifts", "rose: USD", "EUR", "currency-rates"}},
		{"missing config file", []string{"--config", "/nonexistent/liveroom.yml"}, nil, "", []string{"/nonexistent/liveroom.yml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeFile(t, tc.file)}, args...)
			}
			_, err := Load(args, env(tc.env), io.Discard)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("message %q shows a password", err)
			}
		})
	}
}

// TestGiftCurrencyWithARate: gifts in a currency other than the base load when it has
// a rate.
func TestGiftCurrencyWithARate(t *testing.T) {
	if _, err := Load([]string{"--config", writeFile(t, "currency: EUR\ncurrency-rates: {USD: \"0.92\"}\n")}, env(nil), io.Discard); err != nil {
		t.Fatal(err)
	}
}

func TestHelp(t *testing.T) {
	if _, err := Load([]string{"--help"}, env(nil), io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
}

// TestAnnotatedExample loads deploy/liveroom.yml, the complete example, and checks that
// it names every flag (with a comment) and that its values are the defaults.
func TestAnnotatedExample(t *testing.T) {
	const path = "../deploy/liveroom.yml"
	cfg, err := Load([]string{"--config", path}, env(nil), io.Discard)
	if err != nil {
		t.Fatalf("the annotated example does not load: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	d := Default()
	d.FlagSet("x", io.Discard).VisitAll(func(f *flag.Flag) {
		if f.Name == "config" {
			return
		}
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(f.Name) + `:`)
		if !re.MatchString(text) {
			t.Errorf("deploy/liveroom.yml does not set %q", f.Name)
		}
	})
	cfg.File = ""
	want := Default()
	if cfg.Core.HTTP != want.Core.HTTP || cfg.DrainTimeout != want.DrainTimeout || cfg.GuestRate != want.GuestRate {
		t.Errorf("example values drift from defaults: %+v", cfg.Core)
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("webrtc-udp"); got != "LIVEROOM_WEBRTC_UDP" {
		t.Fatal(got)
	}
}

func TestBaseURL(t *testing.T) {
	for _, tc := range []struct {
		core Core
		want string
	}{
		{Core{HTTP: ":8080"}, "http://localhost:8080"},
		{Core{HTTP: "127.0.0.1:9000"}, "http://127.0.0.1:9000"},
		{Core{HTTP: ":443", TLSCert: "c", TLSKey: "k"}, "https://localhost:443"},
		{Core{HTTP: ":443", ACMEDomain: "live.example.com"}, "https://live.example.com"},
		{Core{HTTP: ":8080", PublicURL: "https://x.example/"}, "https://x.example"},
	} {
		if got := tc.core.BaseURL(); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.core, got, tc.want)
		}
	}
}

// FuzzConfigFile: no YAML document may crash the loader; what loads must validate.
func FuzzConfigFile(f *testing.F) {
	b, _ := os.ReadFile("../deploy/liveroom.yml")
	f.Add(string(b))
	f.Add("http: \":1\"\n")
	f.Add("chat-flush: 1h\n")
	f.Add("allowed-origins: 5\n")
	f.Add("{{{")
	f.Fuzz(func(t *testing.T, doc string) {
		c := Default()
		if err := c.decodeYAML([]byte(doc), "fuzz"); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not marked invalid: %v", err)
			}
			return
		}
		_ = c.Validate()
	})
}

// FuzzEnvAndFlags: any value of any setting, from LIVEROOM_* or from its flag, is
// refused with ErrInvalid or loads into a configuration that validates.
func FuzzEnvAndFlags(f *testing.F) {
	var names []string
	d := Default()
	d.FlagSet("fuzz", io.Discard).VisitAll(func(fl *flag.Flag) {
		if fl.Name != "config" && fl.Name != "help" {
			names = append(names, fl.Name)
		}
	})
	for i := range names {
		for _, v := range []string{"", "0", "-1", "1h", "x", ":8080", "a,b", "redis://u:p@h:1/0", "1e309", "NaN", "true"} {
			f.Add(uint(i), v, uint8(0))
		}
	}
	f.Fuzz(func(t *testing.T, i uint, v string, how uint8) {
		name := names[i%uint(len(names))]
		var args []string
		vars := map[string]string{}
		switch how % 3 {
		case 0:
			vars[EnvName(name)] = v
		case 1:
			args = []string{"--" + name + "=" + v}
		default:
			vars[EnvName(name)] = v
			args = []string{"--" + name + "=" + v}
		}
		cfg, err := Load(args, env(vars), io.Discard)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s=%q: error not marked invalid: %v", name, v, err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s=%q loaded a configuration that does not validate: %v", name, v, err)
		}
	})
}
