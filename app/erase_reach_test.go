package app

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/rules"
	"github.com/liveroom/liveroom/segment"
	"github.com/liveroom/liveroom/token"
)

// TestEraseReachesAMixedCaseEmailTokensChat: a viewer whose chat token names an
// e-mail key in mixed case ("email:Ann@Shop.com") has one profile, under the key in
// lower case (docs/segmentation.md: "a chat token's subject included"). Erasing that
// profile must also erase what chat holds of it: its private conversation and its
// danmaku in the room's history.
func TestEraseReachesAMixedCaseEmailTokensChat(t *testing.T) {
	a, base := startApp(t, testConfig(t))
	const room = "shop"
	const sub = "email:Ann@Shop.com"
	issue := issuer(t, a, room)
	agentTok := issue(event.RoleAgent, "agent1")
	viewerTok := issue(event.RoleViewer, sub)
	root, _ := a.Signer().Issue(token.Spec{User: "root", Role: event.RoleAdmin, Room: token.AnyRoom, TTL: time.Hour})

	agent := dialRoom(t, base, room, agentTok)
	v := dialRoom(t, base, room, viewerTok)
	v.send(t, map[string]any{"type": "danmaku", "text": "zanzibar-danmaku"})
	agent.send(t, map[string]any{"type": "dm", "to": sub, "text": "zanzibar-agent-dm"})
	waitUntil(t, "the agent's DM", func() bool { return len(v.of("dm")) >= 1 })
	v.send(t, map[string]any{"type": "dm", "text": "zanzibar-viewer-dm"})
	waitUntil(t, "the viewer's DM", func() bool { return len(agent.of("dm")) >= 2 })
	dmURL := base + "/api/rooms/" + room + "/dm/" + sub
	waitUntil(t, "the DMs stored", func() bool {
		_, b := api(t, "GET", dmURL, agentTok, "")
		return strings.Count(string(b), "zanzibar") >= 2
	})
	waitUntil(t, "the profile", func() bool {
		code, _ := api(t, "GET", base+"/api/viewers/email:ann@shop.com", root, "")
		return code == 200
	})

	if code, b := api(t, "DELETE", base+"/api/viewers/"+sub, root, ""); code != 204 {
		t.Fatalf("erase: %d %s", code, b)
	}
	if code, b := api(t, "GET", base+"/api/viewers/email:ann@shop.com", root, ""); code != 404 {
		t.Fatalf("profile after the erase: %d %s", code, b)
	}
	if _, b := api(t, "GET", dmURL, agentTok, ""); strings.Contains(string(b), "zanzibar") {
		t.Errorf("the viewer's private conversation survived its erasure: %s", b)
	}
	// A fresh connection's welcome carries the room's recent history.
	other := dialRoom(t, base, room, issue(event.RoleViewer, "someone-else"))
	w, _ := json.Marshal(other.of("welcome"))
	if strings.Contains(string(w), "zanzibar-danmaku") {
		t.Errorf("the viewer's danmaku survived its erasure in the room's history: %s", w)
	}
}

// TestEraseOfAnIdWithANoteButNoProfile: an agent's note is kept under the id it was
// written for, whether or not a profile has that id (one typed in by hand, or a viewer
// erased a moment before while the console still showed it). DELETE then answers 404
// and the note, with whatever the agent wrote about that person, stays for good.
func TestEraseOfAnIdWithANoteButNoProfile(t *testing.T) {
	a, base := startApp(t, testConfig(t))
	issue := issuer(t, a, "shop")
	agentTok := issue(event.RoleAgent, "agent1")
	root, _ := a.Signer().Issue(token.Spec{User: "root", Role: event.RoleAdmin, Room: token.AnyRoom, TTL: time.Hour})
	const id = "guest-without-profile"
	if code, b := api(t, "POST", base+"/api/viewers/"+id+"/notes", agentTok, `{"text":"zanzibar: lives at 1 Main St"}`); code != 204 {
		t.Fatalf("note: %d %s", code, b)
	}
	// An agent's DM to the id: staff's DM to someone unknown makes no profile.
	agent := dialRoom(t, base, "shop", agentTok)
	agent.send(t, map[string]any{"type": "dm", "to": id, "text": "zanzibar-agent-dm"})
	dmURL := base + "/api/rooms/shop/dm/" + id
	waitUntil(t, "the DM stored", func() bool {
		_, b := api(t, "GET", dmURL, agentTok, "")
		return strings.Contains(string(b), "zanzibar-agent-dm")
	})
	code, b := api(t, "GET", base+"/api/viewers/"+id+"/export", root, "")
	t.Logf("export: %d %s", code, b)
	if code != 200 || !strings.Contains(string(b), "lives at 1 Main St") || !strings.Contains(string(b), "zanzibar-agent-dm") {
		t.Errorf("the export (%d) does not show the note and the DM held about %s", code, id)
	}
	code, b = api(t, "DELETE", base+"/api/viewers/"+id, root, "")
	t.Logf("erase: %d %s", code, b)
	if _, acts := api(t, "GET", base+"/api/viewers/"+id+"/actions", agentTok, ""); strings.Contains(string(acts), "zanzibar") {
		t.Errorf("after DELETE (%d) the note about %s is still held: %s", code, id, acts)
	}
	if _, dms := api(t, "GET", dmURL, agentTok, ""); strings.Contains(string(dms), "zanzibar") {
		t.Errorf("after DELETE (%d) the DM to %s is still held: %s", code, id, dms)
	}
	if code, b := api(t, "DELETE", base+"/api/viewers/nobody-at-all", root, ""); code != 404 {
		t.Errorf("erase of an id nothing is held about: %d %s, want 404", code, b)
	}
}

// TestExportShowsPendingJobs: a first order schedules the 7-day follow-up (a job in
// the rules' state, with a snapshot of the viewer: name, figures, last comment). The
// export must show everything held about the viewer.
func TestExportShowsPendingJobs(t *testing.T) {
	cfg := testConfig(t)
	cfg.Segment.ShopSecret = shopSecret
	a, base := startApp(t, cfg)
	const room = "shop"
	root, _ := a.Signer().Issue(token.Spec{User: "root", Role: event.RoleAdmin, Room: token.AnyRoom, TTL: time.Hour})
	viewerTok, viewer := guest(t, base, room)
	v := dialRoom(t, base, room, viewerTok)
	v.send(t, map[string]any{"type": "danmaku", "text": "zanzibar-comment"})
	waitUntil(t, "the profile", func() bool {
		code, _ := api(t, "GET", base+"/api/viewers/"+viewer, root, "")
		return code == 200
	})
	if code, b := shopifyOrder(t, base, "3001", viewer, room, true); code != 200 {
		t.Fatalf("order: %d %s", code, b)
	}
	waitUntil(t, "the thank-you DM", func() bool { return len(v.of("dm")) >= 1 })
	waitUntil(t, "the follow-up job", func() bool {
		jobs, _ := a.book.firings.(rules.State).Jobs(t.Context())
		return len(jobs) > 0
	})
	jobs, _ := a.book.firings.(rules.State).Jobs(t.Context())
	held, _ := json.Marshal(jobs)
	t.Logf("held in the rules' state: %s", held)
	code, b := api(t, "GET", base+"/api/viewers/"+viewer+"/export", root, "")
	if code != 200 {
		t.Fatalf("export: %d %s", code, b)
	}
	var exp struct {
		Elsewhere json.RawMessage `json:"elsewhere"`
	}
	json.Unmarshal(b, &exp)
	t.Logf("export's elsewhere: %s", exp.Elsewhere)
	if !strings.Contains(string(b), jobs[0].ID) {
		t.Errorf("the export does not show the pending job %s (rule %s, due %v) that holds the viewer's snapshot", jobs[0].ID, jobs[0].RuleID, jobs[0].Due.Format(time.DateOnly))
	}
}

// TestEraseForgetsTheTimeZoneOfAMixedCaseEmailToken: the player reports its zone under
// its token's subject; for a subject naming an e-mail key in mixed case, the erasure
// of the viewer's profile (the key in lower case) must forget that zone too.
func TestEraseForgetsTheTimeZoneOfAMixedCaseEmailToken(t *testing.T) {
	a, base := startApp(t, testConfig(t))
	const sub = "email:Ann@Shop.com"
	issue := issuer(t, a, "shop")
	viewerTok := issue(event.RoleViewer, sub)
	root, _ := a.Signer().Issue(token.Spec{User: "root", Role: event.RoleAdmin, Room: token.AnyRoom, TTL: time.Hour})
	v := dialRoom(t, base, "shop", viewerTok)
	v.send(t, map[string]any{"type": "like", "count": 1})
	if code, b := api(t, "PUT", base+"/api/me/timezone", viewerTok, `{"tz":"Asia/Shanghai"}`); code != 204 {
		t.Fatalf("time zone: %d %s", code, b)
	}
	waitUntil(t, "the profile", func() bool {
		code, _ := api(t, "GET", base+"/api/viewers/email:ann@shop.com", root, "")
		return code == 200
	})
	if code, b := api(t, "DELETE", base+"/api/viewers/email:ann@shop.com", root, ""); code != 204 {
		t.Fatalf("erase: %d %s", code, b)
	}
	for _, id := range []string{sub, "email:ann@shop.com"} {
		if z, ok := a.book.zones.load(id); ok {
			t.Errorf("after the erasure the node still keeps the viewer's time zone %q under %q", z, id)
		}
	}
}

// TestEraseOfAProfileStoredUnderAMixedCaseEmailKey: a profile stored under a
// mixed-case e-mail key (before keys were kept in lower case) is found by the key in
// lower case, under which the API keeps what agents write about it (notes: the path's
// id is lower-cased). Erasing the profile must erase that too.
func TestEraseOfAProfileStoredUnderAMixedCaseEmailKey(t *testing.T) {
	cfg := testConfig(t)
	store, err := segment.OpenJournal(filepath.Join(cfg.Data, SegmentFile), time.Second, 1<<20, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	legacy := fmt.Sprintf(`{"id":"email:Bob@Shop.com","first_seen":%d,"last_seen":%d,"likes":2}`, now, now)
	if err := store.Commit(t.Context(), &segment.Batch{Profiles: []segment.Record{{Key: "email:Bob@Shop.com", Data: []byte(legacy)}}}); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	a, base := startApp(t, cfg)
	agentTok := issuer(t, a, "shop")(event.RoleAgent, "agent1")
	root, _ := a.Signer().Issue(token.Spec{User: "root", Role: event.RoleAdmin, Room: token.AnyRoom, TTL: time.Hour})
	if code, b := api(t, "GET", base+"/api/viewers/email:Bob@Shop.com", root, ""); code != 200 {
		t.Fatalf("the stored profile: %d %s", code, b)
	}
	if code, b := api(t, "POST", base+"/api/viewers/email:Bob@Shop.com/notes", agentTok, `{"text":"zanzibar: prefers calls"}`); code != 204 {
		t.Fatalf("note: %d %s", code, b)
	}
	if code, b := api(t, "DELETE", base+"/api/viewers/email:Bob@Shop.com", root, ""); code != 204 {
		t.Fatalf("erase: %d %s", code, b)
	}
	for _, id := range []string{"email:Bob@Shop.com", "email:bob@shop.com"} {
		held, _ := a.book.firings.Actions(t.Context(), id)
		for _, act := range held {
			t.Errorf("after the erasure the rules still hold under %q: %s %q", id, act.Type, act.Detail)
		}
	}
}
