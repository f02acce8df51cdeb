package chat

import (
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/liveroom/liveroom/event"
)

// TestSweepForgetsLimitsAsGoodAsNew: the room keeps a departed user's limits while
// they still hold something back (an empty bucket, slow mode), then forgets them, so
// the map does not grow with every user who ever came; a present user keeps theirs.
func TestSweepForgetsLimitsAsGoodAsNew(t *testing.T) {
	r := newRoom(&Hub{cfg: DefaultConfig()}, "r")
	r.slow = time.Minute
	t0 := time.Now()
	spend := func(user string) {
		l := r.limitsOf(user)
		l.danmaku = rate.NewLimiter(2, 5) // refills in 2.5 s
		l.danmaku.AllowN(t0, 5)
		l.lastDanmaku = t0
	}
	spend("left")
	spend("here")
	r.users["here"] = &member{user: event.User{ID: "here"}}

	for _, tc := range []struct {
		after time.Duration
		kept  []string
	}{
		{time.Second, []string{"left", "here"}},      // bucket still refilling
		{30 * time.Second, []string{"left", "here"}}, // bucket full, slow mode not over
		{time.Minute, []string{"here"}},              // as good as new: forgotten
	} {
		r.sweepLimits(t0.Add(tc.after))
		if len(r.limits) != len(tc.kept) {
			t.Fatalf("after %s: limits of %d users, want %v", tc.after, len(r.limits), tc.kept)
		}
		for _, u := range tc.kept {
			if r.limits[u] == nil {
				t.Fatalf("after %s: %s's limits forgotten", tc.after, u)
			}
		}
	}
}
