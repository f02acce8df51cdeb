package segment

import (
	"reflect"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
)

// TestBriefMatchesViewerView: the rules' lean Brief says what the profile page's
// ViewerView says, for every viewer of a synthetic live history and each of its lives.
func TestBriefMatchesViewerView(t *testing.T) {
	// One instant for the whole test: an open session's watch time runs with the
	// clock, and Brief and ViewerView, read a moment apart, could straddle a second.
	now := time.Now()
	e, g := syntheticEngine(t, testConfig(), 300, 20_000, now.Add(-time.Hour), func() time.Time { return now })
	checked, withLive, withComment := 0, 0, 0
	for _, id := range g.Viewers {
		vv, err := e.Viewer(t.Context(), id)
		if err != nil {
			continue
		}
		lives := []string{"", "no-such-live"}
		for _, l := range vv.LiveSessions {
			lives = append(lives, l.Live)
		}
		for _, live := range lives {
			b, err := e.Brief(t.Context(), id, live)
			if err != nil {
				t.Fatal(err)
			}
			want := briefFromView(vv, live)
			b.Preference, want.Preference = nonNil(b.Preference), nonNil(want.Preference)
			if !briefEqual(b, want, vv, live) {
				t.Fatalf("viewer %s live %q:\n brief %+v\n view  %+v", id, live, b, want)
			}
			checked++
			if b.Live.Live != "" {
				withLive++
			}
			if b.LastComment != "" {
				withComment++
			}
		}
	}
	if checked < 300 || withLive == 0 || withComment == 0 {
		t.Fatalf("too little compared: %d briefs, %d with a live, %d with a comment", checked, withLive, withComment)
	}
}

// briefFromView is what a Brief should hold, read off the ViewerView (whose Recent is
// newest first).
func briefFromView(vv ViewerView, live string) Brief {
	b := Brief{ID: vv.ID, Name: vv.Name, Sessions: vv.Sessions, Orders: vv.Orders, Comments: vv.Comments,
		Likes: vv.Likes, Spend: vv.Spend, AOV: vv.AOV, Consent: vv.Consent}
	b.Activity, _ = vv.Tags[DimActivity].(string)
	b.Value, _ = vv.Tags[DimValue].(string)
	b.Lifecycle, _ = vv.Tags[DimLifecycle].(string)
	b.Preference, _ = vv.Tags[DimPreference].([]string)
	if vv.LastOrder != nil {
		b.LastOrder = *vv.LastOrder
	}
	for _, l := range vv.LiveSessions {
		if l.Live == live && live != "" {
			b.Live = LiveBrief{Live: l.Live, Room: l.Room, Start: l.Start, Watching: l.Watching}
		}
	}
	for _, r := range vv.Recent {
		switch r.Type {
		case string(event.Danmaku):
			if b.LastComment == "" {
				b.LastComment = r.Detail
			}
			if b.Live.Live != "" && !r.At.Before(b.Live.Start) {
				b.LiveComments++
			}
		case string(event.ProductClick):
			if b.LastSKU == "" {
				b.LastSKU = r.Detail
			}
		}
	}
	return b
}

// briefEqual compares a Brief with one read off a view, whose watch times are whole
// seconds (the Brief's are milliseconds).
func briefEqual(a, want Brief, view ViewerView, live string) bool {
	if int64(a.Watch/time.Second) != view.WatchSeconds {
		return false
	}
	for _, l := range view.LiveSessions {
		if l.Live == live && int64(a.Live.Watch/time.Second) != l.WatchSeconds {
			return false
		}
	}
	if (a.Live.Live != "") == a.Live.AsOf.IsZero() { // a live session says when it was measured
		return false
	}
	a.Live.AsOf = time.Time{}
	la, lb, sa, sb := a.LastOrder, want.LastOrder, a.Live.Start, want.Live.Start
	a.LastOrder, want.LastOrder, a.Live.Start, want.Live.Start = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	a.Watch, a.Live.Watch = 0, 0
	return la.Equal(lb) && sa.Equal(sb) && reflect.DeepEqual(a, want)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
