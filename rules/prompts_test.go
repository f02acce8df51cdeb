package rules

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/problem"
)

func promptRule() Document {
	return Document{Rules: []RuleSpec{{ID: "ask", Trigger: TriggerSpec{Event: []string{"product_click"}},
		Action: ActionSpec{Type: ActPrompt, Text: "{{.Viewer.Name}} looked at {{.Event.SKU}}"}}}}
}

// states runs a test against both State implementations.
func states(t *testing.T, run func(t *testing.T, st State)) {
	t.Run("memory", func(t *testing.T) { run(t, NewMemoryState()) })
	for name, every := range map[string]time.Duration{"bolt": 0, "bolt-write-behind": 20 * time.Millisecond} {
		t.Run(name, func(t *testing.T) {
			st, err := OpenBolt(filepath.Join(t.TempDir(), "rules.db"), every)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			run(t, st)
		})
	}
}

func TestPromptClaimResolveConversion(t *testing.T) {
	states(t, func(t *testing.T, st State) {
		clock := &manualClock{t: t0}
		e, out, _ := start(t, mustCompile(t, promptRule()), clock, func(_ *Config, d *Deps) { d.State = st })
		ctx := context.Background()
		click := func(id string) {
			e.OnEvent(ctx, viewer(id), Session{Room: "r1"}, event.Event{Type: event.ProductClick, SKU: "sku-9", At: clock.Now()})
		}
		click("a")
		click("b")
		click("c")
		e.OnEvent(ctx, viewer("z"), Session{Room: "r2"}, event.Event{Type: event.ProductClick, SKU: "x", At: clock.Now()})
		list, err := e.Prompts(ctx, "r1")
		if err != nil || len(list) != 3 || list[0].Viewer.ID != "a" || list[0].Suggested != "Name a looked at sku-9" {
			t.Fatalf("queue r1: %+v %v", list, err)
		}
		if sent, _ := out.sent(); len(sent) != 4 || sent[0].ID != list[0].ID {
			t.Fatalf("sent: %+v", sent)
		}
		pa, pb, pc := list[0].ID, list[1].ID, list[2].ID

		clock.Add(time.Minute)
		p, err := e.Claim(ctx, pa, "agent-1")
		if err != nil || p.ClaimedBy != "agent-1" || !p.ClaimedAt.Equal(clock.Now()) {
			t.Fatalf("claim: %+v %v", p, err)
		}
		if _, err := e.Claim(ctx, pa, "agent-1"); err != nil {
			t.Fatalf("claiming again by the holder: %v", err)
		}
		_, err = e.Claim(ctx, pa, "agent-2")
		if !errors.Is(err, ErrPromptClaimed) || problem.KindOf(err) != problem.Conflict {
			t.Fatalf("second agent's claim: %v", err)
		}
		if _, err := e.Resolve(ctx, pa, "agent-2", "messaged"); !errors.Is(err, ErrPromptClaimed) {
			t.Fatalf("second agent's resolve: %v", err)
		}
		if _, err := e.Claim(ctx, "p-nope", "agent-1"); !errors.Is(err, ErrPromptNotFound) || problem.KindOf(err) != problem.NotFound {
			t.Fatalf("unknown prompt: %v", err)
		}
		if _, err := e.Resolve(ctx, pa, "agent-1", ""); problem.KindOf(err) != problem.BadRequest {
			t.Fatalf("empty outcome: %v", err)
		}
		if p, err = e.Resolve(ctx, pa, "agent-1", "messaged"); err != nil || p.Outcome != "messaged" || p.ResolvedAt.IsZero() {
			t.Fatalf("resolve: %+v %v", p, err)
		}
		if _, err := e.Resolve(ctx, pa, "agent-1", "again"); !errors.Is(err, ErrPromptResolved) {
			t.Fatalf("resolve twice: %v", err)
		}
		// Resolving an unclaimed prompt claims it.
		if p, err = e.Resolve(ctx, pb, "agent-2", "no reply"); err != nil || p.ClaimedBy != "agent-2" {
			t.Fatalf("resolve unclaimed: %+v %v", p, err)
		}
		if _, err = e.Resolve(ctx, pc, "agent-2", "messaged"); err != nil {
			t.Fatal(err)
		}
		// a orders 23 h after the prompt (converted); b after 25 h (not); c before its
		// prompt (not).
		e.OnEvent(ctx, viewer("a"), Session{Room: "r1"}, orderEvent("oa", t0.Add(23*time.Hour)))
		if err := e.OnOrder(ctx, "b", t0.Add(25*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := e.OnOrder(ctx, "c", t0.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		conv, err := e.DMConversion(ctx, "r1")
		if err != nil || conv.Resolved != 3 || conv.Ordered != 1 || conv.Rate != 1.0/3 {
			t.Fatalf("conversion: %+v %v", conv, err)
		}
		if conv, _ := e.DMConversion(ctx, "r2"); conv != (Conversion{}) {
			t.Fatalf("r2 has no resolved prompts: %+v", conv)
		}
		if all, _ := e.DMConversion(ctx, ""); all != conv {
			t.Fatalf("every room's conversion %+v, want r1's %+v (the only room with prompts)", all, conv)
		}
		acts, _ := e.Actions(ctx, "a")
		if len(acts) != 1 || acts[0].Type != ActPrompt || acts[0].Detail != pa || acts[0].RuleID != "ask" {
			t.Fatalf("actions of a: %+v", acts)
		}
	})
}

func TestBoltKeepsStateAcrossReopen(t *testing.T) {
	for name, every := range map[string]time.Duration{"write-through": 0, "write-behind": time.Hour} {
		t.Run(name, func(t *testing.T) { testReopen(t, every) })
	}
}

// testReopen: with write-behind at an hour, only Close's final flush writes.
func testReopen(t *testing.T, every time.Duration) {
	path := filepath.Join(t.TempDir(), "rules.db")
	ctx := context.Background()
	doc := DefaultRules(time.Minute)
	doc.Rules = append(doc.Rules, promptRule().Rules[0])
	doc.Rules[len(doc.Rules)-1].Cap = 1
	set := mustCompile(t, doc)
	clock := &manualClock{t: t0}
	open := func() (*Engine, *outbox, *BoltState) {
		st, err := OpenBolt(path, every)
		if err != nil {
			t.Fatal(err)
		}
		out := newOutbox()
		e, err := New(DefaultConfig(), Deps{Outbox: out, State: st, Clock: clock, Rules: set})
		if err != nil {
			t.Fatal(err)
		}
		return e, out, st
	}
	first, _, firstState := open()
	e, st := first, firstState
	var out *outbox
	v := viewer("ann")
	v.Orders = 1
	e.OnEvent(ctx, v, Session{Room: "r1"}, orderEvent("e1", t0))                                    // thank-you + follow-up job
	e.OnEvent(ctx, v, Session{Room: "r1"}, event.Event{Type: event.ProductClick, SKU: "s", At: t0}) // prompt, cap 1
	if _, err := e.Claim(ctx, mustPrompts(t, e, "r1")[0].ID, "agent-1"); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	firstState.Close()

	clock.Add(7*24*time.Hour + time.Second)
	e, out, st = open()
	defer st.Close()
	defer e.Close(ctx)
	list := mustPrompts(t, e, "r1")
	if len(list) != 1 || list[0].ClaimedBy != "agent-1" {
		t.Fatalf("prompts after reopen: %+v", list)
	}
	// The cap survived: no second prompt for the same viewer.
	e.OnEvent(ctx, v, Session{Room: "r1"}, event.Event{Type: event.ProductClick, SKU: "s", At: clock.Now()})
	// The follow-up job survived and is now due.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if prompts, _ := out.sent(); len(prompts) > 0 {
			if len(prompts) != 1 || prompts[0].RuleID != RuleFirstFollow {
				t.Fatalf("after reopen: %+v", prompts)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the scheduled follow-up did not survive the restart")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if acts, _ := e.Actions(ctx, "ann"); len(acts) != 3 {
		t.Fatalf("action log after reopen: %+v", acts)
	}
}

func mustPrompts(t *testing.T, e *Engine, room string) []Prompt {
	t.Helper()
	list, err := e.Prompts(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func TestActionLogBounded(t *testing.T) {
	states(t, func(t *testing.T, st State) {
		ctx := context.Background()
		for i := range MaxActionsPerViewer + 5 {
			a := Action{At: t0.Add(time.Duration(i) * time.Second), Viewer: "v", RuleID: "r", Type: ActTag}
			if _, err := st.Commit(ctx, Firing{At: a.At, Rec: &Record{Action: a}}); err != nil {
				t.Fatal(err)
			}
		}
		acts, err := st.Actions(ctx, "v")
		if err != nil || len(acts) != MaxActionsPerViewer || !acts[0].At.Equal(t0.Add(5*time.Second)) {
			t.Fatalf("%d actions, first at %v: %v", len(acts), acts[0].At, err)
		}
	})
}

func TestAddNoteShowsInActions(t *testing.T) {
	e, err := New(DefaultConfig(), Deps{Outbox: newOutbox(), State: NewMemoryState()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	if err := e.AddNote(context.Background(), "v1", "a7", "prefers size M"); err != nil {
		t.Fatal(err)
	}
	acts, err := e.Actions(context.Background(), "v1")
	if err != nil || len(acts) != 1 || acts[0].Type != NoteAction || acts[0].Detail != "prefers size M" || acts[0].RuleID != "agent:a7" {
		t.Fatalf("actions %+v, %v", acts, err)
	}
}

// TestDMConversionKept: the figure is kept conversionTTL while nothing changes (a new
// prompt alone does not move it), and a resolve or a conversion refreshes it at once.
func TestDMConversionKept(t *testing.T) {
	clock := &manualClock{t: t0}
	e, out, st := start(t, mustCompile(t, promptRule()), clock)
	ctx := context.Background()
	click := func(id string) string {
		e.OnEvent(ctx, viewer(id), Session{Room: "r1"}, event.Event{Type: event.ProductClick, SKU: "sku-9", At: clock.Now()})
		prompts, _ := out.sent()
		return prompts[len(prompts)-1].ID
	}
	pa := click("a")
	if _, err := e.Resolve(ctx, pa, "agent-1", "messaged"); err != nil {
		t.Fatal(err)
	}
	if c, _ := e.DMConversion(ctx, ""); c.Resolved != 1 || c.Ordered != 0 {
		t.Fatalf("after a resolve: %+v", c)
	}
	if err := e.OnOrder(ctx, "a", clock.Now()); err != nil {
		t.Fatal(err)
	}
	if c, _ := e.DMConversion(ctx, ""); c.Ordered != 1 {
		t.Fatalf("after the conversion: %+v", c)
	}
	// Resolved behind the engine's back (another node's state, a restore): kept a while.
	pb := click("b")
	if _, err := st.UpdatePrompt(ctx, pb, func(p *Prompt) error { p.ResolvedAt, p.Outcome = clock.Now(), "x"; return nil }); err != nil {
		t.Fatal(err)
	}
	if c, _ := e.DMConversion(ctx, ""); c.Resolved != 1 {
		t.Fatalf("within %v the kept figure: %+v", conversionTTL, c)
	}
	clock.Add(conversionTTL)
	if c, _ := e.DMConversion(ctx, ""); c.Resolved != 2 {
		t.Fatalf("after %v: %+v", conversionTTL, c)
	}
}

// slowPrompts holds the first Prompts read until release is closed.
type slowPrompts struct {
	*MemoryState
	reading, release chan struct{}
	once             sync.Once
}

func (s *slowPrompts) Prompts(ctx context.Context, room string) ([]Prompt, error) {
	list, err := s.MemoryState.Prompts(ctx, room)
	s.once.Do(func() { close(s.reading); <-s.release })
	return list, err
}

// TestDMConversionResolveDuringRead: a figure read before a resolve that lands while
// it is being read is not kept: the next answer counts the resolve.
func TestDMConversionResolveDuringRead(t *testing.T) {
	st := &slowPrompts{MemoryState: NewMemoryState(), reading: make(chan struct{}), release: make(chan struct{})}
	clock := &manualClock{t: t0}
	e, out, _ := start(t, mustCompile(t, promptRule()), clock, func(_ *Config, d *Deps) { d.State = st })
	ctx := context.Background()
	e.OnEvent(ctx, viewer("a"), Session{Room: "r1"}, event.Event{Type: event.ProductClick, SKU: "sku-9", At: clock.Now()})
	prompts, _ := out.sent()
	read := make(chan Conversion)
	go func() { c, _ := e.DMConversion(ctx, ""); read <- c }()
	<-st.reading
	if _, err := e.Resolve(ctx, prompts[0].ID, "agent-1", "messaged"); err != nil {
		t.Fatal(err)
	}
	close(st.release)
	if c := <-read; c.Resolved != 0 {
		t.Fatalf("the read from before the resolve: %+v", c)
	}
	if c, _ := e.DMConversion(ctx, ""); c.Resolved != 1 {
		t.Fatalf("after the resolve: %+v, want it counted", c)
	}
}

// TestAddNoteDurableWhenAnswered: a note is an agent's write, answered 204; with the
// write-behind it must still be in the file when AddNote returns, not half a second
// later (a crash then lost it). The file's bytes are what a kill -9 leaves.
func TestAddNoteDurableWhenAnswered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.db")
	st, err := OpenBolt(path, time.Hour) // the write-behind never flushes on its own
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e, err := New(DefaultConfig(), Deps{Outbox: newOutbox(), State: st})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	if err := e.AddNote(context.Background(), "v1", "a7", "prefers size M"); err != nil {
		t.Fatal(err)
	}
	left, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(t.TempDir(), "rules.db")
	if err := os.WriteFile(crashed, left, 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := OpenBolt(crashed, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	acts, err := again.Actions(context.Background(), "v1")
	if err != nil || len(acts) != 1 || acts[0].Detail != "prefers size M" {
		t.Fatalf("after a crash right after AddNote returned: actions %+v, %v", acts, err)
	}
}

// A stored count past any cap (a damaged file; read as int it would be negative and let
// the rule past its cap) is refused, not read.
func TestCounterOutOfRangeRefused(t *testing.T) {
	for _, n := range []uint64{1 << 63, math.MaxUint64, math.MaxInt32 + 1} {
		v := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, n), 0)
		if c, err := decodeCounter(v); err == nil {
			t.Errorf("count %d read as %+v", n, c)
		}
	}
	v := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 7), 0)
	if c, err := decodeCounter(v); err != nil || c.N != 7 {
		t.Errorf("count 7: %+v %v", c, err)
	}
}

// A hold is durable once Hold returns, listed until released, across a reopen.
func TestBoltHoldsUntilReleased(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rules.db")
	st, err := OpenBolt(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	first, err := st.Hold(ctx, []byte("first"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := st.Hold(ctx, []byte("second"))
	if err != nil || first == 0 || second <= first {
		t.Fatalf("holds %d and %d (%v)", first, second, err)
	}
	if err := st.Release(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil { // a second Close is harmless
		t.Fatal(err)
	}
	if st, err = OpenBolt(path, time.Hour); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	held, err := st.Held(ctx)
	if err != nil || len(held) != 1 || held[0].Seq != second || string(held[0].Data) != "second" {
		t.Fatalf("after a reopen: %+v (%v), want the second hold alone", held, err)
	}
}
