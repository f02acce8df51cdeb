package chat

import (
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// limitSweep is how often a room forgets the rate limits of users who left and whose
// limits are as good as new again (sweepLimits).
const limitSweep = 10 * time.Second

// A product_click only goes on the event tap, but a flood of them would crowd the
// other viewers' events out of the bounded tap: 10/s is faster than anyone taps.
const (
	clickRate  = 10
	clickBurst = 20
)

// userLimits is one user's rate-limit state in a room. The room keeps it by user id,
// apart from the member, so that leaving and coming back neither refills the buckets
// nor ends slow mode.
type userLimits struct {
	danmaku, like, gift, dm, click *rate.Limiter
	lastDanmaku                    time.Time
}

// limitsOf returns user's limits, making them on first use.
func (r *room) limitsOf(user string) *userLimits {
	l := r.limits[user]
	if l == nil {
		l = &userLimits{}
		r.limits[user] = l
	}
	return l
}

// fresh reports whether l behaves at now as new limits would: every bucket full and
// slow mode over since the last danmaku.
func (l *userLimits) fresh(now time.Time, slow time.Duration) bool {
	if now.Sub(l.lastDanmaku) < slow {
		return false
	}
	for _, lim := range []*rate.Limiter{l.danmaku, l.like, l.gift, l.dm, l.click} {
		if lim != nil && lim.TokensAt(now) < float64(lim.Burst()) {
			return false
		}
	}
	return true
}

// sweepLimits forgets the limits of users who left and would get the same from new
// ones, so the map holds the present users and those who left a moment ago. Those
// present keep theirs: slow mode made longer still counts their last danmaku.
func (r *room) sweepLimits(now time.Time) {
	for user, l := range r.limits {
		if r.users[user] == nil && l.fresh(now, r.slow) {
			delete(r.limits, user)
		}
	}
}

// allow takes a token from one of the user's buckets, creating it on first use; a
// refusal answers rate_limited (and counts toward closing an abusive connection).
func (r *room) allow(c *conn, lim **rate.Limiter, perSec float64, burst int) bool {
	if *lim == nil {
		*lim = rate.NewLimiter(rate.Limit(perSec), max(burst, 1))
	}
	if (*lim).Allow() {
		return true
	}
	c.reject(codeRateLimited, fmt.Sprintf("at most %g per second", perSec))
	return false
}
