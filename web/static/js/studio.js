// The host's studio: camera and microphone, preview, go live over WHIP, live figures,
// the room chat with moderation, pinning a product, and what OBS / ffmpeg need.
import { apply, label, mountSwitch, t } from "./i18n.js";
import { RoomSocket, claims, el, pageToken, roomFromPath } from "./api.js";
import { publish, statsMeter } from "./webrtc.js";

const $ = (id) => document.getElementById(id);
const room = roomFromPath();
const token = pageToken();
let stream = null;
let session = null;
// giftValue is the room's gift value per currency: the welcome's totals, then each gift
// event's running total (never lower: a resume replays older gifts).
let giftValue = {};
function showGiftValue() {
  const parts = Object.entries(giftValue).map(([cur, v]) => `${Number(v).toFixed(2)} ${cur}`.trim());
  $("f-gifts").textContent = parts.length ? parts.join(" · ") : "0.00";
}

apply();
mountSwitch($("lang"));
$("room-name").textContent = room;
$("whip-url").textContent = new URL(`/whip/${encodeURIComponent(room)}`, location.href).href;
$("bearer").textContent = token;
$("bearer").tabIndex = 0;

async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [kind, select] of [["videoinput", $("camera")], ["audioinput", $("mic")]]) {
    const current = select.value;
    select.replaceChildren();
    devices.filter((d) => d.kind === kind).forEach((d, i) => {
      select.append(el("option", { value: d.deviceId, text: d.label || `${kind} ${i + 1}` }));
    });
    if (current) select.value = current;
  }
}

async function openCamera() {
  const [w, h] = $("quality").value.split("x").map(Number);
  if (stream) stream.getTracks().forEach((tr) => tr.stop());
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { deviceId: $("camera").value ? { exact: $("camera").value } : undefined, width: { ideal: w }, height: { ideal: h }, frameRate: { ideal: 30 } },
      audio: { deviceId: $("mic").value ? { exact: $("mic").value } : undefined },
    });
    $("preview").srcObject = stream;
    $("media-error").textContent = "";
    await listDevices();
  } catch (e) {
    $("media-error").textContent = `${t("camera")}: ${e.message}`;
  }
}

$("camera").addEventListener("change", openCamera);
$("mic").addEventListener("change", openCamera);
$("quality").addEventListener("change", openCamera);

// goLive publishes; a broadcast whose connection fails is said so and published again
// (up to three tries, 2, 4 and 8 s apart), as a dropped network or a server restart
// would otherwise leave the host believing it is live.
async function goLive(retry = 0) {
  if (!stream) await openCamera();
  if (!stream) return;
  $("go").disabled = true;
  try {
    const maxBitrate = Number($("quality").value.split("x")[2]);
    session = await publish(room, token, stream, { simulcast: $("simulcast").checked, maxBitrate });
    $("media-error").textContent = "";
    $("stop").disabled = false;
    $("state").textContent = t("live");
    meter(statsMeter(session.pc, "out"));
    const pc = session.pc;
    pc.addEventListener("connectionstatechange", async () => {
      if (!session || session.pc !== pc) return;
      // "disconnected" comes seconds before "failed": LIVE must not stand meanwhile.
      if (pc.connectionState === "disconnected") $("state").textContent = t("reconnecting");
      if (pc.connectionState === "connected") $("state").textContent = t("live");
      if (pc.connectionState !== "failed") return;
      await stop();
      $("media-error").textContent = t("lost");
      setTimeout(() => goLive(1), 2000);
    });
  } catch (e) {
    $("media-error").textContent = e.message;
    $("go").disabled = false;
    if (retry > 0 && retry < 3) setTimeout(() => goLive(retry + 1), 2000 << retry);
  }
}
$("go").addEventListener("click", () => goLive());

async function stop() {
  if (session) await session.stop();
  session = null;
  $("go").disabled = false;
  $("stop").disabled = true;
  $("state").textContent = "";
  $("f-bitrate").textContent = "—";
}
$("stop").addEventListener("click", stop);

function meter(read) {
  const tick = async () => {
    if (!session) return;
    try {
      const f = await read();
      $("f-bitrate").textContent = `${(f.bitrate / 1e6).toFixed(2)} Mbit/s`;
      $("f-loss").textContent = `${(f.loss * 100).toFixed(1)} %`;
    } catch {}
    setTimeout(tick, 1000);
  };
  tick();
}

// --- chat and moderation -------------------------------------------------------------
// The chat shows the last 300 rows; a row is found by its data-seq (a map of them would
// keep every removed row alive).
const chatList = $("chat");

function moderate(type, fields) { sock.send({ type, ...fields }); }

function addMessage(e) {
  const who = label(e.from);
  const li = el("li", { "data-seq": Number.isInteger(e.seq) ? e.seq : undefined },
    el("span", { class: "who", text: who }),
    el("span", { class: "text", text: e.text || "" }));
  if (e.from && e.from.role === "viewer") {
    li.append(
      ...(e.type === "danmaku" ? [el("button", { type: "button", text: t("delete"), onclick: () => moderate("delete", { seq: e.seq }) })] : []),
      el("button", { type: "button", text: t("mute"), onclick: () => moderate("mute", { user: e.from.id, for: "10m" }) }),
      el("button", { type: "button", text: t("ban"), onclick: () => moderate("ban", { user: e.from.id }) }),
    );
  }
  chatList.append(li);
  while (chatList.children.length > 300) chatList.firstChild.remove();
  chatList.scrollTop = 1e9;
}

function onEvent(e) {
  switch (e.type) {
    case "welcome": {
      const r = e.room || {};
      $("f-viewers").textContent = String(r.viewers ?? 0);
      $("f-likes").textContent = String(r.likes ?? 0);
      giftValue = { ...(r.gift_value || {}) };
      showGiftValue();
      for (const h of e.history || []) if (h.type === "danmaku") addMessage(h);
      break;
    }
    case "danmaku": addMessage(e); break;
    case "presence": $("f-viewers").textContent = String(e.viewers ?? 0); break;
    case "likes": $("f-likes").textContent = String(e.total ?? 0); break;
    case "gift":
      if (e.gift_total != null) {
        const cur = e.currency || "";
        giftValue[cur] = Math.max(giftValue[cur] || 0, Number(e.gift_total));
        showGiftValue();
      }
      addMessage({ ...e, text: `🎁 ${e.gift} ×${e.count || 1}` });
      break;
    case "deleted": {
      const seq = Number(e.target ?? e.deleted ?? e.of);
      const li = Number.isInteger(seq) ? chatList.querySelector(`li[data-seq="${seq}"]`) : null;
      if (li) li.classList.add("deleted");
      break;
    }
    case "error": $("media-error").textContent = e.message || e.code; break;
  }
}

const sock = new RoomSocket(room, token, {
  onEvent,
  onState: (s) => { $("state").textContent = s === "open" ? (session ? t("live") : t("connected")) : s === "expired" ? t("expired") : t("reconnecting"); },
});

$("say-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("say").value.trim();
  if (text) sock.send({ type: "danmaku", text });
  $("say").value = "";
});

$("pin-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const product = Object.fromEntries([...f.entries()].filter(([, v]) => v !== ""));
  if (product.price !== undefined) product.price = Number(product.price);
  sock.send({ type: "pin", product });
});

if (claims(token).role !== "host" && claims(token).role !== "admin") {
  $("media-error").textContent = "This page needs a host token (?token=…).";
}
openCamera();
