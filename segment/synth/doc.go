// Package synth generates synthetic viewer events for the segmentation benchmarks: a
// fixed population of viewers joining, watching, commenting, liking, clicking and now
// and then ordering, over the last 60 days. It knows nothing of the engine.
package synth
