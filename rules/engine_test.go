package rules

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/liveroom/liveroom/event"
)

var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC) // a Monday, noon UTC

func orderEvent(id string, at time.Time) event.Event {
	return event.Event{ID: id, Type: event.Order, At: at, Order: &event.OrderInfo{OrderID: "o-" + id, Total: "59.90", Currency: "USD",
		Items: []event.Item{{SKU: "sku-1", Category: "shoes", Price: "59.90", Quantity: 1}}}}
}

func dmRule(extra string) Document {
	doc, err := Parse([]byte(`{"rules":[{"id":"hello","trigger":{"event":["danmaku"]},
		"action":{"type":"dm","text":"Hi {{.Viewer.Name}}, about \"{{.Event.Text}}\""}` + extra + `}]}`))
	if err != nil {
		panic(err)
	}
	return doc
}

func TestCooldownAndCap(t *testing.T) {
	clock := &manualClock{t: t0}
	e, out, _ := start(t, mustCompile(t, dmRule(`,"cooldown":"10m","cap":2`)), clock)
	ctx := context.Background()
	v, s := viewer("v1"), Session{Room: "r1"}
	say := func() { e.OnEvent(ctx, v, s, event.Event{Type: event.Danmaku, Text: "price?", At: clock.Now()}) }
	say()
	say() // inside the cooldown
	clock.Add(9 * time.Minute)
	say() // still inside
	clock.Add(time.Minute)
	say() // cooldown over: second firing
	clock.Add(time.Hour)
	say() // cap of 2 reached
	_, dms := out.sent()
	if len(dms) != 2 {
		t.Fatalf("%d DMs, want 2 (cooldown 10m, cap 2): %+v", len(dms), dms)
	}
	if dms[0].text != `Hi Name v1, about "price?"` || dms[0].rule != "hello" || dms[0].room != "r1" {
		t.Fatalf("dm: %+v", dms[0])
	}
	// Another viewer has limits of their own.
	e.OnEvent(ctx, viewer("v2"), s, event.Event{Type: event.Danmaku, Text: "hi", At: clock.Now()})
	if _, dms = out.sent(); len(dms) != 3 {
		t.Fatalf("second viewer limited by the first's counters")
	}
	acts, _ := e.Actions(ctx, "v1")
	if len(acts) != 2 || acts[0].RuleID != "hello" || acts[0].Type != ActDM {
		t.Fatalf("actions: %+v", acts)
	}
}

func TestConsent(t *testing.T) {
	doc := dmRule("")
	doc.Rules = append(doc.Rules, RuleSpec{ID: "p", Trigger: TriggerSpec{Event: []string{"danmaku"}},
		Action: ActionSpec{Type: ActPrompt, Text: "talk to {{.Viewer.Name}}"}},
		RuleSpec{ID: "t", Trigger: TriggerSpec{Event: []string{"danmaku"}}, Action: ActionSpec{Type: ActTag, Tag: "talker"}})
	e, out, _ := start(t, mustCompile(t, doc), &manualClock{t: t0})
	v := viewer("v1")
	v.Consent = false
	e.OnEvent(context.Background(), v, Session{Room: "r1"}, event.Event{Type: event.Danmaku, Text: "x"})
	prompts, dms := out.sent()
	if len(prompts)+len(dms) != 0 {
		t.Fatalf("opted-out viewer got %d prompts, %d DMs", len(prompts), len(dms))
	}
	acts, _ := e.Actions(context.Background(), "v1")
	if len(acts) != 1 || acts[0].Type != ActTag {
		t.Fatalf("a tag action still applies without consent: %+v", acts)
	}
	if e.Stats().ConsentSkipped != 2 {
		t.Fatalf("stats: %+v", e.Stats())
	}
}

// TestMessageWithoutRoomNotSent: a DM or prompt for a viewer with no room known (an
// order naming none, from a viewer never seen in one) is skipped and counted, not
// recorded as sent and its cap used; a tag still applies.
func TestMessageWithoutRoomNotSent(t *testing.T) {
	doc := dmRule("")
	doc.Rules[0].Cap = 1
	doc.Rules = append(doc.Rules, RuleSpec{ID: "p", Trigger: TriggerSpec{Event: []string{"danmaku"}},
		Action: ActionSpec{Type: ActPrompt, Text: "talk to {{.Viewer.Name}}"}},
		RuleSpec{ID: "t", Trigger: TriggerSpec{Event: []string{"danmaku"}}, Action: ActionSpec{Type: ActTag, Tag: "talker"}})
	e, out, _ := start(t, mustCompile(t, doc), &manualClock{t: t0})
	ctx := context.Background()
	e.OnEvent(ctx, viewer("v1"), Session{}, event.Event{Type: event.Danmaku, Text: "x"})
	if prompts, dms := out.sent(); len(prompts)+len(dms) != 0 {
		t.Fatalf("with no room: %d prompts, %d DMs sent", len(prompts), len(dms))
	}
	if acts, _ := e.Actions(ctx, "v1"); len(acts) != 1 || acts[0].Type != ActTag {
		t.Fatalf("only the tag is recorded: %+v", acts)
	}
	if s := e.Stats(); s.NoRoom != 2 || s.Errors != 0 {
		t.Fatalf("stats: %+v", s)
	}
	// The DM's cap of 1 was not used: with a room, it goes out.
	e.OnEvent(ctx, viewer("v1"), Session{Room: "r1"}, event.Event{Type: event.Danmaku, Text: "x"})
	if _, dms := out.sent(); len(dms) != 1 || dms[0].room != "r1" {
		t.Fatalf("then in room r1: %+v", dms)
	}
}

func TestQuietHoursInViewerZone(t *testing.T) {
	// 12:00 UTC is 20:00 in Shanghai: inside 19:00-08:00 there, outside in London.
	for _, mode := range []string{"defer", "drop"} {
		t.Run(mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				doc := dmRule("")
				doc.QuietHours = &QuietSpec{Start: "19:00", End: "08:00", Mode: mode}
				e, out, st := start(t, mustCompile(t, doc), nil)
				ctx := context.Background()
				london, shanghai := viewer("london"), viewer("shanghai")
				london.TimeZone, shanghai.TimeZone = "Europe/London", "Asia/Shanghai"
				// Move the bubble's clock to noon UTC.
				now := time.Now().UTC()
				noon := time.Date(now.Year(), now.Month(), now.Day()+1, 12, 0, 0, 0, time.UTC)
				time.Sleep(noon.Sub(now))
				for _, v := range []Viewer{london, shanghai} {
					e.OnEvent(ctx, v, Session{Room: "r1"}, event.Event{Type: event.Danmaku, Text: "hi", At: time.Now()})
				}
				_, dms := out.sent()
				if len(dms) != 1 || dms[0].viewer != "london" {
					t.Fatalf("during Shanghai's quiet hours: %+v", dms)
				}
				// 08:00 in Shanghai is 00:00 UTC: 12 hours on.
				time.Sleep(12*time.Hour - time.Second)
				synctest.Wait()
				if _, dms = out.sent(); len(dms) != 1 {
					t.Fatalf("deferred DM sent before the quiet hours ended")
				}
				time.Sleep(2 * time.Second)
				synctest.Wait()
				_, dms = out.sent()
				want := 1
				if mode == "defer" {
					want = 2
				}
				if len(dms) != want {
					t.Fatalf("mode %s: %d DMs after quiet hours, want %d", mode, len(dms), want)
				}
				if jobs, _ := st.Jobs(ctx); len(jobs) != 0 {
					t.Fatalf("jobs left: %+v", jobs)
				}
			})
		})
	}
}

// A snapshot measured before it reached the engine (the bridge was busy) still gets
// its prompt at the threshold: the timer counts from when the watch time was measured,
// not from when the engine armed it.
func TestStayTimerCountsFromSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, out, _ := start(t, mustCompile(t, DefaultRules(2*time.Second)), nil)
		measured := time.Now()
		time.Sleep(300 * time.Millisecond) // the snapshot's way to the engine
		s := Session{Room: "r1", Live: "live-1", Watching: true, WatchSeconds: 0.5, AsOf: measured}
		e.OnEvent(context.Background(), viewer("late"), s, event.Event{Type: event.WatchStart, At: measured})
		// Due at measured + 1.5 s, which is 1.2 s from now.
		time.Sleep(1200*time.Millisecond - 20*time.Millisecond)
		synctest.Wait()
		if prompts, _ := out.sent(); len(prompts) != 0 {
			t.Fatalf("prompt before the threshold: %+v", prompts)
		}
		time.Sleep(40 * time.Millisecond) // the threshold plus the wheel's tick
		synctest.Wait()
		if prompts, _ := out.sent(); len(prompts) != 1 {
			t.Fatalf("%d prompts at the threshold counted from the snapshot, want 1", len(prompts))
		}
	})
}

func TestStayTimerOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, out, _ := start(t, mustCompile(t, DefaultRules(2*time.Second)), nil)
		ctx := context.Background()
		live := Session{Room: "r1", Live: "live-1", Watching: true}
		stayer, buyer, optedOut, leaver := viewer("stayer"), viewer("buyer"), viewer("opted-out"), viewer("leaver")
		optedOut.Consent = false
		stayer.LastComment = "does it come in red?"
		stayer.LastCategory = "shoes"
		for _, v := range []Viewer{stayer, buyer, optedOut, leaver} {
			e.OnEvent(ctx, v, live, event.Event{Type: event.WatchStart, At: time.Now()})
		}
		if e.Stats().ArmedTimers != 4 {
			t.Fatalf("armed: %d", e.Stats().ArmedTimers)
		}
		time.Sleep(time.Second)
		// The buyer orders during the live; the leaver stops watching.
		bought := live
		bought.Orders = 1
		e.OnEvent(ctx, buyer, bought, orderEvent("b1", time.Now()))
		left := live
		left.Watching, left.WatchSeconds = false, 1
		e.OnEvent(ctx, leaver, left, event.Event{Type: event.WatchStop, At: time.Now()})
		// More events from the stayer do not move or double the timer.
		stay1 := live
		stay1.WatchSeconds, stay1.Comments = 1, 1
		e.OnEvent(ctx, stayer, stay1, event.Event{Type: event.Danmaku, Text: "does it come in red?", At: time.Now()})

		time.Sleep(time.Second - 20*time.Millisecond) // just before the threshold
		synctest.Wait()
		if prompts, _ := out.sent(); len(prompts) != 0 {
			t.Fatalf("prompt before the threshold: %+v", prompts)
		}
		time.Sleep(40 * time.Millisecond) // the threshold plus the wheel's tick
		synctest.Wait()
		prompts, _ := out.sent()
		if len(prompts) != 1 {
			t.Fatalf("%d prompts at the threshold, want 1 (the stayer): %+v", len(prompts), prompts)
		}
		p := prompts[0]
		if p.Viewer.ID != "stayer" || p.Room != "r1" || p.RuleID != RuleStay {
			t.Fatalf("prompt: %+v", p)
		}
		if !strings.Contains(p.Suggested, "does it come in red?") || !strings.Contains(p.Suggested, "shoes") {
			t.Fatalf("suggested line does not use the comment and category: %q", p.Suggested)
		}
		if !strings.HasPrefix(p.Reason, "watched 2s") || !strings.Contains(p.Reason, "1 comment, no order") {
			t.Fatalf("reason: %q", p.Reason)
		}
		// Watching on, leaving and coming back in the same live: still one prompt.
		e.OnEvent(ctx, stayer, live, event.Event{Type: event.Like, At: time.Now()})
		e.OnEvent(ctx, stayer, Session{Room: "r1", Live: "live-1"}, event.Event{Type: event.WatchStop, At: time.Now()})
		e.OnEvent(ctx, stayer, live, event.Event{Type: event.WatchStart, At: time.Now()})
		time.Sleep(time.Minute)
		synctest.Wait()
		if prompts, _ = out.sent(); len(prompts) != 1 {
			t.Fatalf("%d prompts after a minute more, want 1", len(prompts))
		}
		// The host's connection dropped and it went live again: a new live, but within
		// the rule's hour the stayer is not prompted again.
		watchLive := func(live string, want int) {
			t.Helper()
			e.OnEvent(ctx, stayer, Session{Room: "r1", Live: live, Watching: true}, event.Event{Type: event.WatchStart, At: time.Now()})
			time.Sleep(3 * time.Second)
			synctest.Wait()
			if prompts, _ = out.sent(); len(prompts) != want {
				t.Fatalf("%d prompts after watching %s, want %d", len(prompts), live, want)
			}
		}
		watchLive("live-2", 1)
		// A live after the hour is a new chance.
		time.Sleep(time.Hour)
		watchLive("live-3", 2)
	})
}

func TestFirstOrderThanksAndFollowUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, out, st := start(t, mustCompile(t, DefaultRules(5*time.Minute)), nil)
		ctx := context.Background()
		v := viewer("ann")
		v.Name, v.Orders = "Ann", 1
		first := time.Now()
		e.OnEvent(ctx, v, Session{Room: "r1"}, orderEvent("e1", first))
		_, dms := out.sent()
		if len(dms) != 1 || !strings.HasPrefix(dms[0].text, "Thank you for your first order, Ann") || dms[0].rule != RuleFirstThanks {
			t.Fatalf("thank-you DM: %+v", dms)
		}
		// The same event delivered twice schedules one follow-up.
		e.OnEvent(ctx, v, Session{Room: "r1"}, orderEvent("e1", first))
		if jobs, _ := st.Jobs(ctx); len(jobs) != 1 || !jobs[0].Due.Equal(first.Add(7*24*time.Hour)) {
			t.Fatalf("jobs: %+v", jobs)
		}
		// A second order is not a first order.
		v2 := v
		v2.Orders = 2
		e.OnEvent(ctx, v2, Session{Room: "r1"}, orderEvent("e2", time.Now()))
		if _, dms = out.sent(); len(dms) != 1 {
			t.Fatalf("second order thanked again")
		}
		time.Sleep(7*24*time.Hour - time.Minute)
		synctest.Wait()
		if prompts, _ := out.sent(); len(prompts) != 0 {
			t.Fatalf("follow-up before 7 days: %+v", prompts)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		prompts, _ := out.sent()
		if len(prompts) != 1 || prompts[0].RuleID != RuleFirstFollow || prompts[0].Reason != "first order o-e1 7 days ago" ||
			!strings.Contains(prompts[0].Suggested, "your shoes") || prompts[0].Room != "r1" {
			t.Fatalf("follow-up: %+v", prompts)
		}
		if jobs, _ := st.Jobs(ctx); len(jobs) != 0 {
			t.Fatalf("job kept after firing: %+v", jobs)
		}
	})
}

func TestTagChangeRules(t *testing.T) {
	clock := &manualClock{t: t0}
	e, out, _ := start(t, mustCompile(t, DefaultRules(5*time.Minute)), clock)
	ctx := context.Background()
	v := viewer("fan")
	v.Tags.Activity = "high"
	e.OnTagChange(ctx, v, Session{Room: "r1"}, TagChange{Dimension: "activity", From: "medium", To: "high", At: t0})
	e.OnTagChange(ctx, v, Session{Room: "r1"}, TagChange{Dimension: "value", From: "ordinary", To: "vip", At: t0})
	prompts, _ := out.sent()
	if len(prompts) != 1 || prompts[0].RuleID != RuleActivePerk || !strings.Contains(prompts[0].Suggested, "member perk") {
		t.Fatalf("perk prompt: %+v", prompts)
	}

	// Back from dormant: the tag change and the visit are one moment, one prompt.
	back := viewer("back")
	back.Tags.Activity = "dormant"
	e.OnEvent(ctx, back, Session{Room: "r1", Live: "l1", Watching: true}, event.Event{Type: event.Join, At: t0})
	back.Tags.Activity = "low"
	e.OnTagChange(ctx, back, Session{Room: "r1"}, TagChange{Dimension: "activity", From: "dormant", To: "low", At: t0})
	prompts, _ = out.sent()
	if len(prompts) != 2 || prompts[1].RuleID != RuleWelcomeVisit || prompts[1].Reason != "back after being dormant" {
		t.Fatalf("welcome-back prompts: %+v", prompts)
	}
	// A churned fan whose tag changes back gets it through the tag rule.
	ch := viewer("churned")
	e.OnTagChange(ctx, ch, Session{Room: "r1"}, TagChange{Dimension: "activity", From: "churned", To: "medium", At: t0})
	prompts, _ = out.sent()
	if len(prompts) != 3 || prompts[2].RuleID != RuleWelcomeTag || !strings.HasPrefix(prompts[2].Suggested, "Welcome back") {
		t.Fatalf("welcome-back by tag: %+v", prompts)
	}
}

// taken advances w to now and returns the timers handed out, in order, forgotten.
func taken(w *wheel, now time.Time) []*timer {
	var out []*timer
	for _, slot := range w.advance(now) {
		for _, t := range slot {
			out = append(out, t)
		}
	}
	w.forget(out)
	return out
}

func TestWheelFiresOnceInOrder(t *testing.T) {
	w := newWheel(10*time.Millisecond, 8, t0)
	w.schedule("a", t0.Add(25*time.Millisecond), 1)
	w.schedule("b", t0.Add(time.Second), 2) // several turns of an 8-slot wheel away
	w.schedule("c", t0.Add(30*time.Millisecond), 3)
	w.cancel("c")
	if got := taken(w, t0.Add(20*time.Millisecond)); len(got) != 0 {
		t.Fatalf("early: %v", got)
	}
	if got := taken(w, t0.Add(30*time.Millisecond)); len(got) != 1 || got[0].key != "a" {
		t.Fatalf("a: %v", got)
	}
	if got := taken(w, t0.Add(990*time.Millisecond)); len(got) != 0 {
		t.Fatalf("b early: %v", got)
	}
	if got := taken(w, t0.Add(5*time.Second)); len(got) != 1 || got[0].key != "b" || w.len() != 0 {
		t.Fatalf("b: %v", got)
	}
	// A due time in the past fires at the next advance.
	w.schedule("d", t0, 4)
	if got := taken(w, t0.Add(5*time.Second+10*time.Millisecond)); len(got) != 1 {
		t.Fatalf("past due: %v", got)
	}
	// Timers of several ticks advanced over at once come out tick by tick.
	base := t0.Add(6 * time.Second)
	for i := range 40 {
		w.schedule(fmt.Sprint("t", i), base.Add(time.Duration(39-i)*time.Millisecond), i)
	}
	got := taken(w, base.Add(50*time.Millisecond))
	if len(got) != 40 {
		t.Fatalf("%d of 40 timers", len(got))
	}
	for i := 1; i < len(got); i++ {
		if w.tickOf(got[i].due.Add(-time.Nanosecond)) < w.tickOf(got[i-1].due.Add(-time.Nanosecond)) {
			t.Fatalf("timer due %v came after one due a tick later (%v)", got[i].due, got[i-1].due)
		}
	}
}

// TestWheelNeverEarly: a far timer that moves into the slots as the loop wakes after
// a quiet spell of exactly half a turn is not handed out with the slot it shares
// with an earlier tick (it was, half a turn early, before the bound was strict).
func TestWheelNeverEarly(t *testing.T) {
	for _, slots := range []int{8, wheelSlots} {
		tick := 10 * time.Millisecond
		w := newWheel(tick, slots, t0)
		taken(w, t0.Add(tick)) // the cursor at tick 1
		due := t0.Add(time.Duration(1+slots)*tick + 5*time.Millisecond)
		w.schedule("x", due, 1)
		now := due.Add(-w.turn()/2 + time.Millisecond)
		if got := taken(w, now); len(got) != 0 {
			t.Fatalf("%d slots: handed out at %v a timer due at %v", slots, now.Sub(t0), due.Sub(t0))
		}
		if got := taken(w, due.Add(tick)); len(got) != 1 {
			t.Fatalf("%d slots: %d timers at the due time, want 1", slots, len(got))
		}
	}
}

// TestWheelTakenTimers: a timer handed out to be fired still counts as armed until
// it is forgotten, and neither a refresh nor a cancel touches it; a timer armed again
// under its key meanwhile is a new one that forgetting the old leaves alone.
func TestWheelTakenTimers(t *testing.T) {
	w := newWheel(10*time.Millisecond, 8, t0)
	w.schedule("a", t0.Add(5*time.Millisecond), 1)
	w.schedule("b", t0.Add(5*time.Millisecond), 2)
	slots := w.advance(t0.Add(10 * time.Millisecond))
	if len(slots) != 1 || len(slots[0]) != 2 {
		t.Fatalf("handed out: %v", slots)
	}
	a, b := slots[0]["a"], slots[0]["b"]
	to99 := func(any) any { return 99 }
	if !w.refresh("a", to99) || a.data != 1 {
		t.Fatalf("refresh of a timer being fired: armed %v, data %v", w.refresh("a", to99), a.data)
	}
	if !w.cancel("b") || w.near != 0 || w.len() != 1 {
		t.Fatalf("cancel of a timer being fired: near %d, %d in the index", w.near, w.len())
	}
	w.schedule("a", t0.Add(30*time.Millisecond), 3) // armed again while being fired
	w.forget([]*timer{a, b})
	if w.len() != 1 || w.near != 1 {
		t.Fatalf("after forget: %d armed, %d in slots, want the new a", w.len(), w.near)
	}
	if got := taken(w, t0.Add(30*time.Millisecond)); len(got) != 1 || got[0].data != 3 || w.len() != 0 {
		t.Fatalf("the new a: %v", got)
	}
}

// zonelessProfiles answers snapshots without a time zone, as the node does after a
// restart until the viewer's player sends the zone again.
type zonelessProfiles struct{}

func (zonelessProfiles) Snapshot(_ context.Context, id, live string) (Viewer, Session, bool) {
	return Viewer{ID: id, Name: "Name " + id, Consent: true}, Session{}, true
}

// TestDelayedJobKeepsViewerZone: an "after" job keeps the time zone the viewer had when
// it was scheduled when its fresh snapshot knows none, so a follow-up due at 20:00 in
// Shanghai (12:00 UTC) waits for the end of the viewer's quiet hours.
func TestDelayedJobKeepsViewerZone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		doc, err := Parse([]byte(`{"quiet_hours":{"start":"19:00","end":"08:00"},"rules":[{"id":"later",
			"trigger":{"timer":{"kind":"after","event":"danmaku","delay":"1h"}},"action":{"type":"dm","text":"Hi again"}}]}`))
		if err != nil {
			t.Fatal(err)
		}
		out, st := newOutbox(), NewMemoryState()
		e, err := New(DefaultConfig(), Deps{Outbox: out, State: st, Rules: mustCompile(t, doc), Profiles: zonelessProfiles{}})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close(context.Background())
		now := time.Now().UTC()
		eleven := time.Date(now.Year(), now.Month(), now.Day()+1, 11, 0, 0, 0, time.UTC) // 19:00 in Shanghai
		time.Sleep(eleven.Sub(now) - 30*time.Minute)                                     // 18:30 there: not quiet yet
		v := viewer("sh")
		v.TimeZone = "Asia/Shanghai"
		e.OnEvent(context.Background(), v, Session{Room: "r1"}, event.Event{Type: event.Danmaku, Text: "hi", At: time.Now()})
		time.Sleep(time.Hour + time.Minute) // the job is due at 19:30 in Shanghai
		synctest.Wait()
		if _, dms := out.sent(); len(dms) != 0 {
			t.Fatalf("sent during the viewer's quiet hours (the job lost the viewer's zone): %+v", dms)
		}
		time.Sleep(13 * time.Hour) // past 08:00 in Shanghai
		synctest.Wait()
		if _, dms := out.sent(); len(dms) != 1 {
			t.Fatalf("%d DMs after the quiet hours, want the deferred one", len(dms))
		}
	})
}

// TestHistoryFiresNothing: an event more than an hour old when it arrives (a shop's
// orders imported on day one), or a tag change it caused, fires no event or tag_change
// rule: no thank-you DM for last year's order, no perk prompt from imported activity.
// Its follow-up job still falls due from the order's time, and a recent one is thanked.
func TestHistoryFiresNothing(t *testing.T) {
	clock := &manualClock{t: t0}
	e, out, st := start(t, mustCompile(t, DefaultRules(5*time.Minute)), clock)
	ctx := context.Background()
	v := viewer("ann")
	v.Name, v.Orders = "Ann", 1
	e.OnEvent(ctx, v, Session{Room: "r1"}, orderEvent("old", t0.Add(-3*24*time.Hour)))
	v.Tags.Activity = "high"
	e.OnTagChange(ctx, v, Session{Room: "r1"}, TagChange{Dimension: "activity", From: "medium", To: "high", At: t0,
		CauseAt: t0.Add(-2 * time.Hour)})
	if prompts, dms := out.sent(); len(prompts)+len(dms) != 0 {
		t.Fatalf("history fired: prompts %+v dms %+v", prompts, dms)
	}
	if got := e.Stats().History; got != 2 {
		t.Fatalf("history skipped %d, want 2", got)
	}
	if jobs, _ := st.Jobs(ctx); len(jobs) != 1 || !jobs[0].Due.Equal(t0.Add(4*24*time.Hour)) {
		t.Fatalf("the follow-up of the 3-day-old order: %+v", jobs)
	}
	// Within the hour it is news: the thank-you goes out, and the perk prompt.
	w := viewer("bob")
	w.Name, w.Orders = "Bob", 1
	e.OnEvent(ctx, w, Session{Room: "r1"}, orderEvent("recent", t0.Add(-10*time.Minute)))
	w.Tags.Activity = "high"
	e.OnTagChange(ctx, w, Session{Room: "r1"}, TagChange{Dimension: "activity", From: "medium", To: "high", At: t0,
		CauseAt: t0.Add(-10 * time.Minute)})
	if prompts, dms := out.sent(); len(dms) != 1 || len(prompts) != 1 {
		t.Fatalf("recent events: prompts %+v dms %+v", prompts, dms)
	}
}

// A condition's run has a memory budget of MaxExprMemory: one that makes more (here a
// range of 20,000, which expr's default budget of a million lets through, and a
// million-element one that took half a second of each evaluation) fails and does not
// fire; one within the budget runs.
func TestConditionMemoryBudget(t *testing.T) {
	for _, tc := range []struct {
		when string
		fire bool
	}{
		{`count(1..100, # > 0) == 100`, true},
		{`count(1..20000, # > 0) > 0`, false},
		{`len(map(1..999999, # * 2)) > 0`, false},
	} {
		clock := &manualClock{t: t0}
		e, out, _ := start(t, mustCompile(t, dmRule(`,"when":"`+tc.when+`"`)), clock)
		e.OnEvent(context.Background(), viewer("v1"), Session{Room: "r1"}, event.Event{Type: event.Danmaku, Text: "hi", At: clock.Now()})
		if _, dms := out.sent(); (len(dms) == 1) != tc.fire {
			t.Errorf("when %s: %d DMs, want it to fire: %v", tc.when, len(dms), tc.fire)
		}
	}
}

// countWarns counts the warnings logged through it.
type countWarns struct {
	slog.Handler
	n *atomic.Int64
}

func (h countWarns) Enabled(context.Context, slog.Level) bool { return true }

func (h countWarns) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		h.n.Add(1)
	}
	return nil
}

// A condition that fails fails for every event: it is logged once a minute per rule,
// and each failure is counted.
func TestFailingConditionLoggedOnceAMinute(t *testing.T) {
	var warns atomic.Int64
	clock := &manualClock{t: t0}
	e, _, _ := start(t, mustCompile(t, dmRule(`,"when":"count(1..20000, # > 0) > 0"`)), clock, func(_ *Config, d *Deps) {
		d.Log = slog.New(countWarns{slog.DiscardHandler, &warns})
	})
	say := func() {
		e.OnEvent(context.Background(), viewer("v1"), Session{Room: "r1"}, event.Event{Type: event.Danmaku, Text: "hi", At: clock.Now()})
	}
	say()
	say()
	clock.Add(59 * time.Second)
	say()
	if n := warns.Load(); n != 1 {
		t.Fatalf("%d warnings in a minute, want 1", n)
	}
	clock.Add(time.Second)
	say()
	if n, errs := warns.Load(), e.Stats().Errors; n != 2 || errs != 4 {
		t.Fatalf("%d warnings and %d errors counted after a minute and four failures, want 2 and 4", n, errs)
	}
}
