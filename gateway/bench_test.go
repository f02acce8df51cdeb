package gateway

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/liveroom/liveroom/config"
	"github.com/liveroom/liveroom/token"
)

// BenchmarkAuthenticatedRequest measures the gateway's own cost per API request
// (middleware, routing, token check, JSON answer) without the network.
func BenchmarkAuthenticatedRequest(b *testing.B) {
	signer, _ := token.NewSigner(testSecret)
	s, err := New(config.DefaultCore(), Deps{Signer: signer})
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := signer.Issue(token.Spec{User: "a", Role: "agent", Room: "*", TTL: time.Hour})
	h := s.Handler()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/api/me?room=r1", nil)
		req.Header.Set("Authorization", "Bearer "+raw)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}
