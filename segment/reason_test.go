package segment

import (
	"testing"

	"github.com/liveroom/liveroom/segment/rfm"
)

// TestReasonTexts pins the sentence each dimension's tag carries, word for word, for
// hand-built profiles on a fixed day: the console and the rules show these to people.
func TestReasonTexts(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	for _, price := range []string{"10", "20", "30", "40", "50", "60"} {
		m, err := ParseMoney(price)
		if err != nil {
			t.Fatal(err)
		}
		e.catalog.learn("sku-"+price, "cat", m, t0.UnixMilli())
	}
	now := t0.UnixMilli()
	today := dayOf(now)
	active := &Profile{LastVisit: now - dayMs, Interactions: 7,
		Days: packedOf([]Bucket{{Day: today - 3, Sessions: 2, WatchSec: 1500, Interactions: 3}, {Day: today - 1, Sessions: 3, WatchSec: 2401, Interactions: 4}})}
	medium := &Profile{LastVisit: now, Days: packedOf([]Bucket{{Day: today, Sessions: 1, WatchSec: 61, Interactions: 1}})}
	low := &Profile{LastVisit: now, Days: packedOf([]Bucket{{Day: today, Sessions: 1, WatchSec: 59}})}
	dormant := &Profile{FirstSeen: now - 45*dayMs}
	churned := &Profile{LastVisit: now - 200*dayMs - 5}
	buyer := &Profile{LastVisit: now, Orders: 5, Spend: 12_500_000, RFM: RFM{R: 5, F: 4, M: 3, Segment: wordOf(rfm.LoyalCustomers)},
		Days: packedOf([]Bucket{{Day: today - 400, Orders: 1}, {Day: today - 20, Orders: 2}, {Day: today - 2, Orders: 2}}),
		Cats: packedOf([]CatDay{catDay(today-1, categoryOf("shoes"), 3), catDay(today-2, categoryOf("bags"), 3), catDay(today-100, categoryOf("hats"), 9), catDay(today-80, categoryOf("shoes"), 1)})}
	lone := &Profile{LastVisit: now, Orders: 1, Spend: 5_000_000, RFM: RFM{R: 1, F: 1, M: 1, Segment: wordOf(rfm.Lost)}}
	for _, c := range []struct {
		name string
		p    *Profile
		dim  string
		want string
	}{
		{"high", active, DimActivity, "5 live sessions, average watch 13m0s, 7 interactions in 30 days (high from 4 sessions, 10m0s, 5 interactions)"},
		{"medium", medium, DimActivity, "1 live sessions, average watch 1m1s, 1 interactions in 30 days (medium from 2 sessions or any interaction)"},
		{"low", low, DimActivity, "1 live sessions, average watch 59s, 0 interactions in 30 days (low: visited, below medium)"},
		{"dormant activity", dormant, DimActivity, "no visit (watch or order) for 45 days; dormant after 30"},
		{"churned lifecycle", churned, DimLifecycle, "no visit (watch or order) for 200 days; churned after 90"},
		{"new", low, DimLifecycle, "has not ordered yet"},
		{"repeat", buyer, DimLifecycle, "4 orders in 365 days, 5 in all (repeat from 2, loyal from 4)"},
		{"value", buyer, DimValue, "RFM 5/4/3 over 365 days of orders: Loyal Customers"},
		{"no orders", low, DimValue, "has not ordered yet"},
		{"preference", buyer, DimPreference, "most clicked and bought in 90 days: shoes (4), bags (3); average order 2.50 USD against catalog price terciles 20.00 and 40.00"},
		{"nothing clicked", lone, DimPreference, "no product clicks or purchases in the last 90 days; average order 5.00 USD against catalog price terciles 20.00 and 40.00"},
	} {
		if got := e.reason(c.p, c.dim, now); got != c.want {
			t.Errorf("%s: reason\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}
