package app

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/heapprofiler"
	"github.com/chromedp/cdproto/memory"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/internal/browser"
	"github.com/liveroom/liveroom/token"
)

// networkHooks run in a page before its own scripts, to play a poor network:
// window.__offline sends new WebSockets nowhere and __sockets lists them; a request
// whose URL ends with window.__slow is answered 1.5 s late, and __slowServed counts
// those answers once the page has had them; a request whose URL ends with
// window.__fail fails as if the network were down; __whepOffers counts WHEP offers posted.
const networkHooks = `window.__offline = false; window.__sockets = []; window.__slow = ""; window.__fail = ""; window.__slowServed = 0; window.__whepOffers = 0;
window.WebSocket = class extends WebSocket {
	constructor(url, p) { super(window.__offline ? "ws://127.0.0.1:1/" : url, p); window.__sockets.push(this); }
};
const realFetch = window.fetch;
window.fetch = async (...args) => {
	const url = String(args[0]);
	if (url.includes("/whep/") && args[1] && args[1].method === "POST") window.__whepOffers++;
	if (window.__fail && url.endsWith(window.__fail)) throw new TypeError("Failed to fetch");
	const res = await realFetch(...args);
	if (window.__slow && url.endsWith(window.__slow)) {
		await new Promise((ok) => setTimeout(ok, 1500));
		setTimeout(() => { window.__slowServed++; }, 300); // once the page has used it
	}
	return res;
};`

// hookedTab opens url in a new tab with networkHooks installed.
func hookedTab(t *testing.T, bctx context.Context, url string, viewport chromedp.Action[chromedp.Void]) context.Context {
	t.Helper()
	tab, _ := browser.Tab(t, bctx)
	if err := chromedp.Do(tab, viewport,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: networkHooks})
			return err
		}),
		chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	return tab
}

// viewerWrites connects a named viewer to room and sends one DM to its agents.
func viewerWrites(t *testing.T, a *App, base, room, id, name, text string) {
	t.Helper()
	tok, _ := a.Signer().Issue(token.Spec{User: id, Name: name, Role: event.RoleViewer, Room: room, TTL: time.Hour})
	dialRoom(t, base, room, tok).send(t, map[string]any{"type": "dm", "text": text, "id": id + "-" + text})
}

// agentConsole opens the console of a new agent of room, once connected; it returns
// the tab and the agent's token.
func agentConsole(t *testing.T, a *App, bctx context.Context, base, room string) (context.Context, string) {
	t.Helper()
	tok, _ := a.Signer().Issue(token.Spec{User: "agent", Name: "Agent", Role: event.RoleAgent, Room: room, TTL: time.Hour})
	console := hookedTab(t, bctx, base+"/console?token="+tok+"&room="+room, chromedp.EmulateViewport(1280, 900))
	pollJS(t, console, "the console connected", `document.getElementById("state").textContent === "Connected"`)
	return console, tok
}

// waitStored waits until text is in the DM history of viewer (the store is written a
// moment after delivery).
func waitStored(t *testing.T, base, room, viewer, agentTok, text string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, hist := api(t, "GET", base+"/api/rooms/"+room+"/dm/"+viewer, agentTok, "")
		if strings.Contains(string(hist), text) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q never reached the DM history of %s: %s", text, viewer, hist)
		}
	}
}

// TestConsoleSwitchingConversations: the agent opens Ann's conversation, whose history
// and profile answer late, then Bob's; Ann's late answers are not shown under Bob.
func TestConsoleSwitchingConversations(t *testing.T) {
	a, base := startApp(t, testConfig(t))
	const room = "switch"
	bctx, _ := browser.New(t, context.Background())
	console, agentTok := agentConsole(t, a, bctx, base, room)
	viewerWrites(t, a, base, room, "va", "Ann", "secret of Ann")
	viewerWrites(t, a, base, room, "vb", "Bob", "hi from Bob")
	pollJS(t, console, "both viewers in the queue", `document.querySelectorAll('#prompts li[data-viewer="va"], #prompts li[data-viewer="vb"]').length === 2`)
	waitStored(t, base, room, "va", agentTok, "secret of Ann")
	waitStored(t, base, room, "vb", agentTok, "hi from Bob")

	// Ann's history and profile (both URLs end with "va") answer late.
	eval[bool](t, console, `(() => { window.__slow = "va"; document.querySelector('#prompts li[data-viewer="va"] button').click(); return true; })()`)
	pollJS(t, console, "Ann's conversation opening", `document.getElementById("convo-title").textContent.includes("Ann")`)
	eval[bool](t, console, `(document.querySelector('#prompts li[data-viewer="vb"] button').click(), true)`)
	pollJS(t, console, "Bob's conversation and profile", `document.getElementById("convo").textContent.includes("hi from Bob") && (document.querySelector("#profile td") || {}).textContent === "vb"`)
	pollJS(t, console, "Ann's late history and profile answered", `window.__slowServed >= 2`)
	if convo := eval[string](t, console, `document.getElementById("convo").textContent`); strings.Contains(convo, "secret of Ann") {
		t.Errorf("Bob's conversation shows Ann's message: %q", convo)
	}
	if id := eval[string](t, console, `(document.querySelector("#profile td") || {}).textContent || ""`); id != "vb" {
		t.Errorf("Bob's conversation shows the profile of %q", id)
	}
}

// TestConsoleDMsWhileDisconnected: viewers write while the console's socket is down. Once
// it is back, the open conversation shows what its viewer wrote meanwhile (each message
// once), and a viewer with no conversation open is in the queue (read from the room's
// list of conversations); only when that list cannot be read does a notice say that
// such a viewer is listed once they write again.
func TestConsoleDMsWhileDisconnected(t *testing.T) {
	a, base := startApp(t, testConfig(t))
	const room = "dropped"
	bctx, _ := browser.New(t, context.Background())
	console, agentTok := agentConsole(t, a, bctx, base, room)
	viewerWrites(t, a, base, room, "va", "Ann", "hello from Ann")
	pollJS(t, console, "Ann in the queue", `document.querySelector('#prompts li[data-viewer="va"] button') !== null`)
	eval[bool](t, console, `(document.querySelector('#prompts li[data-viewer="va"] button').click(), true)`)
	pollJS(t, console, "Ann's conversation open", `document.getElementById("convo").textContent.includes("hello from Ann")`)
	drop := func() {
		t.Helper()
		eval[bool](t, console, `(() => { window.__offline = true; window.__sockets.forEach((s) => s.close()); return true; })()`)
		pollJS(t, console, "the console cut off", `window.__sockets.every((s) => s.readyState === WebSocket.CLOSED)`)
	}
	drop()
	viewerWrites(t, a, base, room, "va", "Ann", "Ann while you were away")
	viewerWrites(t, a, base, room, "vb", "Bob", "Bob while you were away")
	waitStored(t, base, room, "va", agentTok, "Ann while you were away")
	waitStored(t, base, room, "vb", agentTok, "Bob while you were away")
	eval[bool](t, console, `(() => { window.__offline = false; return true; })()`)

	pollJS(t, console, "Ann's message written meanwhile", `document.getElementById("convo").textContent.includes("Ann while you were away")`)
	pollJS(t, console, "Bob, who wrote meanwhile, in the queue", `(document.querySelector('#prompts li[data-viewer="vb"]') || {}).textContent?.includes("Bob while you were away") === true`)
	lines := eval[[]string](t, console, `[...document.querySelectorAll("#convo li")].map((li) => li.textContent)`)
	if len(lines) != 2 {
		t.Errorf("Ann's conversation after the reconnection: %q, want her two messages once each", lines)
	}
	if eval[bool](t, console, `!document.getElementById("missed").hidden`) {
		t.Error("the notice of missed messages shows although the room's conversations were read")
	}

	// The list cannot be read after the next drop: the notice says so.
	eval[bool](t, console, `(() => { window.__fail = "/api/rooms/`+room+`/dm"; return true; })()`)
	drop()
	eval[bool](t, console, `(() => { window.__offline = false; return true; })()`)
	pollJS(t, console, "the notice of missed messages", `!document.getElementById("missed").hidden`)
}

// TestPlayerWaitsForTheLiveEvent: a player opened before the live asks for the video once
// and then waits for the chat to say the live has started, rather than posting a WHEP
// offer every few seconds (thousands of waiting viewers would flood the server).
func TestPlayerWaitsForTheLiveEvent(t *testing.T) {
	_, base := startApp(t, testConfig(t))
	bctx, _ := browser.New(t, context.Background())
	player := hookedTab(t, bctx, base+"/r/idle", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	pollJS(t, player, "the first offer", `window.__whepOffers === 1`)
	pollJS(t, player, "the chat connected", `document.getElementById("viewers").textContent === "1"`)
	time.Sleep(8 * time.Second) // what must not happen has nothing to wait on: a retry came every 3 s
	if n := eval[int](t, player, `window.__whepOffers`); n != 1 {
		t.Fatalf("the waiting player posted %d WHEP offers in 8 s, want 1", n)
	}
}

// liveDOMNodes counts the tab's DOM nodes still reachable after garbage collection,
// whether in the document or only held by the page's scripts.
func liveDOMNodes(t *testing.T, tab context.Context) int64 {
	t.Helper()
	var n int64
	if err := chromedp.Do(tab, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for range 3 {
			if _, err := cdp.Call(ctx, tg, heapprofiler.CollectGarbage, cdp.Empty{}); err != nil {
				return err
			}
		}
		c, err := cdp.Call(ctx, tg, memory.GetDOMCounters, cdp.Empty{})
		n = c.Nodes
		return err
	})); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStudioChatForgetsRemovedRows: the studio's chat shows the last 300 comments, and
// the rows it removes are freed, not kept for moderation (a long live would grow the
// tab without bound); deleting a comment still marks its row.
func TestStudioChatForgetsRemovedRows(t *testing.T) {
	cfg := testConfig(t)
	cfg.Chat.DanmakuRate, cfg.Chat.DanmakuBurst = 10000, 100000
	a, base := startApp(t, cfg)
	const room = "long"
	links, _ := DemoLinks(a.Signer(), base, room, time.Hour)
	bctx, _ := browser.New(t, context.Background())
	studio := hookedTab(t, bctx, links.Studio, chromedp.EmulateViewport(1280, 900))
	pollJS(t, studio, "the studio connected", `document.getElementById("state").textContent !== ""`)
	tok, _ := a.Signer().Issue(token.Spec{User: "v1", Role: event.RoleViewer, Room: room, TTL: time.Hour})
	ws := dialRoom(t, base, room, tok)
	comment := func(from, to int) {
		for i := from; i < to; i++ {
			ws.send(t, map[string]any{"type": "danmaku", "text": fmt.Sprintf("c%d", i)})
		}
		pollJS(t, studio, "the last comment", fmt.Sprintf(`(document.querySelector("#chat li:last-child .text") || {}).textContent === "c%d"`, to-1))
	}
	comment(0, 400)
	before := liveDOMNodes(t, studio)
	comment(400, 1400)
	after := liveDOMNodes(t, studio)
	if rows := eval[int](t, studio, `document.querySelectorAll("#chat li").length`); rows != 300 {
		t.Errorf("the chat shows %d rows, want 300", rows)
	}
	if after-before > 500 {
		t.Errorf("1000 more comments, with 300 shown, left %d more DOM nodes alive (%d, then %d)", after-before, before, after)
	}

	eval[bool](t, studio, `(document.querySelector("#chat li:last-child button").click(), true)`)
	pollJS(t, studio, "the deleted comment marked", `document.querySelector("#chat li:last-child").classList.contains("deleted")`)
}
