package segment

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
)

// TestOrderDuringSweepNotCountedWorseThanItself: a buyer who orders during a sweep,
// after the sweep took its values and before it scored them, is not counted strictly
// worse than itself: its values are above the ranked ones. Before, the scoring pass
// marked it ranked and cleared its above flags then, as if its values were the ranked
// ones, until the next sweep.
func TestOrderDuringSweepNotCountedWorseThanItself(t *testing.T) {
	cfg := testConfig()
	cfg.Shards = 1
	clk := &clock{t: t0}
	e, err := New(cfg, Deps{Store: NewMemoryStore(), Now: clk.Now, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	for i := range 5 * lockBatch { // most profiles are scored after the scoring pass's first gap
		e.Apply(ev(event.Like, fmt.Sprintf("v%d", i), t0))
	}
	buyers := []string{"b0", "b1", "b2", "b3", "b4"}
	for i, b := range buyers {
		e.Apply(liveOrder(b, b+"-1", t0.Add(-24*time.Hour), fmt.Sprint(10*(i+1))))
	}
	// The buyer the sweep reaches last (the table's order, which the sweep takes), if
	// after the first batch: it orders in the first gap of the scoring pass.
	sh := e.shards[0]
	order := sh.profileList(nil)
	last := -1
	for i, p := range order {
		for _, b := range buyers {
			if p.ID == b {
				last = i
			}
		}
	}
	if last < lockBatch {
		t.Skip("every buyer is in the sweep's first batch") // one in millions of tables
	}
	buyer := order[last].ID
	before := e.rank.Load() // the engine swept when it started
	ordered := false
	batchGap = func() {
		if ordered || e.rank.Load() == before { // not yet the scoring pass
			return
		}
		ordered = true // one order, staying below the next buyer's spend
		e.Apply(liveOrder(buyer, buyer+"-2", t0, "1"))
	}
	t.Cleanup(func() { batchGap = nil })
	e.Sweep()
	batchGap = nil
	if !ordered {
		t.Fatal("the sweep's scoring pass had no gap")
	}
	during := viewer(t, e, buyer).RFM
	e.Sweep() // nothing new: ranks the values the buyer has had since its order
	if d, a := during, viewer(t, e, buyer).RFM; d != a {
		t.Errorf("%s ordered during a sweep: RFM %d/%d/%d %s after it, %d/%d/%d %s after the next sweep with nothing new",
			buyer, d.R, d.F, d.M, d.Segment, a.R, a.F, a.M, a.Segment)
	}
}
