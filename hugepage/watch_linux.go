package hugepage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// modeFile holds the kernel's THP mode, the chosen one in brackets:
// "always [madvise] never".
const modeFile = "/sys/kernel/mm/transparent_hugepage/enabled"

// Mode is the kernel's transparent huge page mode ("always", "madvise" or "never"),
// or an error when the kernel has none.
func Mode() (string, error) {
	b, err := os.ReadFile(modeFile)
	if err != nil {
		return "", fmt.Errorf("the kernel has no transparent huge pages: %w", err)
	}
	_, rest, ok := bytes.Cut(b, []byte("["))
	mode, _, ok2 := bytes.Cut(rest, []byte("]"))
	if !ok || !ok2 {
		return "", fmt.Errorf("%s: cannot read %q", modeFile, bytes.TrimSpace(b))
	}
	return string(mode), nil
}

// Watcher collapses the process's dense memory regions into huge pages as the heap grows.
type Watcher struct {
	stop     chan struct{}
	stopOnce sync.Once
	done     sync.WaitGroup
	pagemap  *os.File
	entries  []byte // one region's pagemap entries
	regions  map[uint64]*region
	quiet    int                                               // passes in a row that found nothing to collapse (the watcher's goroutine only)
	counters struct{ passes, collapsed, failed atomic.Uint64 } // passes numbers them too
}

// region is what the watcher knows of one 2 MiB region of the process's memory.
type region struct {
	huge  bool   // collapsed (and still dense at the last recheck)
	due   uint64 // the pass at which to look at it again
	pass  uint64 // the last pass that found it in a mapping
	waits uint8  // how many times in a row it was found sparse: the wait doubles
}

const (
	// dense is how many of a region's 512 pages must hold data for it to be
	// collapsed: the kernel fills the missing ones, so collapsing a sparser region
	// (memory the runtime has returned to the system) would take memory back.
	dense = 460
	// maxWait is the most passes a sparse region waits to be looked at again.
	maxWait = 64
	// perPass is the most regions a pass collapses (64 MiB, so 640 MiB a second). A
	// collapse copies the region's pages while it holds the process's memory map for
	// writing, so that other threads' page faults wait, for 0.5 to 5 ms on the test
	// machine; a heap that grows faster is collapsed over the next passes.
	perPass = 32
	// recheckEvery is how often (in passes: 10 s) collapsed regions are looked at
	// again. The runtime's returning a few free pages to the system splits a huge
	// page, and a region still nearly full is worth collapsing anew (two of the
	// bench's live runs with a recheck a minute had a third of the heap in small
	// pages, probably so). A region still huge costs a read of its page map and a
	// system call of about 1.5 µs, outside the per-pass bound.
	recheckEvery = 100
)

// Start collapses the dense regions of the process's anonymous memory now and then
// every interval, until Stop.
// The runtime maps new heap memory in 4 MiB pieces and fills it within milliseconds
// in 4 KiB pages, which the kernel copies into a huge page when asked, so a short
// interval (100 ms) leaves less of the heap in small pages.
//
// It does not mark the heap with madvise(MADV_HUGEPAGE): that would let the kernel's
// khugepaged collapse regions however few pages they hold, so that memory the
// runtime has returned to the system (after a compaction, say) would come back
// (measured: 1.3 → 2.6 GiB at rest, docs/benchmarks.md). MADV_COLLAPSE (Linux 6.1)
// acts on the regions asked for only, and whatever the THP mode; the watcher still
// refuses to run under "never", which an operator sets to have no huge pages.
//
// Go's runtime itself called MADV_COLLAPSE in 1.21.1–1.21.3 and stopped: it made the
// call holding its heap lock, and the call can reclaim and compact memory (Go issue
// 63334). Here it runs on a goroutine of its own, holding nothing, at most perPass
// regions a pass.
//
// Start fails, and starts nothing, where the kernel has no transparent huge pages,
// has them off (for all, or altogether for this process), or predates MADV_COLLAPSE.
func Start(interval time.Duration) (*Watcher, error) {
	mode, err := Mode()
	if err != nil {
		return nil, err
	}
	if mode == "never" {
		return nil, errors.New("the kernel's transparent huge pages are off (" + modeFile + ": never)")
	}
	if processOff() {
		return nil, errors.New("transparent huge pages are off for this process (prctl PR_SET_THP_DISABLE, as set by its parent or a service manager)")
	}
	if os.Getpagesize() != pageSize {
		return nil, fmt.Errorf("pages of %d bytes: the watcher knows 2 MiB huge pages over 4 KiB pages only", os.Getpagesize())
	}
	if err := haveCollapse(); err != nil {
		return nil, err
	}
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return nil, err
	}
	w := &Watcher{stop: make(chan struct{}), pagemap: f, entries: make([]byte, 8*hugeSize/pageSize),
		regions: map[uint64]*region{}}
	w.pass()
	w.done.Go(func() { w.run(interval) })
	return w, nil
}

// processOff reports whether the process's huge pages are off altogether
// (PR_GET_THP_DISABLE answers 1). Off "except where advised" (3, Linux 6.18) still
// lets MADV_COLLAPSE work.
func processOff() bool {
	off, err := unix.PrctlRetInt(unix.PR_GET_THP_DISABLE, 0, 0, 0, 0)
	return err == nil && off != 0 && off&exceptAdvised == 0
}

// exceptAdvised is PR_THP_DISABLE_EXCEPT_ADVISED (Linux 6.18), not yet in x/sys.
const exceptAdvised = 1 << 1

// haveCollapse checks that the kernel knows MADV_COLLAPSE: asked for a range that is
// not mapped, it answers ENOMEM, while a kernel that predates it answers EINVAL.
func haveCollapse() error {
	err := madvise(0, hugeSize, unix.MADV_COLLAPSE) // address 0 is never mapped
	if errors.Is(err, unix.EINVAL) {
		return errors.New("the kernel predates MADV_COLLAPSE (Linux 6.1)")
	}
	return nil
}

func (w *Watcher) run(interval time.Duration) {
	defer w.pagemap.Close()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.pass()
		}
	}
}

// Stop ends the watching and waits for it; later calls do nothing. Huge pages made
// stay so.
func (w *Watcher) Stop() {
	w.stopOnce.Do(func() { close(w.stop) })
	w.done.Wait()
}

// Stats says what the watcher has done so far.
func (w *Watcher) Stats() Stats {
	return Stats{Passes: w.counters.passes.Load(), Collapsed: w.counters.collapsed.Load(),
		Failed: w.counters.failed.Load()}
}

// pass looks at the regions that are due and collapses the dense ones, at most
// perPass of them; every recheckEvery passes it asks again for the collapsed ones.
// It reads /proc/self/maps to find the process's regions, except while passes find
// nothing to collapse: then only every maxQuiet passes, and in between it looks at
// the regions it knows (a still heap's passes cost a tenth as much).
func (w *Watcher) pass() {
	now := w.counters.passes.Add(1)
	recheck := now%recheckEvery == 0
	budget := perPass
	found := false
	if recheck || w.quiet%maxQuiet == 0 {
		maps, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			return // read again next time
		}
		seen := 0
		for _, m := range candidates(maps) {
			for a := firstRegion(m); a <= m.end-hugeSize; a += hugeSize {
				seen++
				r := w.regions[a]
				if r == nil {
					r = &region{}
					w.regions[a] = r
				}
				r.pass = now
				found = w.visit(a, r, now, recheck, &budget) || found
			}
		}
		if len(w.regions) > seen {
			// Some mappings went away (a thread's stack): forget their regions.
			for a, r := range w.regions {
				if r.pass != now {
					delete(w.regions, a)
				}
			}
		}
	} else {
		// The regions it knows, from the last read of the maps: one may since have
		// been unmapped and its addresses mapped anew as something else, so a dense
		// one is not collapsed here but makes the next pass read the maps.
		noBudget := 0
		for a, r := range w.regions {
			found = w.visit(a, r, now, false, &noBudget) || found
		}
	}
	if found {
		w.quiet = 0
	} else {
		w.quiet++
	}
}

// maxQuiet is how many passes apart /proc/self/maps is read while passes find
// nothing to collapse. A read took 0.5 ms, and its parsing 0.2 ms, at 200,000
// profiles (docs/benchmarks.md): 0.7 % of a core at ten passes a second. A heap that
// grows again into new memory waits up to maxQuiet intervals for its first collapse.
const maxQuiet = 16

// visit looks at the region at a if it is due (or, at a recheck, huge), collapses it
// if dense and the pass's budget allows, and reports whether it was dense and not yet
// huge (with no budget left it stays due, for a later pass).
func (w *Watcher) visit(a uint64, r *region, now uint64, recheck bool, budget *int) (found bool) {
	if r.huge && !recheck || r.due > now {
		return false
	}
	if n, err := w.present(a); err != nil || n < dense {
		r.huge = false
		w.later(r)
		return false
	}
	switch {
	case r.huge:
		// A recheck: asking again costs about 1.5 µs while the region is still
		// huge, and a copy only where the runtime's returned memory split it.
		w.collapse(a, r)
		return false
	case *budget > 0:
		*budget--
		w.collapse(a, r)
	} // else it stays due, for the next pass
	return true
}

// collapse asks the kernel to turn the region at a into a huge page. Whatever it
// answers but yes (EAGAIN: a page busy or pinned; ENOMEM or EBUSY: no huge page free,
// or not within the container's memory limit; EINVAL: not eligible, as under
// PR_SET_THP_DISABLE), the region waits as a sparse one does.
func (w *Watcher) collapse(a uint64, r *region) {
	if err := madvise(a, hugeSize, unix.MADV_COLLAPSE); err != nil {
		w.counters.failed.Add(1)
		r.huge = false
		w.later(r)
		return
	}
	w.counters.collapsed.Add(1)
	r.huge, r.waits = true, 0
}

// passNo is the number of the current (or last) pass.
func (w *Watcher) passNo() uint64 { return w.counters.passes.Load() }

// later puts off looking at a sparse region again, twice as long as the last time,
// up to maxWait passes: the memory the runtime keeps for later needs no looking at
// ten times a second.
func (w *Watcher) later(r *region) {
	r.waits = min(r.waits+1, 6)
	r.due = w.passNo() + min(uint64(1)<<r.waits, maxWait)
}

// present counts the pages of the 2 MiB region at a that hold the process's own
// data: in /proc/self/pagemap (one 64-bit entry per page) both present (bit 63) and
// mapped by this process only (bit 56). A page only ever read is mapped to the
// kernel's shared zero page, present but not exclusive: collapsing a region of those
// would turn nothing into 2 MiB of memory.
func (w *Watcher) present(a uint64) (int, error) {
	if _, err := w.pagemap.ReadAt(w.entries, int64(a/pageSize*8)); err != nil {
		return 0, err
	}
	const own = 1<<63 | 1<<56
	n := 0
	for i := 0; i < len(w.entries); i += 8 {
		if binary.LittleEndian.Uint64(w.entries[i:])&own == own {
			n++
		}
	}
	return n, nil
}

func madvise(addr, n uint64, advice int) error {
	if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(addr), uintptr(n), uintptr(advice)); e != 0 {
		return e
	}
	return nil
}

// Resident reads how much anonymous memory the process holds, and how much of it is
// in huge pages, in bytes (/proc/self/smaps_rollup).
func Resident() (anon, huge uint64, err error) {
	b, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		return 0, 0, err
	}
	return rollupField(b, "Anonymous:"), rollupField(b, "AnonHugePages:"), nil
}
