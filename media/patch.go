package media

import (
	"context"
	"strings"

	"github.com/pion/webrtc/v4"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/problem"
)

// Patch applies a WHIP/WHEP PATCH body (application/trickle-ice-sdpfrag, RFC 9725
// §4.3): new remote candidates are added; new ICE credentials restart ICE, and the
// answer is the server's new credentials and candidates as a fragment. A nil answer
// means 204. match, when not nil, is the request's If-Match: a session whose entity tag
// it does not match is left alone (§4.3.1, 412). etag is the session's tag after the
// PATCH, a new one after a restart (§4.3.2).
func (s *Service) Patch(ctx context.Context, kind Kind, room, id string, user event.User, match func(etag string) bool, frag []byte) (out []byte, etag string, err error) {
	x, err := s.lookup(kind, room, id, user)
	if err != nil {
		return nil, "", err
	}
	f, err := parseICEFrag(frag)
	if err != nil {
		return nil, "", problem.Wrap(problem.BadRequest, err, "bad trickle-ice-sdpfrag").WithCode("bad_sdpfrag")
	}
	i := x.info()
	i.frag.Lock()
	defer i.frag.Unlock()
	if ld := i.pc.LocalDescription(); ld != nil {
		etag = etagOf(ld.SDP)
	}
	if match != nil && !match(etag) {
		return nil, "", staleETag()
	}
	if i.trickled+len(f.candidates) > maxTrickled {
		return nil, "", problem.New(problem.BadRequest, "a session takes at most %d trickled candidates", maxTrickled).WithCode("too_many_candidates")
	}
	i.trickled += len(f.candidates)
	if rd := i.pc.RemoteDescription(); rd != nil && f.ufrag != "" && f.ufrag != sdpValue(rd.SDP, "a=ice-ufrag:") {
		ans, err := answer(ctx, i.pc, replaceICECreds(rd.SDP, f.ufrag, f.pwd))
		if err != nil {
			return nil, "", err
		}
		if w, ok := x.(*watcher); ok {
			w.iceRestarted()
		}
		out, etag = restartFragment(ans), etagOf(ans)
	}
	for _, c := range f.candidates {
		init := webrtc.ICECandidateInit{Candidate: c}
		if f.mid != "" {
			init.SDPMid = &f.mid
		}
		if err := i.pc.AddICECandidate(init); err != nil {
			return nil, "", problem.Wrap(problem.BadRequest, err, "candidate refused").WithCode("bad_sdpfrag")
		}
	}
	return out, etag, nil
}

// etagOf is the entity tag of a session's ICE session (RFC 9725 §4.3.1), read from the
// server's SDP: its ICE ufrag, which an ICE restart renews.
func etagOf(sdp string) string { return sdpValue(sdp, "a=ice-ufrag:") }

// sdpValue returns the rest of the first line starting with prefix.
func sdpValue(sdp, prefix string) string {
	for _, l := range strings.Split(sdp, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), prefix); ok {
			return v
		}
	}
	return ""
}

// replaceICECreds rewrites every ice-ufrag/ice-pwd line of an offer, turning the
// previous offer into the restart offer the client would have sent.
func replaceICECreds(sdp, ufrag, pwd string) string {
	lines := strings.Split(sdp, "\r\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "a=ice-ufrag:"):
			lines[i] = "a=ice-ufrag:" + ufrag
		case strings.HasPrefix(l, "a=ice-pwd:"):
			lines[i] = "a=ice-pwd:" + pwd
		}
	}
	return strings.Join(lines, "\r\n")
}

// restartFragment is the server's side of an ICE restart as a trickle-ice-sdpfrag:
// new credentials, the first media section's mid and its candidates.
func restartFragment(ans string) []byte {
	var b strings.Builder
	b.WriteString("a=ice-ufrag:" + sdpValue(ans, "a=ice-ufrag:") + "\r\n")
	b.WriteString("a=ice-pwd:" + sdpValue(ans, "a=ice-pwd:") + "\r\n")
	inFirst := false
	for _, l := range strings.Split(ans, "\r\n") {
		switch {
		case strings.HasPrefix(l, "m="):
			if inFirst {
				return []byte(b.String())
			}
			inFirst = true
			b.WriteString(l + "\r\n")
		case inFirst && (strings.HasPrefix(l, "a=mid:") || strings.HasPrefix(l, "a=candidate:") || l == "a=end-of-candidates"):
			b.WriteString(l + "\r\n")
		}
	}
	return []byte(b.String())
}
