// The viewer's player: WHEP video, danmaku over it, likes, gifts, the pinned product,
// private messages with customer service, viewer count. Phone first.
import { apply, currentLang, label, mountSwitch, t } from "./i18n.js";
import { RoomSocket, call, claims, el, expired, guestToken, roomFromPath, safeURL } from "./api.js";
import { play } from "./webrtc.js";
import { DanmakuLayer } from "./danmaku.js";

const $ = (id) => document.getElementById(id);
const room = roomFromPath();
const reduced = matchMedia("(prefers-reduced-motion: reduce)").matches;
let me = {};
let session = null;
let isLive = false;
let gifts = [];
let playing = false;

apply();
mountSwitch($("lang"));
document.title = `${room} · liveroom`;

const danmaku = new DanmakuLayer($("danmaku-layer"));
$("danmaku-on").addEventListener("change", (e) => danmaku.setEnabled(e.target.checked));
$("density").addEventListener("change", (e) => danmaku.setDensity(Number(e.target.value)));

function status(key) {
  $("status").hidden = !key;
  if (key) $("status").dataset.i18n = key; // the language switch translates this state
  if (key) $("status").textContent = t(key);
}

function toast(text, onClick) {
  if (!text) return; // a notice without text (a moderation record) has nothing to show
  const box = $("toast");
  box.textContent = text;
  box.hidden = false;
  box.onclick = () => { box.hidden = true; if (onClick) onClick(); };
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 5000);
}

// --- video -----------------------------------------------------------------------
async function startVideo() {
  if (playing) return;
  playing = true;
  try {
    if (expired(token, 60_000)) token = await guestToken(room); // a long live outlasts a guest token
    performance.mark("liveroom-whep-start");
    session = await play(room, token, $("video"));
    performance.mark("liveroom-whep-answered");
    session.pc.addEventListener("connectionstatechange", () => {
      const s = session && session.pc.connectionState;
      if (s === "failed" || s === "closed" || s === "disconnected") retryVideo(1500);
    });
    status(null);
    $("video").play().catch(() => {});
  } catch (e) {
    playing = false;
    // 404: not live (yet, or any more). The chat's live event starts the video, so only
    // a player without chat looks again, and then slowly.
    if (e.status === 404 && !isLive) { pollWhileChatDown(); return; }
    if (e.status !== 404) status("reconnecting");
    retryVideo(3000);
  }
}

function retryVideo(ms) {
  if (session) { session.stop(); session = null; }
  playing = false;
  clearTimeout(retryVideo.timer);
  retryVideo.timer = setTimeout(() => startVideo(), ms);
}

// pollWhileChatDown looks for the video every 30–45 s while the chat, which says when
// the live starts, is down (reconnecting, or closed to a banned viewer).
let chatUp = false;
function pollWhileChatDown() {
  if (chatUp || playing || pollWhileChatDown.timer) return;
  pollWhileChatDown.timer = setTimeout(() => {
    pollWhileChatDown.timer = 0;
    if (!chatUp) startVideo();
  }, 30_000 + Math.random() * 15_000);
}

// The first picture shown, for measuring the time from opening the player to video.
const firstFrame = () => performance.mark("liveroom-first-frame");
if ($("video").requestVideoFrameCallback) $("video").requestVideoFrameCallback(firstFrame);
else $("video").addEventListener("loadeddata", firstFrame, { once: true });

$("unmute").addEventListener("click", () => {
  const v = $("video");
  v.muted = false;
  v.play().catch(() => {});
  $("unmute").hidden = true;
});

// --- room state --------------------------------------------------------------------
function setViewers(n) {
  n = n ?? 0;
  $("viewers").textContent = String(n);
  const lbl = $("viewers-label"); // "1 viewer", "2 viewers"; the language switch keeps it
  lbl.dataset.i18n = n === 1 ? "viewer" : "viewers";
  lbl.textContent = t(lbl.dataset.i18n);
}

let wasLive = false; // the live seen here ended: say so rather than "waiting"

function setLive(live) {
  isLive = !!live;
  $("live-badge").hidden = !isLive;
  if (isLive) { wasLive = true; startVideo(); }
  else {
    clearTimeout(retryVideo.timer); // nothing to retry until the live starts again
    if (session) { session.stop(); session = null; playing = false; }
    // A host whose connection dropped comes back within seconds (the studio goes live
    // again): "ended" only once it has not for a while.
    status("waiting");
    clearTimeout(setLive.ended);
    if (wasLive) setLive.ended = setTimeout(() => { if (!isLive) status("ended"); }, 20000);
  }
}

// price shows a product's price as money ("29.90 USD"), whatever the number's form.
function price(p) {
  const n = Number(p.price);
  if (!p.price || !Number.isFinite(n)) return p.price ? String(p.price) : "";
  try {
    if (p.currency) return new Intl.NumberFormat(undefined, { style: "currency", currency: p.currency }).format(n);
  } catch {} // not an ISO currency code
  return `${n.toFixed(2)} ${p.currency || ""}`.trim();
}

function setPinned(p) {
  const box = $("pinned");
  if (!p || !p.sku) { box.hidden = true; return; }
  box.hidden = false;
  $("pinned-title").textContent = p.title || p.sku;
  $("pinned-price").textContent = price(p);
  const img = safeURL(p.image || "");
  $("pinned-img").hidden = !img;
  if (img) $("pinned-img").src = img;
  const url = safeURL(p.url || "");
  const buy = $("pinned-buy");
  if (url) {
    const u = new URL(url);
    u.searchParams.set("liveroom_viewer", me.id || "");
    buy.href = u.href;
    buy.hidden = false;
  } else buy.hidden = true;
  buy.onclick = () => sock.send({ type: "product_click", product: p.sku });
}

function showDanmaku(e) {
  const from = e.from || {};
  const cls = from.id === me.id ? "mine" : from.role && from.role !== "viewer" ? "staff" : "";
  danmaku.add(e.text || "", cls);
}

function heart() {
  if (reduced) return;
  const h = el("span", { class: "heart", text: "❤" });
  h.style.left = `${Math.random() * 20}px`;
  $("hearts").append(h);
  h.addEventListener("animationend", () => h.remove());
}

function showGift(e) {
  const from = label(e.from);
  const g = gifts.find((x) => x.id === e.gift);
  const text = `${from} → ${g ? g.name : e.gift} ×${e.count || 1}`;
  const pop = el("div", { class: "gift-pop", text });
  $("gift-show").append(pop);
  setTimeout(() => pop.remove(), 3000);
}

function renderGifts(list) {
  gifts = list || [];
  const box = $("gift-list");
  box.replaceChildren();
  for (const g of gifts) {
    box.append(el("button", {
      type: "button",
      onclick: () => { sock.send({ type: "gift", gift: g.id, count: 1 }); $("gift-panel").hidden = true; },
    }, el("span", { text: g.icon || "🎁" }), el("span", { text: g.name }), el("small", { class: "muted", text: `${g.value} ${g.currency || ""}` })));
  }
}

// seenDMs keeps each shown message once: the conversation is read again over HTTP on
// every (re)connection, and overlaps what arrives live.
const seenDMs = new Set();

function addDM(e) {
  const key = `${(e.from && e.from.id) || ""}|${e.id || ""}|${e.text || ""}`;
  if (seenDMs.has(key)) return;
  seenDMs.add(key);
  const mine = e.from && e.from.id === me.id;
  $("dm-list").append(el("li", {}, el("span", { class: "who", text: mine ? t("me") : label(e.from) }), e.text || ""));
  $("dm-list").scrollTop = 1e9;
  if (!mine && $("dm-panel").hidden) {
    $("dm-badge").hidden = false;
    toast(`${t("service")}: ${e.text}`, () => openDM());
  }
}

// loadDMs shows the messages of this viewer's conversation it has not seen: those sent
// while it was away or reconnecting (DMs have no seq for a resume to replay).
async function loadDMs() {
  try {
    const hist = await call(token, "GET", `/api/rooms/${encodeURIComponent(room)}/dm/${encodeURIComponent(me.id)}`);
    for (const m of (hist && hist.messages) || []) addDM(m);
  } catch {}
}

function openDM() {
  $("dm-panel").hidden = false;
  $("gift-panel").hidden = true;
  $("dm-badge").hidden = true;
  $("dm-text").focus();
}

// --- socket --------------------------------------------------------------------------
let sock;
let token;

function onEvent(e) {
  switch (e.type) {
    case "welcome": {
      me = e.you || me;
      const r = e.room || {};
      setViewers(r.viewers);
      setPinned(r.pinned);
      if (r.gifts) renderGifts(r.gifts);
      setLive(r.live);
      for (const h of e.history || []) if (h.type === "danmaku") showDanmaku(h);
      break;
    }
    case "danmaku": showDanmaku(e); break;
    case "likes": for (let i = 0; i < Math.min(e.count || 0, 5); i++) heart(); break;
    case "gift": showGift(e); break;
    case "pin": setPinned(e.product); break;
    case "presence": setViewers(e.viewers); break;
    case "live": setLive(e.live); break;
    case "dm": addDM(e); break;
    case "error":
      if (e.code === "muted" && e.until) { toast(`${t("mutedUntil")} ${new Date(e.until).toLocaleString(currentLang() === "zh" ? "zh-CN" : "en")}`); break; }
      toast(`${t("error")}: ${e.message || e.code}`);
      break;
    case "notice": toast(e.text); break;
  }
}

async function main() {
  // A refused or failed request (a rate limit behind a busy NAT, a restart) is tried
  // again, with the same kept token, rather than leaving the player on "Error".
  for (let wait = 2000; ; wait = Math.min(wait * 2, 10000)) {
    try {
      token = await guestToken(room);
      break;
    } catch {
      status("error");
      await new Promise((ok) => setTimeout(ok, wait));
    }
  }
  me = { id: claims(token).sub };
  // The viewer's time zone, so automatic messages respect its quiet hours.
  fetch("/api/me/timezone", {
    method: "PUT",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ tz: Intl.DateTimeFormat().resolvedOptions().timeZone }),
  }).catch(() => {});
  sock = new RoomSocket(room, token, {
    onEvent,
    onState: (s) => {
      chatUp = s === "open";
      if (!chatUp) pollWhileChatDown();
      if (s === "open") loadDMs();
      if (s === "reconnecting") toast(t("reconnecting"));
      if (s === "closed") status("removed"); // banned, or closed for abuse: chat does not come back
    },
    renew: async () => (token = await guestToken(room)), // the gifts come with the welcome
  });
  startVideo();
}

$("say-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("say").value.trim();
  if (!text) return;
  sock.send({ type: "danmaku", text, id: `c${Date.now()}` });
  $("say").value = "";
});

// Likes: taps pile up and go out at most twice a second, never one message per tap.
let pendingLikes = 0;
$("like").addEventListener("click", () => {
  pendingLikes++;
  heart();
  if (!pendingLikes || $("like").dataset.timer) return;
  $("like").dataset.timer = "1";
  setTimeout(() => {
    delete $("like").dataset.timer;
    const n = Math.min(pendingLikes, 100);
    pendingLikes -= n;
    if (n > 0) sock.send({ type: "like", count: n });
  }, 500);
});

$("gift-toggle").addEventListener("click", () => { $("gift-panel").hidden = !$("gift-panel").hidden; $("dm-panel").hidden = true; });
$("dm-toggle").addEventListener("click", () => { if ($("dm-panel").hidden) openDM(); else $("dm-panel").hidden = true; });
$("dm-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("dm-text").value.trim();
  if (!text) return;
  sock.send({ type: "dm", text, id: `d${Date.now()}` });
  $("dm-text").value = "";
});
// A sheet covers the controls: its close button, a tap outside it and Escape close it.
function closeSheets() { $("dm-panel").hidden = true; $("gift-panel").hidden = true; }
for (const b of document.querySelectorAll(".sheet .close")) b.addEventListener("click", closeSheets);
document.addEventListener("click", (e) => {
  if (e.target.closest(".sheet, #gift-toggle, #dm-toggle, #toast")) return;
  closeSheets();
});
document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeSheets(); });

main();
