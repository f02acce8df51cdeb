package segment

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
// next open. Open folds every file it finds before anything reads the store.
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

	// For the metrics: bytes in journal files not yet folded, and the folds.
	journaled                         atomic.Int64
	folds, foldErrors, foldedProfiles prometheus.Counter
	foldSeconds                       prometheus.Counter

	stop chan struct{}
	done chan struct{}
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
	for i, f := range found {
		inOrder[i] = f.path
	}
	if _, err := s.foldFiles(context.Background(), inOrder, nil); err != nil {
		return 0, err
	}
	return found[len(found)-1].seq, syncDir(filepath.Dir(s.path))
}

// journalFile is one journal file and, for Seen and Held, the ids and owned records it
// holds (they are read from the bbolt file once it is folded).
type journalFile struct {
	seq  uint64
	path string
	f    *os.File // nil once sealed
	w    *bufio.Writer
	size int64

	scratch []byte // the record being written
	err     error  // a record that could not be written; the batch's sync returns it

	ids   map[Kind]map[string]struct{}
	owned map[string][]ownedRecord // by owner
}

type ownedRecord struct {
	kind Kind
	rec  Record
}

// openFile starts journal file seq and makes its name durable.
func (s *JournalStore) openFile(seq uint64) error {
	path := s.path + journalSuffix + strconv.FormatUint(seq, 10)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("segment journal: %w", err)
	}
	j := &journalFile{seq: seq, path: path, f: f, w: bufioWriter(f),
		ids: map[Kind]map[string]struct{}{}, owned: map[string][]ownedRecord{}}
	if _, err := j.w.WriteString(journalMagic); err == nil {
		err = j.sync()
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("segment journal %s: %w", path, err)
	}
	j.size = int64(len(journalMagic))
	s.journaled.Add(j.size)
	s.seq = seq
	s.mu.Lock()
	s.files = append(s.files, j)
	s.mu.Unlock()
	return nil
}

// bufioWriter buffers a journal file's writes: a write-through of many profiles is a
// few large writes.
func bufioWriter(w io.Writer) *bufio.Writer { return bufio.NewWriterSize(w, 1<<20) }

func (j *journalFile) sync() error {
	if err := j.err; err != nil {
		j.err = nil
		return err
	}
	if err := j.w.Flush(); err != nil {
		return err
	}
	return j.f.Sync()
}

// open returns the file being written, nil after Close.
func (s *JournalStore) open() *journalFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.files) == 0 || s.files[len(s.files)-1].f == nil {
		return nil
	}
	return s.files[len(s.files)-1]
}

// writable returns the file to write, opening one if opening the last failed.
func (s *JournalStore) writable() (*journalFile, error) {
	if s.closed {
		return nil, errStoreClosed
	}
	if j := s.open(); j != nil {
		return j, nil
	}
	if err := s.openFile(s.seq + 1); err != nil {
		return nil, err
	}
	return s.open(), nil
}

// seal closes the open file for writing (it is folded from then on) and opens the
// next one. When that fails, the next Commit tries again.
func (s *JournalStore) seal() error {
	if j := s.open(); j != nil {
		err := j.f.Close()
		s.mu.Lock()
		j.f, j.w = nil, nil
		s.mu.Unlock()
		if err != nil {
			s.log.Warn("segment journal: closing a sealed file", "file", j.path, "err", err)
		}
	}
	return s.openFile(s.seq + 1)
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

// remember keeps what Seen and Held must find in b until the file is folded (the
// batch's bytes are the caller's again once Commit returns).
func (j *journalFile) remember(b *Batch) {
	for k, rs := range b.Owned {
		ids := j.ids[k]
		if ids == nil {
			ids = map[string]struct{}{}
			j.ids[k] = ids
		}
		for _, r := range rs {
			ids[r.Key] = struct{}{}
			j.owned[r.Owner] = append(j.owned[r.Owner], ownedRecord{k, Record{Key: r.Key, Owner: r.Owner, Data: bytes.Clone(r.Data)}})
		}
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
	// Owned records too: after a large import they would make the first part one large
	// transaction.
	for k, rs := range b.Owned {
		for start := 0; start < len(rs); start += s.part {
			part := &Batch{Owned: map[Kind][]Record{k: rs[start:min(start+s.part, len(rs))]}}
			if err := s.base.Commit(ctx, part); err != nil {
				return 0, fmt.Errorf("segment journal: folding %s: %w", strings.Join(paths, ", "), err)
			}
		}
	}
	profiles := *b // the caller's batch keeps its owned records
	profiles.Owned = nil
	if err := inParts(ctx, &profiles, s.part, s.base.Commit); err != nil {
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
	return s.folded(ctx, func() error {
		if err := syncDir(filepath.Dir(s.path)); err != nil {
			return err
		}
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

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// The journal file: journalMagic, then records, each
//
//	u32 payload length | u32 CRC-32C of the payload | payload
//
// (little-endian). A payload is an op byte and its fields, strings and bytes each a
// uvarint length then the bytes:
//
//	opDeleted id | opProfile id data | opProduct sku data | opOwned kind id owner data
//	opCommit uvarint(records of the batch)
//
// A batch is its records then a commit record; replay keeps whole batches only.
const journalMagic = "liveroom segment journal 1\n"

const (
	opDeleted byte = 1 + iota
	opProfile
	opProduct
	opOwned
	opCommit
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// append writes b as one batch (its errors come out at the sync after it).
func (j *journalFile) append(b *Batch) {
	n := 0
	for _, id := range b.DeletedProfiles {
		j.record(j.payload(opDeleted).str(id))
		n++
	}
	for _, r := range b.Profiles {
		j.record(j.payload(opProfile).str(r.Key).bytes(r.Data))
		n++
	}
	for _, r := range b.Products {
		j.record(j.payload(opProduct).str(r.Key).bytes(r.Data))
		n++
	}
	for k, rs := range b.Owned {
		for _, r := range rs {
			j.record(j.payload(opOwned).str(string(k)).str(r.Key).str(r.Owner).bytes(r.Data))
			n++
		}
	}
	j.record(j.payload(opCommit).uint(uint64(n)))
}

// payload is one record's payload, built in the file's scratch buffer.
type payload []byte

func (j *journalFile) payload(op byte) payload { return append(payload(j.scratch[:0]), op) }

func (p payload) uint(v uint64) payload  { return binary.AppendUvarint(p, v) }
func (p payload) str(v string) payload   { return append(p.uint(uint64(len(v))), v...) }
func (p payload) bytes(v []byte) payload { return append(p.uint(uint64(len(v))), v...) }

// record writes one record. Write errors stay in the bufio.Writer and come out at the
// batch's sync.
func (j *journalFile) record(p payload) {
	if uint64(len(p)) > math.MaxUint32 {
		j.err = fmt.Errorf("a record of %d bytes: more than a journal record holds", len(p))
		return
	}
	var hdr [8]byte
	binary.LittleEndian.PutUint32(hdr[0:], uint32(len(p)))
	binary.LittleEndian.PutUint32(hdr[4:], crc32.Checksum(p, castagnoli))
	j.w.Write(hdr[:])
	j.w.Write(p)
	j.size += int64(len(hdr) + len(p))
	j.scratch = p[:0] // keep the buffer as it grew
}

// readJournal calls batch for each whole batch in data, a journal file's bytes (the
// batches' keys are copies, their data views into data). It returns how far the whole
// batches reach, and why it stopped before the end: a crash leaves a torn batch last.
func readJournal(data []byte, batch func(*Batch)) (good int, err error) {
	if !bytes.HasPrefix(data, []byte(journalMagic)) {
		return 0, errors.New("not a liveroom segment journal (wrong first line)")
	}
	off := len(journalMagic)
	good = off
	var b Batch
	n := 0
	for off < len(data) {
		if len(data)-off < 8 {
			return good, fmt.Errorf("record header at %d cut short", off)
		}
		size := int(binary.LittleEndian.Uint32(data[off:]))
		sum := binary.LittleEndian.Uint32(data[off+4:])
		if size == 0 || size > len(data)-off-8 {
			return good, fmt.Errorf("record at %d: length %d beyond the file", off, size)
		}
		p := data[off+8 : off+8+size]
		if crc32.Checksum(p, castagnoli) != sum {
			return good, fmt.Errorf("record at %d: checksum mismatch", off)
		}
		r := reader{b: p[1:]}
		switch p[0] {
		case opDeleted:
			b.DeletedProfiles = append(b.DeletedProfiles, r.str())
		case opProfile:
			b.Profiles = append(b.Profiles, Record{Key: r.str(), Data: r.bytes()})
		case opProduct:
			b.Products = append(b.Products, Record{Key: r.str(), Data: r.bytes()})
		case opOwned:
			k := Kind(r.str())
			b.own(k, Record{Key: r.str(), Owner: r.str(), Data: r.bytes()})
		case opCommit:
			if count := r.uint(); r.err == nil && count != uint64(n) {
				return good, fmt.Errorf("commit at %d: %d records, the batch has %d", off, count, n)
			}
		default:
			return good, fmt.Errorf("record at %d: unknown op %d", off, p[0])
		}
		if r.err == nil && len(r.b) > 0 {
			r.err = errors.New("bytes left over")
		}
		if r.err != nil {
			return good, fmt.Errorf("record at %d: %w", off, r.err)
		}
		off += 8 + size
		if p[0] != opCommit {
			n++
			continue
		}
		batch(&b)
		b, n, good = Batch{}, 0, off
	}
	if n > 0 {
		return good, fmt.Errorf("the last batch (%d records) has no commit record", n)
	}
	return good, nil
}

// reader takes a payload's fields apart; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, l := binary.Uvarint(r.b)
	if l <= 0 {
		r.err = errors.New("bad length")
		return 0
	}
	r.b = r.b[l:]
	return v
}

func (r *reader) bytes() []byte {
	l := r.uint()
	if r.err != nil {
		return nil
	}
	if l > uint64(len(r.b)) {
		r.err = errors.New("field beyond the record")
		return nil
	}
	v := r.b[:l:l]
	r.b = r.b[l:]
	return v
}

func (r *reader) str() string { return string(r.bytes()) }
