// webrtc: WHIP publish (RFC 9725) and WHEP playback. The offer is sent once ICE
// gathering completes (or after 2 s), so no trickle PATCH is needed on a LAN or loopback.

function gathered(pc, ms = 2000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { clearTimeout(timer); pc.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    const timer = setTimeout(done, ms);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/** iceServers reads the Link: rel="ice-server" headers of an OPTIONS answer. */
async function iceServers(url, token) {
  try {
    const res = await fetch(url, { method: "OPTIONS", headers: { Authorization: `Bearer ${token}` } });
    const link = res.headers.get("Link") || "";
    const out = [];
    for (const part of link.split(/,(?=\s*<)/)) {
      const m = part.match(/<([^>]+)>/);
      if (!m || !/rel="ice-server"/.test(part)) continue;
      const s = { urls: m[1] };
      const user = part.match(/username="([^"]*)"/);
      const cred = part.match(/credential="([^"]*)"/);
      if (user) s.username = user[1];
      if (cred) s.credential = cred[1];
      out.push(s);
    }
    return out;
  } catch {
    return [];
  }
}

async function exchange(url, token, pc, relayed) {
  await pc.setLocalDescription(await pc.createOffer());
  // The server learns this side's address from its connectivity checks (peer-reflexive
  // candidates), so with no TURN relay to wait for the offer goes out almost at once.
  await gathered(pc, relayed ? 2000 : 150);
  const res = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
    body: pc.localDescription.sdp,
  });
  if (res.status !== 201) {
    let msg = `${res.status}`;
    try { msg = (await res.json()).error.message; } catch {}
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  const location = new URL(res.headers.get("Location"), url).href;
  await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
  return location;
}

function session(pc, location, token) {
  return {
    pc,
    location,
    async stop() {
      pc.close();
      try { await fetch(location, { method: "DELETE", headers: { Authorization: `Bearer ${token}` } }); } catch {}
    },
  };
}

/**
 * publish sends stream to /whip/{room}. With simulcast, the video goes out in three
 * layers (full, half, quarter resolution) where the browser supports it.
 */
export async function publish(room, token, stream, { simulcast = false, maxBitrate = 2_500_000 } = {}) {
  const url = new URL(`/whip/${encodeURIComponent(room)}`, location.href).href;
  const servers = await iceServers(url, token);
  const pc = new RTCPeerConnection({ iceServers: servers, bundlePolicy: "max-bundle" });
  for (const track of stream.getTracks()) {
    const init = { direction: "sendonly", streams: [stream] };
    if (track.kind === "video") {
      init.sendEncodings = simulcast
        ? [
            { rid: "q", scaleResolutionDownBy: 4, maxBitrate: Math.round(maxBitrate / 8) },
            { rid: "h", scaleResolutionDownBy: 2, maxBitrate: Math.round(maxBitrate / 3) },
            { rid: "f", maxBitrate },
          ]
        : [{ maxBitrate }];
    }
    pc.addTransceiver(track, init);
  }
  return session(pc, await exchange(url, token, pc, servers.length > 0), token);
}

/** play receives /whep/{room} into video. It throws with status 404 while not live. */
export async function play(room, token, video) {
  const url = new URL(`/whep/${encodeURIComponent(room)}`, location.href).href;
  const servers = await iceServers(url, token);
  const pc = new RTCPeerConnection({ iceServers: servers, bundlePolicy: "max-bundle" });
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  const stream = new MediaStream();
  pc.ontrack = (e) => {
    stream.addTrack(e.track);
    video.srcObject = stream;
  };
  try {
    return session(pc, await exchange(url, token, pc, servers.length > 0), token);
  } catch (e) {
    pc.close();
    throw e;
  }
}

/** outboundFigures sums bitrate (bit/s since the previous call) and loss from getStats. */
export function statsMeter(pc, direction) {
  let prevBytes = 0, prevAt = 0;
  return async () => {
    const report = await pc.getStats();
    let bytes = 0, lost = 0, packets = 0, fps = 0, width = 0, delay = 0;
    report.forEach((s) => {
      if (direction === "out" && s.type === "outbound-rtp" && s.kind === "video") {
        bytes += s.bytesSent || 0; packets += s.packetsSent || 0;
        fps = Math.max(fps, s.framesPerSecond || 0); width = Math.max(width, s.frameWidth || 0);
      }
      if (direction === "out" && s.type === "remote-inbound-rtp" && s.kind === "video") lost += s.packetsLost || 0;
      if (direction === "in" && s.type === "inbound-rtp" && s.kind === "video") {
        bytes += s.bytesReceived || 0; packets += s.packetsReceived || 0; lost += s.packetsLost || 0;
        fps = s.framesPerSecond || 0; width = s.frameWidth || 0;
        if (s.jitterBufferEmittedCount) delay = s.jitterBufferDelay / s.jitterBufferEmittedCount;
      }
    });
    const now = performance.now();
    const bitrate = prevAt ? ((bytes - prevBytes) * 8 * 1000) / (now - prevAt) : 0;
    prevBytes = bytes; prevAt = now;
    return { bitrate, loss: packets + lost > 0 ? lost / (packets + lost) : 0, fps, width, jitterDelay: delay };
  };
}
