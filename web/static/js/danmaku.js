// danmaku: comments fly right to left across the video in lanes that never overlap.
// Every item moves at the same speed, so an item that entered a lane after the previous
// one had fully entered can never catch it up.

const SPEED = 140; // px per second
const GAP = 24; // px between items in a lane
const MAX_QUEUE = 60;

export class DanmakuLayer {
  constructor(layer) {
    this.layer = layer;
    this.lanes = [];
    this.queue = [];
    this.enabled = true;
    this.density = 0.66;
    this.reduced = matchMedia("(prefers-reduced-motion: reduce)").matches;
    this.resize();
    addEventListener("resize", () => this.resize());
  }

  resize() {
    if (this.layer.hidden) return; // no height while hidden: resized when shown again
    const lineHeight = 30;
    const n = Math.max(1, Math.floor((this.layer.clientHeight * this.density) / lineHeight));
    while (this.lanes.length < n) this.lanes.push(0);
    this.lanes.length = n;
    this.lineHeight = lineHeight;
  }

  setDensity(d) { this.density = d; this.resize(); }

  setEnabled(on) {
    this.enabled = on;
    this.layer.hidden = !on;
    if (!on) { this.queue = []; this.layer.replaceChildren(); }
    else this.resize(); // the density or the window may have changed meanwhile
  }

  /** add shows text (as text, never HTML); cls marks the viewer's own or staff comments. */
  add(text, cls = "") {
    if (!this.enabled) return;
    if (this.queue.length >= MAX_QUEUE) this.queue.shift(); // the oldest waiting one goes
    this.queue.push({ text, cls });
    this.pump();
  }

  pump() {
    const now = performance.now();
    while (this.queue.length) {
      const lane = this.lanes.findIndex((freeAt) => freeAt <= now);
      if (lane < 0) {
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.pump(), Math.max(16, Math.min(...this.lanes) - now));
        return;
      }
      this.launch(this.queue.shift(), lane, now);
    }
  }

  launch({ text, cls }, lane, now) {
    const item = document.createElement("div");
    item.className = "dm-item " + cls;
    item.textContent = text;
    if (this.reduced) {
      // No motion: a short list that fades out.
      this.layer.append(item);
      while (this.layer.children.length > this.lanes.length) this.layer.firstChild.remove();
      this.lanes[lane] = now;
      setTimeout(() => item.remove(), 6000);
      return;
    }
    item.style.top = `${lane * this.lineHeight}px`;
    item.style.transform = `translateX(${this.layer.clientWidth}px)`;
    this.layer.append(item);
    const w = item.offsetWidth;
    const distance = this.layer.clientWidth + w;
    const duration = (distance / SPEED) * 1000;
    this.lanes[lane] = now + ((w + GAP) / SPEED) * 1000; // lane free once the tail is in
    const anim = item.animate(
      [{ transform: `translateX(${this.layer.clientWidth}px)` }, { transform: `translateX(${-w}px)` }],
      { duration, easing: "linear" },
    );
    anim.onfinish = () => item.remove();
  }
}
