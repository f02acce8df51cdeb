package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/hugepage"
	"github.com/liveroom/liveroom/internal/heapdump"
	"github.com/liveroom/liveroom/segment"
	"github.com/liveroom/liveroom/segment/synth"
)

func init() { benchers["segment"] = benchSegment }

// benchSegment drives synthetic live events through the segment engine on the
// embedded (bbolt) store, the way the tap does, and prints events/s, the delay from an
// event entering the tap to the tag change it causes reaching a subscriber, and the
// memory each profile takes.
func benchSegment(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("liveroom bench segment", flag.ContinueOnError)
	fs.SetOutput(stderr)
	events := fs.Int("events", 10_000_000, "events to drive through the engine")
	viewers := fs.Int("viewers", 1_000_000, "distinct viewers (profiles)")
	data := fs.String("data", "", "folder for segment.db (default: a temporary folder, removed after)")
	rate := fs.Int("rate", 0, "events per second to offer (0: as fast as the engine takes them)")
	shards := fs.Int("shards", segment.DefaultConfig().Shards, "profile shards")
	traffic := fs.String("traffic", "history", "history: events of random viewers at random times over the last 60 days "+
		"(a shop's imported past, every event touching a cold profile); live: the measured events are a live room's, "+
		"from --present viewers at a time in --rooms rooms, after --history events of the population's past (not measured)")
	present := fs.Int("present", 20_000, "live traffic: viewers present at a time (a leaving one is replaced by another of --viewers; "+
		"by default at most half of them)")
	rooms := fs.Int("rooms", 10, "live traffic: rooms live at once (by default at most --present)")
	history := fs.Int("history", -1, "live traffic: events of the past applied before the measured ones (default: 3 per viewer)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measured events to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile, taken after the run, to this file")
	heapDump := fs.String("heapdump", "", "write the heap dump (runtime/debug.WriteHeapDump; about the heap's size) taken with the memory figures to this file, "+
		"and print which object sizes hold the heap spans' free slots")
	journalMiB := fs.Int("journal-mib", segment.DefaultConfig().JournalMiB, "size in MiB past which the write-through journal is folded into the store file, as --segment-journal-mib")
	hugePages := fs.Bool("huge-pages", true, "collapse the heap into transparent huge pages, as the server does by default (docs/operations.md)")
	subscriber := fs.String("subscriber", "tags", "what the bench's subscriber takes: tags (every tag change) or all (every applied event "+
		"and tag change, as a node's rules take them; drained on the same core, so the engine's figure includes that too)")
	if code := parseFlags(fs, args, stdout, "Usage: liveroom bench segment [--events N] [--viewers V] [--data DIR] [--rate R]\n"+
		"                             [--traffic history|live [--present P] [--rooms R] [--history H]] [--subscriber tags|all]\n\n"); code >= 0 {
		return code
	}
	if *events < 1 || *viewers < 1 || *journalMiB < 1 {
		fmt.Fprintln(stderr, "liveroom bench segment: --events, --viewers and --journal-mib must be positive")
		return 2
	}
	if *subscriber != "tags" && *subscriber != "all" {
		fmt.Fprintf(stderr, "liveroom bench segment: --subscriber is tags or all, not %q\n", *subscriber)
		return 2
	}
	run := segmentRun{events: *events, viewers: *viewers, rate: *rate, shards: *shards, cpuProfile: *cpuProfile, memProfile: *memProfile,
		heapDump: *heapDump, hugePages: *hugePages, journalMiB: *journalMiB, everyEvent: *subscriber == "all"}
	set := map[string]bool{} // the flags given, not defaulted
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch *traffic {
	case "history":
		if set["present"] || set["rooms"] || set["history"] {
			fmt.Fprintln(stderr, "liveroom bench segment: --present, --rooms and --history are for --traffic live")
			return 2
		}
	case "live":
		if !set["present"] {
			*present = max(1, min(*present, *viewers/2)) // the defaults fit a small population
		}
		if !set["rooms"] {
			*rooms = min(*rooms, *present)
		}
		if *present < 1 || *present > *viewers || *rooms < 1 || *rooms > *present || *history < -1 {
			fmt.Fprintln(stderr, "liveroom bench segment: --traffic live needs 1 ≤ --rooms ≤ --present ≤ --viewers, and --history ≥ 0")
			return 2
		}
		run.present, run.rooms, run.history = *present, *rooms, *history
		if run.history < 0 {
			run.history = 3 * *viewers
		}
	default:
		fmt.Fprintf(stderr, "liveroom bench segment: --traffic is history or live, not %q\n", *traffic)
		return 2
	}
	dir := *data
	if dir == "" {
		tmp, err := os.MkdirTemp("", "liveroom-bench-segment-")
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if err := run.do(dir, stdout); err != nil {
		fmt.Fprintln(stderr, "liveroom bench segment:", err)
		return 1
	}
	return 0
}

// heapFigures are the heap's live objects and the spans that hold them, after two
// collections; the spans are larger by the free slots among the live objects (a small
// object's span stays in use while any object in it lives).
type heapFigures struct{ objects, spans uint64 }

func heapInUse() heapFigures {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return heapFigures{objects: m.HeapAlloc, spans: m.HeapInuse}
}

// segmentRun is one run of the segment bench.
type segmentRun struct {
	events, viewers, rate, shards int
	cpuProfile, memProfile        string
	heapDump                      string
	hugePages                     bool
	journalMiB                    int
	everyEvent                    bool // the subscriber takes every applied event, not only tag changes
	// Live traffic (present > 0): history events first, not measured.
	present, rooms, history int
}

func (r segmentRun) do(dir string, out io.Writer) error {
	events, viewers, rate, shards, memProfile := r.events, r.viewers, r.rate, r.shards, r.memProfile
	// Before anything else, and its buffer handed back, so that the baselines below
	// hold none of it.
	paceBefore := measurePace()
	debug.FreeOSMemory()
	// The server collapses its heap into huge pages by default; so does the bench.
	var huge *hugepage.Watcher
	hugeNote := "off (--huge-pages=false)"
	if r.hugePages {
		w, err := hugepage.Start(hugepage.Interval)
		if err != nil {
			hugeNote = "off: " + err.Error()
		} else {
			defer w.Stop()
			huge, hugeNote = w, "on"
		}
	}
	store, err := segment.OpenJournal(filepath.Join(dir, "segment.db"), time.Second, int64(r.journalMiB)<<20, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	gen := synth.New(viewers, time.Now(), 1)
	// The bench's own buffers exist before the baseline, so the memory per profile
	// counts the engine only. The two arrays of 8 bytes per event are outside the Go
	// heap (offHeap), where they do not put off the engine's collections.
	sent, freeSent, err := offHeap[int64](r.history + events + 1) // when each event entered the tap (Unix ns), by sequence number
	if err != nil {
		return err
	}
	defer freeSent()
	delays, freeDelays, err := offHeap[time.Duration](events)
	if err != nil {
		return err
	}
	defer freeDelays()
	delays = delays[:0]
	tap := event.NewQueue(1 << 16)
	changes := event.NewQueue(1 << 16)
	base := heapInUse()
	// Touched now, so that the resident baseline holds them (a fresh mapping's pages
	// are not resident until written).
	clear(sent)
	clear(delays[:cap(delays)])
	pid := os.Getpid()
	baseAnon := procStatus(pid, "RssAnon") // the bench's own buffers, before the engine

	cfg := segment.DefaultConfig()
	cfg.Shards = shards
	// The engine's own metrics say how much store work the measured events caused.
	reg := prometheus.NewRegistry()
	eng, err := segment.New(cfg, segment.Deps{Store: store, Tap: tap, Log: slog.New(slog.DiscardHandler), Registry: reg})
	if err != nil {
		return err
	}
	// A subscriber, as the rules are: every tag change with its cause's delay, and with
	// --subscriber all every applied event too.
	var cancel func()
	if r.everyEvent {
		cancel = eng.Subscribe(changes)
	} else {
		cancel = eng.Subscribe(changes, event.TagChange)
	}
	var wg sync.WaitGroup
	defer wg.Wait() // after stop, before the arrays the subscriber reads are unmapped
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var taken atomic.Uint64 // applied events the subscriber took (--subscriber all)
	var unkept atomic.Int64 // tag changes past one per measured event, their delays not kept
	wg.Go(func() {
		for {
			c, err := changes.Next(ctx)
			if err != nil {
				return
			}
			if c.Tag == nil {
				taken.Add(1)
				continue
			}
			// Only the measured events' changes count (sent is 0 for the history's).
			if seq, ok := synth.SeqOf(c.Tag.Cause); ok && seq < uint64(len(sent)) && sent[seq] != 0 {
				if len(delays) == cap(delays) {
					unkept.Add(1) // a larger array would count as the engine's memory
					continue
				}
				delays = append(delays, time.Duration(time.Now().UnixNano()-sent[seq]))
			}
		}
	})

	traffic := "history (random viewers, random times over the last 60 days)"
	if r.present > 0 {
		traffic = fmt.Sprintf("live (%d viewers present in %d rooms, after %d events of history)", r.present, r.rooms, r.history)
	}
	subscribed := "tag changes"
	if r.everyEvent {
		subscribed = "every applied event and tag change"
	}
	fmt.Fprintf(out, "segment bench: %d events over %d viewers, traffic %s, %d shards, store %s, GOMAXPROCS %d, a subscriber of %s\n",
		events, viewers, traffic, shards, filepath.Join(dir, "segment.db"), runtime.GOMAXPROCS(0), subscribed)
	fmt.Fprintf(out, "machine before:      %s\n", paceBefore)
	var appliedBefore, waitedBefore, droppedBefore uint64
	if r.present > 0 {
		// The population's past, not measured: every viewer a profile with some
		// history, written through, before the live room opens.
		histStart := time.Now()
		var ev event.Event
		for range r.history {
			gen.Next(&ev)
			for !tap.Publish(ev) {
				runtime.Gosched()
			}
		}
		for eng.Consumed() < uint64(r.history) {
			time.Sleep(time.Millisecond)
		}
		if err := eng.Flush(context.Background()); err != nil {
			return err
		}
		if err := store.Fold(context.Background()); err != nil {
			return err
		}
		runtime.GC() // the measured part starts from the heap the history left, not its garbage
		fmt.Fprintf(out, "history:             %d events, %d profiles, in %s (not measured)\n", r.history, eng.Count(), time.Since(histStart).Round(time.Millisecond))
		gen.Live(r.present, r.rooms)
		appliedBefore, waitedBefore, droppedBefore = eng.Applied(), tap.Dropped(), changes.Dropped()
	}
	// The generator runs on a thread of its own, so that its CPU time (making events
	// and publishing them, which chat and media do in a server) can be told apart
	// from the engine's.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	stopProfile := func() {}
	if r.cpuProfile != "" {
		f, err := os.Create(r.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		stopProfile = sync.OnceFunc(pprof.StopCPUProfile)
		defer stopProfile()
	}
	genStart, genOK := threadCPU()
	gcStart, storeStart := readGC(), readStoreWork(reg)
	start, cpuStart := time.Now(), procCPU(os.Getpid())
	var ev event.Event
	var interval time.Duration
	if rate > 0 {
		interval = time.Second / time.Duration(rate)
	}
	for i := 0; i < events; i++ {
		seq := gen.Next(&ev)
		if interval > 0 {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
		}
		sent[seq] = time.Now().UnixNano()
		for !tap.Publish(ev) {
			runtime.Gosched() // the tap is full: let the engine catch up (a live tap would drop)
		}
	}
	genEnd, _ := threadCPU()
	// Consumed, not Applied: an event that changes no profile (the leave of a viewer
	// the engine never saw join, a staff member's own activity) is done with too.
	for eng.Consumed() < uint64(r.history+events) {
		time.Sleep(time.Millisecond)
	}
	elapsed, cpu := time.Since(start), procCPU(os.Getpid())-cpuStart
	gcRun, storeRun := readGC().since(gcStart), readStoreWork(reg).since(storeStart)
	if anon, inHuge, err := hugepage.Resident(); err == nil && huge != nil {
		hugeNote = fmt.Sprintf("%.0f of the %.0f MiB of anonymous memory in huge pages when the events were applied",
			float64(inHuge)/(1<<20), float64(anon)/(1<<20))
	}
	stopProfile() // the measured events only, not the final write-through
	flushStart, flushCPUStart := time.Now(), procCPU(pid)
	if err := eng.Flush(context.Background()); err != nil {
		return err
	}
	flush, flushCPU := time.Since(flushStart), procCPU(pid)-flushCPUStart
	// Folding the journal into the bbolt file happens in the background, when a journal
	// file is full; what the run left in the journal is folded now and counted, though a
	// node would fold it later, with more changes of the same profiles in it.
	foldStart, foldCPUStart := time.Now(), procCPU(pid)
	if err := store.Fold(context.Background()); err != nil {
		return err
	}
	fold, foldCPU := time.Since(foldStart), procCPU(pid)-foldCPUStart
	// A node's sweep compacts the profiles' lists every half hour; this run is shorter.
	compactStart := time.Now()
	eng.Compact()
	compact := time.Since(compactStart)
	time.Sleep(50 * time.Millisecond) // let the subscriber drain
	cancel()
	stop()
	wg.Wait()

	// Measured once the engine has stopped: a sweep or write-through still running
	// (their rankings and encodings are hundreds of megabytes at a million profiles)
	// made the figure jump by a fifth between runs. The profiles stay in memory.
	if err := eng.Close(context.Background()); err != nil {
		return err
	}
	profiles := eng.Count()
	heap := heapInUse()
	// Signed: with few profiles the heap can end below the baseline (the run's garbage
	// of the bench's own, collected), and an unsigned difference wrapped to 10^15 bytes.
	perProfile := float64(int64(heap.objects)-int64(base.objects)) / float64(max(profiles, 1))
	spansPerProfile := float64(int64(heap.spans)-int64(base.spans)) / float64(max(profiles, 1))
	if memProfile != "" {
		if f, err := os.Create(memProfile); err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	var gaps []heapdump.Size
	if r.heapDump != "" {
		if gaps, err = writeHeapDump(r.heapDump); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "events/s:            %.0f (%d events in %s; the generator waited on a full tap %d times)\n", float64(events)/elapsed.Seconds(), events, elapsed.Round(time.Millisecond), tap.Dropped()-waitedBefore)
	// CPU time, unlike the wall clock, leaves out what the hypervisor stole from the
	// core; it includes the bench's own generator and tap.
	if cpu > 0 { // read from /proc: Linux only
		fmt.Fprintf(out, "cpu:                 %.2f s, %.2f µs per event (the whole process: engine, generator and tap)\n", cpu, cpu*1e6/float64(events))
	}
	// The generator's thread also pays the collector's work that its allocations and
	// pointer writes bring (write barriers, assists), so the engine's share is a little
	// low: by about 3 % in a profile of a short run.
	if genCPU := genEnd - genStart; genOK && cpu > genCPU {
		engine := cpu - genCPU
		fmt.Fprintf(out, "engine cpu:          %.2f s, %.2f µs per event, %.0f events/s per core (the process less the generator's thread, %.3f s)\n",
			engine, engine*1e6/float64(events), float64(events)/engine, genCPU)
		// The write-throughs and folds during the run are in the figure above; what the
		// run changed since the last of them is written and folded after it. A node
		// does that work too.
		durable := engine + flushCPU + foldCPU
		fmt.Fprintf(out, "  and written through: %.2f s, %.2f µs per event, %.0f events/s per core (with the last write-through's %.2f s and the journal's fold's %.2f s, after the run)\n",
			durable, durable*1e6/float64(events), float64(events)/durable, flushCPU, foldCPU)
	}
	fmt.Fprintf(out, "applied:             %d of the %d events changed a profile\n", eng.Applied()-appliedBefore, events)
	// A collection of a heap of a million profiles takes about a second of CPU, with
	// write barriers on meanwhile: whether one falls within a short run moves the
	// figures by a tenth, so the count is shown with them.
	fmt.Fprintf(out, "collections:         %d completed during the measured events (the collector's own CPU %.2f s, its write barriers not included); %.0f bytes allocated per event\n",
		gcRun.cycles, gcRun.cpu, gcRun.allocated/float64(events))
	if gcRun.cycles == 0 {
		fmt.Fprintf(out, "                     none: the CPU figures leave out the collector's share, which a longer run (more --events) includes\n")
	}
	// At saturation a write-through waits four times as long as the last one took, so
	// a cheaper one comes more often: these say how much the store did.
	if storeRun.missing != "" {
		fmt.Fprintf(out, "store work:          not counted (no metric %s)\n", storeRun.missing)
	} else {
		fmt.Fprintf(out, "store work:          %.0f profiles written through during the measured events; %.0f folds of the journal (%.0f profiles, %.1f s)\n",
			storeRun.written, storeRun.folds, storeRun.folded, storeRun.foldSeconds)
	}
	if r.everyEvent {
		fmt.Fprintf(out, "subscriber:          took %d applied events besides the tag changes\n", taken.Load())
	}
	slices.Sort(delays)
	if n := len(delays); n > 0 {
		fmt.Fprintf(out, "event→tag change:    p50 %s, p99 %s, max %s over %d tag changes (subscriber drops %d)\n",
			delays[n/2], delays[n*99/100], delays[n-1], n, changes.Dropped()-droppedBefore)
	}
	if n := unkept.Load(); n > 0 {
		fmt.Fprintf(out, "                     (and %d tag changes past one per measured event, their delays not kept)\n", n)
	}
	fmt.Fprintf(out, "profiles:            %d, heap per profile %.0f bytes (%.2f GiB per million); heap spans in use per profile %.0f bytes (%.2f GiB per million)\n",
		profiles, perProfile, perProfile*1e6/(1<<30), spansPerProfile, spansPerProfile*1e6/(1<<30))
	if perProfile < 0 || spansPerProfile < 0 {
		fmt.Fprintf(out, "                     (below the baseline taken before the engine: too few profiles to measure against the bench's own memory)\n")
	}
	if r.heapDump != "" {
		fmt.Fprintf(out, "heap dump:           %s; free slots in the pages of live objects, by object size: %s\n", r.heapDump, gapsLine(gaps))
	}
	if procStatus(pid, "VmRSS") > 0 { // Linux only
		// What an operator sees: the collector's headroom (with GOGC=100 the heap may
		// grow to twice what is live before a collection) is in it. Anonymous memory is
		// also given less what the bench held before the engine (its generator and its
		// arrays of send times and delays); the tap's and the subscriber's queues fill
		// later and count in. File-backed pages are the store's mapped file and the
		// binary's; the kernel can drop them.
		mib := func(field string) float64 { return float64(procStatus(pid, field)) / (1 << 20) }
		engineAnon := func() float64 { return float64(procStatus(pid, "RssAnon")-baseAnon) / (1 << 20) }
		fmt.Fprintf(out, "process memory:      RSS %.0f MiB now: anonymous %.0f (%.0f more than before the engine), file-backed %.0f; peak RSS %.0f MiB (the whole run)\n",
			mib("VmRSS"), mib("RssAnon"), engineAnon(), mib("RssFile"), mib("VmHWM"))
		debug.FreeOSMemory() // a collection, and the free pages back to the system
		fmt.Fprintf(out, "                     anonymous %.0f MiB (%.0f more than before the engine) once the free heap is returned to the system\n",
			mib("RssAnon"), engineAnon())
	}
	fmt.Fprintf(out, "huge pages:          %s", hugeNote)
	if huge != nil {
		st := huge.Stats()
		fmt.Fprintf(out, "; %d collapse requests granted (a recheck every 10 s asks again for each huge region), %d refused", st.Collapsed, st.Failed)
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "final write-through: %s, then the journal's fold into the store file %s\n", flush.Round(time.Millisecond), fold.Round(time.Millisecond))
	fmt.Fprintf(out, "compaction:          %s, after the run and before the memory figures (a node's sweep compacts every half hour)\n", compact.Round(time.Millisecond))
	if st, err := os.Stat(filepath.Join(dir, "segment.db")); err == nil {
		fmt.Fprintf(out, "store file:          %.1f MiB\n", float64(st.Size())/(1<<20))
	}
	runtime.KeepAlive(gen)
	runtime.KeepAlive(eng)
	fmt.Fprintf(out, "machine after:       %s\n", measurePace())
	return nil
}

// writeHeapDump writes the process's heap dump to path and reads back, per object
// size, the free slots in the pages its live objects keep in use.
func writeHeapDump(path string) ([]heapdump.Size, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	debug.WriteHeapDump(f.Fd())
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	defer f.Close()
	return heapdump.Read(f)
}

// gapsLine names the object sizes whose pages have the most free slots, most first.
func gapsLine(sizes []heapdump.Size) string {
	sizes = slices.Clone(sizes)
	slices.SortFunc(sizes, func(a, b heapdump.Size) int { return cmp.Compare(b.Free, a.Free) })
	var parts []string
	for _, s := range sizes[:min(len(sizes), 8)] {
		if s.Free < 1<<20 {
			break
		}
		parts = append(parts, fmt.Sprintf("%d B %.1f of %.1f MB", s.Bytes, float64(s.Free)/1e6, float64(s.Pages)/1e6))
	}
	if len(parts) == 0 {
		return "none of 1 MB or more"
	}
	return strings.Join(parts, ", ")
}

// gcFigures are the collector's running totals, read without stopping the world
// (runtime.ReadMemStats would): completed collections, its CPU seconds (an estimate
// of the runtime's) and bytes allocated.
type gcFigures struct {
	cycles         uint64
	cpu, allocated float64
}

func readGC() gcFigures {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return gcFigures{cycles: s[0].Value.Uint64(), cpu: s[1].Value.Float64(), allocated: float64(s[2].Value.Uint64())}
}

func (g gcFigures) since(start gcFigures) gcFigures {
	return gcFigures{cycles: g.cycles - start.cycles, cpu: g.cpu - start.cpu, allocated: g.allocated - start.allocated}
}

// storeWork is what the engine's metrics count of its store's work; missing names a
// counter not found (renamed), so that the bench does not print a zero for it.
type storeWork struct {
	written, folds, folded, foldSeconds float64
	missing                             string
}

// readStoreWork reads the engine's store counters from reg.
func readStoreWork(reg *prometheus.Registry) storeWork {
	families, _ := reg.Gather()
	var w storeWork
	value := func(name string) float64 {
		for _, f := range families {
			if f.GetName() == name && len(f.GetMetric()) > 0 {
				return f.GetMetric()[0].GetCounter().GetValue()
			}
		}
		w.missing = name
		return 0
	}
	w.written = value("liveroom_segment_profiles_written_total")
	w.folds = value("liveroom_segment_journal_folds_total")
	w.folded = value("liveroom_segment_journal_folded_profiles_total")
	w.foldSeconds = value("liveroom_segment_journal_fold_seconds_total")
	return w
}

func (w storeWork) since(before storeWork) storeWork {
	return storeWork{w.written - before.written, w.folds - before.folds, w.folded - before.folded,
		w.foldSeconds - before.foldSeconds, cmp.Or(w.missing, before.missing)}
}
