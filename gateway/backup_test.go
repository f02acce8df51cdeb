package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liveroom/liveroom/backup"
	"github.com/liveroom/liveroom/config"
	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/internal/pipenet"
	"github.com/liveroom/liveroom/token"
)

// One backup at a time: a second asked for while the first copies gets 409; a backup
// that cannot copy the stores gets 503 with the reason; a node without backups does
// not serve the path.
func TestBackupOneAtATime(t *testing.T) {
	data := t.TempDir()
	entered, release := make(chan struct{}), make(chan struct{})
	f := newFixture(t, func(_ *config.Core, d *Deps) {
		d.Backup = func(ctx context.Context) (*backup.Snapshot, error) {
			return backup.Take(ctx, data, func(_ context.Context, dir string) error {
				close(entered)
				<-release
				return os.WriteFile(filepath.Join(dir, "chat.db"), []byte("chat"), 0o600)
			})
		}
	})
	root := f.tok(t, event.RoleAdmin, token.AnyRoom, "root", time.Hour)
	first := make(chan answer)
	go func() { first <- f.do(t, "GET", "/api/backup", root, "", nil) }()
	<-entered
	second := f.do(t, "GET", "/api/backup", root, "", nil)
	if second.status != 409 || second.errorCode(t) != "conflict" {
		t.Errorf("second backup: %d %s", second.status, second.body)
	}
	close(release)
	if a := <-first; a.status != 200 || a.header.Get("Content-Length") != "2048" {
		t.Errorf("first backup: %d, Content-Length %s", a.status, a.header.Get("Content-Length"))
	}
	broken := newFixture(t, func(_ *config.Core, d *Deps) {
		d.Backup = func(context.Context) (*backup.Snapshot, error) { return nil, errors.New("no space left on device") }
	})
	if a := broken.do(t, "GET", "/api/backup", root, "", nil); a.status != 503 || !strings.Contains(string(a.body), "no space left on device") {
		t.Errorf("failed backup: %d %s", a.status, a.body)
	}
	none := newFixture(t, nil)
	if a := none.do(t, "GET", "/api/backup", root, "", nil); a.status != 404 {
		t.Errorf("no backups: %d", a.status)
	}
}

// A client that stops reading loses its backup after the stall limit: the next one is
// served and the first one's folder is gone. HEAD takes no backup.
func TestBackupClientThatStopsReading(t *testing.T) {
	data := t.TempDir()
	var takes atomic.Int32
	f := newFixture(t, func(_ *config.Core, d *Deps) {
		d.Backup = func(ctx context.Context) (*backup.Snapshot, error) {
			takes.Add(1)
			return backup.Take(ctx, data, func(_ context.Context, dir string) error {
				// Larger than what the sockets buffer on both sides.
				return os.WriteFile(filepath.Join(dir, "segment.db"), make([]byte, 64<<20), 0o600)
			})
		}
	})
	f.srv.backupStall = 300 * time.Millisecond
	root := f.tok(t, event.RoleAdmin, token.AnyRoom, "root", time.Hour)
	if a := f.do(t, "HEAD", "/api/backup", root, "", nil); a.status != 405 || a.header.Get("Allow") != "GET" || takes.Load() != 0 {
		t.Errorf("HEAD: %d, Allow %q, %d backups taken", a.status, a.header.Get("Allow"), takes.Load())
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/backup HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", root)
	if line, _ := bufio.NewReader(conn).ReadString('\n'); !strings.Contains(line, "200") {
		t.Fatalf("stalled client's answer: %q", line)
	}
	// It reads no more. Within a few stall limits the guard and the folder are free.
	for deadline := time.Now().Add(10 * time.Second); ; {
		left, _ := filepath.Glob(filepath.Join(data, ".backup-*"))
		if len(left) == 0 && !f.srv.backingUp.Load() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the client stopped reading: folders %v, backup running %v", left, f.srv.backingUp.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a := f.do(t, "GET", "/api/backup", root, "", nil); a.status != 200 || len(a.body) != 64<<20+3*512 {
		t.Errorf("next backup: %d, %d bytes", a.status, len(a.body))
	}
}

// A client that stops reading in the archive's last blocks (which the handler's
// writes leave buffered) loses the connection too: the tail is sent under the
// deadline, not after the handler with none. Other methods get 405 saying GET.
func TestBackupClientThatStopsInTheTail(t *testing.T) {
	data := t.TempDir()
	f := newFixture(t, func(_ *config.Core, d *Deps) {
		d.Backup = func(ctx context.Context) (*backup.Snapshot, error) {
			return backup.Take(ctx, data, func(_ context.Context, dir string) error {
				return os.WriteFile(filepath.Join(dir, "segment.db"), make([]byte, 256<<10), 0o600)
			})
		}
	})
	f.srv.backupStall = 300 * time.Millisecond
	root := f.tok(t, event.RoleAdmin, token.AnyRoom, "root", time.Hour)
	if a := f.do(t, "POST", "/api/backup", root, "", nil); a.status != 405 || a.header.Get("Allow") != "GET" {
		t.Errorf("POST: %d, Allow %q", a.status, a.header.Get("Allow"))
	}
	l := pipenet.New()
	closed := make(chan struct{})
	hs := &http.Server{Handler: f.srv.Handler(), ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			close(closed)
		}
	}}
	go hs.Serve(l)
	defer hs.Close()
	client, err := l.Dial(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	go fmt.Fprintf(client, "GET /api/backup HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", root)
	res, err := http.ReadResponse(bufio.NewReaderSize(client, 16), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, res.Body, res.ContentLength-1024); err != nil { // all but the end blocks
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("10 s after the client stopped reading, the server still holds the connection")
	}
}
