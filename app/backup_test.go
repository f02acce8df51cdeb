package app

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/token"
)

// A backup taken from a running node, unpacked into an empty folder, starts a node
// that holds what the first held: the viewer's profile and order, the private
// messages, the agent's note and the rules document.
func TestBackupRestoresANode(t *testing.T) {
	cfg := testConfig(t)
	cfg.Segment.ShopSecret = shopSecret
	a := runningApp(t, cfg)
	defer a.Shutdown(context.Background())
	base := a.BaseURL()
	const room = "shop"
	agentTok, _ := a.Signer().Issue(token.Spec{User: "agent1", Name: "Ann", Role: event.RoleAgent, Room: room, TTL: time.Hour})
	root, _ := a.Signer().Issue(token.Spec{User: "root", Role: event.RoleAdmin, Room: token.AnyRoom, TTL: time.Hour})
	viewerTok, viewer := guest(t, base, room)
	agent := dialRoom(t, base, room, agentTok)
	defer agent.close()
	v := dialRoom(t, base, room, viewerTok)
	defer v.close()
	v.send(t, map[string]any{"type": "danmaku", "text": "hello"})
	agent.send(t, map[string]any{"type": "dm", "to": viewer, "text": "backup-dm"})
	waitUntil(t, "the agent's DM", func() bool { return len(v.of("dm")) >= 1 })
	if code, b := api(t, "POST", base+"/api/viewers/"+viewer+"/notes", agentTok, `{"text":"backup-note"}`); code != 204 {
		t.Fatalf("note: %d %s", code, b)
	}
	if code, b := shopifyOrder(t, base, "3001", viewer, room, true); code != 200 {
		t.Fatalf("order: %d %s", code, b)
	}
	waitUntil(t, "the danmaku in the profile", func() bool {
		_, b := api(t, "GET", base+"/api/viewers/"+viewer, root, "")
		return strings.Contains(string(b), `"comments":1`)
	})
	_, rulesDoc := api(t, "GET", base+"/api/rules", root, "")
	if code, b := api(t, "PUT", base+"/api/rules", root, string(rulesDoc)); code != 200 && code != 204 {
		t.Fatalf("rules: %d %s", code, b)
	}

	for _, tok := range []string{"", agentTok} {
		if code, _ := api(t, "GET", base+"/api/backup", tok, ""); code != 401 && code != 403 {
			t.Errorf("backup with token %.10q: %d, want 401 or 403", tok, code)
		}
	}
	req, _ := http.NewRequest("GET", base+"/api/backup", nil)
	req.Header.Set("Authorization", "Bearer "+root)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/x-tar" ||
		!strings.HasSuffix(res.Header.Get("Content-Disposition"), `.tar"`) {
		t.Fatalf("backup: %d %v", res.StatusCode, res.Header)
	}
	restored := t.TempDir()
	body := &counted{r: res.Body}
	names := untar(t, body, restored)
	if _, err := io.Copy(io.Discard, body); err != nil { // the archive's end
		t.Fatal(err)
	}
	if res.ContentLength <= 0 || body.n != res.ContentLength {
		t.Errorf("read %d bytes, Content-Length %d", body.n, res.ContentLength)
	}
	for _, want := range []string{ChatDB, RulesDB, RulesFile, SegmentFile} {
		if !slices.Contains(names, want) {
			t.Errorf("the backup holds %v, not %s", names, want)
		}
	}
	if slices.Contains(names, SecretFile) {
		t.Error("the backup holds the signing secret")
	}
	// The handler removes the folder (snap.Close) after the archive's last byte has
	// gone out, so the client may see EOF a moment before: wait for it.
	waitUntil(t, "the backup's folder removed from --data", func() bool {
		left, _ := filepath.Glob(filepath.Join(cfg.Data, ".backup-*"))
		return len(left) == 0
	})

	// The signing secret is kept apart (docs/operations.md): bring it along.
	secret, err := os.ReadFile(filepath.Join(cfg.Data, SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(restored, SecretFile), secret, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg2 := testConfig(t)
	cfg2.Data = restored
	b := runningApp(t, cfg2)
	defer b.Shutdown(context.Background())
	for _, c := range []struct{ path, tok, want string }{
		{"/api/viewers/" + viewer, root, `"orders":1`},
		{"/api/viewers/" + viewer, root, `"comments":1`},
		{"/api/rooms/" + room + "/dm/" + viewer, agentTok, "backup-dm"},
		{"/api/viewers/" + viewer + "/actions", agentTok, "backup-note"},
		{"/api/rules", root, string(rulesDoc)},
	} {
		code, body := api(t, "GET", b.BaseURL()+c.path, c.tok, "")
		if code != 200 || !strings.Contains(string(body), c.want) {
			t.Errorf("restored node, GET %s: %d %.300s; want %q in it", c.path, code, body, c.want)
		}
	}
}

// untar writes the archive's files into dir and lists their names.
func untar(t *testing.T, r io.Reader, dir string) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg || strings.ContainsAny(hdr.Name, `/\`) {
			t.Fatalf("unexpected entry %q (type %c)", hdr.Name, hdr.Typeflag)
		}
		f, err := os.OpenFile(filepath.Join(dir, hdr.Name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			t.Fatal(err)
		}
		f.Close()
		names = append(names, hdr.Name)
	}
}

type counted struct {
	r io.Reader
	n int64
}

func (c *counted) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// A node removes the folder a backup cut short left, once it holds the stores: a
// second node started by mistake on a running node's --data leaves that node's
// backup in progress alone.
func TestBackupLeftoversRemovedAtStart(t *testing.T) {
	cfg := testConfig(t)
	a := runningApp(t, cfg)
	inflight := filepath.Join(cfg.Data, ".backup-inflight")
	if err := os.Mkdir(inflight, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inflight, "segment.db"), []byte("copy"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, quietLog()); err == nil {
		t.Fatal("a second node started on a running node's --data")
	}
	if _, err := os.Stat(inflight); err != nil {
		t.Errorf("the second node removed the running node's backup folder: %v", err)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := runningApp(t, cfg)
	defer b.Shutdown(context.Background())
	if _, err := os.Stat(inflight); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("left after a start: %v", err)
	}
}
