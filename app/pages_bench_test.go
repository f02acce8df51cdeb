package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/liveroom/liveroom/internal/browser"
)

// clockPage publishes a canvas over WHIP on which every frame carries the time it was
// drawn (Date.now(), 42 bits as black and white blocks), so the player's tab, in the
// same browser and on the same clock, can read back how old the picture it shows is.
const clockPage = `<!doctype html><canvas id=c width=336 height=64></canvas><script type=module>
const c = document.getElementById("c"), g = c.getContext("2d");
function draw() {
  const t = Date.now();
  g.fillStyle = "#808080"; g.fillRect(0, 0, 336, 64);
  for (let i = 0; i < 42; i++) {
    g.fillStyle = Math.floor(t / 2 ** i) % 2 ? "#fff" : "#000";
    g.fillRect((i % 21) * 16, Math.floor(i / 21) * 32, 16, 32);
  }
}
setInterval(draw, 10); // not requestAnimationFrame: it stops while another tab is in front
const pc = new RTCPeerConnection();
pc.addTransceiver(c.captureStream(30).getVideoTracks()[0], { direction: "sendonly" });
await pc.setLocalDescription(await pc.createOffer());
await new Promise((r) => { if (pc.iceGatheringState === "complete") r(); pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r(); setTimeout(r, 2000); });
const res = await fetch(WHIP, { method: "POST", headers: { "Content-Type": "application/sdp", Authorization: "Bearer " + TOKEN }, body: pc.localDescription.sdp });
await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
window.published = res.status;
</script>`

// readClock reads the drawn time back from the player's video and returns its age in ms
// (or -1 while no readable frame is shown).
const readClock = `(() => {
  const v = document.getElementById("video");
  if (!v.videoWidth) return -1;
  const k = document.createElement("canvas"); k.width = 336; k.height = 64;
  const g = k.getContext("2d"); g.drawImage(v, 0, 0, 336, 64);
  const px = g.getImageData(0, 0, 336, 64).data;
  let t = 0;
  for (let i = 0; i < 42; i++) {
    const x = (i % 21) * 16 + 8, y = Math.floor(i / 21) * 32 + 16;
    if (px[(y * 336 + x) * 4] > 128) t += 2 ** i;
  }
  const age = Date.now() - t;
  return age >= 0 && age < 10000 ? age : -1;
})()`

// BenchmarkPlayer measures, in headless Chromium on loopback, the time from opening the
// player to its first video frame, and the glass-to-glass delay from a canvas drawn in a
// publishing tab to the player's picture. Run with -benchtime=Nx.
func BenchmarkPlayer(b *testing.B) {
	cfg := testConfig(b)
	cfg.AllowedOrigins = []string{"*"}
	a, err := New(cfg, quietLog())
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Start(); err != nil {
		b.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	base := a.BaseURL()
	links, err := DemoLinks(a.Signer(), base, "demo", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	hostTok := links.Studio[len(base+"/studio/demo?token="):]
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<script>const WHIP = "` + base + `/whip/demo"; const TOKEN = "` + hostTok + `";</script>` + clockPage))
	}))
	defer page.Close()
	bctx, _ := browser.New(b, context.Background())
	pub, _ := browser.Tab(b, bctx)
	if err := chromedp.Do(pub, chromedp.Navigate(page.URL)); err != nil {
		b.Fatal(err)
	}
	pollJS(b, pub, "publishing", `window.published === 201`)

	var first []float64
	for b.Loop() {
		tab, cancel := browser.Tab(b, bctx)
		if err := chromedp.Do(tab, chromedp.Navigate(links.Player)); err != nil {
			b.Fatal(err)
		}
		pollJS(b, tab, "a frame", `performance.getEntriesByName("liveroom-first-frame").length > 0`)
		ms := eval[float64](b, tab, `performance.getEntriesByName("liveroom-first-frame")[0].startTime`)
		first = append(first, ms)
		if testing.Verbose() {
			b.Log(eval[string](b, tab, `performance.getEntriesByType("mark").map(m => m.name + "=" + Math.round(m.startTime)).join(" ")`))
		}
		cancel()
	}
	// Glass to glass, sampled from one player over a few seconds.
	tab, _ := browser.Tab(b, bctx)
	if err := chromedp.Do(tab, chromedp.Navigate(links.Player)); err != nil {
		b.Fatal(err)
	}
	pollJS(b, tab, "a readable frame", readClock+` >= 0`)
	// The first pictures a joiner sees are the cached GOP replayed (up to one keyframe
	// interval old), then it is live: report that catch-up apart from the steady delay.
	catchUp := eval[float64](b, tab, readClock)
	time.Sleep(time.Second)
	var ages []float64
	for range 50 {
		if age := eval[float64](b, tab, readClock); age >= 0 {
			ages = append(ages, age)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if testing.Verbose() {
		b.Logf("glass-to-glass samples (ms, in order): %v", ages)
	}
	slices.Sort(first)
	slices.Sort(ages)
	b.ReportMetric(pct(first, 0.5), "first-frame-p50-ms")
	b.ReportMetric(pct(first, 0.99), "first-frame-p99-ms")
	b.ReportMetric(pct(ages, 0.5), "glass-p50-ms")
	b.ReportMetric(pct(ages, 0.99), "glass-p99-ms")
	b.ReportMetric(catchUp, "first-picture-age-ms")
}

func pct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return -1
	}
	return sorted[min(int(float64(len(sorted))*p), len(sorted)-1)]
}
