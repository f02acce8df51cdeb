package app

import (
	"context"
	"sync"
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

// stayWithChange runs a 2 s stay rule (doc) over a real segment and the node's
// snapshots, for one viewer who clicked sku-x and watches; between the firing being
// made ready (1 s ahead, with prepare) and the threshold, change happens. It returns
// the prompts sent.
func stayWithChange(t *testing.T, doc rules.Document, prepare time.Duration, change func(*playbook, *segment.Engine)) []rules.Prompt {
	var sent []rules.Prompt
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		seg, err := segment.New(segment.DefaultConfig(), segment.Deps{Store: segment.NewMemoryStore()})
		if err != nil {
			t.Fatal(err)
		}
		defer seg.Close(ctx)
		p := &playbook{seg: seg, zones: newViewerMap[string](), custom: newViewerMap[[]string]()}
		set, err := rules.CompileDocument(doc)
		if err != nil {
			t.Fatal(err)
		}
		cfg := rules.DefaultConfig()
		cfg.StayPrepare = prepare
		out := &promptBox{}
		eng, err := rules.New(cfg, rules.Deps{Outbox: out, State: rules.NewMemoryState(), Profiles: p, Rules: set})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close(ctx)
		p.rules = eng
		now := time.Now()
		seg.Apply(event.Event{ID: "c1", Type: event.ProductClick, Viewer: "v1", Room: "r1", Live: "L1", SKU: "sku-x", At: now, Role: event.RoleViewer})
		watch := event.Event{ID: "w1", Type: event.WatchStart, Viewer: "v1", Room: "r1", Live: "L1", At: now, Role: event.RoleViewer}
		seg.Apply(watch)
		v, s, ok := p.Snapshot(ctx, "v1", "L1")
		if !ok {
			t.Fatal("no snapshot")
		}
		eng.OnEvent(ctx, v, s, watch)
		time.Sleep(1500 * time.Millisecond) // made ready at 1 s
		change(p, seg)
		time.Sleep(1500 * time.Millisecond) // past the threshold
		synctest.Wait()
		sent = out.sent()
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
