package rfm

import (
	"slices"
	"sort"
)

// Score is one dimension's score for n buyers of whom worse have a strictly worse
// value: 1 + ⌊5 × worse / n⌋, capped at 5 (and 1 when n is 0).
func Score(worse, n int) int {
	if n <= 0 || worse <= 0 {
		return 1
	}
	return min(5, 1+5*worse/n)
}

// Ranking holds one dimension's values over all buyers, sorted, so a value's score
// is two binary searches away. Higher values are better (recency is passed as the day
// of the last order, so a later day is better).
type Ranking struct {
	sorted []int64
}

// NewRanking sorts a copy of values.
func NewRanking(values []int64) Ranking {
	s := slices.Clone(values)
	slices.Sort(s)
	return Ranking{sorted: s}
}

// Len is the number of buyers ranked.
func (r Ranking) Len() int { return len(r.sorted) }

// Score is v's score among the ranked buyers: those with a strictly smaller value are
// worse. A buyer not ranked (ranked false) is counted in as one more; a ranked one whose
// value rose above its ranked value since (above) is not counted worse than itself.
func (r Ranking) Score(v int64, ranked, above bool) int {
	worse := sort.Search(len(r.sorted), func(i int) bool { return r.sorted[i] >= v })
	n := len(r.sorted)
	switch {
	case !ranked:
		n++
	case above && worse > 0:
		worse--
	}
	return Score(worse, n)
}

// Scores scores every value of values against the others (ties share a score).
func Scores(values []int64) []int {
	r := NewRanking(values)
	out := make([]int, len(values))
	for i, v := range values {
		out[i] = r.Score(v, true, false)
	}
	return out
}
