package hugepage

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// needTHP skips where the kernel has no transparent huge pages, or fails under
// LIVEROOM_REQUIRE_ALL=1 (CI).
func needTHP(t *testing.T) {
	mode, err := Mode()
	if err == nil && mode != "never" && !processOff() {
		return
	}
	msg := "transparent huge pages unavailable: mode " + mode + ", or off for the process (PR_SET_THP_DISABLE)"
	if err != nil {
		msg = err.Error()
	}
	if os.Getenv("LIVEROOM_REQUIRE_ALL") == "1" {
		t.Fatal(msg + " (LIVEROOM_REQUIRE_ALL=1)")
	}
	t.Skip(msg)
}

var held []byte // keeps the test's heap memory alive

// TestStartCollapsesTheHeap checks, in the kernel's own account (/proc/self/smaps),
// that the heap memory the process holds is in huge pages once Start returns, and
// that the heap is not marked for khugepaged (which would take back returned memory).
func TestStartCollapsesTheHeap(t *testing.T) {
	needTHP(t)
	held = make([]byte, 64<<20)
	for i := range len(held) / pageSize {
		held[i*pageSize] = 1 // fault every page in, as 4 KiB pages
	}
	w := startWatcher(t) // the first pass runs before Start returns; the others here
	addr := uint64(uintptr(unsafe.Pointer(&held[0])))
	if s := w.Stats(); s.Collapsed > perPass {
		t.Errorf("the first pass collapsed %d regions, more than %d", s.Collapsed, perPass)
	}
	flags, huge := smapsOf(t, addr)
	for range 20 { // a pass collapses at most perPass regions, of all the process's memory
		if huge >= 32<<20 {
			break
		}
		w.pass()
		flags, huge = smapsOf(t, addr)
	}
	if huge < 32<<20 {
		t.Errorf("%d MiB in huge pages in the heap mapping holding %#x after Start, want at least 32 of the 64 held; stats %+v",
			huge>>20, addr, w.Stats())
	}
	if strings.Contains(" "+flags+" ", " hg ") {
		t.Errorf("the heap mapping holding %#x is marked MADV_HUGEPAGE (VmFlags %q)", addr, flags)
	}
	if s := w.Stats(); s.Collapsed < 16 {
		t.Errorf("stats after the passes: %+v", s)
	}
	anon, inHuge, err := Resident()
	if err != nil || anon == 0 || inHuge < huge {
		t.Errorf("Resident() = %d, %d, %v; the mapping alone holds %d in huge pages", anon, inHuge, err, huge)
	}
	runtime.KeepAlive(held)
}

// needMadviseMode skips where the THP mode is "always": the kernel then faults a
// touched region in as one huge page, so a test cannot make a sparse one.
func needMadviseMode(t *testing.T) {
	needTHP(t)
	if mode, _ := Mode(); mode == "always" {
		t.Skip("THP mode always: a region cannot be made sparse")
	}
}

// alignedRegion returns the first 2 MiB-aligned region inside buf, emptied of pages
// (the runtime may have handed out memory it used before).
func alignedRegion(t *testing.T, buf []byte) (base, off uint64) {
	t.Helper()
	start := uint64(uintptr(unsafe.Pointer(&buf[0])))
	base = (start + hugeSize - 1) &^ (hugeSize - 1)
	if err := madvise(base, hugeSize, unix.MADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	return base, base - start
}

// TestReadOnlyPagesAreNotData checks that pages only read, which the kernel maps to
// its shared zero page, do not count toward a region's density: one page written and
// 511 read is a sparse region, left as it is.
func TestReadOnlyPagesAreNotData(t *testing.T) {
	needMadviseMode(t)
	buf := make([]byte, 4<<20)
	base, off := alignedRegion(t, buf)
	buf[off] = 1
	sum := 0
	for i := uint64(1); i < hugeSize/pageSize; i++ {
		sum += int(buf[off+i*pageSize])
	}
	w := startWatcher(t)
	if n, err := w.present(base); err != nil || n != 1 {
		t.Fatalf("present = %d, %v (sum %d); want 1: read-only pages are the zero page", n, err, sum)
	}
	if r := w.regions[base]; r == nil || r.huge {
		t.Errorf("a region of one written page: %+v, want left alone", r)
	}
	runtime.KeepAlive(buf)
}

// TestSparseRegionsBackOff checks that a sparse region is looked at after 2, 4, 8 …
// passes, at most maxWait apart, and not in between.
func TestSparseRegionsBackOff(t *testing.T) {
	needMadviseMode(t)
	buf := make([]byte, 4<<20)
	base, off := alignedRegion(t, buf)
	buf[off] = 1
	w := startWatcher(t)
	if r := w.regions[base]; r == nil || r.waits != 1 {
		t.Fatalf("after Start's pass: %+v, want the region looked at once", r)
	}
	looked := []uint64{w.passNo()} // the passes that looked at the region
	last := w.regions[base].waits
	for range 300 {
		w.pass()
		if r := w.regions[base]; r.waits != last || r.waits == 6 && r.due == w.passNo()+maxWait {
			looked = append(looked, w.passNo())
			last = r.waits
		}
	}
	var gaps []uint64
	for i := 1; i < len(looked); i++ {
		gaps = append(gaps, looked[i]-looked[i-1])
	}
	want := []uint64{2, 4, 8, 16, 32, 64, 64, 64}
	if len(gaps) < len(want) || !slices.Equal(gaps[:len(want)], want) {
		t.Errorf("passes between looks at a sparse region: %v, want %v then %d", gaps, want, maxWait)
	}
	runtime.KeepAlive(buf)
}

// TestSparseRegionsWaitAndReturn follows one region through the watcher's life with
// the real kernel: dense, it is collapsed; after the runtime's returning half of it
// (here by MADV_DONTNEED) it is found sparse at the next recheck and left alone; once
// the heap fills it again, it is collapsed again.
func TestSparseRegionsWaitAndReturn(t *testing.T) {
	needMadviseMode(t)
	buf := make([]byte, 8<<20)
	base, off := alignedRegion(t, buf)
	touch := func(step int) {
		for i := 0; i < hugeSize; i += step * pageSize {
			buf[off+uint64(i)] = 1
		}
	}
	drop := func() {
		if err := madvise(base, hugeSize, unix.MADV_DONTNEED); err != nil {
			t.Fatal(err)
		}
	}
	drop()   // the runtime may have handed out memory it used before
	touch(2) // half the pages
	w := startWatcher(t)
	if n, err := w.present(base); err != nil || n != 256 {
		t.Fatalf("present = %d, %v; want 256 of 512", n, err)
	}
	if r := w.regions[base]; r == nil || r.huge || r.due <= w.passNo() {
		t.Fatalf("a half-filled region: %+v, want left alone and put off", r)
	}

	touch(1)
	passUntil(t, w, func() bool { return w.regions[base].huge })

	drop()
	touch(2)
	passUntil(t, w, func() bool { return !w.regions[base].huge }) // the recheck
	if r := w.regions[base]; r.due <= w.passNo() {
		t.Fatalf("after the recheck: %+v, want the sparse region put off", r)
	}
	touch(1)
	passUntil(t, w, func() bool { return w.regions[base].huge })
	runtime.KeepAlive(buf)
}

// TestRecheckTakesEveryCollapsedRegion checks that a recheck asks again for every
// collapsed region in one pass, beyond the per-pass bound (a region still huge costs a
// system call, not a copy), so that none is left pending as if it were new.
func TestRecheckTakesEveryCollapsedRegion(t *testing.T) {
	needTHP(t)
	buf := make([]byte, (4*perPass+2)*hugeSize)
	for i := 0; i < len(buf); i += pageSize {
		buf[i] = 1
	}
	start := (uint64(uintptr(unsafe.Pointer(&buf[0]))) + hugeSize - 1) &^ (hugeSize - 1)
	mine := func(yield func(uint64) bool) {
		for a := start; a+hugeSize <= uint64(uintptr(unsafe.Pointer(&buf[0])))+uint64(len(buf)); a += hugeSize {
			if !yield(a) {
				return
			}
		}
	}
	w := startWatcher(t)
	allHuge := func() bool {
		for a := range mine {
			if r := w.regions[a]; r == nil || !r.huge {
				return false
			}
		}
		return true
	}
	passUntil(t, w, allHuge)
	for (w.passNo()+1)%recheckEvery != 0 {
		w.pass()
	}
	w.pass() // the recheck
	if !allHuge() {
		t.Errorf("after the recheck pass, some of the %d collapsed regions are pending again", 4*perPass)
	}
	runtime.KeepAlive(buf)
}

// passUntil runs passes until cond holds, failing after more passes than a recheck
// and the longest wait take.
func passUntil(t *testing.T, w *Watcher, cond func() bool) {
	t.Helper()
	for range recheckEvery + maxWait + 1 {
		w.pass()
		if cond() {
			return
		}
	}
	t.Fatalf("not reached after %d passes", recheckEvery+maxWait+1)
}

// TestStartRespectsTheProcessSetting checks that a process whose huge pages are off
// (prctl PR_SET_THP_DISABLE, inherited from its parent or set by systemd) starts no
// watcher, and says why.
func TestStartRespectsTheProcessSetting(t *testing.T) {
	needTHP(t)
	was, err := unix.PrctlRetInt(unix.PR_GET_THP_DISABLE, 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // as it was, even if the test fails midway
		if err := unix.Prctl(unix.PR_SET_THP_DISABLE, uintptr(was&1), uintptr(was&^1), 0, 0); err != nil {
			t.Errorf("restoring PR_SET_THP_DISABLE %d: %v", was, err)
		}
	})
	for _, c := range []struct {
		flags uintptr
		off   bool
	}{{0, true}, {exceptAdvised, false}} { // off altogether; off except where advised
		if err := unix.Prctl(unix.PR_SET_THP_DISABLE, 1, c.flags, 0, 0); err != nil {
			if c.flags != 0 && errors.Is(err, unix.EINVAL) {
				t.Logf("the kernel predates PR_THP_DISABLE_EXCEPT_ADVISED: %v", err)
				continue
			}
			t.Fatal(err)
		}
		w, err := Start(time.Hour)
		if w != nil {
			w.Stop()
		}
		if c.off && (err == nil || !strings.Contains(err.Error(), "PR_SET_THP_DISABLE")) {
			t.Errorf("Start with huge pages off for the process: %v, want an error naming PR_SET_THP_DISABLE", err)
		}
		if !c.off && err != nil {
			t.Errorf("Start with huge pages off except where advised (MADV_COLLAPSE still works): %v", err)
		}
	}
}

// TestStopEndsTheWatching runs the watcher's loop for a few passes and stops it;
// goleak (TestMain) checks that its goroutine is gone.
func TestStopEndsTheWatching(t *testing.T) {
	needTHP(t)
	w, err := Start(time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); w.Stats().Passes < 3; {
		if time.Now().After(deadline) {
			t.Fatal("the watcher made fewer than 3 passes in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	w.Stop()
	w.Stop() // a second Stop does nothing
	after := w.Stats().Passes
	time.Sleep(20 * time.Millisecond)
	if got := w.Stats().Passes; got != after {
		t.Errorf("passes went on after Stop: %d then %d", after, got)
	}
}

// smapsOf returns the VmFlags and the AnonHugePages bytes of the mapping holding addr.
func smapsOf(t *testing.T, addr uint64) (flags string, huge uint64) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for sc := bufio.NewScanner(bytes.NewReader(b)); sc.Scan(); {
		line := sc.Bytes()
		if m, ok := parseMapping(line); ok && !bytes.HasSuffix(bytes.Fields(line)[0], []byte(":")) {
			if in {
				break
			}
			in = m.start <= addr && addr < m.end
			continue
		}
		if !in {
			continue
		}
		if v, ok := bytes.CutPrefix(line, []byte("VmFlags:")); ok {
			flags = string(bytes.TrimSpace(v))
		}
		if v, ok := bytes.CutPrefix(line, []byte("AnonHugePages:")); ok {
			f := bytes.Fields(v)
			n, _ := strconv.ParseUint(string(f[0]), 10, 64)
			huge = n << 10
		}
	}
	if flags == "" {
		t.Fatalf("no mapping holds %#x", addr)
	}
	return flags, huge
}

// While passes find nothing to collapse, they read /proc/self/maps only every
// maxQuiet passes and look at the regions they know in between: a new mapping waits
// for the next read, and is collapsed then.
func TestQuietPassesReadTheMapsLessOften(t *testing.T) {
	needTHP(t)
	w := startWatcher(t)
	for range 50 {
		if w.quiet > 0 {
			break
		}
		w.pass()
	}
	if w.quiet == 0 {
		t.Fatalf("50 passes all found dense regions; stats %+v", w.Stats())
	}
	for range 2 * maxQuiet { // until the next pass is to look at the regions it knows
		if w.quiet%maxQuiet != 0 {
			break
		}
		w.pass()
	}
	if w.quiet%maxQuiet == 0 {
		t.Fatalf("passes kept finding dense regions; stats %+v", w.Stats())
	}
	mem, first := anonMapping(t, 16<<20)
	for i := 0; i < len(mem); i += pageSize {
		mem[i] = 1
	}
	w.pass()
	if w.regions[first] != nil {
		t.Fatal("a quiet pass read the maps: it knows the new mapping's region")
	}
	for range maxQuiet {
		if r := w.regions[first]; r != nil && r.huge {
			return
		}
		w.pass()
	}
	t.Errorf("the new mapping's region at %#x was not collapsed within %d passes; stats %+v", first, maxQuiet, w.Stats())
}

// A quiet pass, which does not read the maps, collapses nothing: a region it knows may
// since have been mapped anew as something else. A region it finds dense makes the
// next pass read the maps, and that pass collapses it.
func TestQuietPassesLeaveTheCollapsingToAFullOne(t *testing.T) {
	needMadviseMode(t)
	w := startWatcher(t)
	mem, first := anonMapping(t, 8<<20)
	off := first - uint64(uintptr(unsafe.Pointer(&mem[0])))
	mem[off] = 1                                  // one page: sparse
	for w.regions[first] == nil || w.quiet == 0 { // a full pass has seen it sparse, and passes are quiet
		w.pass()
		if w.Stats().Passes > 200 {
			t.Fatalf("no quiet full pass saw the region; stats %+v", w.Stats())
		}
	}
	for i := off; i < off+hugeSize; i += pageSize {
		mem[i] = 1 // now dense
	}
	for range 3 * maxWait {
		full := w.quiet%maxQuiet == 0 || (w.passNo()+1)%recheckEvery == 0
		w.pass()
		if w.regions[first].huge {
			if !full {
				t.Fatal("a quiet pass collapsed a region")
			}
			return
		}
	}
	t.Errorf("the region at %#x was not collapsed; stats %+v", first, w.Stats())
}

// anonMapping maps n bytes of private anonymous memory of the test's own (the heap
// might reuse regions the watcher has put off), unmapped when the test ends, and
// returns them with the address of their first whole 2 MiB region.
func anonMapping(t *testing.T, n int) (mem []byte, first uint64) {
	t.Helper()
	mem, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	start := uint64(uintptr(unsafe.Pointer(&mem[0])))
	return mem, (start + hugeSize - 1) &^ (hugeSize - 1)
}

// startWatcher starts a watcher whose passes after the first run only when the test
// calls pass, stopped when the test ends.
func startWatcher(t *testing.T) *Watcher {
	t.Helper()
	w, err := Start(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}
