// Package rfm scores recency, frequency and monetary value against the population of
// buyers (1 + ⌊5 × strictly-worse / all⌋, capped at 5, so equal values share a score)
// and maps scores to the classic 11 RFM segments and to liveroom's four value tiers.
// It knows nothing of profiles or stores: it works on plain numbers.
package rfm
