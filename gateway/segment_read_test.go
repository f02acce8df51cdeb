package gateway

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestProfileHasEveryDocumentedField: GET /api/viewers/{id} names every field
// docs/segmentation.md ("API", Profile) lists, for any viewer: a dashboard reads
// v.name and v.aliases.length, and each live session's room and each recent event's
// detail, without checking that they exist.
func TestProfileHasEveryDocumentedField(t *testing.T) {
	srv, _, issue := segmentServer(t)
	admin, agent := issue("admin", "*"), issue("agent", "*")
	now := time.Now().UTC()
	body := `[{"id":"a1","type":"watch","viewer":"plain","live":"L1","at":"` + now.Add(-time.Hour).Format(time.RFC3339) + `","seconds":60},
	{"id":"a2","type":"like","viewer":"plain","at":"` + now.Add(-time.Minute).Format(time.RFC3339) + `"}]`
	if a := call(t, srv, "POST", "/api/events", admin, "application/json", body); a.status != 200 || !strings.Contains(a.body, `"accepted":2`) {
		t.Fatalf("import: %d %s", a.status, a.body)
	}
	a := call(t, srv, "GET", "/api/viewers/plain", agent, "", "")
	var v map[string]any
	if err := json.Unmarshal([]byte(a.body), &v); err != nil || a.status != 200 {
		t.Fatalf("profile: %d %s", a.status, a.body)
	}
	var missing []string
	for _, k := range []string{"id", "name", "aliases", "first_seen", "last_seen", "last_visit", "sessions", "watch_seconds", "comments",
		"likes", "gifts", "gift_value", "product_clicks", "orders", "spend", "aov", "currency", "last_order", "categories_bought",
		"price_band", "windows", "live_sessions", "consent", "tags", "tags_since", "reasons", "rfm", "recent_events"} {
		if _, ok := v[k]; !ok {
			missing = append(missing, k)
		}
	}
	if lives, _ := v["live_sessions"].([]any); len(lives) == 1 {
		for _, k := range []string{"live", "room", "start", "watch_seconds", "watching"} {
			if _, ok := lives[0].(map[string]any)[k]; !ok {
				missing = append(missing, "live_sessions[]."+k)
			}
		}
	} else {
		t.Errorf("live_sessions %v", v["live_sessions"])
	}
	for _, e := range v["recent_events"].([]any) {
		for _, k := range []string{"at", "type", "detail"} {
			if _, ok := e.(map[string]any)[k]; !ok {
				missing = append(missing, fmt.Sprintf("recent_events[%s].%s", e.(map[string]any)["type"], k))
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("the profile lacks %v: %s", missing, a.body)
	}
}

// TestMembersPagesWhileProfilesChange walks a tag's members a page at a time
// while profiles are added, erased and changed between pages: every member present
// throughout appears exactly once, and the last page has no next.
func TestMembersPagesWhileProfilesChange(t *testing.T) {
	srv, _, issue := segmentServer(t)
	admin, agent := issue("admin", "*"), issue("agent", "*")
	at := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	item := func(id, viewer string) string {
		return `{"id":"` + id + `","type":"watch","viewer":"` + viewer + `","at":"` + at + `","seconds":30}`
	}
	var items []string
	for i := range 50 {
		items = append(items, item(fmt.Sprint("e", i), fmt.Sprintf("v%03d", i*2)))
	}
	if a := call(t, srv, "POST", "/api/events", admin, "application/json", "["+strings.Join(items, ",")+"]"); a.status != 200 {
		t.Fatal(a.body)
	}
	seen := map[string]int{}
	after, pages := "", 0
	for {
		a := call(t, srv, "GET", "/api/segments/activity/low?limit=7&after="+url.QueryEscape(after), agent, "", "")
		var page struct {
			Members []struct{ ID string }
			Next    *string
		}
		if err := json.Unmarshal([]byte(a.body), &page); err != nil || a.status != 200 {
			t.Fatalf("%d %s", a.status, a.body)
		}
		for _, m := range page.Members {
			seen[m.ID]++
		}
		pages++
		if page.Next == nil {
			break
		}
		after = *page.Next
		// Between pages: a new member before and after the cursor, one erased ahead,
		// one changed (a comment makes it medium) ahead.
		n := pages
		call(t, srv, "POST", "/api/events", admin, "application/json", "["+item(fmt.Sprint("n", n), fmt.Sprintf("v%03d", n*2+1))+","+
			item(fmt.Sprint("m", n), fmt.Sprintf("w%03d", n))+"]")
		call(t, srv, "DELETE", "/api/viewers/"+fmt.Sprintf("v%03d", 98-n*2), admin, "", "")
		call(t, srv, "POST", "/api/events", admin, "application/json", `[{"id":"c`+fmt.Sprint(n)+`","type":"danmaku","viewer":"`+fmt.Sprintf("v%03d", 60+n*2)+`","at":"`+at+`","text":"hi"}]`)
		if pages > 100 {
			t.Fatal("no end")
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s listed %d times", id, n)
		}
	}
	for i := 0; i < 50; i++ {
		id := fmt.Sprintf("v%03d", i*2)
		if i*2 >= 60 { // may have been changed or erased
			continue
		}
		if seen[id] != 1 {
			t.Errorf("%s (a member throughout) listed %d times", id, seen[id])
		}
	}
}

// TestPathIDs: a viewer id with a slash, a space, a percent sign or a question
// mark is found when escaped in the path; a preference tag with a slash too.
func TestPathIDs(t *testing.T) {
	srv, _, issue := segmentServer(t)
	admin := issue("admin", "*")
	at := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	ids := []string{"a/b", "a b", "50%", "q?x", "h#1", "ünï", "email:Bob@X.io"}
	var items []string
	for i, id := range ids {
		b, _ := json.Marshal(id)
		items = append(items, `{"id":"p`+fmt.Sprint(i)+`","type":"product_click","viewer":`+string(b)+`,"category":"shoes/boots","at":"`+at+`"}`)
	}
	if a := call(t, srv, "POST", "/api/events", admin, "application/json", "["+strings.Join(items, ",")+"]"); a.status != 200 || !strings.Contains(a.body, `"errors":[]`) {
		t.Fatal(a.body)
	}
	for _, id := range ids {
		a := call(t, srv, "GET", "/api/viewers/"+url.PathEscape(id), admin, "", "")
		if a.status != 200 {
			t.Errorf("GET %q: %d %s", id, a.status, a.body)
		}
	}
	a := call(t, srv, "GET", "/api/segments/preference/"+url.PathEscape("shoes/boots"), admin, "", "")
	if a.status != 200 || !strings.Contains(a.body, `"total":7`) {
		t.Errorf("members of shoes/boots: %d %s", a.status, a.body)
	}
}

// TestAnalyticsByHand checks every figure of /api/analytics on a small history.
func TestAnalyticsByHand(t *testing.T) {
	srv, _, issue := segmentServer(t)
	admin := issue("admin", "*")
	now := time.Now().UTC()
	n := 0
	ev := func(typ, viewer, room string, daysAgo int, extra string) string {
		n++
		r := ""
		if room != "" {
			r = `,"room":"` + room + `"`
		}
		return fmt.Sprintf(`{"id":"x%d","type":%q,"viewer":%q%s,"at":%q%s}`, n, typ, viewer, r, now.Add(-time.Duration(daysAgo)*24*time.Hour).Format(time.RFC3339), extra)
	}
	order := func(v, room string, d int) string {
		return ev("order", v, room, d, fmt.Sprintf(`,"order_id":"o%d","total":"5"`, n+1))
	}
	items := []string{
		order("A", "r1", 60), order("A", "r1", 50),
		order("B", "r1", 60), order("B", "", 20),
		order("C", "r2", 10), ev("danmaku", "C", "r2", 1, `,"text":"hi"`),
		order("D", "r2", 40),
		ev("watch", "E", "r2", 40, `,"seconds":10`),
		ev("watch", "F", "r2", 100, `,"seconds":10`),
	}
	if a := call(t, srv, "POST", "/api/events", admin, "application/json", "["+strings.Join(items, ",")+"]"); a.status != 200 || !strings.Contains(a.body, `"errors":[]`) {
		t.Fatal(a.body)
	}
	for q, want := range map[string]string{
		"":         `{"repurchase_30d":0.3333333333333333,"first_buyers_30d_old":3,"repurchased_within_30d":1,"dormant_share":0.6666666666666666,"dormant_or_churned":4,"funnel":{"viewers":6,"engaged":1,"first_order":4,"repeat":2},"dm_conversion":null}`,
		"?room=r1": `{"room":"r1","repurchase_30d":0.5,"first_buyers_30d_old":2,"repurchased_within_30d":1,"dormant_share":0.5,"dormant_or_churned":1,"funnel":{"viewers":2,"engaged":0,"first_order":2,"repeat":2},"dm_conversion":null}`,
		"?room=r3": `{"room":"r3","repurchase_30d":null,"first_buyers_30d_old":0,"repurchased_within_30d":0,"dormant_share":null,"dormant_or_churned":0,"funnel":{"viewers":0,"engaged":0,"first_order":0,"repeat":0},"dm_conversion":null}`,
	} {
		if a := call(t, srv, "GET", "/api/analytics"+q, admin, "", ""); a.status != 200 || strings.TrimSpace(a.body) != want {
			t.Errorf("analytics%s: %d\n%s\nwant\n%s", q, a.status, a.body, want)
		}
	}
}
