package segment

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// foldLeftovers folds the journal files a previous run left and returns the highest
// sequence number seen.
func (s *JournalStore) foldLeftovers() (uint64, error) {
	entries, err := os.ReadDir(filepath.Dir(s.path))
	if err != nil {
		return 0, err
	}
	type numbered struct {
		seq  uint64
		path string
	}
	var found []numbered
	prefix := filepath.Base(s.path) + journalSuffix
	for _, e := range entries {
		n, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			continue // not one of ours
		}
		found = append(found, numbered{seq, filepath.Join(filepath.Dir(s.path), e.Name())})
	}
	slices.SortFunc(found, func(a, b numbered) int { return cmp.Compare(a.seq, b.seq) })
	if len(found) == 0 {
		return 0, nil
	}
	inOrder := make([]string, len(found))
	var bytes int64
	for i, f := range found {
		inOrder[i] = f.path
		if st, err := os.Stat(f.path); err == nil {
			bytes += st.Size()
		}
	}
	// Said before it starts: a large journal takes seconds to fold, and the node is
	// not up meanwhile.
	s.log.Info("segment journal: folding what the last run left before loading the profiles", "files", len(found), "bytes", bytes)
	if _, err := s.foldFiles(context.Background(), inOrder, nil); err != nil {
		return 0, err
	}
	return found[len(found)-1].seq, nil
}

// folder folds sealed files as they come. After a fold it waits four times as long as
// the fold took, as the write-through loop does, so that under load it folds the files
// sealed meanwhile together: each profile once, however many of them wrote it. A fold
// that failed is tried again after foldRetry.
func (s *JournalStore) folder() {
	defer close(s.done)
	for {
		select {
		case <-s.wake:
		case <-s.stop:
			return
		}
		start := time.Now()
		folded, err := s.foldSealed(context.Background(), nil)
		pause := 4 * time.Since(start)
		if err != nil {
			s.log.Error("segment journal: folding into the store failed; will retry", "err", err, "in", foldRetry)
			pause = foldRetry
		} else if !folded {
			continue
		}
		wait := time.NewTimer(pause)
		select {
		case <-wait.C:
			s.nudge() // files sealed during the pause wait for no further seal
		case <-s.stop:
			wait.Stop()
			return
		}
	}
}

// foldRetry is how long the folder waits after a failed fold.
const foldRetry = 10 * time.Second

// foldSealed folds every sealed file, if there are any, and then newer (if not nil)
// into the bbolt file, then forgets the files.
func (s *JournalStore) foldSealed(ctx context.Context, newer *Batch) (bool, error) {
	s.fold.Lock()
	defer s.fold.Unlock()
	s.mu.Lock()
	var paths []string
	for _, j := range s.files {
		if j.f != nil {
			break
		}
		paths = append(paths, j.path)
	}
	s.mu.Unlock()
	if len(paths) == 0 && newer == nil {
		return false, nil
	}
	removed, err := s.foldFiles(ctx, paths, newer)
	if err != nil {
		s.foldErrors.Inc()
	}
	s.mu.Lock()
	s.files = s.files[removed:] // folded and gone, even if a later one could not be removed
	s.mu.Unlock()
	return err == nil, err
}

// foldAll seals the open file and folds every sealed one.
func (s *JournalStore) foldAll(ctx context.Context) error {
	if err := s.sealUnlessEmpty(); err != nil {
		return err
	}
	_, err := s.foldSealed(ctx, nil)
	return err
}

// sealUnlessEmpty seals the open file if anything was written to it.
func (s *JournalStore) sealUnlessEmpty() error {
	if j := s.open(); j != nil && j.size > int64(len(journalMagic)) {
		return s.seal()
	}
	return nil
}

// foldFiles commits the batches of journal files, oldest first, then newer (if not
// nil), to the bbolt file, then removes the files, and says how many it removed.
func (s *JournalStore) foldFiles(ctx context.Context, paths []string, newer *Batch) (removed int, err error) {
	start := time.Now()
	var f folding
	size := 0
	for _, path := range paths {
		data, unmap, err := mapFile(path)
		if err != nil {
			return 0, fmt.Errorf("segment journal: %w", err)
		}
		defer unmap() // the batch's data are views into the files until it is committed
		size += len(data)
		if len(data) < len(journalMagic) && strings.HasPrefix(journalMagic, string(data)) {
			continue // cut short while it was being made, before anything was in it
		}
		good, err := readJournal(data, f.add)
		if good == 0 {
			return 0, fmt.Errorf("segment journal %s: %w (move it away if it is not one of liveroom's)", path, err)
		}
		if err != nil {
			// A crash leaves the last batch torn; what was acknowledged is before it.
			s.log.Warn("segment journal: dropped what follows the last whole batch", "file", path,
				"at", good, "bytes", len(data)-good, "reason", err)
		}
	}
	// In parts, as the write-through was: a fold is folded again whole after a crash,
	// so it need not be one transaction. A profile is in a part or deleted, not both.
	b := newer
	if len(paths) > 0 {
		if newer != nil {
			f.add(newer)
		}
		b = f.batch()
	}
	if err := s.commitInParts(ctx, b); err != nil {
		return 0, fmt.Errorf("segment journal: folding %s: %w", strings.Join(paths, ", "), err)
	}
	for i, path := range paths {
		if err := os.Remove(path); err != nil {
			return i, fmt.Errorf("segment journal: %w", err)
		}
	}
	// Removed for good before anything is written past them: a file that a power loss
	// brought back would be folded again over a bulk commit made since.
	if len(paths) > 0 {
		if err := syncDir(filepath.Dir(s.path)); err != nil {
			return len(paths), fmt.Errorf("segment journal: %w", err)
		}
	}
	s.baseSize.Store(s.base.size())
	s.journaled.Add(-int64(size))
	s.folds.Inc()
	s.foldedProfiles.Add(float64(len(b.Profiles)))
	s.foldSeconds.Add(time.Since(start).Seconds())
	if len(paths) == 0 {
		s.log.Info("segment write-through straight into the store file", "profiles", len(b.Profiles),
			"took", time.Since(start).Round(time.Millisecond))
		return 0, nil
	}
	s.log.Info("segment journal folded", "files", len(paths), "bytes", size,
		"batches", f.batches, "profiles", len(b.Profiles), "took", time.Since(start).Round(time.Millisecond))
	return len(paths), nil
}

// commitInParts commits b to the bbolt file in parts of s.part records: its owned
// records (after a large import they would make the first part one large
// transaction), then its profiles with the rest.
func (s *JournalStore) commitInParts(ctx context.Context, b *Batch) error {
	for k, rs := range b.Owned {
		for start := 0; start < len(rs); start += s.part {
			part := &Batch{Owned: map[Kind][]Record{k: rs[start:min(start+s.part, len(rs))]}}
			if err := s.base.Commit(ctx, part); err != nil {
				return err
			}
		}
	}
	profiles := *b // the caller's batch keeps its owned records
	profiles.Owned = nil
	return inParts(ctx, &profiles, s.part, s.base.Commit)
}

// folding gathers a journal's batches: the last write of each profile or product wins.
type folding struct {
	profiles map[string][]byte
	deleted  map[string]struct{}
	products map[string][]byte
	owned    map[Kind][]Record
	batches  int
}

// add takes in one batch in the order BoltStore.Commit applies it: deletions first.
func (f *folding) add(b *Batch) {
	if f.profiles == nil {
		f.profiles, f.deleted, f.products = map[string][]byte{}, map[string]struct{}{}, map[string][]byte{}
		f.owned = map[Kind][]Record{}
	}
	f.batches++
	for _, id := range b.DeletedProfiles {
		delete(f.profiles, id)
		f.deleted[id] = struct{}{}
	}
	for _, r := range b.Profiles {
		delete(f.deleted, r.Key)
		f.profiles[r.Key] = r.Data
	}
	for _, r := range b.Products {
		f.products[r.Key] = r.Data
	}
	for k, rs := range b.Owned {
		f.owned[k] = append(f.owned[k], rs...)
	}
}

func (f *folding) batch() *Batch {
	b := &Batch{Profiles: make([]Record, 0, len(f.profiles))}
	for k, v := range f.profiles {
		b.Profiles = append(b.Profiles, Record{Key: k, Data: v})
	}
	for k := range f.deleted {
		b.DeletedProfiles = append(b.DeletedProfiles, k)
	}
	for k, v := range f.products {
		b.Products = append(b.Products, Record{Key: k, Data: v})
	}
	if len(f.owned) > 0 {
		b.Owned = f.owned
	}
	return b
}
