package rules

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/liveroom/liveroom/boltfile"
)

// BoltState keeps the rules' state in a bbolt file (the embedded default).
//
// Opened with a flush interval, firings (Commit) are decided on in memory and written
// behind in one transaction per interval, with the jobs scheduled and deleted
// meanwhile: a burst of ten thousand stay prompts goes out without waiting for the
// disk, an import of a shop's orders schedules their follow-ups at the pace it
// comes, and a crash loses at most the last interval's firings (their prompts and
// counters) and jobs. Every read (and a prompt update) first flushes, so it sees
// everything committed. With no interval, each Commit and job is written through
// bbolt's Batch before it returns.
type BoltState struct {
	db *boltfile.File
	wb *writeBehind // nil: write-through

	closing  sync.Once
	closeErr error
	// afterViewerRead, set only by tests, runs between a read of a viewer's actions
	// or prompts in the file and of the firings not yet written; afterRewrite between
	// a rewrite's transaction and its clean-up of memory.
	afterViewerRead, afterRewrite func()
}

var _ State = (*BoltState)(nil)

var (
	bCounters = []byte("counters")       // limit key → count(8) last(8)
	bJobs     = []byte("jobs")           // job id → Job
	bPrompts  = []byte("prompts")        // prompt id → Prompt
	bRoom     = []byte("room_prompts")   // room 0 created(8) seq(8) → id
	bViewer   = []byte("viewer_prompts") // viewer 0 created(8) seq(8) → id
	bActions  = []byte("actions")        // viewer 0 at(8) seq(8) → Action
	bHeld     = []byte("held")           // seq(8) → an import's events, until handled (Hold)
)

// OpenBolt opens (creating) the state file at path; flushEvery > 0 writes firings
// behind at that interval (see BoltState). Close it when done.
func OpenBolt(path string, flushEvery time.Duration) (*BoltState, error) {
	// A generous initial mapping (address space, not memory): each time bbolt grows
	// its mapping inside a write it copies every changed node out of the old one,
	// which a burst of prompts written behind in one transaction otherwise pays.
	db, err := boltfile.Open(path, bolt.Options{Timeout: 5 * time.Second, InitialMmapSize: 256 << 20},
		bCounters, bJobs, bPrompts, bRoom, bViewer, bActions, bHeld)
	if err != nil {
		return nil, fmt.Errorf("rules state %s: %w", path, err)
	}
	s := &BoltState{db: db}
	if flushEvery > 0 {
		if s.wb, err = newWriteBehind(s, flushEvery); err != nil {
			db.Close()
			return nil, fmt.Errorf("rules state %s: %w", path, err)
		}
	}
	return s, nil
}

// Close writes what is pending and closes the file; a second Close returns the
// first's error (it panicked on the write-behind's closed channel).
func (s *BoltState) Close() error {
	s.closing.Do(func() {
		var err error
		if s.wb != nil {
			err = s.wb.close()
		}
		s.closeErr = errors.Join(err, s.db.Close())
	})
	return s.closeErr
}

// Commit implements Firings.
func (s *BoltState) Commit(_ context.Context, fs ...Firing) ([]bool, error) {
	if s.wb != nil {
		// Encoded at flush time, off the firing path: records are not changed after.
		return s.wb.commit(fs)
	}
	encs := make([]*encoded, len(fs))
	for i, f := range fs {
		var err error
		if encs[i], err = encode(f.Rec); err != nil {
			return nil, err
		}
	}
	ok := make([]bool, len(fs))
	err := s.db.Batch(func(tx *bolt.Tx) error {
		clear(ok) // Batch may run this again on its own
		var write []*encoded
		for i, f := range fs {
			allowed, err := take(tx, f.At, f.Limits)
			if err != nil {
				return err
			}
			if ok[i] = allowed; allowed {
				write = append(write, encs[i])
			}
		}
		return writeRecords(tx, write)
	})
	if err != nil {
		return nil, err
	}
	return ok, nil
}

// encoded is a Record ready to write; nil writes nothing.
type encoded struct {
	rec            *Record
	prompt, action []byte
}

func encode(rec *Record) (*encoded, error) {
	if rec == nil {
		return nil, nil
	}
	e := &encoded{rec: rec}
	var err error
	if rec.Prompt != nil {
		if e.prompt, err = json.Marshal(rec.Prompt); err != nil {
			return nil, err
		}
	}
	e.action, err = json.Marshal(rec.Action)
	return e, err
}

// kv is one Put.
type kv struct{ k, v []byte }

// writeRecords stores recs (nil ones skipped) in tx. Each bucket's keys are put in
// key order: bbolt keeps a page's keys sorted, so a burst of ten thousand prompts
// put in random order would move half a page per put. Each viewer's action log is
// then trimmed once.
func writeRecords(tx *bolt.Tx, recs []*encoded) error {
	puts := make(map[string][]kv, 4)
	for _, b := range [][]byte{bPrompts, bRoom, bViewer, bActions} {
		puts[string(b)] = make([]kv, 0, len(recs))
	}
	viewers := make(map[string]struct{}, len(recs))
	for _, e := range recs {
		if e == nil {
			continue
		}
		if p := e.rec.Prompt; p != nil {
			puts[string(bPrompts)] = append(puts[string(bPrompts)], kv{[]byte(p.ID), e.prompt})
			for _, ix := range []struct {
				bucket []byte
				owner  string
			}{{bRoom, p.Room}, {bViewer, p.Viewer.ID}} {
				seq, _ := tx.Bucket(ix.bucket).NextSequence() // keeps prompts of the same instant in order
				k := binary.BigEndian.AppendUint64(indexKey(ix.owner, p.CreatedAt), seq)
				puts[string(ix.bucket)] = append(puts[string(ix.bucket)], kv{k, []byte(p.ID)})
			}
		}
		a := e.rec.Action
		seq, _ := tx.Bucket(bActions).NextSequence()
		k := binary.BigEndian.AppendUint64(indexKey(a.Viewer, a.At), seq)
		puts[string(bActions)] = append(puts[string(bActions)], kv{k, e.action})
		viewers[a.Viewer] = struct{}{}
	}
	for name, list := range puts {
		slices.SortFunc(list, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
		b := tx.Bucket([]byte(name))
		for _, p := range list {
			if err := b.Put(p.k, p.v); err != nil {
				return err
			}
		}
	}
	for v := range viewers {
		if err := trimActions(tx.Bucket(bActions), v); err != nil {
			return err
		}
	}
	return nil
}

// trimActions drops a viewer's oldest actions past MaxActionsPerViewer.
func trimActions(b *bolt.Bucket, viewer string) error {
	prefix := append([]byte(viewer), 0)
	c := b.Cursor()
	n := 0
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		n++
	}
	for k, _ := c.Seek(prefix); n > MaxActionsPerViewer && k != nil; k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
		n--
	}
	return nil
}

func take(tx *bolt.Tx, at time.Time, limits []Limit) (bool, error) {
	b := tx.Bucket(bCounters)
	counters := make([]Counter, len(limits))
	for i, l := range limits {
		var err error
		if counters[i], err = readCounter(b, l.Key); err != nil {
			return false, err
		}
		if !l.allows(counters[i], at) {
			return false, nil
		}
	}
	for i, l := range limits {
		if err := putCounter(b, l.Key, Counter{N: counters[i].N + 1, Last: at}); err != nil {
			return false, err
		}
	}
	return true, nil
}

// Counters are stored as two big-endian uint64s: the count and the last firing in
// Unix nanoseconds (they are written by the thousand in a burst).
func readCounter(b *bolt.Bucket, key string) (Counter, error) {
	v := b.Get([]byte(key))
	if v == nil {
		return Counter{}, nil
	}
	c, err := decodeCounter(v)
	if err != nil {
		return Counter{}, fmt.Errorf("counter %q: %w", key, err)
	}
	return c, nil
}

func decodeCounter(v []byte) (Counter, error) {
	if len(v) != 16 {
		return Counter{}, fmt.Errorf("%d bytes, want 16", len(v))
	}
	n := binary.BigEndian.Uint64(v)
	if n > math.MaxInt32 { // a damaged file: read as negative, it would let a rule past its cap
		return Counter{}, fmt.Errorf("count %d out of range", n)
	}
	c := Counter{N: int(n)}
	if ns := int64(binary.BigEndian.Uint64(v[8:])); ns != 0 {
		c.Last = time.Unix(0, ns)
	}
	return c, nil
}

func putCounter(b *bolt.Bucket, key string, c Counter) error {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(c.N))
	var ns int64
	if !c.Last.IsZero() {
		ns = c.Last.UnixNano()
	}
	return b.Put([]byte(key), binary.BigEndian.AppendUint64(v, uint64(ns)))
}

// PutJob implements JobStore.
func (s *BoltState) PutJob(_ context.Context, j Job) error {
	v, err := json.Marshal(j)
	if err != nil {
		return err
	}
	if s.wb != nil {
		s.wb.job(j.ID, jobChange{viewer: j.Env.Viewer.ID, enc: v})
		return nil
	}
	return s.db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(bJobs).Put([]byte(j.ID), v) })
}

// DeleteJob implements JobStore.
func (s *BoltState) DeleteJob(_ context.Context, id string) error {
	if s.wb != nil {
		s.wb.job(id, jobChange{})
		return nil
	}
	return s.db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(bJobs).Delete([]byte(id)) })
}

// Jobs implements JobStore.
func (s *BoltState) Jobs(context.Context) ([]Job, error) {
	if err := s.flush(); err != nil {
		return nil, err
	}
	var out []Job
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bJobs).ForEach(func(_, v []byte) error {
			var j Job
			if err := json.Unmarshal(v, &j); err != nil {
				return err
			}
			out = append(out, j)
			return nil
		})
	})
	return out, err
}

// indexKey is owner 0 at(8); the callers append a sequence number (8).
func indexKey(owner string, at time.Time) []byte {
	k := make([]byte, 0, len(owner)+17)
	k = append(k, owner...)
	k = append(k, 0)
	n := int64(0)
	if at.After(time.Unix(0, 0)) {
		n = at.UnixNano()
	}
	return binary.BigEndian.AppendUint64(k, uint64(n))
}

// UpdatePrompt implements PromptStore.
func (s *BoltState) UpdatePrompt(_ context.Context, id string, fn func(*Prompt) error) (Prompt, error) {
	if err := s.flush(); err != nil {
		return Prompt{}, err
	}
	var out Prompt
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bPrompts)
		v := b.Get([]byte(id))
		if v == nil {
			return notFound(id)
		}
		if err := json.Unmarshal(v, &out); err != nil {
			return err
		}
		next := out
		if err := fn(&next); err != nil {
			return err
		}
		nv, err := json.Marshal(next)
		if err != nil {
			return err
		}
		out = next
		return b.Put([]byte(id), nv)
	})
	return out, err
}

// Prompts implements PromptStore.
func (s *BoltState) Prompts(_ context.Context, room string) ([]Prompt, error) {
	return s.indexedPrompts(bRoom, room)
}

// indexedPrompts lists the prompts an index bucket (by room or by viewer) holds for
// owner, oldest first (every owner's, owner by owner, for ""), after a flush of what
// is written behind.
func (s *BoltState) indexedPrompts(index []byte, owner string) ([]Prompt, error) {
	if err := s.flush(); err != nil {
		return nil, err
	}
	var out []Prompt
	err := s.db.View(func(tx *bolt.Tx) error {
		prompts := tx.Bucket(bPrompts)
		prefix := append([]byte(owner), 0)
		if owner == "" {
			prefix = nil // every owner's
		}
		c := tx.Bucket(index).Cursor()
		for k, id := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, id = c.Next() {
			var p Prompt
			if v := prompts.Get(id); v != nil {
				if err := json.Unmarshal(v, &p); err != nil {
					return err
				}
				out = append(out, p)
			}
		}
		return nil
	})
	return out, err
}

// ViewerPrompts implements PromptStore. Like Actions it reads the prompts not yet
// written behind without writing them: the rules look for a viewer's recent prompts
// on every order, and a flush each paced an import of orders at one fsync apiece.
func (s *BoltState) ViewerPrompts(_ context.Context, viewer string, since time.Time) ([]string, error) {
	var out []string
	more, err := s.readViewer(viewer, func(tx *bolt.Tx) error {
		out = out[:0]
		prefix := append([]byte(viewer), 0)
		c := tx.Bucket(bViewer).Cursor()
		for k, id := c.Seek(indexKey(viewer, since)); k != nil && bytes.HasPrefix(k, prefix); k, id = c.Next() {
			out = append(out, string(id))
		}
		return nil
	})
	for _, r := range more {
		if p := r.Prompt; p != nil && !p.CreatedAt.Before(since) {
			out = append(out, p.ID)
		}
	}
	return out, err
}

// Sync writes what the write-behind holds now: what it returns after is durable.
func (s *BoltState) Sync(context.Context) error { return s.flush() }

// flush writes what the write-behind holds, so that a read sees it.
func (s *BoltState) flush() error {
	if s.wb == nil {
		return nil
	}
	return s.wb.flush()
}

// Actions implements Firings. It reads the file and the firings not yet written
// behind together, without writing them and without waiting for a flush: the rules
// read a viewer's log when they first see the viewer, and that must not cost an fsync
// or stall behind one.
func (s *BoltState) Actions(_ context.Context, viewer string) ([]Action, error) {
	var out []Action
	more, err := s.readViewer(viewer, func(tx *bolt.Tx) error {
		out = out[:0]
		prefix := append([]byte(viewer), 0)
		c := tx.Bucket(bActions).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var a Action
			if err := json.Unmarshal(v, &a); err != nil {
				return err
			}
			out = append(out, a)
		}
		return nil
	})
	for _, r := range more {
		out = append(out, r.Action)
	}
	if len(out) > MaxActionsPerViewer {
		out = out[len(out)-MaxActionsPerViewer:]
	}
	return out, err
}

// readViewer runs read in a read transaction, then lists viewer's firings that the
// transaction did not see (pending in the write-behind, or being written), oldest
// first. When a flush ends in between, their records are in neither: read runs again.
func (s *BoltState) readViewer(viewer string, read func(tx *bolt.Tx) error) ([]*Record, error) {
	for {
		var rtx int
		err := s.db.View(func(tx *bolt.Tx) error {
			rtx = s.db.TxID(tx)
			return read(tx)
		})
		if err != nil || s.wb == nil {
			return nil, err
		}
		if s.afterViewerRead != nil {
			s.afterViewerRead()
		}
		if more, ok := s.wb.unwritten(viewer, rtx); ok {
			return more, nil
		}
	}
}

// AnyTagged implements Firings. It looks for the encoded type rather than decoding
// every action: it runs once at start-up, over every viewer's log.
func (s *BoltState) AnyTagged(context.Context) (bool, error) {
	if err := s.flush(); err != nil {
		return false, err
	}
	marker := []byte(`"type":"` + ActTag + `"`)
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bActions).Cursor()
		for k, v := c.First(); k != nil && !found; k, v = c.Next() {
			found = bytes.Contains(v, marker)
		}
		return nil
	})
	return found, err
}

// Ready reports whether the state file is open and readable (for /readyz).
func (s *BoltState) Ready(context.Context) error {
	if s.wb != nil {
		if err := s.wb.failure(); err != nil {
			return fmt.Errorf("rules state: fired actions not written: %w", err)
		}
	}
	return s.db.View(func(*bolt.Tx) error { return nil })
}

// Backup writes behind what is pending, then copies the file, as one read transaction
// sees it, into dir (backup.Source): the copy holds every firing committed before.
func (s *BoltState) Backup(_ context.Context, dir string) error {
	if err := s.flush(); err != nil {
		return err
	}
	return s.db.CopyTo(dir)
}

// Hold keeps data (segment's encoding of an import's events and tag changes) until
// Release, durably before it returns: segment hands an acknowledged import to the
// rules once, through memory, so a crash before they handled it lost it (and an
// order's follow-up with it). It is written straight to the file, not behind.
func (s *BoltState) Hold(_ context.Context, data []byte) (uint64, error) {
	var seq uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bHeld)
		var err error
		if seq, err = b.NextSequence(); err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, seq), data)
	})
	if err != nil {
		return 0, fmt.Errorf("rules state: holding an import's events: %w", err)
	}
	return seq, nil
}

// Release forgets hold seq, once what it holds was handled. It first writes what the
// write-behind holds, so that the actions the hold's events fired are durable before
// the hold is gone; a crash in between hands them over again (at least once).
func (s *BoltState) Release(_ context.Context, seq uint64) error {
	if err := s.flush(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bHeld).Delete(binary.BigEndian.AppendUint64(nil, seq))
	})
}

// HeldData is one hold: its number and what it keeps.
type HeldData struct {
	Seq  uint64
	Data []byte
}

// Held lists the holds not released, oldest first: after a crash, what to hand over
// again.
func (s *BoltState) Held(context.Context) ([]HeldData, error) {
	var out []HeldData
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bHeld).ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("rules state: a held record keyed %q", k)
			}
			out = append(out, HeldData{Seq: binary.BigEndian.Uint64(k), Data: bytes.Clone(v)})
			return nil
		})
	})
	return out, err
}
