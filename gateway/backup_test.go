package gateway

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liveroom/liveroom/backup"
	"github.com/liveroom/liveroom/config"
	"github.com/liveroom/liveroom/event"
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
