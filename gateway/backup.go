package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/problem"
	"github.com/liveroom/liveroom/token"
)

// backupStall is how long a backup's client may read nothing before the node gives
// up on it: the copies are as large as the stores, and only one backup runs at a time.
const backupStall = time.Minute

// backupArchive answers a node-wide admin with a tar archive of every store of the
// node, copied while it runs (docs/operations.md, "Backups"). One backup runs at a
// time: each copies the stores on the data's disk first.
func (s *Server) backupArchive(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodOptions { // a CORS preflight (the middleware's headers)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodGet { // HEAD too: no copy for headers alone
		w.Header().Set("Allow", http.MethodGet)
		writeMethodNotAllowed(w, r.Method)
		return
	}
	if _, err := s.Authorize(r, token.AnyRoom, false, event.RoleAdmin); err != nil {
		writeError(w, r, err)
		return
	}
	if !s.backingUp.CompareAndSwap(false, true) {
		writeError(w, r, problem.New(problem.Conflict, "a backup is already being taken; retry when it is done"))
		return
	}
	defer s.backingUp.Store(false)
	snap, err := s.deps.Backup(r.Context())
	if err != nil {
		if r.Context().Err() != nil {
			s.log.Info("backup abandoned: the client went away while the stores were copied")
		} else {
			s.log.Error("backup failed", "err", err)
		}
		writeError(w, r, problem.Wrap(problem.Unavailable, err, "could not copy the stores (a backup needs as much free space under --data as the stores take)"))
		return
	}
	defer snap.Close()
	name := "liveroom-backup-" + snap.Taken().Format("20060102T150405Z") + ".tar"
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	w.Header().Set("Content-Length", strconv.FormatInt(snap.Size(), 10))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	defer rc.SetWriteDeadline(time.Time{}) // the connection may serve other requests after
	out := &stallLimit{w: w, rc: rc, stall: s.backupStall}
	n, err := snap.WriteTo(out)
	if err == nil {
		err = out.Flush()
	}
	if err != nil {
		// The client sees a short body against Content-Length.
		s.log.Warn("backup not delivered whole", "written", n, "of", snap.Size(), "err", err)
		return
	}
	s.log.Info("backup delivered", "files", snap.Names(), "bytes", snap.Size())
}

// stallLimit gives every write its own deadline, so a client that stops reading
// fails the copy (freeing the backup's turn and its folder) while a slow one that
// keeps reading is served however long it takes.
type stallLimit struct {
	w     io.Writer
	rc    *http.ResponseController
	stall time.Duration
}

func (l *stallLimit) Write(p []byte) (int, error) {
	if err := l.deadline(); err != nil {
		return 0, err
	}
	return l.w.Write(p)
}

// Flush sends what the server still buffers (the archive's last blocks) under a
// deadline too: after the handler the server would send it with none.
func (l *stallLimit) Flush() error {
	if err := l.deadline(); err != nil {
		return err
	}
	return l.rc.Flush()
}

func (l *stallLimit) deadline() error {
	err := l.rc.SetWriteDeadline(time.Now().Add(l.stall))
	if errors.Is(err, http.ErrNotSupported) {
		return nil
	}
	return err
}
