//go:build race

package event

// raceEnabled: the race detector's sync.Pool drops a share of what it is given, on
// purpose, so a test cannot count on getting it back.
const raceEnabled = true
