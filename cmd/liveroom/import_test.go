package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"go.uber.org/goleak"

	"github.com/liveroom/liveroom/config"
	"github.com/liveroom/liveroom/gateway"
	"github.com/liveroom/liveroom/hugepage"
	"github.com/liveroom/liveroom/segment"
	"github.com/liveroom/liveroom/token"
)

const importLines = `{"id":"i1","type":"order","viewer":"c1","at":"2026-05-01T10:00:00Z","order_id":"o1","total":"30.00","currency":"EUR"}
{"id":"i2","type":"watch","viewer":"c2","at":1781517600000,"seconds":120}

{"id":"i3","type":"order","viewer":"c2","at":"bad"}
`

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImportDirect(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dir := t.TempDir()
	cfg := writeFile(t, dir, "cfg.yml", "currency-rates: {EUR: \"1.10\"}\n")
	file := writeFile(t, dir, "h.jsonl", importLines)
	data := filepath.Join(dir, "data")
	var out, errb bytes.Buffer
	if code := run([]string{"import", "--config", cfg, "--data", data, file}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1 (one refused): %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "item 3:") || !strings.Contains(errb.String(), "accepted 2 (0 already imported), refused 1") {
		t.Fatalf("output: %s", errb.String())
	}
	// The import collapses its heap into huge pages as the server does, where it can.
	want := "liveroom import: huge pages off:"
	if w, err := hugepage.Start(hugepage.Interval); err == nil {
		w.Stop()
		want = "liveroom import: huge pages on\n"
	}
	if !strings.Contains(errb.String(), want) {
		t.Errorf("no %q in: %s", want, errb.String())
	}
	errb.Reset()
	noHuge := writeFile(t, dir, "no-huge.yml", "currency-rates: {EUR: \"1.10\"}\nhuge-pages: false\n")
	run([]string{"import", "--config", noHuge, "--data", data, file}, &out, &errb)
	if !strings.Contains(errb.String(), "accepted 2 (2 already imported)") || strings.Contains(errb.String(), "huge pages") {
		t.Fatalf("re-run with huge-pages: false: %s", errb.String())
	}
	// The store holds what was imported.
	store, err := segment.OpenBolt(filepath.Join(data, "segment.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := segment.New(segment.DefaultConfig(), segment.Deps{Store: store, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := eng.Viewer(context.Background(), "c1")
	if err != nil || v.Spend.String() != "33.00" {
		t.Fatalf("c1: %+v %v", v, err)
	}
	// While something holds the store, a direct import says to go through the server.
	errb.Reset()
	if code := run([]string{"import", "--data", data, file}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "--url") {
		t.Fatalf("locked: %d %s", code, errb.String())
	}
	eng.Close(context.Background())
	store.Close()
	if code := run([]string{"import", "--data", data, filepath.Join(dir, "x.txt")}, &out, &errb); code == 0 {
		t.Fatal("a missing file imported")
	}
}

// importServer serves the gateway on an engine of its own with core's settings; it
// returns the server's URL, an admin token and the engine.
func importServer(t *testing.T, core config.Core) (string, string, *segment.Engine) {
	t.Helper()
	dir := t.TempDir()
	signer, _ := token.NewSigner("import-test-secret-of-at-least-32-bytes!")
	store, err := segment.OpenBolt(filepath.Join(dir, "segment.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := segment.New(segment.DefaultConfig(), segment.Deps{Store: store, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(core, gateway.Deps{Signer: signer, Segment: eng, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(func() { srv.Close(); eng.Close(context.Background()); store.Close() })
	admin, _ := signer.Issue(token.Spec{User: "ops", Role: "admin", Room: "*", TTL: time.Hour})
	return srv.URL, admin, eng
}

func TestImportThroughServer(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // last, once the server has stopped
	url, admin, eng := importServer(t, config.DefaultCore())
	dir := t.TempDir()
	file := writeFile(t, dir, "h.csv", "id,type,viewer,at,order_id,total,sku,category,price,quantity\n"+
		"k1,order,c3,2026-04-01T00:00:00Z,o9,20,s1,hats,10,1\nk1,order,c3,2026-04-01T00:00:00Z,o9,20,s2,bags,10,1\nk2,order,c3,2026-04-01T00:00:00Z,o10,1.2.3,,,,\n")
	var out, errb bytes.Buffer
	if code := run([]string{"import", "--url", url, "--token", admin, "--batch", "1", file}, &out, &errb); code != 1 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "accepted 1 (0 already imported), refused 1") || !strings.Contains(errb.String(), "item 2:") {
		t.Fatalf("output: %s", errb.String())
	}
	if v, err := eng.Viewer(context.Background(), "c3"); err != nil || v.Orders != 1 || len(v.Bought) != 2 {
		t.Fatalf("c3: %+v %v", v, err)
	}
	errb.Reset()
	if code := run([]string{"import", "--url", url, "--token", "nope", file}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "401") {
		t.Fatalf("bad token: %d %s", code, errb.String())
	}
}

// Orders with many lines make --batch items larger than a request may be: the import
// sends them in requests within the server's default limit, and against a server
// that takes less, halves a refused request until it fits. Nothing is lost either way.
func TestImportSplitsLargeRequests(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	var lines strings.Builder
	for i := range 1200 {
		items := make([]string, 14)
		for j := range items {
			items[j] = fmt.Sprintf(`{"sku":"sku-%d-%d","category":"shoes","price":"10.00","quantity":1}`, i, j)
		}
		fmt.Fprintf(&lines, `{"id":"big%d","type":"order","viewer":"v%d","at":"2026-04-01T00:00:00Z","order_id":"o%d","total":"140.00","items":[%s]}`+"\n",
			i, i%50, i, strings.Join(items, ","))
	}
	file := writeFile(t, t.TempDir(), "big.jsonl", lines.String())
	small := config.DefaultCore()
	small.BodyLimit = 64 << 10
	for name, core := range map[string]config.Core{"default limit": config.DefaultCore(), "64 KiB limit": small} {
		url, admin, eng := importServer(t, core)
		var out, errb bytes.Buffer
		if code := run([]string{"import", "--url", url, "--token", admin, file}, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, errb.String())
		}
		if !strings.Contains(errb.String(), "accepted 1200 (0 already imported), refused 0") {
			t.Fatalf("%s: output %s", name, errb.String())
		}
		if v, err := eng.Viewer(context.Background(), "v7"); err != nil || v.Orders != 24 {
			t.Fatalf("%s: v7 has %d orders (%v), want 24", name, v.Orders, err)
		}
	}
}

// A CSV input that fails part-way (an I/O error) stops the import with exit 1 and the
// read error. Before, the CSV reader took each failed read for an empty row and
// `liveroom import` counted "refused" items for ever.
func TestImportStopsOnACSVReadError(t *testing.T) {
	store := segment.NewMemoryStore()
	eng, err := segment.New(segment.DefaultConfig(), segment.Deps{Store: store, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())
	in := io.MultiReader(strings.NewReader("id,type,viewer,at\na,like,v,2026-04-01T00:00:00Z\n"), iotest.ErrReader(errors.New("input/output error")))
	rd, err := openReader(in, "h.csv", "auto")
	if err != nil {
		t.Fatal(err)
	}
	post := func(ctx context.Context, items []segment.Item) (segment.ImportResult, error) {
		return eng.Import(ctx, items, nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- runImport(ctx, rd, post, 1000, &errb) }()
	select {
	case code := <-done:
		if code != 1 || !strings.Contains(errb.String(), "input/output error") || strings.Contains(errb.String(), "at is required") {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	case <-time.After(3 * time.Second):
		cancel()
		<-done
		out := errb.String()
		t.Fatalf("the import never ended on a read error (stopped after 3 s); its output ends: %q", out[max(0, len(out)-160):])
	}
}
