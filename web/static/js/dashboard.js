// The operator's dashboard: segment sizes per dimension, the funnel, 30-day repurchase,
// DM conversion, dormant share, live rooms, tag changes over time, the rules editor with
// errors shown inline, and CSV exports.
import { apply, mountSwitch, t } from "./i18n.js";
import { call, el, pageToken } from "./api.js";

const $ = (id) => document.getElementById(id);
const token = pageToken();
const pct = (x) => (x === null || x === undefined || Number.isNaN(x) ? "–" : `${(x * 100).toFixed(1)} %`);

apply();
mountSwitch($("lang"));

function bars(rows, unit = "") {
  const max = Math.max(1, ...rows.map(([, n]) => n));
  return rows.map(([label, n]) => {
    const bar = el("div", { class: "bar", role: "img", "aria-label": `${label}: ${n}` });
    bar.style.width = `${(100 * n) / max}%`; // CSSOM, allowed by the CSP (style attributes are not)
    return el("div", { class: "bar-row" }, el("span", { text: label }), bar, el("span", { class: "n", text: `${n}${unit}` }));
  });
}

async function download(path, name) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) { $("state").textContent = `${t("export")}: ${res.status}`; return; }
  const url = URL.createObjectURL(await res.blob());
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function renderSegments(seg) {
  const box = $("charts");
  box.replaceChildren();
  const dims = seg.dimensions || seg;
  for (const [dim, counts] of Object.entries(dims)) {
    if (typeof counts !== "object") continue;
    const rows = Object.entries(counts).sort((a, b) => b[1] - a[1]);
    const card = el("section", { class: "card" },
      el("div", { class: "chart-head" }, el("h3", { text: dim })),
      ...bars(rows));
    for (const [tag] of rows.slice(0, 6)) {
      card.append(el("button", {
        type: "button", text: `${t("export")}: ${tag}`,
        onclick: () => download(`/api/segments/${encodeURIComponent(dim)}/${encodeURIComponent(tag)}?format=csv`, `${dim}-${tag}.csv`),
      }));
    }
    box.append(card);
  }
  renderChanges();
}

// renderChanges charts, per day, how many viewers reached each tag (from the server).
async function renderChanges() {
  const box = $("changes");
  let days = [];
  try { days = (await call(token, "GET", "/api/segments/changes?days=14")).days || []; } catch { return; }
  if (!days.length) { box.replaceChildren(el("p", { class: "muted", text: "0" })); return; }
  box.replaceChildren(...days.map((d) => {
    const rows = Object.entries(d.changes).sort((x, y) => y[1] - x[1]);
    return el("div", { class: "day" }, el("h3", { text: d.day }), ...bars(rows));
  }));
}

async function refresh() {
  try {
    const [seg, an] = await Promise.all([call(token, "GET", "/api/segments"), call(token, "GET", "/api/analytics")]);
    renderSegments(seg);
    $("k-repurchase").textContent = pct(an.repurchase_30d);
    $("k-dm").textContent = pct(an.dm_conversion);
    $("k-dormant").textContent = pct(an.dormant_share);
    const f = an.funnel || {};
    $("funnel").replaceChildren(...bars([["viewers", f.viewers || 0], ["engaged", f.engaged || 0], ["first_order", f.first_order || 0], ["repeat", f.repeat || 0]]));
    $("state").textContent = new Date().toLocaleTimeString();
  } catch (e) {
    $("state").textContent = e.message;
  }
  try {
    const rooms = await call(token, "GET", "/api/rooms");
    $("rooms").replaceChildren(...((rooms && rooms.rooms) || []).map((r) => el("li", {},
      el("a", { href: `/r/${encodeURIComponent(r.room)}`, text: r.room }),
      ` · ${(r.viewers && r.viewers.count) || 0} ${t("viewers")}`,
      r.publisher ? ` · ${Math.round(r.publisher.bitrate_kbps || 0)} kbit/s` : "")));
  } catch {}
}

async function loadRules() {
  try {
    const rules = await call(token, "GET", "/api/rules");
    $("rules").value = JSON.stringify(rules, null, 2);
  } catch (e) {
    $("rules-state").textContent = e.message;
  }
}

$("save-rules").addEventListener("click", async () => {
  const state = $("rules-state");
  state.className = "";
  let body;
  try { body = JSON.parse($("rules").value); } catch (e) { state.className = "error"; state.textContent = e.message; return; }
  try {
    await call(token, "PUT", "/api/rules", body);
    state.textContent = t("saved");
  } catch (e) {
    state.className = "error";
    state.textContent = e.message;
  }
});

refresh();
loadRules();
setInterval(refresh, 10000);
