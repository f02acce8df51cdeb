package event

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestQueueKeepsOrderAcrossChunksAndDropsWhenFull(t *testing.T) {
	const size = 3*chunkLen + 7
	q := NewQueue(size)
	for i := range size + 5 {
		ok := q.Publish(Event{ID: fmt.Sprint(i)})
		if ok != (i < size) {
			t.Fatalf("publish %d: taken %v with %d of %d held", i, ok, q.Len(), size)
		}
	}
	if q.Dropped() != 5 || q.Published() != size || q.Len() != size {
		t.Fatalf("dropped %d, published %d, held %d", q.Dropped(), q.Published(), q.Len())
	}
	// Take half, add more, take everything: one order throughout.
	next := 0
	take := func(n int) {
		t.Helper()
		for range n {
			e, ok := q.TryNext()
			if !ok || e.ID != fmt.Sprint(next) {
				t.Fatalf("took %q (%v), want %d", e.ID, ok, next)
			}
			next++
		}
	}
	take(size / 2)
	for i := size + 5; i < size+5+size/2; i++ {
		q.Publish(Event{ID: fmt.Sprint(i - 5)}) // the five dropped were never held
	}
	take(size)
	if e, ok := q.TryNext(); ok {
		t.Fatalf("an empty queue gave %q", e.ID)
	}
}

func TestQueueNextWaitsAndStops(t *testing.T) {
	q := NewQueue(10)
	got := make(chan string)
	go func() {
		e, err := q.Next(context.Background())
		if err != nil {
			got <- err.Error()
			return
		}
		got <- e.ID
	}()
	time.Sleep(10 * time.Millisecond) // let it wait
	q.Publish(Event{ID: "a"})
	if id := <-got; id != "a" {
		t.Fatalf("Next gave %q", id)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Next(ctx); err != context.Canceled {
		t.Fatalf("Next on a cancelled context: %v", err)
	}
	// Two events under one wake-up token: both are taken by waiting calls.
	q.Publish(Event{ID: "b"})
	q.Publish(Event{ID: "c"})
	for _, want := range []string{"b", "c"} {
		tctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		e, err := q.Next(tctx)
		stop()
		if err != nil || e.ID != want {
			t.Fatalf("Next gave %q, %v; want %q", e.ID, err, want)
		}
	}
}

// A tap's memory follows its backlog: a drained queue holds at most one chunk.
func TestQueueGivesBackMemoryWhenDrained(t *testing.T) {
	heap := func() int64 {
		// Chunks a queue lets go wait in chunkPool, which the collector empties over two
		// cycles (a sync.Pool keeps its last one's as a victim).
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	before := heap()
	q := NewQueue(1 << 16)
	empty := heap()
	for i := range 1 << 16 {
		q.Publish(Event{ID: "x", Text: fmt.Sprint(i)})
	}
	full := heap()
	for {
		if _, ok := q.TryNext(); !ok {
			break
		}
	}
	drained := heap()
	perEvent := (full - empty) >> 16
	if empty-before > 64<<10 { // a buffer of its full size would be ≈ 19 MiB
		t.Errorf("an empty queue of 65,536 holds %d bytes", empty-before)
	}
	if perEvent < 100 {
		t.Fatalf("full queue holds only %d bytes per event: the measure is wrong", perEvent)
	}
	if drained-before > (keepSpares+1)*chunkLen*perEvent {
		t.Errorf("a drained queue still holds %d bytes (%d per event when full)", drained-before, perEvent)
	}
	runtime.KeepAlive(q)
}

// A consumer that drains its queue after each burst (the engine's subscribers) finds
// the burst's chunks kept for the next one rather than allocated anew each time.
func TestQueueReusesChunksAcrossBursts(t *testing.T) {
	q := NewQueue(1 << 16)
	burst := func() {
		for i := range keepSpares * chunkLen {
			q.Publish(Event{ID: "x", Count: i})
		}
		for i := range keepSpares * chunkLen {
			e, ok := q.TryNext()
			if !ok || e.Count != i {
				t.Fatalf("event %d: got %+v, %v", i, e, ok)
			}
		}
	}
	spares := func() map[*chunk]bool {
		m := map[*chunk]bool{}
		for c := q.spare; c != nil; c = c.next {
			m[c] = true
		}
		return m
	}
	burst() // the first burst allocates its chunks
	first := spares()
	burst()
	if second := spares(); len(first) != keepSpares || !maps.Equal(first, second) {
		t.Errorf("the second burst did not reuse the first one's %d chunks (kept %d, then %d others)", keepSpares, len(first), len(second))
	}
	// A longer burst keeps no more than keepSpares once drained.
	for i := range 10 * chunkLen {
		q.Publish(Event{Count: i})
	}
	for {
		if _, ok := q.TryNext(); !ok {
			break
		}
	}
	n := 0
	for c := q.spare; c != nil; c = c.next {
		n++
	}
	if n != keepSpares || q.spares != keepSpares {
		t.Errorf("a drained queue keeps %d chunks (counted %d), want %d", n, q.spares, keepSpares)
	}
	// Longer bursts that recur (a consumer that runs only now and then, as on a busy
	// core) are served from spares once two of them have passed.
	long := func(chunks int) {
		for i := range chunks * chunkLen {
			q.Publish(Event{Count: i})
		}
		for i := range chunks * chunkLen {
			if e, ok := q.TryNext(); !ok || e.Count != i {
				t.Fatalf("event %d: got %+v, %v", i, e, ok)
			}
		}
	}
	long(10) // the one before was 10 chunks long too
	kept := spares()
	long(10)
	if again := spares(); len(kept) != 10 || !maps.Equal(kept, again) || q.spares != 10 {
		t.Errorf("recurring 10-chunk bursts: kept %d, then %d (%d the same chunks)", len(kept), len(again), q.spares)
	}
	// Once the bursts are short again, the spares shrink back.
	long(1)
	if q.spares != keepSpares || len(spares()) != keepSpares {
		t.Errorf("after a short burst %d spares are kept, want %d", q.spares, keepSpares)
	}
}

func TestQueueConcurrentPublishersLoseNothingTaken(t *testing.T) {
	q := NewQueue(1000)
	const publishers, each = 4, 5000
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				for !q.Publish(Event{ID: fmt.Sprint(p), Count: i}) {
					runtime.Gosched() // full: the consumer is behind
				}
			}
		})
	}
	last := make([]int, publishers)
	for p := range last {
		last[p] = -1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range publishers * each {
		e, err := q.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var p int
		fmt.Sscan(e.ID, &p)
		if e.Count != last[p]+1 {
			t.Fatalf("publisher %d: got %d after %d", p, e.Count, last[p])
		}
		last[p] = e.Count
	}
	wg.Wait()
	if q.Len() != 0 {
		t.Fatalf("%d left", q.Len())
	}
}

// A consumer looping on Next stops when its context ends, even with a backlog (the
// rules' playbook must not act on 65,536 queued events after the node's stop).
func TestQueueNextStopsAtCancelWithBacklog(t *testing.T) {
	q := NewQueue(2000)
	for i := range 1000 {
		q.Publish(Event{ID: fmt.Sprint(i)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	handled := 0
	for {
		if _, err := q.Next(ctx); err != nil {
			break
		}
		handled++
	}
	if handled > 0 || q.Len() != 1000 {
		t.Fatalf("a loop stopped by its context still handled %d events (%d left)", handled, q.Len())
	}
}

// TestTryNextBatchTakesInOrder fills a queue across several chunks and takes it back
// in batches of odd sizes: every event once, in order, the slots cleared, and the
// queue usable after it drains.
func TestTryNextBatchTakesInOrder(t *testing.T) {
	q := NewQueue(4 * chunkLen)
	const total = 3*chunkLen + 17
	for i := range total {
		if !q.Publish(Event{ID: strconv.Itoa(i)}) {
			t.Fatalf("publish %d refused", i)
		}
	}
	if n := q.TryNextBatch(nil); n != 0 {
		t.Fatalf("an empty destination took %d events", n)
	}
	next := 0
	for size := 1; next < total; size = size%40 + 7 {
		dst := make([]Event, size)
		n := q.TryNextBatch(dst)
		if n == 0 || n > size {
			t.Fatalf("took %d into %d slots with %d waiting", n, size, total-next)
		}
		for _, e := range dst[:n] {
			if e.ID != strconv.Itoa(next) {
				t.Fatalf("took %q, want %d", e.ID, next)
			}
			next++
		}
		if q.Len() != total-next {
			t.Fatalf("Len %d after taking %d of %d", q.Len(), next, total)
		}
	}
	if n := q.TryNextBatch(make([]Event, 8)); n != 0 {
		t.Fatalf("a drained queue gave %d events", n)
	}
	for c := q.spare; c != nil; c = c.next {
		for i := range c.ev {
			if c.ev[i].ID != "" {
				t.Fatalf("a spare chunk still holds event %q", c.ev[i].ID)
			}
		}
	}
	q.Publish(Event{ID: "after"})
	if e, ok := q.TryNext(); !ok || e.ID != "after" {
		t.Fatalf("after draining: %q, %v", e.ID, ok)
	}
}

// TestSwapFullHandsOverWholeChunks: a full, untouched oldest chunk is handed over as
// it lies, in order, and the consumer's emptied block takes its place; a chunk still
// being filled or already begun is not.
func TestSwapFullHandsOverWholeChunks(t *testing.T) {
	q := NewQueue(4 * chunkLen)
	block := new(Block)
	if q.SwapFull(&block) {
		t.Fatal("an empty queue swapped")
	}
	publish := func(from, n int) {
		for i := from; i < from+n; i++ {
			if !q.Publish(Event{ID: strconv.Itoa(i)}) {
				t.Fatalf("publish %d refused", i)
			}
		}
	}
	publish(0, chunkLen-1)
	if q.SwapFull(&block) {
		t.Fatal("a chunk one event short of full swapped")
	}
	publish(chunkLen-1, chunkLen+3) // two full chunks and one holding 2
	mine := block
	if !q.SwapFull(&block) || block == mine {
		t.Fatal("a full chunk did not swap")
	}
	check := func(from int) {
		t.Helper()
		for i := range block {
			if block[i].ID != strconv.Itoa(from+i) {
				t.Fatalf("block[%d] = %q, want %d", i, block[i].ID, from+i)
			}
		}
	}
	check(0)
	if q.Len() != chunkLen+2 {
		t.Fatalf("Len %d after a swap, want %d", q.Len(), chunkLen+2)
	}
	// The consumer's block went into the queue, a spare for the publisher to fill.
	spare := false
	for c := q.spare; c != nil; c = c.next {
		spare = spare || c.ev == mine
	}
	if !spare {
		t.Error("the consumer's block is not among the spare chunks")
	}
	clear(block[:])
	var one [1]Event
	if q.TryNextBatch(one[:]) != 1 || one[0].ID != strconv.Itoa(chunkLen) {
		t.Fatalf("took %q after the swap, want %d", one[0].ID, chunkLen)
	}
	if q.SwapFull(&block) {
		t.Fatal("a chunk with an event taken swapped")
	}
	rest := make([]Event, 2*chunkLen)
	if n := q.TryNextBatch(rest); n != chunkLen+1 {
		t.Fatalf("took %d, want %d", n, chunkLen+1)
	}
	publish(2*chunkLen+2, chunkLen) // drained: a new chunk, full
	if !q.SwapFull(&block) {
		t.Fatal("the refilled chunk did not swap")
	}
	check(2*chunkLen + 2)
	if q.Len() != 0 || q.Published() != 3*chunkLen+2 {
		t.Fatalf("Len %d, published %d", q.Len(), q.Published())
	}
}

// TestSwapFullUnderAPublisher: a publisher and a consumer taking by swaps and batches
// at once; every event comes out once and in order (run with -race).
func TestSwapFullUnderAPublisher(t *testing.T) {
	q := NewQueue(8 * chunkLen)
	const total = 200 * chunkLen
	go func() {
		for i := 0; i < total; {
			if q.Publish(Event{ID: strconv.Itoa(i)}) {
				i++
			} else {
				runtime.Gosched()
			}
		}
	}()
	block, batch := new(Block), make([]Event, 100)
	next, swaps := 0, 0
	take := func(evs []Event) {
		for _, e := range evs {
			if e.ID != strconv.Itoa(next) {
				t.Fatalf("took %q, want %d", e.ID, next)
			}
			next++
		}
	}
	for round := 0; next < total; round++ {
		if round%3 != 0 && q.SwapFull(&block) { // every third round a batch, begun chunks too
			swaps++
			take(block[:])
			clear(block[:])
			continue
		}
		n := q.TryNextBatch(batch)
		take(batch[:n])
		if n == 0 {
			runtime.Gosched()
		}
	}
	// Both ways were taken: whole chunks, and batches out of begun ones.
	if swaps == 0 || swaps == total/chunkLen {
		t.Errorf("%d of %d chunks swapped", swaps, total/chunkLen)
	}
}

// TestSwapFullGivesANilBlockAnArray: a consumer's nil block does not leave a chunk
// without an array for the publisher to fail on.
func TestSwapFullGivesANilBlockAnArray(t *testing.T) {
	q := NewQueue(4 * chunkLen)
	for i := range 2 * chunkLen {
		q.Publish(Event{ID: strconv.Itoa(i)})
	}
	var block *Block
	if !q.SwapFull(&block) || block == nil || block[0].ID != "0" {
		t.Fatal("no swap")
	}
	// The chunk that took the nil block is a spare: refill it.
	rest := make([]Event, chunkLen)
	q.TryNextBatch(rest)
	for i := range 2 * chunkLen {
		if !q.Publish(Event{ID: strconv.Itoa(i)}) {
			t.Fatalf("publish %d refused", i)
		}
	}
	if q.Len() != 2*chunkLen {
		t.Fatalf("Len %d", q.Len())
	}
}

// PublishAll takes events in order across chunks as Publish does, takes what fits of
// a batch when the queue fills and drops and counts the rest, and wakes a waiting
// consumer.
func TestPublishAllTakesInOrderAndDropsWhatDoesNotFit(t *testing.T) {
	const size = 2*chunkLen + 3
	q := NewQueue(size)
	batch := func(from, n int) []*Event {
		evs := make([]*Event, n)
		for i := range evs {
			evs[i] = &Event{ID: strconv.Itoa(from + i)}
		}
		return evs
	}
	if n := q.PublishAll(nil); n != 0 {
		t.Fatalf("an empty batch took %d", n)
	}
	if n := q.PublishAll(batch(0, chunkLen-1)); n != chunkLen-1 {
		t.Fatalf("took %d of %d", n, chunkLen-1)
	}
	q.Publish(Event{ID: strconv.Itoa(chunkLen - 1)})
	if n := q.PublishAll(batch(chunkLen, size)); n != size-chunkLen {
		t.Fatalf("a batch past the queue's room: took %d, want %d", n, size-chunkLen)
	}
	if q.Dropped() != chunkLen || q.Published() != size || q.Len() != size {
		t.Fatalf("dropped %d, published %d, held %d", q.Dropped(), q.Published(), q.Len())
	}
	for i := range size {
		e, ok := q.TryNext()
		if !ok || e.ID != strconv.Itoa(i) {
			t.Fatalf("took %q (%v), want %d", e.ID, ok, i)
		}
	}
	got := make(chan string)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e, err := q.Next(ctx)
		if err != nil {
			got <- "not woken: " + err.Error()
			return
		}
		got <- e.ID
	}()
	time.Sleep(10 * time.Millisecond) // let it wait
	q.PublishAll(batch(7, 2))
	if id := <-got; id != "7" {
		t.Fatalf("a waiting consumer: %q", id)
	}
}

// The chunks a drained queue lets go serve the next burst of any queue, until the
// collector empties the pool: a burst after a drain allocates no new chunks.
func TestChunksLetGoAreReused(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // a collection would empty the pool
	fill := func(q *Queue, chunks int) {
		for i := range chunks * chunkLen {
			q.Publish(Event{Count: i})
		}
	}
	drain := func(q *Queue) {
		for {
			if _, ok := q.TryNext(); !ok {
				return
			}
		}
	}
	a := NewQueue(1 << 16)
	fill(a, 20)
	drain(a) // keeps keepSpares, lets the other 16 go
	b := NewQueue(1 << 16)
	// Two bursts of 8 (AllocsPerRun runs its function once before it counts).
	if allocs := testing.AllocsPerRun(1, func() { fill(b, 8) }); allocs > 0 && !raceEnabled {
		t.Errorf("bursts of 8 chunks after another queue let 16 go made %v allocations", allocs)
	}
	drain(b)
	for c := b.spare; c != nil; c = c.next {
		for i := range c.ev {
			if c.ev[i] != (Event{}) {
				t.Fatalf("a reused chunk holds an old event: %+v", c.ev[i])
			}
		}
	}
}
