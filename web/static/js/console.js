// The customer-service console: the live prompt queue, a 1:1 conversation with the
// viewer (the suggested opening line ready to edit), canned replies, the viewer's profile
// with tags and reasons, and resolving a prompt with an outcome.
import { apply, label, mountSwitch, t } from "./i18n.js";
import { RoomSocket, call, claims, el, pageToken } from "./api.js";

const $ = (id) => document.getElementById(id);
const token = pageToken();
const me = claims(token);
const params = new URL(location.href).searchParams;
let room = params.get("room") || (me.room && me.room !== "*" ? me.room : "demo");
let sock = null;
let current = null; // {prompt, viewer}
const prompts = new Map();

const CANNED = {
  en: ["Hi! Anything I can help you with?", "This item ships worldwide in 5–7 days.", "Here is a coupon for your first order: LIVE10"],
  zh: ["您好！有什么可以帮您？", "这款商品全球发货，5–7 天送达。", "首单优惠码：LIVE10"],
};

apply();
mountSwitch($("lang"));
$("room").value = room;

function renderCanned() {
  const box = $("canned");
  box.replaceChildren();
  const lang = document.documentElement.lang.startsWith("zh") ? "zh" : "en";
  for (const line of CANNED[lang]) {
    box.append(el("button", { type: "button", text: line, onclick: () => { $("dm-text").value = line; $("dm-text").focus(); } }));
  }
}
renderCanned();
document.addEventListener("langchange", renderCanned);
// The open conversation's title names its viewer; the language switch keeps the name.
function showTitle() {
  if (!current) return;
  const p = current.named || {};
  $("convo-title").textContent = `${t("chat")} · ${label(p) || current.viewer}`;
}
document.addEventListener("langchange", showTitle);

// tagWords flattens tags as the WebSocket sends them (a list) or the API does (per dimension).
function tagWords(tags) {
  if (!tags) return [];
  if (Array.isArray(tags)) return tags.map(String);
  return Object.values(tags).flat().filter(Boolean).map(String);
}

function renderPrompts() {
  const list = $("prompts");
  list.replaceChildren();
  $("no-prompts").hidden = prompts.size > 0;
  for (const p of [...prompts.values()].reverse()) {
    const v = p.viewer || {};
    const li = el("li", { "data-viewer": v.id || "", class: [current && current.prompt.prompt_id === p.prompt_id ? "active" : "", p.claimed_by ? "claimed" : ""].join(" ") },
      el("b", { text: label(v) }),
      el("div", { class: "reason", text: p.reason || "" }),
      el("div", { class: "tags" }, ...tagWords(v.tags).map((tg) => el("span", { class: "tag", text: tg }))),
      el("button", { type: "button", class: "primary", text: t("claim"), disabled: !!p.claimed_by && p.claimed_by !== me.sub, onclick: () => claim(p) }));
    list.append(li);
  }
}

async function claim(p) {
  const open = ++opened; // the agent's last click wins, whichever claim answers last
  try {
    await call(token, "POST", `/api/prompts/${encodeURIComponent(p.prompt_id)}/claim`);
  } catch (e) {
    if (e.status !== 404) { $("state").textContent = e.message; return; }
  }
  p.claimed_by = me.sub;
  if (open === opened) openConversation(p, (p.viewer || {}).id, open);
}

// opened counts the conversations the agent asked for: an answer that arrives after it
// has asked for another one belongs to the earlier one and is dropped, not shown under
// the new viewer's name.
let opened = 0;

async function openConversation(p, viewerId, open) {
  current = { prompt: p, viewer: viewerId, named: p.viewer };
  renderPrompts();
  showTitle();
  $("dm-text").value = p.suggested || "";
  $("resolve-form").hidden = !p.prompt_id;
  $("convo").replaceChildren();
  seenDMs.clear();
  loadProfile(viewerId, open);
  await loadConversation(open);
  if (open === opened) $("dm-text").focus();
}

// loadConversation adds the open conversation's messages not shown yet: all of them
// when it opens, and on a reconnection those written while the socket was down (DMs
// have no seq for a resume to replay).
async function loadConversation(open) {
  const viewer = current.viewer;
  try {
    const hist = await call(token, "GET", `/api/rooms/${encodeURIComponent(room)}/dm/${encodeURIComponent(viewer)}`);
    if (open !== opened || current.viewer !== viewer) return; // another conversation is open now
    for (const m of (hist && (hist.messages || hist)) || []) addLine(m);
  } catch {}
}

// seenDMs keeps each message of the open conversation shown once: its history is read
// again on every reconnection, and overlaps what arrives live.
const seenDMs = new Set();

function addLine(m) {
  const key = `${(m.from && m.from.id) || ""}|${m.id || ""}|${m.text || ""}`;
  if (seenDMs.has(key)) return;
  seenDMs.add(key);
  const mine = m.from && m.from.id === me.sub;
  $("convo").append(el("li", { class: mine ? "me" : "" }, el("span", { class: "who", text: label(m.from) }), m.text || ""));
  $("convo").scrollTop = 1e9;
}

// money shows an amount in the base currency with its cents ("29.90 USD").
function money(amount, currency) {
  const n = Number(amount);
  return Number.isFinite(n) ? `${n.toFixed(2)} ${currency || ""}`.trim() : String(amount ?? "");
}

async function loadProfile(id, open) {
  const box = $("profile");
  box.replaceChildren(el("span", { text: "…" }));
  try {
    const p = await call(token, "GET", `/api/viewers/${encodeURIComponent(id)}`);
    if (open !== opened) return; // another viewer's conversation is open now
    // The live this viewer is watching in this room now (its open session counts to now).
    const now = (p.live_sessions || []).find((l) => l.watching && (!l.room || l.room === room));
    const rows = [["id", p.id], ["live now", now ? `${Math.round(now.watch_seconds / 60)} min` : "—"], ["sessions", p.sessions], ["watch", `${Math.round((p.watch_seconds || 0) / 60)} min`], ["orders", p.orders], ["spend", money(p.spend, p.currency)], ["aov", money(p.aov, p.currency)]];
    const table = el("table", {}, ...rows.map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { text: String(v ?? "") }))));
    const tags = el("div", {});
    for (const [dim, tag] of Object.entries(p.tags || {})) {
      if (Array.isArray(tag) ? tag.length === 0 : !tag) continue; // no preference yet
      const reason = (p.reasons || {})[dim] || "";
      tags.append(el("p", {}, el("span", { class: "tag", text: `${dim}: ${Array.isArray(tag) ? tag.join(", ") : tag}` }), " ", el("small", { class: "muted", text: reason })));
    }
    // Recent events, newest last: comments, clicks, and on a join the product pinned then.
    const recent = el("ol", { class: "msgs" }, ...((p.recent_events || []).slice(-8).map((e) => el("li", { text: `${e.type}${e.detail ? ": " + e.detail : ""}` }))));
    box.replaceChildren(table, tags, recent);
  } catch (e) {
    if (open === opened) box.replaceChildren(el("span", { class: "error", text: e.message }));
  }
}

function connect() {
  if (sock) sock.close();
  prompts.clear();
  renderPrompts();
  $("missed").hidden = true;
  let dropped = false;
  sock = new RoomSocket(room, token, {
    onEvent: (e) => {
      if (e.type === "prompt") { addPrompt(e.prompt_id, e); renderPrompts(); }
      if (e.type === "prompt_update") { recentUpdates.set(e.prompt_id, e); applyUpdate(e); renderPrompts(); }
      if (e.type === "dm") {
        const other = e.from && e.from.id === me.sub ? e.to : e.from && e.from.id;
        if (current && other === current.viewer) addLine(e);
        else if (e.from && e.from.id !== me.sub && listDM(other, e.from.name, e.text)) renderPrompts();
      }
    },
    onState: (s) => {
      $("state").textContent = s === "open" ? t("connected") : s === "expired" ? t("expired") : t("reconnecting");
      // Prompts and their claims, and DMs, made while the socket was down are not
      // replayed: read the queue, the room's conversations and the open conversation
      // again on every (re)connection.
      if (s === "open") {
        loadPrompts();
        loadConversations(dropped);
        if (current) loadConversation(opened);
      }
      if (s === "reconnecting") dropped = true;
    },
  });
}

// addPrompt queues a prompt; it takes the place of its viewer's row for a DM, if any
// (one row per viewer: the conversation shows what they wrote).
function addPrompt(id, p) {
  prompts.set(id, p);
  const viewer = (p.viewer || {}).id;
  if (viewer) prompts.delete(`dm-${viewer}`);
}

// listDM puts a viewer who wrote in the queue unless it is there already; it reports
// whether it added one.
function listDM(viewer, name, text) {
  const id = `dm-${viewer}`;
  if (current && current.viewer === viewer) return false;
  for (const p of prompts.values()) if ((p.viewer || {}).id === viewer) return false; // a prompt or a DM lists them already
  prompts.set(id, { prompt_id: "", viewer: { id: viewer, name }, reason: text });
  return true;
}

// loadConversations adds to the queue the viewers who wrote lately (GET
// /api/rooms/{room}/dm, newest first): after a reconnection, those who wrote while the
// socket was down. Only if it cannot be read does a reconnection say that they are
// listed once they write again.
async function loadConversations(afterDrop) {
  const asked = room;
  let list;
  try {
    list = await call(token, "GET", `/api/rooms/${encodeURIComponent(asked)}/dm`);
  } catch {
    if (afterDrop && asked === room) $("missed").hidden = false;
    return;
  }
  if (asked !== room) return; // the agent switched rooms meanwhile
  let added = false;
  // Oldest first, so the newest ends on top of the queue (it lists the last added first).
  for (const c of [...((list && list.conversations) || [])].reverse()) {
    if (!c.from || c.from.id !== c.viewer) continue; // an agent answered last: nothing waits
    added = listDM(c.viewer, c.name, c.text) || added;
  }
  if (added) renderPrompts();
}

// recentUpdates are the prompt_update events since the queue was last read: the list
// being read may predate them, so they are applied again after it.
const recentUpdates = new Map();

// applyUpdate shows another agent's (or this one's, elsewhere) claim or resolution.
function applyUpdate(e) {
  const p = prompts.get(e.prompt_id);
  if (p && e.resolved) {
    prompts.delete(e.prompt_id);
    if (current && current.prompt.prompt_id === e.prompt_id) { // the conversation stays open
      current = { prompt: { prompt_id: "" }, viewer: current.viewer, named: current.named };
      $("resolve-form").hidden = true;
    }
  } else if (p) p.claimed_by = e.claimed_by;
}

// loadPrompts brings the queue up to date from the server: open prompts with their
// claims; resolved ones leave (a conversation open on one stays open).
async function loadPrompts() {
  recentUpdates.clear();
  let list;
  try {
    list = await call(token, "GET", `/api/prompts?room=${encodeURIComponent(room)}`);
  } catch { return; }
  for (const p of (list && (list.prompts || list)) || []) {
    const id = p.prompt_id || p.id;
    if (p.resolved_at) { prompts.delete(id); continue; }
    addPrompt(id, { ...(prompts.get(id) || {}), prompt_id: id, ...p });
  }
  for (const u of recentUpdates.values()) applyUpdate(u);
  renderPrompts();
}

$("missed-close").addEventListener("click", () => { $("missed").hidden = true; });
$("room-form").addEventListener("submit", (ev) => { ev.preventDefault(); room = $("room").value; connect(); });
$("dm-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("dm-text").value.trim();
  if (!text || !current) return;
  sock.send({ type: "dm", to: current.viewer, text, id: `a${Date.now()}` });
  $("dm-text").value = "";
});
$("resolve-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!current || !current.prompt.prompt_id) return;
  try {
    await call(token, "POST", `/api/prompts/${encodeURIComponent(current.prompt.prompt_id)}/resolve`, { outcome: $("outcome").value });
    prompts.delete(current.prompt.prompt_id);
    // The conversation stays open (a follow-up may still be written); only the prompt is done.
    current = { prompt: { prompt_id: "" }, viewer: current.viewer, named: current.named };
    $("resolve-form").hidden = true;
    renderPrompts();
  } catch (e) { $("state").textContent = e.message; }
});

connect();
