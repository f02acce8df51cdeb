package media

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pion/ice/v4"
)

// ICEServer is one STUN/TURN server handed to a client (WHIP/WHEP Link header,
// RFC 9725 §4.6).
type ICEServer struct {
	URL        string `json:"url"`
	Username   string `json:"username,omitempty"`
	Credential string `json:"credential,omitempty"`
}

// iceServerConf is a parsed --ice-servers entry.
type iceServerConf struct {
	url        string // without credentials
	turn       bool
	user, pass string
}

// parseICEServer reads "stun:host:port", "turn:host:port?transport=udp" and the
// same with static credentials "turn:USER:PASS@host:port".
func parseICEServer(s string) (iceServerConf, error) {
	c := iceServerConf{url: s}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok {
		return c, fmt.Errorf("ice server %q: no scheme", s)
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		user, pass, ok := strings.Cut(rest[:at], ":")
		if !ok || user == "" {
			return c, fmt.Errorf("ice server %q: credentials must be USER:PASS@", s)
		}
		c.user, c.pass, c.url = user, pass, scheme+":"+rest[at+1:]
	}
	u, err := ice.ParseURL(c.url)
	if err != nil {
		return c, fmt.Errorf("ice server %q: %w", s, err)
	}
	c.turn = u.Scheme == ice.SchemeTypeTURN || u.Scheme == ice.SchemeTypeTURNS
	if c.user != "" && !c.turn {
		return c, fmt.Errorf("ice server %q: only TURN takes credentials", s)
	}
	return c, nil
}

// TURNCredentials implements coturn's use-auth-secret scheme (the TURN REST API
// draft): username = "expiry-unix-time:user", credential = base64(HMAC-SHA1(secret,
// username)).
func TURNCredentials(secret, user string, expires time.Time) (username, credential string) {
	username = strconv.FormatInt(expires.Unix(), 10)
	if user != "" {
		username += ":" + user
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ICEServers lists the servers a client should use; TURN servers without static
// credentials get time-limited ones for user when a TURN secret is configured.
func (s *Service) ICEServers(user string) []ICEServer {
	out := make([]ICEServer, 0, len(s.iceServers))
	for _, c := range s.iceServers {
		srv := ICEServer{URL: c.url, Username: c.user, Credential: c.pass}
		if c.turn && c.user == "" && s.cfg.TURNSecret != "" {
			srv.Username, srv.Credential = TURNCredentials(s.cfg.TURNSecret, user, s.now().Add(s.cfg.TURNTTL))
		}
		out = append(out, srv)
	}
	return out
}

// iceFrag is a parsed application/trickle-ice-sdpfrag body (RFC 8840 §9).
type iceFrag struct {
	ufrag, pwd string
	mid        string
	candidates []string
	end        bool
}

// maxFragLines bounds how much work one PATCH can cause.
const maxFragLines = 256

// maxTrickled bounds the remote candidates a session's PATCHes may add, over its life
// (a browser trickles a few per network path, again at each ICE restart): each is a
// STUN target of the client's choosing.
const maxTrickled = 200

// parseICEFrag reads a trickle-ice-sdpfrag: session-level ice-ufrag/ice-pwd, m=
// lines with a=mid, a=candidate and a=end-of-candidates. Unknown lines are ignored,
// malformed ones refused.
func parseICEFrag(b []byte) (iceFrag, error) {
	var f iceFrag
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1024), 4096)
	lines := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if lines++; lines > maxFragLines {
			return f, fmt.Errorf("%w: more than %d lines", ErrBadFrag, maxFragLines)
		}
		if len(line) < 2 || line[1] != '=' {
			return f, fmt.Errorf("%w: line %q is not an SDP line", ErrBadFrag, line)
		}
		k, v, _ := strings.Cut(line[2:], ":")
		switch {
		case line[0] != 'a':
		case k == "ice-ufrag":
			f.ufrag = v
		case k == "ice-pwd":
			f.pwd = v
		case k == "mid" && f.mid == "":
			f.mid = v
		case k == "candidate":
			if _, err := ice.UnmarshalCandidate(v); err != nil {
				return f, fmt.Errorf("%w: candidate %q: %v", ErrBadFrag, v, err)
			}
			f.candidates = append(f.candidates, "candidate:"+v)
		case k == "end-of-candidates":
			f.end = true
		}
	}
	if err := sc.Err(); err != nil {
		return f, fmt.Errorf("%w: %v", ErrBadFrag, err)
	}
	if (f.ufrag == "") != (f.pwd == "") {
		return f, fmt.Errorf("%w: ice-ufrag and ice-pwd go together", ErrBadFrag)
	}
	// An ICE restart writes them into the session's offer as they came: a stray
	// character (a CR) would make that offer something else.
	if f.ufrag != "" && (!iceChars(f.ufrag, 4) || !iceChars(f.pwd, 22)) {
		return f, fmt.Errorf("%w: ice-ufrag (4 to 256) and ice-pwd (22 to 256) are letters, digits, + and / (RFC 8839)", ErrBadFrag)
	}
	return f, nil
}

// iceChars says whether s is min to 256 ice-chars (RFC 8839 §5.4).
func iceChars(s string, min int) bool {
	if len(s) < min || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}
