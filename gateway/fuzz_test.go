package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/liveroom/liveroom/config"
	"github.com/liveroom/liveroom/token"
)

// FuzzGuest: POST /api/rooms/{room}/guest, the one endpoint anyone may call, answers
// any body with 200 and a guest token, or 400/401/403 and the JSON error shape; never
// 5xx. A 200 keeps an identity only for a guest token we signed (a bare id is never
// enough), and its name is what the contract allows.
func FuzzGuest(f *testing.F) {
	signer, err := token.NewSigner(testSecret)
	if err != nil {
		f.Fatal(err)
	}
	core := config.DefaultCore()
	s, err := New(core, Deps{Signer: signer})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	guest, _ := signer.Issue(token.Spec{User: "g_known", Role: "viewer", Room: "r1", TTL: time.Hour, Guest: true})
	old, _ := signer.Issue(token.Spec{User: "g_old", Role: "viewer", Room: "r1", TTL: time.Nanosecond, Guest: true})
	host, _ := signer.Issue(token.Spec{User: "h", Role: "host", Room: "r1", TTL: time.Hour})
	for _, b := range []string{"", "{}", `{"token":"` + guest + `","name":"Mia"}`, `{"token":"` + old + `"}`, `{"token":"` + host + `"}`,
		`{"viewer_id":"g_known"}`, `{`, `[]`, `{"token":5}`, `{"name":"a\u0007b"}`, `{"name":"` + strings.Repeat("n", 41) + `"}`,
		`null`, `{"token":"x.y.z"} trailing`} {
		f.Add("r1", b)
	}
	f.Add("bad room", "")
	var n int
	f.Fuzz(func(t *testing.T, room, body string) {
		n++
		req := httptest.NewRequest("POST", "/api/rooms/x/guest", strings.NewReader(body))
		req.URL.Path = "/api/rooms/" + room + "/guest"
		req.URL.RawPath = ""
		req.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:1000", n>>16&255, n>>8&255, n&255) // past the per-address limit
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusOK:
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMovedPermanently,
			http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusMethodNotAllowed:
			if w.Code >= 400 && w.Code != http.StatusNotFound && w.Code != http.StatusMethodNotAllowed {
				var e errorBody
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
					t.Fatalf("status %d: body is not the JSON error shape: %q", w.Code, w.Body.Bytes())
				}
			}
			return
		default:
			t.Fatalf("room %q body %q: status %d %s", room, body, w.Code, w.Body.Bytes())
		}
		var res guestResponse
		if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
			t.Fatalf("200 with %q: %v", w.Body.Bytes(), err)
		}
		c, err := signer.Verify(res.Token)
		if err != nil || !c.Guest || c.Role != "viewer" || c.Subject != res.ViewerID || token.ValidRoom(c.Room) != nil {
			t.Fatalf("issued %+v, %v for body %q", c, err, body)
		}
		if n := utf8.RuneCountInString(c.Name); n > 40 || !utf8.ValidString(c.Name) || strings.ContainsFunc(c.Name, unicode.IsControl) {
			t.Fatalf("issued name %q", c.Name)
		}
		if res.ViewerID == "g_known" || res.ViewerID == "g_old" {
			var req guestRequest
			if json.Unmarshal([]byte(body), &req) != nil {
				t.Fatalf("took %s without a token: %q", res.ViewerID, body)
			}
			old, err := signer.VerifyGuestForRenewal(req.Token)
			if err != nil || old.Subject != res.ViewerID {
				t.Fatalf("took %s with %q", res.ViewerID, body)
			}
		}
	})
}
