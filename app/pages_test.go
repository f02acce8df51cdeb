package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/internal/browser"
	"github.com/liveroom/liveroom/token"
)

// xss is put in a danmaku, a viewer's name and a product title: it must show as text
// and never run.
const xss = `<img src=x onerror="window.__xss=1">`

func eval[T any](t testing.TB, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %q: %v", js, err)
	}
	return v
}

// pollJS waits until the expression is true in the tab.
func pollJS(t testing.TB, ctx context.Context, what, js string) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (%s): %v", what, js, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("LIVEROOM_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPagesInBrowser drives the four pages in headless Chromium with a fake camera:
// the studio goes live and the player shows moving video; another viewer's danmaku
// flies over the player; likes and a gift show; a lingering viewer is prompted to the
// console, whose reply reaches that viewer's player and no one else; hostile text in a
// danmaku, a name and a product title stays text; the phone layout has no sideways
// scroll.
func TestPagesInBrowser(t *testing.T) {
	cfg := testConfig(t)
	cfg.Segment.StayThreshold = 3 * time.Second
	a, base := startApp(t, cfg)
	const room = "demo"
	links, err := DemoLinks(a.Signer(), base, room, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bctx, _ := browser.New(t, context.Background())

	// The player before the live: waiting, on a phone.
	player, _ := browser.Tab(t, bctx)
	if err := chromedp.Do(player, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(links.Player)); err != nil {
		t.Fatal(err)
	}
	pollJS(t, player, "the waiting state", `!document.getElementById("status").hidden && document.getElementById("status").textContent.length > 0`)
	pollJS(t, player, "the player's chat", `document.getElementById("viewers").textContent !== ""`)
	// The count agrees with its label: "1 viewer", "2 viewers".
	pollJS(t, player, "the viewer count's label", `(() => {
		const n = +document.getElementById("viewers").textContent;
		return n > 0 && document.getElementById("viewers-label").textContent === (n === 1 ? "viewer" : "viewers");
	})()`)
	if w := eval[int](t, player, `document.documentElement.scrollWidth`); w > 390 {
		t.Fatalf("phone layout scrolls sideways: %d px wide", w)
	}
	if shown := eval[string](t, player, `getComputedStyle(document.getElementById("pinned")).display`); shown != "none" {
		t.Fatalf("the empty product card shows before anything is pinned (display %s)", shown)
	}
	screenshot(t, player, "player-phone-waiting")

	// The studio goes live from the fake camera.
	studio, _ := browser.Tab(t, bctx)
	if err := chromedp.Do(studio, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(links.Studio)); err != nil {
		t.Fatal(err)
	}
	pollJS(t, studio, "the camera preview", `document.getElementById("preview").videoWidth > 0`)
	if err := chromedp.Do(studio, chromedp.Click(chromedp.CSS("#go"))); err != nil {
		t.Fatal(err)
	}
	pollJS(t, studio, "going live", `!document.getElementById("stop").disabled`)

	// The player shows moving video.
	pollJS(t, player, "video frames", `document.getElementById("video").videoWidth > 0`)
	t0 := eval[float64](t, player, `document.getElementById("video").currentTime`)
	pollJS(t, player, "time advancing", fmt.Sprintf(`document.getElementById("video").currentTime > %f + 0.5`, t0))
	pollJS(t, player, "the waiting state gone", `document.getElementById("status").hidden`)

	// Another viewer, with a hostile name, comments, likes and sends a gift.
	other, _ := a.Signer().Issue(token.Spec{User: "v-other", Name: xss, Role: event.RoleViewer, Room: room, TTL: time.Hour})
	ws := dialRoom(t, base, room, other)
	ws.send(t, map[string]any{"type": "danmaku", "text": "hello " + xss})
	pollJS(t, player, "the danmaku over the video", `[...document.querySelectorAll("#danmaku-layer .dm-item")].some(e => e.textContent.includes("hello <img"))`)
	ws.send(t, map[string]any{"type": "like", "count": 7})
	pollJS(t, studio, "likes in the studio", `Number(document.getElementById("f-likes").textContent) >= 7`)
	ws.send(t, map[string]any{"type": "gift", "gift": "rose", "count": 1})
	pollJS(t, player, "the gift animation", `document.querySelectorAll("#gift-show .gift-pop").length > 0`)
	pollJS(t, studio, "gift value in the studio", `document.getElementById("f-gifts").textContent === "0.10 USD"`)
	// A reloaded studio (a second tab here: reloading would end the broadcast) shows the
	// same total: it comes with the welcome.
	gifts := eval[string](t, studio, `document.getElementById("f-gifts").textContent`)
	studio2, closeStudio2 := browser.Tab(t, bctx)
	if err := chromedp.Do(studio2, chromedp.Navigate(links.Studio)); err != nil {
		t.Fatal(err)
	}
	pollJS(t, studio2, "the gift total in a reloaded studio", fmt.Sprintf(`document.getElementById("f-gifts").textContent === %q`, gifts))
	closeStudio2()
	pollJS(t, studio, "the gift in the studio's chat", `[...document.querySelectorAll("#chat li")].some(li => li.textContent.includes("🎁"))`)
	if eval[bool](t, studio, `[...document.querySelectorAll("#chat li")].some(li => li.textContent.includes("null"))`) {
		t.Fatal(`a chat row of the studio reads "null"`)
	}
	pollJS(t, studio, "the hostile name as text", `[...document.querySelectorAll("#chat .who")].some(e => e.textContent === `+"`"+xss+"`"+`)`)

	// The host pins a product with a hostile title.
	if err := chromedp.Do(studio,
		chromedp.SendKeys(chromedp.CSS(`#pin-form [name=sku]`), "SKU-9"),
		chromedp.SendKeys(chromedp.CSS(`#pin-form [name=title]`), "Silk scarf "+xss),
		chromedp.SendKeys(chromedp.CSS(`#pin-form [name=price]`), "29.90"),
		chromedp.SendKeys(chromedp.CSS(`#pin-form [name=url]`), "https://shop.example/p/scarf"),
		chromedp.Click(chromedp.CSS(`#pin-form button[type=submit]`)),
	); err != nil {
		t.Fatal(err)
	}
	pollJS(t, player, "the pinned product", `document.getElementById("pinned-title").textContent.includes("Silk scarf <img")`)
	buy := eval[string](t, player, `document.getElementById("pinned-buy").href`)
	if !strings.Contains(buy, "liveroom_viewer=g_") {
		t.Fatalf("Buy link does not carry the viewer: %s", buy)
	}
	if overlap := eval[bool](t, player, `document.getElementById("pinned").getBoundingClientRect().bottom > document.getElementById("say-form").getBoundingClientRect().top`); overlap {
		t.Fatal("the product card overlaps the comment box")
	}
	// The tap-to-unmute pill (shown while autoplay is muted) stays out of the danmaku lanes.
	if overlap := eval[bool](t, player, `(() => {
		const p = document.getElementById("unmute"), was = p.hidden;
		p.hidden = false;
		const a = p.getBoundingClientRect(), b = document.getElementById("danmaku-layer").getBoundingClientRect();
		p.hidden = was;
		return a.top < b.bottom && a.bottom > b.top;
	})()`); overlap {
		t.Fatal("the unmute pill covers the danmaku lanes")
	}
	if p := eval[string](t, player, `document.getElementById("pinned-price").textContent`); !strings.Contains(p, "29.90") {
		t.Fatalf("the price shows as %q, want 29.90", p)
	}
	screenshot(t, player, "player-phone-live")
	screenshot(t, studio, "studio-desktop")

	// The console gets a prompt for the lingering player and replies.
	console, _ := browser.Tab(t, bctx)
	if err := chromedp.Do(console, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(links.Console+"&room="+room)); err != nil {
		t.Fatal(err)
	}
	pollJS(t, console, "a prompt in the console", `document.querySelectorAll("#prompts li").length > 0`)
	// A second agent's console, to see the first one's claim and resolution at once.
	agent2, _ := a.Signer().Issue(token.Spec{User: "agent2", Name: "Agent 2", Role: event.RoleAgent, Room: room, TTL: time.Hour})
	// Its WebSocket can be cut (window.__offline: new sockets go nowhere) to check that
	// a claim made meanwhile shows once it reconnects.
	console2, _ := browser.Tab(t, bctx)
	if err := chromedp.Do(console2, chromedp.EmulateViewport(1280, 900),
		chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
			_, err := cdp.Call(ctx, tab, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `window.__offline = false; window.__sockets = [];
				window.WebSocket = class extends WebSocket {
					constructor(url, p) { super(window.__offline ? "ws://127.0.0.1:1/" : url, p); window.__sockets.push(this); }
				};
				// __slowQueue: the prompt queue's answer reaches the page 1.5 s late (a
				// claim or resolution can land in between); __queueRead says it has.
				const realFetch = window.fetch;
				window.fetch = async (...args) => {
					const r = await realFetch(...args);
					if (window.__slowQueue && String(args[0]).startsWith("/api/prompts?")) {
						await new Promise((ok) => setTimeout(ok, 1500));
						setTimeout(() => { window.__queueRead = true; }, 300); // once the page has used it
					}
					return r;
				};`})
			return err
		}),
		chromedp.Navigate(base+"/console?token="+agent2+"&room="+room)); err != nil {
		t.Fatal(err)
	}
	pollJS(t, console2, "the prompt in the second console", `document.querySelectorAll("#prompts li").length > 0`)
	eval[bool](t, console2, `(() => { window.__offline = true; window.__sockets.forEach((s) => s.close()); return true; })()`)
	pollJS(t, console, "the guest named as a guest, not by its raw id", `[...document.querySelectorAll("#prompts li b")].some(b => /^Guest \S{4}$/.test(b.textContent))`)
	// The list may re-render as the queue loads, so claim until the conversation opens.
	viewerID := buy[strings.Index(buy, "liveroom_viewer=")+len("liveroom_viewer="):]
	if i := strings.IndexAny(viewerID, "&#"); i >= 0 {
		viewerID = viewerID[:i]
	}
	pollJS(t, console, "claiming the player's prompt", `(() => {
		const b = document.querySelector('#prompts li[data-viewer="`+viewerID+`"] button.primary');
		if (b && document.getElementById("dm-text").value === "") b.click();
		return document.getElementById("dm-text").value.length > 0;
	})()`)
	time.Sleep(time.Second) // the claim's prompt_update goes out while the second console is cut off
	eval[bool](t, console2, `(() => { window.__offline = false; return true; })()`)
	pollJS(t, console2, "the claim shown in the second console once it reconnects", `(() => {
		const b = document.querySelector('#prompts li[data-viewer="`+viewerID+`"] button.primary');
		return b !== null && b.disabled;
	})()`)
	pollJS(t, console, "the viewer's profile", `document.querySelector("#profile table") !== null`)
	pollJS(t, console, "the current live's watch time in the profile", `[...document.querySelectorAll("#profile tr")].some(tr => tr.querySelector("th").textContent === "live now" && /^\d+ min$/.test(tr.querySelector("td").textContent))`)
	pollJS(t, console, "spend as money in the profile", `[...document.querySelectorAll("#profile td")].some(td => /^0\.00 [A-Z]{3}$/.test(td.textContent))`)
	screenshot(t, console, "console-desktop")
	// agentSays sends text from the console and waits for it at the player.
	agentSays := func(what, text string) {
		t.Helper()
		if err := chromedp.Do(console,
			chromedp.SetValue(chromedp.CSS(`#dm-text`), text),
			chromedp.Click(chromedp.CSS(`#dm-form button[type=submit]`)),
		); err != nil {
			t.Fatal(err)
		}
		pollJS(t, player, what, fmt.Sprintf(`document.getElementById("toast").textContent.includes(%q) || document.getElementById("dm-list").textContent.includes(%q)`, text, text))
	}
	agentSays("the agent's reply in the player", "Hi from the agent")
	// On a phone a sheet covers the controls: its close button and a tap outside close it.
	for _, step := range []struct{ click, what, js string }{
		{"#dm-toggle", "the messages sheet open", `!document.getElementById("dm-panel").hidden`},
		{"#dm-panel .close", "the messages sheet closed by its button", `document.getElementById("dm-panel").hidden`},
		{"#gift-toggle", "the gifts sheet open", `!document.getElementById("gift-panel").hidden`},
		{"#video", "the gifts sheet closed by a tap outside", `document.getElementById("gift-panel").hidden`},
	} {
		if err := chromedp.Do(player, chromedp.Click(chromedp.CSS(step.click))); err != nil {
			t.Fatal(err)
		}
		pollJS(t, player, step.what, step.js)
	}
	// The agent resolves the prompt while the second console, reconnecting, is still
	// reading the queue (whose answer predates the resolution); the conversation stays
	// open for a follow-up.
	eval[bool](t, console2, `(() => { window.__slowQueue = true; window.__queueRead = false; window.__sockets.forEach((s) => s.close()); return true; })()`)
	time.Sleep(700 * time.Millisecond) // it reconnects (0.5 s) and asks for the queue
	if err := chromedp.Do(console, chromedp.Click(chromedp.CSS(`#resolve-form button[type=submit]`))); err != nil {
		t.Fatal(err)
	}
	pollJS(t, console, "the prompt resolved", `document.getElementById("resolve-form").hidden`)
	pollJS(t, console2, "the resolved prompt gone from the second console, after its late queue", `window.__queueRead && document.querySelector('#prompts li[data-viewer="`+viewerID+`"]') === null`)
	agentSays("the follow-up in the player", "A follow-up after resolving")
	time.Sleep(500 * time.Millisecond)
	for _, e := range ws.of("dm") {
		if strings.Contains(fmt.Sprint(e["text"]), "Hi from the agent") {
			t.Fatal("the agent's reply reached another viewer")
		}
	}
	// A reloaded player (the same guest) shows the conversation so far, each message
	// once: what a viewer missed while away or reconnecting is not lost.
	if err := chromedp.Do(player, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	pollJS(t, player, "the conversation after a reload", `(() => {
		const items = [...document.querySelectorAll("#dm-list li")].map((li) => li.textContent);
		const once = (s) => items.filter((x) => x.includes(s)).length === 1;
		return once("Hi from the agent") && once("A follow-up after resolving");
	})()`)

	// A player opened with an expired token watches as a guest instead of failing.
	stale, _ := a.Signer().Issue(token.Spec{User: "v-stale", Role: event.RoleViewer, Room: room, TTL: 30 * time.Second})
	late, _ := browser.Tab(t, bctx)
	if err := chromedp.Do(late, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(base+"/r/"+room+"?token="+stale)); err != nil {
		t.Fatal(err)
	}
	pollJS(t, late, "video for the expired link's viewer", `document.getElementById("video").videoWidth > 0`)
	pollJS(t, late, "the viewer as a guest", `document.getElementById("pinned-buy").href.includes("liveroom_viewer=g_")`)

	// The dashboard renders the figures.
	dash, _ := browser.Tab(t, bctx)
	if err := chromedp.Do(dash, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(links.Dashboard)); err != nil {
		t.Fatal(err)
	}
	pollJS(t, dash, "segment charts", `document.querySelectorAll("#charts .bar-row").length > 0`)
	pollJS(t, dash, "the rules editor", `document.getElementById("rules").value.includes("stay")`)
	pollJS(t, dash, "the live room", `document.getElementById("rooms").textContent.includes("demo")`)
	pollJS(t, dash, "tag changes by day", `document.querySelectorAll("#changes .day .bar-row").length > 0`)
	screenshot(t, dash, "dashboard-desktop")

	// A banned viewer is told, not left typing into a closed chat.
	hostTok, _ := a.Signer().Issue(token.Spec{User: "host-2", Role: event.RoleHost, Room: room, TTL: time.Hour})
	dialRoom(t, base, room, hostTok).send(t, map[string]any{"type": "ban", "user": viewerID})
	pollJS(t, player, "the ban said", `document.getElementById("status").textContent.includes("no longer write")`)

	for name, tab := range map[string]context.Context{"player": player, "studio": studio, "console": console, "dashboard": dash} {
		if ran := eval[bool](t, tab, `window.__xss === 1`); ran {
			t.Fatalf("hostile text ran script in the %s", name)
		}
	}
}
