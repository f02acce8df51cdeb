package main

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"time"
)

// machinePace is how fast the core the bench runs on was when it was measured. The
// same 2-core VM ran the segment bench's engine at 0.6 µs per event over 2,000 viewers
// (all in the cache) on one day and at 1.4 on another, as its host's other tenants
// came and went: on the slow day a dependent read over 4 MiB took 149 ns, the
// memory's pace, where the 32 MiB L3 answers in a few tens. Printed beside a run's
// figures, it tells a slow host from a slow build.
type machinePace struct {
	loopNs float64 // per step of a chain of arithmetic that stays in the registers
	readNs float64 // per read of a chain of dependent reads over calibrationMiB
}

// calibrationMiB is what the dependent reads spread over: half the test machine's
// L3, about what the live bench's present viewers' profiles take.
const calibrationMiB = 16

// measurePace measures the calling thread's core (about half a second on a slow day).
func measurePace() machinePace {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// A cycle through every slot in random order (Sattolo's algorithm), so that each
	// read's address comes from the one before and the prefetchers cannot guess it.
	next := make([]uint32, calibrationMiB<<20/4)
	for i := range next {
		next[i] = uint32(i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := len(next) - 1; i > 0; i-- {
		j := int((rng.Uint64() >> 32) * uint64(i) >> 32) // in [0, i)
		next[i], next[j] = next[j], next[i]
	}
	at := uint32(0)
	for range len(next) { // once round, so the lines are in whatever cache holds them
		at = next[at]
	}
	const reads = 1 << 20
	start := time.Now()
	for range reads {
		at = next[at]
	}
	readNs := float64(time.Since(start).Nanoseconds()) / reads

	const steps = 1 << 25
	start = time.Now()
	x := uint64(at) | 1
	for range steps { // xorshift64: each step needs the one before
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	loopNs := float64(time.Since(start).Nanoseconds()) / steps
	runtime.KeepAlive(x)
	return machinePace{loopNs: loopNs, readNs: readNs}
}

func (m machinePace) String() string {
	return fmt.Sprintf("%.2f ns per step of a loop in the registers, %.0f ns per dependent read over %d MiB",
		m.loopNs, m.readNs, calibrationMiB)
}
