package rules

import (
	"context"
	"testing"
	"time"
)

// TestForgetLive: on every state, an ended live's once-per-live counters go, written
// or still cached, and another live's and other limits stay.
func TestForgetLive(t *testing.T) {
	ctx, at := context.Background(), time.Now()
	once := func(key string) Firing { return Firing{At: at, Limits: []Limit{{Key: key, Cap: 1}}} }
	keys := map[string]bool{ // key → kept after l1 ends
		onceKey(stayKey("stay", "v1", "l1")): false,
		onceKey(stayKey("stay", "v2", "l1")): false,
		onceKey(stayKey("stay", "v1", "l2")): true,
		"r\x00stay\x00v1":                    true,
	}
	for name, open := range allStates(t) {
		t.Run(name, func(t *testing.T) {
			st := open()
			for k := range keys {
				if ok, err := st.Commit(ctx, once(k)); err != nil || !ok[0] {
					t.Fatalf("%q: %v %v", k, ok, err)
				}
				if bs, isBolt := st.(*BoltState); isBolt && k == onceKey(stayKey("stay", "v1", "l1")) {
					if err := bs.flush(); err != nil { // one written, the others cached
						t.Fatal(err)
					}
				}
			}
			if err := st.ForgetLive(ctx, "l1"); err != nil {
				t.Fatal(err)
			}
			for k, kept := range keys {
				ok, err := st.Commit(ctx, once(k))
				if err != nil || ok[0] == kept {
					t.Errorf("%q: allowed again %v (%v), want %v", k, ok, err, !kept)
				}
			}
		})
	}
}

// TestEndLiveForgetsOnceCounters: a live_end has the engine's state forget the live's
// once-per-live counters.
func TestEndLiveForgetsOnceCounters(t *testing.T) {
	e, _, st := start(t, mustCompile(t, DefaultRules(time.Minute)), nil)
	key := onceKey(stayKey(RuleStay, "v1", "l1"))
	if _, err := st.Commit(context.Background(), Firing{At: time.Now(), Limits: []Limit{{Key: key, Cap: 1}}}); err != nil {
		t.Fatal(err)
	}
	e.EndLive("l1")
	waitFor(t, "the ended live's once counter to go", func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		_, left := st.counters[key]
		return !left
	})
}

// TestStaleCounter: a counter goes when none of its rules has a cap and the longest
// cooldown has passed; caps, running cooldowns, unknown rules and once-per-live
// counters keep it.
func TestStaleCounter(t *testing.T) {
	doc := Document{Rules: []RuleSpec{
		{ID: "free", Trigger: TriggerSpec{Event: []string{"like"}}, Action: ActionSpec{Type: ActTag, Tag: "x"}},
		{ID: "cool", Trigger: TriggerSpec{Event: []string{"like"}}, Action: ActionSpec{Type: ActTag, Tag: "x"}, Cooldown: "1h"},
		{ID: "capped", Trigger: TriggerSpec{Event: []string{"like"}}, Action: ActionSpec{Type: ActTag, Tag: "x"}, Cap: 1},
		{ID: "g1", Trigger: TriggerSpec{Event: []string{"like"}}, Action: ActionSpec{Type: ActTag, Tag: "x"}, Cooldown: "1h", Group: "both"},
		{ID: "g2", Trigger: TriggerSpec{Event: []string{"like"}}, Action: ActionSpec{Type: ActTag, Tag: "x"}, Cooldown: "3h", Group: "both"},
		{ID: "g3", Trigger: TriggerSpec{Event: []string{"like"}}, Action: ActionSpec{Type: ActTag, Tag: "x"}, Group: "capgroup", Cap: 2},
	}}
	set := mustCompile(t, doc)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) Counter { return Counter{N: 1, Last: now.Add(-d)} }
	for _, c := range []struct {
		key   string
		c     Counter
		stale bool
	}{
		{"r\x00free\x00v1", ago(0), true},
		{"r\x00cool\x00v1", ago(30 * time.Minute), false},
		{"r\x00cool\x00v1", ago(time.Hour), true},
		{"r\x00capped\x00v1", ago(1000 * time.Hour), false},
		{"g\x00both\x00v1", ago(2 * time.Hour), false}, // g2's 3 h still runs
		{"g\x00both\x00v1", ago(3 * time.Hour), true},
		{"g\x00capgroup\x00v1", ago(1000 * time.Hour), false},
		{"r\x00g1\x00v1", ago(1000 * time.Hour), false}, // g1 counts under its group, not itself
		{"r\x00gone\x00v1", ago(1000 * time.Hour), false},
		{"g\x00nogroup\x00v1", ago(1000 * time.Hour), false},
		{onceKey(stayKey("free", "v1", "l1")), ago(1000 * time.Hour), false},
		{"r\x00free", ago(0), false},
		{"", ago(0), false},
	} {
		if got := staleCounter(set, c.key, c.c, now); got != c.stale {
			t.Errorf("%q last %v ago: stale %v, want %v", c.key, now.Sub(c.c.Last), got, c.stale)
		}
	}
}

// TestPruneCounters: on every state, pruning drops the stale counters (written or
// still cached) and keeps the rest; a dropped one counts from zero again.
func TestPruneCounters(t *testing.T) {
	ctx, at := context.Background(), time.Now()
	limit := func(key string) Firing { return Firing{At: at, Limits: []Limit{{Key: key, Cap: 1}}} }
	keys := map[string]bool{"r\x00stale1": false, "r\x00stale2": false, "r\x00kept1": true, "r\x00kept2": true} // key → kept
	stale := func(key string, _ Counter) bool { return !keys[key] }
	for name, open := range allStates(t) {
		t.Run(name, func(t *testing.T) {
			st := open()
			for _, k := range []string{"r\x00stale1", "r\x00kept1"} {
				if _, err := st.Commit(ctx, limit(k)); err != nil {
					t.Fatal(err)
				}
			}
			if bs, isBolt := st.(*BoltState); isBolt {
				if err := bs.flush(); err != nil { // these two written, the next two cached
					t.Fatal(err)
				}
			}
			for _, k := range []string{"r\x00stale2", "r\x00kept2"} {
				if _, err := st.Commit(ctx, limit(k)); err != nil {
					t.Fatal(err)
				}
			}
			n, err := st.PruneCounters(ctx, stale)
			if err != nil || n != 2 {
				t.Fatalf("pruned %d (%v), want 2", n, err)
			}
			for k, kept := range keys {
				ok, err := st.Commit(ctx, limit(k))
				if err != nil || ok[0] == kept {
					t.Errorf("%q: allowed again %v (%v), want %v", k, ok, err, !kept)
				}
			}
		})
	}
}

// TestEnginePrunesStayCounters: with the default rules, the stay rule's own counter
// (no cap, a 1-hour cooldown) goes at the first prune after its cooldown, the
// first-order thank-you's (cap 1) stays, and the stay prompt still fires once per live.
func TestEnginePrunesStayCounters(t *testing.T) {
	e, _, st := start(t, mustCompile(t, DefaultRules(time.Minute)), nil)
	ctx, now := context.Background(), time.Now()
	stay := mustCompile(t, DefaultRules(time.Minute)).byID[RuleStay].limit("v1")
	thanks := mustCompile(t, DefaultRules(time.Minute)).byID[RuleFirstThanks].limit("v1")
	once := Limit{Key: onceKey(stayKey(RuleStay, "v1", "l1")), Cap: 1}
	earlier := now.Add(-2 * time.Hour) // past the stay rule's cooldown
	if _, err := st.Commit(ctx, Firing{At: earlier, Limits: []Limit{stay, once}}, Firing{At: earlier, Limits: []Limit{thanks}}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.PruneCounters(ctx); err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want the stay rule's counter only", n, err)
	}
	st.mu.Lock()
	_, stayLeft := st.counters[stay.Key]
	_, thanksLeft := st.counters[thanks.Key]
	_, onceLeft := st.counters[once.Key]
	st.mu.Unlock()
	if stayLeft || !thanksLeft || !onceLeft {
		t.Fatalf("left: stay %v (want false), thanks %v, once %v (want true)", stayLeft, thanksLeft, onceLeft)
	}
	if ok, _ := st.Commit(ctx, Firing{At: now, Limits: []Limit{stay, once}}); ok[0] {
		t.Fatal("the stay prompt fired twice in one live after a prune")
	}
}

// A counter deleted from the file and committed again into the cache before the
// clean-up, still stale, is one counter pruned, not two.
func TestPruneCountsEachKeyOnce(t *testing.T) {
	ctx := context.Background()
	st := heldState(t)
	f := Firing{At: time.Now(), Limits: []Limit{{Key: "r\x00free\x00v1"}}}
	if _, err := st.Commit(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := st.flush(); err != nil {
		t.Fatal(err)
	}
	st.afterRewrite = func() {
		if _, err := st.Commit(ctx, f); err != nil {
			t.Error(err)
		}
	}
	if n, err := st.PruneCounters(ctx, func(string, Counter) bool { return true }); err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want 1", n, err)
	}
}
