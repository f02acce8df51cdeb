// Package hugepage has the kernel back the process's dense memory, the Go heap above
// all, with transparent huge pages (2 MiB instead of 4 KiB).
//
// The segment engine reads a few cache lines of a random profile per event, out of a
// heap of gigabytes, and the collector looks up the span of every pointer it follows.
// With 4 KiB pages nearly every such read also misses the TLB and walks the page
// tables; 2 MiB pages cover the whole heap with the TLB's entries. Measured on the
// bench machine: live traffic about a quarter less CPU per event; a shop's history
// about a tenth, within the machine's noise (docs/benchmarks.md, sixteenth session).
//
// Most distributions set the kernel's THP mode to "madvise": only memory a process
// marks with madvise(MADV_HUGEPAGE) gets huge pages, and the Go runtime no longer
// marks its heap (it stopped in Go 1.21.1). So a Watcher looks at the process's
// anonymous memory every so often and has the kernel collapse the 2 MiB regions that
// are nearly full into huge pages (MADV_COLLAPSE, Linux 6.1 and later); see Start for
// why it does not mark them instead.
package hugepage

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// Interval is how often the server and the bench look for heap memory to collapse
// (see Start).
const Interval = 100 * time.Millisecond

const (
	// pageSize is the base page size on amd64 and arm64 as Linux sets them up.
	pageSize = 4 << 10
	// hugeSize is the size of a transparent huge page on amd64 and arm64 (4 KiB base pages).
	hugeSize = 2 << 20
)

// Stats counts what a Watcher did.
type Stats struct {
	Passes    uint64 // looks at the heap's regions
	Collapsed uint64 // collapse requests the kernel granted (a region still huge counts again at each recheck)
	Failed    uint64 // regions the kernel did not collapse (pages busy, no huge page free)
}

// mapping is one line of /proc/self/maps.
type mapping struct {
	start, end uint64
	perms      string
	inode      string
	path       string
}

// parseMapping reads one line of /proc/PID/maps:
//
//	start-end perms offset dev inode [path]
//
// The path may hold spaces ("[anon: Go: heap]", a file name), so it is the rest of
// the line after the fifth field.
func parseMapping(line []byte) (mapping, bool) {
	var f [5][]byte
	rest := bytes.TrimSpace(line)
	for i := range f {
		rest = bytes.TrimLeft(rest, " \t")
		n := bytes.IndexAny(rest, " \t")
		if n < 0 {
			n = len(rest)
		}
		f[i], rest = rest[:n], rest[n:]
		if len(f[i]) == 0 {
			return mapping{}, false
		}
	}
	lo, hi, ok := bytes.Cut(f[0], []byte("-"))
	if !ok {
		return mapping{}, false
	}
	start, err1 := strconv.ParseUint(string(lo), 16, 64)
	end, err2 := strconv.ParseUint(string(hi), 16, 64)
	if err1 != nil || err2 != nil || end <= start {
		return mapping{}, false
	}
	return mapping{start: start, end: end, perms: string(f[1]), inode: string(f[4]),
		path: string(bytes.TrimLeft(rest, " \t"))}, true
}

// candidates picks the mappings whose regions may be collapsed out of
// /proc/self/maps: private, read-write and anonymous (unnamed, or named by the
// process, as "[anon: Go: heap]"), with at least one whole 2 MiB region. That is the
// heap, and also the runtime's own tables (the collector looks up a span for every
// pointer it follows), the C allocator's arenas (not its "[heap]") and thread stacks:
// only their dense regions are collapsed, so a stack's few pages stay as they are.
func candidates(maps []byte) []mapping {
	var picked []mapping
	for line := range bytes.Lines(maps) {
		m, ok := parseMapping(line)
		if ok && m.perms == "rw-p" && m.inode == "0" && (m.path == "" || strings.HasPrefix(m.path, "[anon:")) &&
			m.end >= hugeSize && firstRegion(m) <= m.end-hugeSize && firstRegion(m) >= m.start {
			picked = append(picked, m)
		}
	}
	return picked
}

// firstRegion is the start of the first 2 MiB-aligned region at or after m's start
// (0 when that would lie past the top of the address space).
func firstRegion(m mapping) uint64 {
	return (m.start + hugeSize - 1) &^ (hugeSize - 1)
}

// rollupField reads a "Name:   123 kB" line of /proc/PID/smaps_rollup, in bytes (0
// when absent).
func rollupField(b []byte, name string) uint64 {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte(name))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 2 && string(f[1]) == "kB" {
			if n, err := strconv.ParseUint(string(f[0]), 10, 64); err == nil {
				return n << 10
			}
		}
	}
	return 0
}
