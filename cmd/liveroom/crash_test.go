package main

import (
	"archive/tar"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestKillAfterAcknowledgedWrites drives a node as an operator would: every kind of
// write the node acknowledges as durable (an import, a Shopify order, a rules change,
// a consent, an agent's note, a mute), each sent only once the one before it was
// answered, then kill -9 right after the last answer, and a start on the same data:
// everything answered is there.
func TestKillAfterAcknowledgedWrites(t *testing.T) {
	t.Cleanup(http.DefaultClient.CloseIdleConnections) // the killed servers' connections: no goroutine left for the leak checks
	dir := t.TempDir()
	const shopSecret = "crash-test-shop-secret"
	r := startServe(t, dir, "serve", "--shop-secret", shopSecret)
	tok := func(role, room, user string) string {
		t.Helper()
		out, err := exec.Command(binary, "token", "--data", filepath.Join(dir, "data"), "--role", role, "--room", room, "--user", user).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	admin, agent, host := tok("admin", "*", "ops"), tok("agent", "shop", "ann"), tok("host", "shop", "hal")
	call := func(r *running, method, path, token, body string) (int, string) {
		t.Helper()
		u, _ := url.Parse(r.links["dashboard"])
		req, _ := http.NewRequest(method, u.Scheme+"://"+u.Host+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	want := func(ok int) func(int, string) {
		return func(code int, body string) {
			t.Helper()
			if code != ok {
				t.Fatalf("answered %d %s, want %d", code, body, ok)
			}
		}
	}

	want(200)(call(r, "POST", "/api/events", admin, `[{"id":"imp-1","type":"order","viewer":"vi","order_id":"imp-1","total":"12.50",`+
		`"currency":"USD","at":"2026-11-01T10:00:00Z","items":[{"sku":"s1","category":"shoes","price":"12.50","quantity":1}]}]`))
	order := `{"id":820982911946154508,"total_price":"30.00","currency":"USD","created_at":"2026-11-02T10:00:00Z",` +
		`"line_items":[{"sku":"s2","price":"30.00","quantity":1}],"note_attributes":[{"name":"liveroom_viewer","value":"vs"}]}`
	mac := hmac.New(sha256.New, []byte(shopSecret))
	mac.Write([]byte(order))
	u, _ := url.Parse(r.links["dashboard"])
	req, _ := http.NewRequest("POST", u.Scheme+"://"+u.Host+"/webhooks/orders/shopify", strings.NewReader(order))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Shopify-Hmac-Sha256", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	req.Header.Set("X-Shopify-Webhook-Id", "wh-1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("shopify order: %d", res.StatusCode)
	}
	want(200)(call(r, "PUT", "/api/rules", admin, `{"rules":[]}`))
	want(204)(call(r, "PUT", "/api/viewers/vi/consent", agent, `{"messages":false}`))
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+u.Host+"/ws/shop?token="+host, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteJSON(map[string]any{"type": "mute", "user": "troll", "for": "1h"}); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for { // the notice is the mute's acknowledgement (docs/chat.md)
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("no notice for the mute: %v", err)
		}
		if strings.Contains(string(b), `"type":"notice"`) {
			break
		}
	}
	want(204)(call(r, "POST", "/api/viewers/vi/notes", agent, `{"text":"crash-note"}`))
	r.cmd.Process.Kill()
	<-r.done

	r2 := startServe(t, dir, "serve", "--shop-secret", shopSecret)
	defer r2.stop(t)
	for _, c := range []struct{ path, token, want string }{
		{"/api/viewers/vi", admin, `"orders":1`},
		{"/api/viewers/vi", admin, `"consent":false`},
		{"/api/viewers/vs", admin, `"orders":1`},
		{"/api/rules", admin, `"rules": []`},
		{"/api/viewers/vi/actions", agent, "crash-note"},
	} {
		if code, body := call(r2, "GET", c.path, c.token, ""); code != 200 || !strings.Contains(body, c.want) {
			t.Errorf("after kill -9 and a start, GET %s: %d %.400s; want %s in it", c.path, code, body, c.want)
		}
	}
	v := tok("viewer", "shop", "troll")
	u2, _ := url.Parse(r2.links["dashboard"])
	troll, _, err := websocket.DefaultDialer.Dial("ws://"+u2.Host+"/ws/shop?token="+v, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer troll.Close()
	troll.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := troll.ReadMessage()
	if err != nil || !strings.Contains(string(b), `"muted_until"`) {
		t.Errorf("the muted viewer's welcome after the restart: %.400s %v", b, err)
	}
}

// TestRestoreOfABackupCutShort: an archive that did not arrive whole, unpacked as
// docs/operations.md says, stops the start with an error that names the file cut
// short, not with a crash (bbolt faulted on a page past the file's end).
func TestRestoreOfABackupCutShort(t *testing.T) {
	t.Cleanup(http.DefaultClient.CloseIdleConnections) // the killed servers' connections: no goroutine left for the leak checks
	dir := t.TempDir()
	r := startServe(t, dir)
	u, _ := url.Parse(r.links["dashboard"])
	out, err := exec.Command(binary, "token", "--data", filepath.Join(dir, "data"), "--role", "admin", "--room", "*", "--user", "ops").Output()
	if err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(string(out))
	var items []string
	for i := range 2000 {
		items = append(items, fmt.Sprintf(`{"id":"o%d","type":"order","viewer":"v%d","order_id":"o%d","total":"5.00","at":"2026-11-01T10:00:00Z"}`, i, i, i))
	}
	req, _ := http.NewRequest("POST", u.Scheme+"://"+u.Host+"/api/events", strings.NewReader("["+strings.Join(items, ",")+"]"))
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("import: %d", res.StatusCode)
	}
	// A clean stop folds the journal into segment.db, the file to cut.
	r.stop(t)
	r = startServe(t, dir)
	u, _ = url.Parse(r.links["dashboard"])
	req, _ = http.NewRequest("GET", u.Scheme+"://"+u.Host+"/api/backup", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	archive, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("backup: %d %v", res.StatusCode, err)
	}
	r.stop(t)

	// Cut in the middle of the archive (segment.db's data: the other stores are a few
	// pages each) and unpack what there is, as tar does.
	restored := t.TempDir()
	tr := tar.NewReader(bytes.NewReader(archive[:len(archive)/2]))
	cut := false
	for !cut {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("the cut archive ends before segment.db's data: %v", err)
		}
		f, err := os.Create(filepath.Join(restored, h.Name))
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(f, tr)
		f.Close()
		cut = err != nil
		if cut && h.Name != "segment.db" {
			t.Fatalf("the archive is cut in %s, not segment.db", h.Name)
		}
	}
	cmd := exec.Command(binary, "serve", "--data", restored)
	cmd.Env = loopbackEnv()
	got, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(got), "cut short") ||
		!strings.Contains(string(got), "segment.db") || strings.Contains(string(got), "goroutine") {
		t.Fatalf("start on a backup cut short: exit %d (%v)\n%.2000s", code, err, got)
	}
}
