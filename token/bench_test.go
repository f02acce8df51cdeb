package token

import (
	"testing"
	"time"
)

func BenchmarkIssue(b *testing.B) {
	s, _ := NewSigner(testSecret)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Issue(Spec{User: "v1", Role: "viewer", Room: "r1", TTL: time.Hour}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuthorize(b *testing.B) {
	s, _ := NewSigner(testSecret)
	raw, _ := s.Issue(Spec{User: "v1", Role: "viewer", Room: "r1", TTL: time.Hour})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Authorize(raw, "r1", "viewer"); err != nil {
			b.Fatal(err)
		}
	}
}
