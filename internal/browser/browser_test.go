package browser

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestFakeCamera checks the flags give a working headless browser whose fake camera
// produces video without a permission prompt.
func TestFakeCamera(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`<!doctype html><title>x</title>`))
	}))
	defer ts.Close()
	ctx, _ := New(t, context.Background())
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL)); err != nil {
		t.Fatal(err)
	}
	w, err := chromedp.Run(ctx, chromedp.Evaluate[int](`navigator.mediaDevices.getUserMedia({video:true}).then(s => s.getVideoTracks()[0].getSettings().width)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if w <= 0 {
		t.Fatalf("fake camera width %d", w)
	}
}
