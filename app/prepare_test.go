package app

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/rules"
	"github.com/liveroom/liveroom/segment"
)

// promptBox records the prompts the rules send.
type promptBox struct {
	mu      sync.Mutex
	prompts []rules.Prompt
}

func (o *promptBox) SendPrompt(_ context.Context, _ string, p rules.Prompt) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.prompts = append(o.prompts, p)
	return nil
}

func (o *promptBox) SendDM(context.Context, string, string, string, string) error { return nil }

func (o *promptBox) sent() []rules.Prompt {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]rules.Prompt(nil), o.prompts...)
}

// stayNode is a real segment and a rules engine on the node's snapshots (a playbook),
// started in the calling synctest bubble and closed with it.
type stayNode struct {
	seg *segment.Engine
	p   *playbook
	eng *rules.Engine
	out *promptBox
}

// startStayNode starts a stayNode with doc's rules, firings made ready prepare ahead;
// profiles, when not nil, wraps the playbook as the engine's Profiles.
func startStayNode(t *testing.T, doc rules.Document, prepare time.Duration, profiles func(*playbook) rules.Profiles) *stayNode {
	t.Helper()
	seg, err := segment.New(segment.DefaultConfig(), segment.Deps{Store: segment.NewMemoryStore()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close(context.Background()) })
	state := rules.NewMemoryState()
	p := &playbook{seg: seg, zones: newViewerMap[string](), custom: newViewerMap[[]string](), firings: state}
	set, err := rules.CompileDocument(doc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := rules.DefaultConfig()
	cfg.StayPrepare = prepare
	var prof rules.Profiles = p
	if profiles != nil {
		prof = profiles(p)
	}
	n := &stayNode{seg: seg, p: p, out: &promptBox{}}
	if n.eng, err = rules.New(cfg, rules.Deps{Outbox: n.out, State: state, Profiles: prof, Rules: set}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.eng.Close(context.Background()) }) // before segment's
	p.rules = n.eng
	return n
}

// watch has viewer start watching live L1 in room r1 and hands the event to the rules.
func (n *stayNode) watch(t *testing.T, viewer string) {
	t.Helper()
	ctx := context.Background()
	ev := event.Event{ID: "w-" + viewer, Type: event.WatchStart, Viewer: viewer, Room: "r1", Live: "L1", At: time.Now(), Role: event.RoleViewer}
	n.seg.Apply(ev)
	v, s, ok := n.p.Snapshot(ctx, viewer, "L1")
	if !ok {
		t.Fatal("no snapshot")
	}
	n.eng.OnEvent(ctx, v, s, ev)
}

// stayWithChange runs a 2 s stay rule (doc) over a real segment and the node's
// snapshots, for one viewer who clicked sku-x and watches; between the firing being
// made ready (1 s ahead, with prepare) and the threshold, change happens. It returns
// the prompts sent.
func stayWithChange(t *testing.T, doc rules.Document, prepare time.Duration, change func(*playbook, *segment.Engine)) []rules.Prompt {
	var sent []rules.Prompt
	synctest.Test(t, func(t *testing.T) {
		n := startStayNode(t, doc, prepare, nil)
		n.seg.Apply(event.Event{ID: "c1", Type: event.ProductClick, Viewer: "v1", Room: "r1", Live: "L1", SKU: "sku-x", At: time.Now(), Role: event.RoleViewer})
		n.watch(t, "v1")
		time.Sleep(1500 * time.Millisecond) // made ready at 1 s
		change(n.p, n.seg)
		time.Sleep(1500 * time.Millisecond) // past the threshold
		synctest.Wait()
		sent = n.out.sent()
	})
	return sent
}

func stayRule(text string) rules.RuleSpec {
	return rules.RuleSpec{ID: "stay", Trigger: rules.TriggerSpec{Timer: &rules.TimerSpec{Kind: rules.TimerStay, Threshold: "2s"}},
		Action: rules.ActionSpec{Type: rules.ActPrompt, Text: text}}
}

// TestStayPreparedSeesNodeState: what a snapshot takes from beside the profile — the
// player's time zone (quiet hours), the catalog's category of the viewer's last
// product — changing after a firing was made ready is seen at the threshold, as if it
// had been made there.
func TestStayPreparedSeesNodeState(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	// The bubble's clock starts at 2000-01-01 00:00 UTC, 08:00 in Shanghai: quiet
	// hours from 07:00 to 09:00 there, not in UTC.
	quiet := rules.Document{QuietHours: &rules.QuietSpec{Start: "07:00", End: "09:00", Mode: "drop"}, Rules: []rules.RuleSpec{stayRule("hi")}}
	category := rules.Document{Rules: []rules.RuleSpec{stayRule("cat={{.Viewer.LastCategory}}")}}
	cases := []struct {
		name   string
		doc    rules.Document
		change func(*playbook, *segment.Engine)
		want   string // the prompt's line, "" for none
	}{
		{"time zone", quiet, func(p *playbook, _ *segment.Engine) { p.SetTimeZone("v1", shanghai) }, ""},
		{"category", category, func(_ *playbook, seg *segment.Engine) {
			seg.Apply(event.Event{ID: "p1", Type: event.Pin, Room: "r1", Live: "L1", SKU: "sku-x", Category: "shoes", Value: 10, Currency: "USD", At: time.Now()})
		}, "cat=shoes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, prepare := range []time.Duration{0, time.Second} {
				sent := stayWithChange(t, c.doc, prepare, c.change)
				got := ""
				if len(sent) > 0 {
					got = sent[0].Suggested
				}
				if len(sent) > 1 || got != c.want {
					t.Fatalf("prepare %v: %d prompts (%q), want %q", prepare, len(sent), got, c.want)
				}
			}
		})
	}
}

// TestStayPreparedMergedViewer: a viewer whose stay timer was armed under its own id
// and who is then merged into a customer's profile; a custom tag given to the merged
// profile after the firing was made ready is seen at the threshold, as with prepare 0.
func TestStayPreparedMergedViewer(t *testing.T) {
	for _, prepare := range []time.Duration{0, time.Second} {
		var got []rules.Prompt
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			n := startStayNode(t, rules.Document{Rules: []rules.RuleSpec{stayRule("tags={{.Viewer.Tags.Custom}}")}}, prepare, nil)
			n.p.tagged.Store(true)
			old := time.Now().UTC().Format(time.RFC3339)
			time.Sleep(time.Minute)
			if _, err := n.seg.ImportJSON(ctx, strings.NewReader(`[{"id":"h1","type":"order","viewer":"shop-42","at":"`+old+`","order_id":"s1","total":"30","currency":"USD","customer":{"id":"42"}}]`)); err != nil {
				t.Fatal(err)
			}
			n.watch(t, "v2")
			time.Sleep(500 * time.Millisecond)
			// v2 turns out to be customer 42 (an old order of theirs is imported): merged into shop-42.
			if res, err := n.seg.ImportJSON(ctx, strings.NewReader(`[{"id":"h2","type":"order","viewer":"v2","at":"`+old+`","order_id":"s2","total":"20","currency":"USD","customer":{"id":"42"}}]`)); err != nil || len(res.Errors) > 0 {
				t.Fatal(err, res.Errors)
			}
			if v, _, _ := n.p.Snapshot(ctx, "v2", "L1"); v.ID != "shop-42" {
				t.Fatalf("setup: not merged (%s)", v.ID)
			}
			time.Sleep(time.Second)                         // made ready at 1 s
			n.p.AddTag(ctx, "shop-42", "vip", "other-rule") // a rule tags the (merged) viewer
			time.Sleep(1500 * time.Millisecond)
			synctest.Wait()
			got = n.out.sent()
		})
		if len(got) != 1 || got[0].Suggested != "tags=[vip]" {
			var lines []string
			for _, g := range got {
				lines = append(lines, g.Suggested)
			}
			t.Errorf("prepare %v: prompts %q, want [\"tags=[vip]\"]", prepare, lines)
		}
	}
}

// countingBook counts the snapshots taken.
type countingBook struct {
	*playbook
	n atomic.Int64
}

func (c *countingBook) Snapshot(ctx context.Context, id, live string) (rules.Viewer, rules.Session, bool) {
	c.n.Add(1)
	return c.playbook.Snapshot(ctx, id, live)
}

// TestStayPreparedUnrelatedPin: a pin of another product between the firing being made
// ready and its threshold changes nothing in this viewer's snapshot, and the prepared
// firing goes out as made.
func TestStayPreparedUnrelatedPin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var book *countingBook
		n := startStayNode(t, rules.Document{Rules: []rules.RuleSpec{stayRule("hi")}}, time.Second, func(p *playbook) rules.Profiles {
			book = &countingBook{playbook: p}
			return book
		})
		n.watch(t, "v1") // one snapshot, by the test
		time.Sleep(1500 * time.Millisecond)
		n.seg.Apply(event.Event{ID: "p1", Type: event.Pin, Room: "r1", Live: "L1", SKU: "sku-other", Value: 10, Currency: "USD", At: time.Now()})
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if got := book.n.Load(); got != 1 || len(n.out.sent()) != 1 {
			t.Errorf("%d snapshots by the engine, %d prompts; want 1 (to prepare) and 1: the prepared firing was remade", got, len(n.out.sent()))
		}
	})
}
