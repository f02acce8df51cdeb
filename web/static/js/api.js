// api: tokens, JSON calls and the room WebSocket, shared by the four pages.

/** pageToken returns ?token= from the URL (kept in sessionStorage so reloads keep it). */
export function pageToken() {
  const u = new URL(location.href);
  const tok = u.searchParams.get("token");
  if (tok) {
    sessionStorage.setItem("liveroom.token", tok);
    return tok;
  }
  return sessionStorage.getItem("liveroom.token") || "";
}

/** roomFromPath returns the {room} of /studio/{room} or /r/{room}. */
export function roomFromPath() {
  const parts = location.pathname.split("/").filter(Boolean);
  return decodeURIComponent(parts[1] || "");
}

/**
 * guestToken gets a viewer token for room: the page's ?token=, else a guest token from
 * the server — renewing the one kept in localStorage so the viewer keeps its id.
 */
export async function guestToken(room) {
  const explicit = new URL(location.href).searchParams.get("token");
  if (explicit && !expired(explicit, 60_000)) return explicit; // else the viewer watches as a guest
  return renewGuest(room);
}

/** expired reports whether a token is missing or past its exp, or within spareMs of it. */
export function expired(tok, spareMs = 0) {
  const c = claims(tok);
  return !c.exp || c.exp * 1000 < Date.now() + spareMs;
}

/** renewGuest gets the kept guest token, renewed when it has less than an hour left. */
async function renewGuest(room) {
  const old = localStorage.getItem("liveroom.guest") || "";
  const c = claims(old);
  if (c.exp && c.exp * 1000 > Date.now() + 3600_000 && (c.room === room || c.room === "*")) {
    return old; // still good for an hour at least: no round trip before the video starts
  }
  const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/guest`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: old ? JSON.stringify({ token: old }) : "",
  });
  if ((res.status === 401 || res.status === 403) && old) {
    // Too old or not a guest token: a new guest id. Any other failure (rate limit, a
    // restart) is retried by the caller with the same token, so the viewer keeps its id.
    localStorage.removeItem("liveroom.guest");
    return renewGuest(room);
  }
  if (!res.ok) throw new Error(`guest token: ${res.status}`);
  const body = await res.json();
  localStorage.setItem("liveroom.guest", body.token);
  return body.token;
}

/** claims decodes a token's payload (no verification: the server does that). */
export function claims(token) {
  try {
    const p = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(decodeURIComponent(escape(atob(p))));
  } catch {
    return {};
  }
}

/** call makes an authenticated JSON request; it throws Error(message) on an error answer. */
export async function call(token, method, path, body) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!res.ok) {
    const err = new Error((data && data.error && data.error.message) || `${res.status}`);
    err.status = res.status;
    err.code = data && data.error && data.error.code;
    throw err;
  }
  return data;
}

/**
 * RoomSocket keeps a WebSocket to /ws/{room} open: it reconnects with backoff and resumes
 * with ?since= the last seq it saw, so no room event is missed or seen twice.
 * onEvent gets each server event; onState gets "open" / "reconnecting" / "closed" /
 * "expired" (the token ran out and nothing renews it).
 */
export class RoomSocket {
  constructor(room, token, { onEvent, onState, renew }) {
    this.room = room;
    this.token = token;
    // renew, when given, returns a fresh token before a connection with an expiring one
    // (a guest's); without it an expired token ends the socket with state "expired".
    this.renew = renew;
    this.onEvent = onEvent;
    this.onState = onState || (() => {});
    this.lastSeq = 0;
    this.backoff = 500;
    this.closed = false;
    this.outbox = [];
    this.connect();
    addEventListener("online", () => this.kick());
  }

  url() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    let u = `${proto}://${location.host}/ws/${encodeURIComponent(this.room)}?token=${encodeURIComponent(this.token)}`;
    if (this.lastSeq > 0) u += `&since=${this.lastSeq}`;
    return u;
  }

  async connect() {
    if (this.closed) return;
    // A guest's token is renewed a minute ahead; a token nothing renews is used until
    // it has really expired (the server checks it only when a socket opens).
    if (expired(this.token, this.renew ? 60_000 : 0)) {
      if (!this.renew) { this.closed = true; this.onState("expired"); return; }
      try {
        this.token = await this.renew();
      } catch {
        if (this.closed) return;
        this.onState("reconnecting");
        setTimeout(() => this.connect(), this.backoff);
        this.backoff = Math.min(this.backoff * 2, 10000);
        return;
      }
      if (this.closed) return;
    }
    const ws = new WebSocket(this.url());
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.backoff = 500;
      this.onState("open");
      for (const m of this.outbox.splice(0)) ws.send(JSON.stringify(m));
    };
    ws.onmessage = (m) => {
      let events;
      try { events = JSON.parse(m.data); } catch { return; }
      if (!Array.isArray(events)) events = [events];
      for (const e of events) {
        if (e.type === "reset") { this.lastSeq = 0; }
        if (e.type === "welcome" && e.room && typeof e.room.seq === "number" && this.lastSeq === 0) {
          this.lastSeq = e.room.seq;
        }
        if (typeof e.seq === "number") {
          if (e.seq <= this.lastSeq && e.type !== "welcome") continue; // already seen
          this.lastSeq = e.seq;
        }
        this.onEvent(e);
      }
    };
    ws.onclose = async (ev) => {
      if (this.closed) return;
      if (ev.code === 1008 || ev.code === 4003) { this.onState("closed", ev); return; }
      if (!opened && (await this.banned())) { this.closed = true; this.onState("closed", ev); return; }
      if (this.closed) return;
      this.onState("reconnecting", ev);
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    };
  }

  /**
   * banned reports whether the room refused this user for a ban. A browser does not
   * tell why a WebSocket was refused; the same request without the upgrade does
   * (403 "banned"), so a banned viewer who reloads is told, not left reconnecting.
   */
  async banned() {
    try {
      const res = await fetch(this.url().replace(/^ws/, "http"));
      if (res.status !== 403) return false;
      const body = await res.json();
      return !!(body && body.error && body.error.code === "banned");
    } catch {
      return false;
    }
  }

  kick() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) return;
    this.backoff = 500;
  }

  /** send queues m while disconnected and sends it once open. */
  send(m) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
    else this.outbox.push(m);
  }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close();
  }
}

/** el builds an element; children that are strings become text nodes, never HTML. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

/** safeURL returns u if it is an http(s) URL, else "" (product links come from users). */
export function safeURL(u) {
  if (!u) return ""; // an empty link would resolve to the page itself
  try {
    const p = new URL(u, location.href);
    return p.protocol === "https:" || p.protocol === "http:" ? p.href : "";
  } catch {
    return "";
  }
}
