package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/liveroom/liveroom/backup"
	"github.com/liveroom/liveroom/config"
	"github.com/liveroom/liveroom/problem"
)

// A JSON body that passes the body limit as it is read (sent without a length,
// chunked) is a 413, as the contract says, though decodeJSON reports it as a bad body.
func TestBodyOverTheLimitWhileReadIs413(t *testing.T) {
	r := httptest.NewRequest("PUT", "/api/me/timezone", nil)
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(`{"tz":"`+strings.Repeat("a", 100)+`"}`)), 10)
	var v map[string]any
	err := decodeJSON(r, &v)
	if got := problem.KindOf(asProblem(err)); got != problem.TooLarge {
		t.Fatalf("%v: kind %v, want TooLarge (413)", err, got)
	}
}

// The guest limit holds an IPv6 client by its /64, which one host usually holds whole
// (it may take a new address for every request).
func TestGuestLimitTakesAnIPv6SlashSixtyFour(t *testing.T) {
	f := newFixture(t, func(c *config.Core, _ *Deps) { c.GuestRate = 3 })
	h := f.srv.Handler()
	granted := func(remote string) bool {
		req := httptest.NewRequest("POST", "/api/rooms/r1/guest", nil)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code == http.StatusOK
	}
	ok := 0
	for i := 1; i <= 20; i++ {
		if granted(fmt.Sprintf("[2001:db8:1:1::%x]:40000", i)) {
			ok++
		}
	}
	if ok > 3 {
		t.Fatalf("one /64 got %d guest tokens at guest-rate 3", ok)
	}
	if !granted("[2001:db8:1:2::1]:40000") || !granted("192.0.2.7:40000") {
		t.Fatal("another /64, or an IPv4 client, was refused")
	}
}

// The limiter holds at most maxTrackedAddrs addresses: while they were all seen
// lately (a flood from many), a new address waits instead of growing the map, whose
// sweep each request otherwise paid.
func TestAddrLimiterStaysBounded(t *testing.T) {
	l := newAddrLimiter(30.0/60, 30)
	now := time.Unix(1000, 0)
	for i := range maxTrackedAddrs {
		l.allow(fmt.Sprintf("198.%d.%d.%d", i>>16, (i>>8)&255, i&255), now)
	}
	if ok, wait := l.allow("203.0.113.1", now.Add(time.Second)); ok || wait <= 0 {
		t.Errorf("a new address with the limiter full: allowed %v, wait %v", ok, wait)
	}
	if len(l.buckets) > maxTrackedAddrs {
		t.Fatalf("%d buckets, more than %d", len(l.buckets), maxTrackedAddrs)
	}
	// Once they have refilled and been swept, new addresses are taken again.
	if ok, _ := l.allow("203.0.113.1", now.Add(time.Hour)); !ok {
		t.Error("a new address after the flood's buckets went idle was refused")
	}
}

// A browser's CORS preflight for GET /api/backup (it sends Authorization) is
// answered, as every other /api route's is.
func TestBackupPreflight(t *testing.T) {
	f := newFixture(t, func(c *config.Core, d *Deps) {
		c.AllowedOrigins = []string{"https://ops.example"}
		d.Backup = func(context.Context) (*backup.Snapshot, error) { return nil, nil }
	})
	a := f.do(t, "OPTIONS", "/api/backup", "", "", map[string]string{
		"Origin": "https://ops.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"})
	if a.status != http.StatusNoContent || a.header.Get("Access-Control-Allow-Origin") != "https://ops.example" {
		t.Fatalf("preflight: %d %v %s", a.status, a.header, a.body)
	}
}
