package segment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// JournalStore is the embedded default store: a journal in front of a BoltStore.
//
// Every Commit is appended to the open journal file and fsynced: one sequential write.
// bbolt instead rewrites a 4 KiB page for nearly every changed profile, which was most
// of the write-through's cost. Once the open file has passed its limit it is sealed, a
// new one is opened, and the sealed one is folded into the bbolt file in the
// background: each profile once, however often it was written through meanwhile.
//
// Folding is idempotent (a file's records are puts and deletes, applied in order), so
// a crash between a fold's commit and the file's removal only folds it again at the
// next open. Open folds every file it finds before anything reads the store. A
// write-through of much of the store skips the journal (CommitBulk).
type JournalStore struct {
	base  *BoltStore
	path  string // the bbolt file; journal files are path.journal.SEQ beside it
	limit int64
	part  int // records per bbolt transaction of a fold
	log   *slog.Logger
	// baseSize is the bbolt file's data after the last fold (the file is larger: bbolt
	// grows it in steps). A journal file is sealed past the limit or half of baseSize,
	// whichever is more: folding rewrites the pages of every profile in it, so a large
	// store is folded less often, each profile over more of its changes.
	baseSize atomic.Int64

	write  sync.Mutex // one writer: Commit, Erase, Load and Close
	seq    uint64     // the last journal file opened (under write)
	closed bool       // (under write)

	mu    sync.Mutex     // guards files
	files []*journalFile // oldest first; the last one is open for writing

	fold sync.Mutex // one fold at a time, oldest file first
	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	// For the metrics: bytes in journal files not yet folded, and the folds.
	journaled                                      atomic.Int64
	folds, foldErrors, foldedProfiles, foldSeconds prometheus.Counter
}

var _ Store = (*JournalStore)(nil)

// JournalLimit is the default size past which a journal file is sealed and folded
// (or half the bbolt file's, if that is more).
const JournalLimit = 128 << 20

// journalSuffix names the journal files beside the bbolt file.
const journalSuffix = ".journal."

// OpenJournal opens (creating) the bbolt file at path, folds the journal files left
// beside it into it, and opens a new journal file. limit is the size past which a
// journal file is folded; wait is how long to wait for another process holding the
// file (then ErrLocked).
func OpenJournal(path string, wait time.Duration, limit int64, log *slog.Logger) (*JournalStore, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, err := OpenBolt(path, wait) // the file lock covers the journal files too
	if err != nil {
		return nil, err
	}
	s := &JournalStore{base: base, path: path, limit: max(limit, 1), part: flushPart, log: log,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "liveroom", Subsystem: "segment", Name: name, Help: help})
	}
	s.folds = c("journal_folds_total", "Folds of the journal into segment.db (and write-throughs written straight into it).")
	s.foldErrors = c("journal_fold_errors_total", "Folds that failed (retried).")
	s.foldedProfiles = c("journal_folded_profiles_total", "Profiles written into segment.db by folds.")
	s.foldSeconds = c("journal_fold_seconds_total", "Time spent folding.")
	last, err := s.foldLeftovers()
	s.baseSize.Store(base.size())
	s.journaled.Store(0) // the leftovers were never counted in
	if err == nil {
		err = s.openFile(last + 1)
	}
	if err != nil {
		base.Close()
		return nil, err
	}
	go s.folder()
	return s, nil
}

var errStoreClosed = errors.New("segment store closed")

// Commit implements Store: the batch is durable once it is in the journal.
func (s *JournalStore) Commit(ctx context.Context, b *Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.write.Lock()
	defer s.write.Unlock()
	j, err := s.writable()
	if err != nil {
		return err
	}
	before := j.size
	j.append(b)
	s.journaled.Add(j.size - before)
	if err := j.sync(); err != nil {
		// The file may end in part of this batch, which replay drops (it has no commit
		// record); later batches go to a new file, so they do not follow it.
		if serr := s.seal(); serr != nil {
			err = errors.Join(err, serr)
		}
		s.nudge()
		return fmt.Errorf("segment journal %s: %w", j.path, err)
	}
	s.mu.Lock()
	j.remember(b)
	s.mu.Unlock()
	if j.size >= max(s.limit, s.baseSize.Load()/2) {
		if err := s.seal(); err != nil {
			// The batch is durable; the next Commit tries to open a file again.
			s.log.Error("segment journal: opening the next file", "err", err)
		}
		s.nudge()
	}
	return nil
}

func (s *JournalStore) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// CommitBulk implements bulkStore: b goes straight into the bbolt file, in parts,
// folded together with the journal before it. A write-through that changes much of
// the store has little to fold together with later ones; through the journal it
// would be written twice.
func (s *JournalStore) CommitBulk(ctx context.Context, b *Batch) error {
	s.write.Lock()
	defer s.write.Unlock()
	if s.closed {
		return errStoreClosed
	}
	if err := s.sealUnlessEmpty(); err != nil {
		return err
	}
	if _, err := s.foldSealed(ctx, b); err != nil {
		s.nudge() // the sealed files are the folder's again
		return err
	}
	return nil
}

// Collectors are the journal's metrics (the engine registers them with its own).
func (s *JournalStore) Collectors() []prometheus.Collector {
	bytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "liveroom", Subsystem: "segment", Name: "journal_bytes",
		Help: "Bytes in journal files not yet folded into segment.db."}, func() float64 { return float64(s.journaled.Load()) })
	return []prometheus.Collector{bytes, s.folds, s.foldErrors, s.foldedProfiles, s.foldSeconds}
}

// Fold folds the whole journal into the bbolt file now (the bench counts what is left
// to fold after a run this way).
func (s *JournalStore) Fold(ctx context.Context) error { return s.folded(ctx, nil) }

// Load implements Store: it folds the journal first, so the bbolt file holds it all.
func (s *JournalStore) Load(ctx context.Context, profile, product func(string, []byte) error) error {
	return s.folded(ctx, func() error { return s.base.Load(ctx, profile, product) })
}

// folded folds the whole journal, then calls then (if any) with no write in between.
func (s *JournalStore) folded(ctx context.Context, then func() error) error {
	s.write.Lock()
	defer s.write.Unlock()
	if s.closed {
		return errStoreClosed
	}
	if err := s.foldAll(ctx); err != nil || then == nil {
		return err
	}
	return then()
}

// Seen implements Store. The journal's ids are read before the bbolt file's: a file
// leaves the journal only once its fold has committed, so an id read in neither was
// committed after Seen began.
func (s *JournalStore) Seen(ctx context.Context, k Kind, list []string) (map[string]bool, error) {
	journaled := map[string]bool{}
	s.mu.Lock()
	for _, j := range s.files {
		for _, id := range list {
			if _, ok := j.ids[k][id]; ok {
				journaled[id] = true
			}
		}
	}
	s.mu.Unlock()
	out, err := s.base.Seen(ctx, k, list)
	if err != nil {
		return nil, err
	}
	maps.Copy(out, journaled)
	return out, nil
}

// Held implements Store, reading the journal before the bbolt file as Seen does. A
// record in both (its file was being folded, or it was written again) is taken once,
// the journal's copy: it is the later.
func (s *JournalStore) Held(ctx context.Context, owners []string) (map[Kind][]Record, error) {
	var journaled []ownedRecord
	s.mu.Lock()
	for _, j := range s.files {
		for _, o := range owners {
			journaled = append(journaled, j.owned[o]...)
		}
	}
	s.mu.Unlock()
	held, err := s.base.Held(ctx, owners)
	if err != nil {
		return nil, err
	}
	at := map[Kind]map[string]int{} // where each record is in held
	for k, rs := range held {
		at[k] = make(map[string]int, len(rs))
		for i, r := range rs {
			at[k][r.Key] = i
		}
	}
	for _, r := range journaled {
		if at[r.kind] == nil {
			at[r.kind] = map[string]int{}
		}
		if i, ok := at[r.kind][r.rec.Key]; ok {
			held[r.kind][i] = r.rec
			continue
		}
		at[r.kind][r.rec.Key] = len(held[r.kind])
		held[r.kind] = append(held[r.kind], r.rec)
	}
	return held, nil
}

// Erase implements Store: the journal is folded first and its files removed, so the
// erased data is left nowhere but in the bbolt file, which BoltStore.Erase compacts.
func (s *JournalStore) Erase(ctx context.Context, owners []string) error {
	return s.folded(ctx, func() error { // the fold made the files' removal durable
		err := s.base.Erase(ctx, owners)
		s.baseSize.Store(s.base.size()) // the compaction shrank it
		return err
	})
}

// Close stops the folder, folds the journal and closes the files: after a clean stop
// the bbolt file holds everything, whatever copies or opens it. A journal it could not
// fold is folded at the next open.
func (s *JournalStore) Close() error {
	s.write.Lock()
	defer s.write.Unlock()
	if s.closed {
		return nil
	}
	close(s.stop)
	<-s.done
	err := s.foldAll(context.Background())
	if j := s.open(); j != nil {
		err = errors.Join(err, j.f.Close())
		s.mu.Lock()
		j.f, j.w = nil, nil
		s.mu.Unlock()
		if j.size == int64(len(journalMagic)) {
			err = errors.Join(err, os.Remove(j.path))
		}
	}
	s.closed = true
	return errors.Join(err, s.base.Close())
}
