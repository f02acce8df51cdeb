// Package browser starts the real headless Chromium for tests, with the flags this
// machine needs as root (no sandbox, no background networking) and fake media devices.
// It is only imported by tests.
package browser

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Path finds Debian's chromium (or $LIVEROOM_CHROMIUM). When it is missing the test
// skips, or fails with LIVEROOM_REQUIRE_ALL=1 (CI).
func Path(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("LIVEROOM_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("LIVEROOM_REQUIRE_ALL") == "1" {
		t.Fatal("chromium is required (LIVEROOM_REQUIRE_ALL=1) but not installed: apt-get install chromium")
	}
	t.Skip("chromium not installed (apt-get install chromium)")
	return ""
}

// Options are the flags for headless Chromium as root on a closed network, with a fake
// camera and microphone that need no permission prompt.
func Options(t testing.TB) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("mute-audio", true),
		// Tabs in the background keep their timers and animation frames running, so a
		// publishing tab keeps drawing while another tab is in front.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
	}
}

// New starts a browser and returns a context for its first tab. Cancel it to close
// the browser; t.Cleanup does so too.
func New(t testing.TB, parent context.Context) (context.Context, context.CancelFunc) {
	t.Helper()
	actx, acancel := chromedp.NewExecAllocator(parent, Options(t)...)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		acancel()
		t.Fatalf("start chromium: %v", err)
	}
	stop := func() { cancel(); acancel() }
	t.Cleanup(stop)
	return ctx, stop
}

// Tab opens another tab in the same browser.
func Tab(t testing.TB, browserCtx context.Context) (context.Context, context.CancelFunc) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatalf("open tab: %v", err)
	}
	t.Cleanup(cancel)
	return ctx, cancel
}
