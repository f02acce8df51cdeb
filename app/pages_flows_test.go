package app

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/internal/browser"
	"github.com/liveroom/liveroom/token"
)

// within waits until the expression is true in the tab, for at most d; it reports the
// expression's last value of show when it gives up.
func within(t testing.TB, ctx context.Context, d time.Duration, what, js, show string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](show))
			t.Fatalf("%s: not within %v (%s); the page shows %q", what, d, js, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// playerViewerID is the guest id the player in tab took (kept in localStorage).
func playerViewerID(t testing.TB, tab context.Context) string {
	t.Helper()
	pollJS(t, tab, "the guest token", `!!localStorage.getItem("liveroom.guest")`)
	return eval[string](t, tab, `JSON.parse(atob(localStorage.getItem("liveroom.guest").split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub`)
}

// TestPlayerRetriesGuestToken: a viewer behind an address whose guest tokens ran
// out for a moment (a busy carrier NAT when a live starts: 429) gets into the room once
// the limit lets it, instead of a player stuck on "Error" until reloaded by hand.
func TestPlayerRetriesGuestToken(t *testing.T) {
	cfg := testConfig(t)
	cfg.GuestRate = 10 // one every 6 s, burst 10
	_, base := startApp(t, cfg)
	bctx, _ := browser.New(t, context.Background())
	player, _ := browser.Tab(t, bctx)
	for i := 0; i < 12; i++ { // the address's guest tokens run out
		res, err := http.Post(base+"/api/rooms/nat/guest", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	if err := chromedp.Do(player, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(base+"/r/nat")); err != nil {
		t.Fatal(err)
	}
	within(t, player, 30*time.Second, "the player in the room once a guest token can be had",
		`document.getElementById("viewers").textContent === "1" && !!localStorage.getItem("liveroom.guest")`,
		`document.getElementById("status").hidden ? "" : document.getElementById("status").textContent`)
}

// TestBannedViewerReloads: a banned viewer who reloads the player is told it can
// no longer write in the room, as it was before the reload, rather than shown
// "Reconnecting…" for ever while its comments queue up unsent.
func TestBannedViewerReloads(t *testing.T) {
	a, base := startApp(t, testConfig(t))
	const room = "banned"
	bctx, _ := browser.New(t, context.Background())
	player, _ := browser.Tab(t, bctx)
	if err := chromedp.Do(player, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(base+"/r/"+room)); err != nil {
		t.Fatal(err)
	}
	pollJS(t, player, "the player's chat", `document.getElementById("viewers").textContent === "1"`)
	viewer := playerViewerID(t, player)
	hostTok, _ := a.Signer().Issue(token.Spec{User: "host", Role: event.RoleHost, Room: room, TTL: time.Hour})
	dialRoom(t, base, room, hostTok).send(t, map[string]any{"type": "ban", "user": viewer})
	pollJS(t, player, "the ban said", `document.getElementById("status").textContent.includes("no longer write")`)

	if err := chromedp.Do(player, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	if id := playerViewerID(t, player); id != viewer {
		t.Fatalf("the reloaded player is %s, not %s", id, viewer)
	}
	within(t, player, 15*time.Second, "the ban said after a reload",
		`!document.getElementById("status").hidden && document.getElementById("status").textContent.includes("no longer write")`,
		`(document.getElementById("status").hidden ? "[status hidden]" : document.getElementById("status").textContent) + " | toast: " + document.getElementById("toast").textContent`)
}

// TestConsoleListsAViewerOnce: a viewer the rules prompted, whose prompt waits in
// the queue, then writes a DM: the queue keeps one row for them (docs/web.md: a viewer
// who wrote "and who is not in the queue yet joins it"), live and after a reload.
func TestConsoleListsAViewerOnce(t *testing.T) {
	a, base := startApp(t, testConfig(t))
	const room = "once"
	admin, _ := a.Signer().Issue(token.Spec{User: "root", Role: event.RoleAdmin, Room: token.AnyRoom, TTL: time.Hour})
	doc := `{"rules":[{"id":"talker","trigger":{"event":["danmaku"]},"action":{"type":"prompt","text":"Hi {{.Viewer.Name}}","reason":"said {{.Viewer.LastComment}}"}}]}`
	if code, b := api(t, "PUT", base+"/api/rules", admin, doc); code != 200 {
		t.Fatalf("rules: %d %s", code, b)
	}
	bctx, _ := browser.New(t, context.Background())
	console, agentTok := agentConsole(t, a, bctx, base, room)
	ann, _ := a.Signer().Issue(token.Spec{User: "va", Name: "Ann", Role: event.RoleViewer, Room: room, TTL: time.Hour})
	ws := dialRoom(t, base, room, ann)
	ws.send(t, map[string]any{"type": "danmaku", "text": "nice scarf"})
	pollJS(t, console, "Ann's prompt", `[...document.querySelectorAll('#prompts li[data-viewer="va"]')].some((li) => li.textContent.includes("said nice scarf"))`)
	ws.send(t, map[string]any{"type": "dm", "text": "how much is it?", "id": "va-1"})
	viewerWrites(t, a, base, room, "vb", "Bob", "hi from Bob") // arrives after Ann's
	pollJS(t, console, "Bob in the queue", `document.querySelector('#prompts li[data-viewer="vb"]') !== null`)
	if rows := eval[[]string](t, console, `[...document.querySelectorAll('#prompts li[data-viewer="va"]')].map((li) => li.textContent)`); len(rows) != 1 {
		t.Errorf("Ann, prompted, then writing, has %d rows in the queue: %q", len(rows), rows)
	}

	waitStored(t, base, room, "va", agentTok, "how much is it?")
	if err := chromedp.Do(console, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	pollJS(t, console, "Bob in the reloaded queue", `document.querySelector('#prompts li[data-viewer="vb"]') !== null`)
	pollJS(t, console, "Ann's prompt in the reloaded queue", `[...document.querySelectorAll('#prompts li[data-viewer="va"]')].some((li) => li.textContent.includes("said nice scarf"))`)
	time.Sleep(time.Second)
	if rows := eval[[]string](t, console, `[...document.querySelectorAll('#prompts li[data-viewer="va"]')].map((li) => li.textContent)`); len(rows) != 1 {
		t.Errorf("after a reload Ann has %d rows in the queue: %q", len(rows), rows)
	}
}

// switchLanguage picks lang in the page's language switch.
func switchLanguage(t testing.TB, tab context.Context, lang string) {
	t.Helper()
	eval[bool](t, tab, fmt.Sprintf(`(() => { const s = document.getElementById("lang"); s.value = %q; s.dispatchEvent(new Event("change")); return true; })()`, lang))
}

// TestLanguageSwitchKeepsState: switching the language translates what a page
// shows; it does not put back the text the page started with: a banned viewer's player
// does not say "waiting for the host", and the console's conversation keeps its
// viewer's name.
func TestLanguageSwitchKeepsState(t *testing.T) {
	a, base := startApp(t, testConfig(t))
	const room = "lang"
	bctx, _ := browser.New(t, context.Background())

	console, _ := agentConsole(t, a, bctx, base, room)
	viewerWrites(t, a, base, room, "va", "Ann", "hello")
	pollJS(t, console, "Ann in the queue", `document.querySelector('#prompts li[data-viewer="va"] button') !== null`)
	eval[bool](t, console, `(document.querySelector('#prompts li[data-viewer="va"] button').click(), true)`)
	pollJS(t, console, "Ann's conversation", `document.getElementById("convo-title").textContent.includes("Ann")`)
	switchLanguage(t, console, "zh")
	if title := eval[string](t, console, `document.getElementById("convo-title").textContent`); title != "聊天 · Ann" {
		t.Errorf("the open conversation's title after switching to Chinese: %q, want %q", title, "聊天 · Ann")
	}
	switchLanguage(t, console, "en")

	player, _ := browser.Tab(t, bctx)
	if err := chromedp.Do(player, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(base+"/r/"+room)); err != nil {
		t.Fatal(err)
	}
	pollJS(t, player, "the player's chat", `Number(document.getElementById("viewers").textContent) >= 1`)
	viewer := playerViewerID(t, player)
	hostTok, _ := a.Signer().Issue(token.Spec{User: "host", Role: event.RoleHost, Room: room, TTL: time.Hour})
	dialRoom(t, base, room, hostTok).send(t, map[string]any{"type": "ban", "user": viewer})
	pollJS(t, player, "the ban said", `document.getElementById("status").textContent.includes("no longer write")`)
	switchLanguage(t, player, "zh")
	if s := eval[string](t, player, `document.getElementById("status").textContent`); s != "你已无法在此直播间发言" {
		t.Errorf("the banned viewer's player after switching to Chinese says %q, want %q", s, "你已无法在此直播间发言")
	}
}

// TestDanmakuLanesAfterToggle: a viewer who turns the comments off, picks a
// density and turns them on again still gets the lanes of that density: comments that
// arrive together fly side by side, not one lane at a time.
func TestDanmakuLanesAfterToggle(t *testing.T) {
	a, base := startApp(t, testConfig(t))
	const room = "lanes"
	bctx, _ := browser.New(t, context.Background())
	player, _ := browser.Tab(t, bctx)
	if err := chromedp.Do(player, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(base+"/r/"+room)); err != nil {
		t.Fatal(err)
	}
	pollJS(t, player, "the player's chat", `document.getElementById("viewers").textContent === "1"`)
	if err := chromedp.Do(player, chromedp.Click(chromedp.CSS("#danmaku-on"))); err != nil { // off
		t.Fatal(err)
	}
	eval[bool](t, player, `(() => { const s = document.getElementById("density"); s.value = "1"; s.dispatchEvent(new Event("change")); return true; })()`)
	if err := chromedp.Do(player, chromedp.Click(chromedp.CSS("#danmaku-on"))); err != nil { // on again
		t.Fatal(err)
	}
	if !eval[bool](t, player, `document.getElementById("danmaku-on").checked`) {
		t.Fatal("the comments are not on again")
	}
	// Every comment's lane (its top) as it is added.
	eval[bool](t, player, `(() => {
		window.__tops = [];
		new MutationObserver((ms) => { for (const m of ms) for (const n of m.addedNodes) window.__tops.push(n.style.top); })
			.observe(document.getElementById("danmaku-layer"), { childList: true });
		return true;
	})()`)
	v, _ := a.Signer().Issue(token.Spec{User: "v1", Name: "V", Role: event.RoleViewer, Room: room, TTL: time.Hour})
	ws := dialRoom(t, base, room, v)
	for i := 0; i < 4; i++ {
		ws.send(t, map[string]any{"type": "danmaku", "text": fmt.Sprintf("comment number %d", i)})
	}
	pollJS(t, player, "the four comments shown", `window.__tops.length >= 4`)
	tops := eval[[]string](t, player, `window.__tops`)
	lanes := map[string]bool{}
	for _, top := range tops {
		lanes[top] = true
	}
	if len(lanes) < 2 {
		t.Errorf("four comments sent together flew in %d lane(s) (tops %q)", len(lanes), tops)
	}
}
