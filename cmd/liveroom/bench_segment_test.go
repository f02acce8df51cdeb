package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// The segment bench finishes once every event is dealt with, including those that
// change no profile (it waited for every event to change one, and hung when the
// synthetic stream held a leave of a viewer never seen to join).
func TestBenchSegmentFinishes(t *testing.T) {
	out := runBenchSegment(t, "--events", "20000", "--viewers", "2000")
	checkBenchSegment(t, out)
}

// Live traffic applies the population's history first and measures only the live
// room's events.
func TestBenchSegmentLiveTraffic(t *testing.T) {
	out := runBenchSegment(t, "--traffic", "live", "--events", "20000", "--viewers", "2000", "--present", "300", "--rooms", "3")
	if !regexp.MustCompile(`traffic live \(300 viewers present in 3 rooms, after 6000 events of history\)`).MatchString(out.String()) {
		t.Fatalf("no traffic line: %s", out.String())
	}
	m := regexp.MustCompile(`history: +6000 events, (\d+) profiles`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no history line: %s", out.String())
	}
	if n, _ := strconv.Atoi(m[1]); n < 1000 || n > 2000 {
		t.Fatalf("%d profiles after 3 events per viewer of 2000:\n%s", n, out.String())
	}
	checkBenchSegment(t, out)
}

// With --subscriber all the subscriber takes every applied event as well, as a node's
// rules do; the tag changes' delays are still measured.
func TestBenchSegmentSubscriberOfEveryEvent(t *testing.T) {
	out := runBenchSegment(t, "--traffic", "live", "--events", "20000", "--viewers", "2000", "--present", "300", "--rooms", "3", "--subscriber", "all")
	if !strings.Contains(out.String(), "a subscriber of every applied event and tag change") {
		t.Fatalf("no subscriber in the header: %s", out.String())
	}
	if !regexp.MustCompile(`subscriber: +took [1-9]\d* applied events besides the tag changes`).MatchString(out.String()) {
		t.Fatalf("the subscriber took no applied event: %s", out.String())
	}
	if !regexp.MustCompile(`event→tag change: +p50 .* over [1-9]\d* tag changes`).MatchString(out.String()) {
		t.Fatalf("no tag change delays: %s", out.String())
	}
	checkBenchSegment(t, out)
}

// The bench's own buffers (a send time per event) are in the memory baseline, so they
// are in the final figures too: they were collected before those once their last use
// had passed, and the engine's memory read 8 bytes per event short, below zero for a
// few profiles with many events each.
func TestBenchSegmentMemoryKeepsTheBenchsOwnBuffers(t *testing.T) {
	out := runBenchSegment(t, "--events", "200000", "--viewers", "20")
	m := regexp.MustCompile(`heap per profile (-?\d+) bytes .*; heap spans in use per profile (-?\d+) bytes`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no memory figures: %s", out.String())
	}
	for _, f := range m[1:] {
		if n, _ := strconv.Atoi(f); n <= 0 {
			t.Fatalf("%d bytes per profile:\n%s", n, out.String())
		}
	}
}

// With --heapdump the bench writes the heap dump and names the object sizes whose pages
// hold the heap spans' free slots.
func TestBenchSegmentHeapDump(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heap.dump")
	out := runBenchSegment(t, "--events", "20000", "--viewers", "2000", "--heapdump", path)
	if !regexp.MustCompile(`heap dump: +` + regexp.QuoteMeta(path) + `; free slots in the pages of live objects, by object size: (\d+ B [0-9.]+ of [0-9.]+ MB|none of 1 MB or more)`).MatchString(out.String()) {
		t.Fatalf("no heap dump line: %s", out.String())
	}
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Fatalf("the heap dump: %v, %v", st, err)
	}
	checkBenchSegment(t, out)
}

// The live defaults (20,000 present in 10 rooms) shrink to fit a small population.
func TestBenchSegmentLiveDefaultsFitFewViewers(t *testing.T) {
	out := runBenchSegment(t, "--traffic", "live", "--events", "2000", "--viewers", "10")
	if !regexp.MustCompile(`traffic live \(5 viewers present in 5 rooms, after 30 events of history\)`).MatchString(out.String()) {
		t.Fatalf("defaults not fitted: %s", out.String())
	}
}

func TestBenchSegmentRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--traffic", "busy"},
		{"--traffic", "live", "--present", "0"},
		{"--traffic", "live", "--rooms", "-1"},
		{"--traffic", "live", "--viewers", "100", "--present", "101"},
		{"--traffic", "live", "--present", "5", "--rooms", "6"},
		{"--traffic", "live", "--history", "-2"},
		{"--present", "10"}, // live traffic's, with history traffic
		{"--history", "0"},
		{"--events", "0"},
		{"--subscriber", "rules"},
	} {
		var out, errb bytes.Buffer
		if code := benchSegment(args, &out, &errb); code != 2 || !strings.Contains(errb.String(), "liveroom bench segment: ") {
			t.Errorf("%v: exit %d, %q", args, code, errb.String())
		}
	}
}

func runBenchSegment(t *testing.T, args ...string) *bytes.Buffer {
	t.Helper()
	var out, errb bytes.Buffer
	if code := benchSegment(append(args, "--data", t.TempDir()), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	return &out
}

// checkBenchSegment checks a run of 20000 measured events.
func checkBenchSegment(t *testing.T, out *bytes.Buffer) {
	t.Helper()
	m := regexp.MustCompile(`applied: +(\d+) of the 20000 events`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("output: %s", out.String())
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 || n > 20000 {
		t.Fatalf("applied %d of 20000:\n%s", n, out.String())
	}
	// The machine's pace, before and after the run, to tell a slow host from a slow build.
	for _, when := range []string{"before", "after"} {
		m := regexp.MustCompile(`machine ` + when + `: +([0-9.]+) ns per step of a loop in the registers, (\d+) ns per dependent read over 16 MiB`).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("no machine line %s the run: %s", when, out.String())
		}
		if loop, _ := strconv.ParseFloat(m[1], 64); loop <= 0 || loop > 1000 {
			t.Fatalf("a loop step %s the run took %v ns:\n%s", when, loop, out.String())
		}
		if read, _ := strconv.Atoi(m[2]); read <= 0 || read > 100_000 {
			t.Fatalf("a read %s the run took %v ns:\n%s", when, read, out.String())
		}
	}
	if !regexp.MustCompile(`events/s: +\d+`).MatchString(out.String()) {
		t.Fatalf("no rate: %s", out.String())
	}
	gc := regexp.MustCompile(`collections: +(\d+) completed during the measured events \(the collector's own CPU [0-9.]+ s, its write barriers not included\); \d+ bytes allocated per event`).FindStringSubmatch(out.String())
	if gc == nil {
		t.Fatalf("no count of collections: %s", out.String())
	}
	// With no collection in the run, the figures leave the collector out, and say so.
	if none, noted := gc[1] == "0", strings.Contains(out.String(), "leave out the collector's share"); none != noted {
		t.Fatalf("%s collections, note of none: %v\n%s", gc[1], noted, out.String())
	}
	if !regexp.MustCompile(`store work: +\d+ profiles written through during the measured events; \d+ folds of the journal \(\d+ profiles, [0-9.]+ s\)`).MatchString(out.String()) {
		t.Fatalf("no store work counted: %s", out.String())
	}
	// A heap that ended below the baseline once printed a wrapped difference (10^15
	// bytes per profile).
	heap := regexp.MustCompile(`heap per profile (-?\d+) bytes`).FindStringSubmatch(out.String())
	if heap == nil {
		t.Fatalf("no heap per profile: %s", out.String())
	}
	if n, _ := strconv.ParseInt(heap[1], 10, 64); n > 1<<20 {
		t.Fatalf("heap per profile %d bytes:\n%s", n, out.String())
	}
	if runtime.GOOS != "linux" {
		return // CPU times are read from /proc and the thread's clock on Linux only
	}
	cpu := regexp.MustCompile(`cpu: +([0-9.]+) s, ([0-9.]+) µs per event`).FindStringSubmatch(out.String())
	if cpu == nil {
		t.Fatalf("no CPU time: %s", out.String())
	}
	whole, _ := strconv.ParseFloat(cpu[1], 64)
	if whole <= 0 {
		t.Fatalf("CPU time %s s for 20000 events:\n%s", cpu[1], out.String())
	}
	eng := regexp.MustCompile(`engine cpu: +([0-9.]+) s, [0-9.]+ µs per event, \d+ events/s per core \(the process less the generator's thread, ([0-9.]+) s\)`).FindStringSubmatch(out.String())
	if eng == nil {
		t.Fatalf("no engine CPU time: %s", out.String())
	}
	// The generator's share is taken off, never added: the engine's is at most the whole.
	if engine, _ := strconv.ParseFloat(eng[1], 64); engine > whole {
		t.Fatalf("engine %v s, more than the process's %v s:\n%s", engine, whole, out.String())
	}
}

func TestGCFiguresCount(t *testing.T) {
	start := readGC()
	garbage := make([][]byte, 0, 100)
	for range 100 {
		garbage = append(garbage, make([]byte, 1<<16))
	}
	runtime.GC()
	if d := readGC().since(start); d.cycles < 1 || d.allocated < 100<<16 || d.cpu < 0 {
		t.Fatalf("after 6.4 MB allocated and a forced collection: %+v (%d slices)", d, len(garbage))
	}
}
