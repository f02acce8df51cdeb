package segment

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"github.com/liveroom/liveroom/backup"
)

// Backup implements backupStore: it copies the bbolt file and the journal's files
// into dir under their names here. A store opened on the copies (which folds the
// journal first) holds everything committed before Backup began.
//
// With no commit and no fold running, it begins a read transaction of the bbolt
// file and opens the journal's files, noting their committed sizes; then it lets
// both go on while it copies. A fold then commits what the copy's transaction does
// not see, and removes files only once committed: the copy keeps them, open, and
// folds them again when opened. Appends after the noted sizes are not copied.
func (s *JournalStore) Backup(ctx context.Context, dir string) error {
	s.write.Lock()
	if s.closed {
		s.write.Unlock()
		return errStoreClosed
	}
	s.fold.Lock()
	held := true
	release := func() {
		if held {
			held = false
			s.fold.Unlock()
			s.write.Unlock()
		}
	}
	defer release()
	return s.base.f.View(func(tx *bolt.Tx) error {
		type journalCopy struct {
			f    *os.File
			size int64
		}
		var copies []journalCopy
		defer func() {
			for _, c := range copies {
				c.f.Close()
			}
		}()
		s.mu.Lock()
		files := append([]*journalFile(nil), s.files...)
		s.mu.Unlock()
		for _, j := range files {
			f, err := os.Open(j.path)
			if err != nil {
				return err
			}
			copies = append(copies, journalCopy{f, j.size})
		}
		release()
		if err := tx.CopyFile(filepath.Join(dir, filepath.Base(s.path)), 0o600); err != nil {
			return err
		}
		for _, c := range copies {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := backup.WriteFile(filepath.Join(dir, filepath.Base(c.f.Name())), io.NewSectionReader(c.f, 0, c.size)); err != nil {
				return err
			}
		}
		return nil
	})
}

// backupStore is a store whose files a backup copies (Redis is backed up its own way).
type backupStore interface {
	Backup(ctx context.Context, dir string) error
}

// ErrNoBackup is Backup's error for a store that is not in files of this node.
var ErrNoBackup = errors.New("the segment store is not kept in this node's files; back it up its own way")

// Backup writes through every change the engine holds, then copies the store's files
// into dir: the copy holds every event applied before Backup began.
func (e *Engine) Backup(ctx context.Context, dir string) error {
	b, ok := e.store.(backupStore)
	if !ok {
		return ErrNoBackup
	}
	if err := e.Flush(ctx); err != nil {
		return err
	}
	return b.Backup(ctx, dir)
}
