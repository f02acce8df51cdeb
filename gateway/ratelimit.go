package gateway

import (
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// addrLimiter keeps one token bucket per client address. Idle buckets are swept on
// access, so it needs no goroutine of its own.
type addrLimiter struct {
	mu        sync.Mutex
	every     rate.Limit
	burst     int
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

const maxTrackedAddrs = 100_000

func newAddrLimiter(perSecond float64, burst int) *addrLimiter {
	return &addrLimiter{every: rate.Limit(perSecond), burst: burst, buckets: map[string]*bucket{}}
}

// fullSweepEvery is how often a limiter holding maxTrackedAddrs sweeps: sweeping at
// each request then (the buckets all fresh, a flood from many addresses) scanned the
// whole map under the lock for every request.
const fullSweepEvery = 10 * time.Second

// allow takes a token for addr (an IPv6 address by its /64, see limitKey); when none
// is left it returns how long to wait. While maxTrackedAddrs addresses were all seen
// lately, a new one waits too: the limiter's memory and each request's cost stay
// bounded.
func (l *addrLimiter) allow(addr string, now time.Time) (bool, time.Duration) {
	key := limitKey(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	since := now.Sub(l.lastSweep)
	if since > time.Minute || len(l.buckets) >= maxTrackedAddrs && since > fullSweepEvery {
		l.sweep(now)
	}
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxTrackedAddrs {
			return false, fullSweepEvery
		}
		b = &bucket{lim: rate.NewLimiter(l.every, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Minute
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep forgets buckets idle long enough to have refilled completely.
func (l *addrLimiter) sweep(now time.Time) {
	full := time.Duration(float64(l.burst)/float64(l.every)*float64(time.Second)) + time.Minute
	for k, b := range l.buckets {
		if now.Sub(b.seen) > full {
			delete(l.buckets, k)
		}
	}
	l.lastSweep = now
}

// limitKey is the bucket of a client address: an IPv4 address itself, an IPv6 address
// its /64, which one host usually holds whole (it could take a new address for every
// request).
func limitKey(addr string) string {
	ip := net.ParseIP(addr)
	if ip == nil || ip.To4() != nil {
		return addr
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
