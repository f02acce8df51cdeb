package rfm

import (
	"slices"
	"testing"
)

func TestScoresHandComputed(t *testing.T) {
	for _, c := range []struct {
		name   string
		values []int64
		want   []int
	}{
		// 10 distinct values: worse = 0..9, score = 1 + ⌊5·worse/10⌋.
		{"distinct", []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, []int{1, 1, 2, 2, 3, 3, 4, 4, 5, 5}},
		// Ties share a score: the three 5s each have 2 strictly worse of 7 → 1+⌊10/7⌋ = 2;
		// 7 has 5 worse → 1+⌊25/7⌋ = 4; 9 has 6 → 1+⌊30/7⌋ = 5; the two 1s none.
		{"ties", []int64{5, 1, 9, 5, 1, 5, 7}, []int{2, 1, 5, 2, 1, 2, 4}},
		{"all equal", []int64{3, 3, 3, 3}, []int{1, 1, 1, 1}},
		{"one buyer", []int64{42}, []int{1}},
		// 4 values: 1+⌊5·3/4⌋ = 4 for the best; the cap never needs to bite, 5·(n-1)/n < 5.
		{"four", []int64{10, 20, 30, 40}, []int{1, 2, 3, 4}},
	} {
		if got := Scores(c.values); !slices.Equal(got, c.want) {
			t.Errorf("%s: Scores(%v) = %v, want %v", c.name, c.values, got, c.want)
		}
	}
}

func TestRankingNotIncluded(t *testing.T) {
	r := NewRanking([]int64{1, 2, 3, 4})
	// A new buyer with value 5 beats all 4 of 5 → 1+⌊20/5⌋ = 5.
	if got := r.Score(5, false, false); got != 5 {
		t.Fatalf("score = %d, want 5", got)
	}
	if got := Score(10, 5); got != 5 {
		t.Fatalf("cap: got %d", got)
	}
}

func TestSegmentsCoverTheGrid(t *testing.T) {
	seen := map[string]bool{}
	for r := 1; r <= 5; r++ {
		for fm := 1; fm <= 5; fm++ {
			first := ""
			for _, ru := range Rules {
				if r >= ru.rMin && r <= ru.rMax && fm >= ru.fmMin && fm <= ru.fmMax {
					first = ru.name
					break
				}
			}
			if first == "" {
				t.Errorf("R=%d FM=%d matches no rule", r, fm)
			}
			seen[first] = true
		}
	}
	if len(seen) != 11 {
		t.Errorf("%d segments reachable as first match, want 11: %v", len(seen), seen)
	}
}

func TestSegmentAndTier(t *testing.T) {
	for _, c := range []struct {
		r, f, m int
		seg     string
		tier    string
	}{
		{5, 5, 5, Champions, VIP},
		{4, 4, 5, Champions, VIP},
		{3, 4, 3, LoyalCustomers, VIP},
		{5, 2, 3, PotentialLoyal, Important},
		{5, 1, 1, NewCustomers, Potential},
		{4, 1, 2, Promising, Potential},
		{3, 2, 2, NeedAttention, Ordinary},
		{3, 1, 1, AboutToSleep, Ordinary},
		{2, 4, 3, AtRisk, Important},
		{1, 5, 5, CantLoseThem, Important},
		{2, 1, 2, Hibernating, Ordinary},
		{1, 1, 1, Lost, Ordinary},
	} {
		if got := Segment(c.r, c.f, c.m); got != c.seg {
			t.Errorf("Segment(%d,%d,%d) = %q, want %q", c.r, c.f, c.m, got, c.seg)
		}
		if got := Tier(c.seg); got != c.tier {
			t.Errorf("Tier(%q) = %q, want %q", c.seg, got, c.tier)
		}
	}
	if Tier(NoOrders) != Potential {
		t.Error("never ordered must be potential")
	}
}
