package gateway

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/problem"
	"github.com/liveroom/liveroom/token"
)

// backupArchive answers a node-wide admin with a tar archive of every store of the
// node, copied while it runs (docs/operations.md, "Backups"). One backup runs at a
// time: each copies the stores on the data's disk first.
func (s *Server) backupArchive(w http.ResponseWriter, r *http.Request) {
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
		s.log.Error("backup failed", "err", err)
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
	if n, err := snap.WriteTo(w); err != nil {
		// The client sees a short body against Content-Length.
		s.log.Warn("backup not delivered whole", "written", n, "of", snap.Size(), "err", err)
		return
	}
	s.log.Info("backup delivered", "files", snap.Names(), "bytes", snap.Size())
}
