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
	st := NewMemoryState()
	e, err := New(DefaultConfig(), Deps{Outbox: newOutbox(), State: st, Rules: mustCompile(t, DefaultRules(time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	key := onceKey(stayKey(RuleStay, "v1", "l1"))
	if _, err := st.Commit(context.Background(), Firing{At: time.Now(), Limits: []Limit{{Key: key, Cap: 1}}}); err != nil {
		t.Fatal(err)
	}
	e.EndLive("l1")
	deadline := time.Now().Add(10 * time.Second)
	for {
		st.mu.Lock()
		_, left := st.counters[key]
		st.mu.Unlock()
		if !left {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ended live's once counter is still there")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
