// Package boltfile is a bbolt file that can be rewritten in place. bbolt keeps deleted
// values in its free pages until they are reused, so a store that erases a viewer's
// data (GDPR) compacts its file afterwards: Compact copies the live data into a fresh
// file and swaps it in, and the transactions of the store wait for the swap.
package boltfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// File is an open bbolt file whose transactions may run concurrently, except with
// Compact. A transaction's function must not start another one (it would wait for a
// Compact that waits for it).
//
// Besides bbolt's own lock on the file, a File holds an exclusive lock on path+".lock"
// while it is open: bbolt's lock goes with the file Compact replaces, and another
// process waiting for it could otherwise get the old file in the middle of the swap.
type File struct {
	mu   sync.RWMutex // write-locked only while Compact swaps the file
	lock *os.File     // holds the flock on path+".lock"
	db   *bolt.DB
	path string
	opts bolt.Options
	// txBase is added to the file's transaction ids (TxID): a compacted file numbers
	// its transactions from the start again.
	txBase int
}

// TxID is the id of tx, a transaction of f, kept increasing across compactions (the
// id of bbolt's Tx.ID goes back after one).
func (f *File) TxID(tx *bolt.Tx) int { return f.txBase + tx.ID() }

// Open opens (creating) the file at path with opts and creates buckets that do not
// exist yet. bbolt's errors are returned as they are (bolt.ErrTimeout when another
// process holds the file).
func Open(path string, opts bolt.Options, buckets ...[]byte) (*File, error) {
	lock, err := flock(path+".lock", opts.Timeout)
	if err != nil {
		return nil, err
	}
	os.Remove(path + ".compact") // left by a crash during a compaction
	if err := checkWhole(path); err != nil {
		lock.Close()
		return nil, err
	}
	db, err := openBolt(path, opts)
	if err != nil {
		lock.Close()
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		lock.Close()
		return nil, err
	}
	return &File{db: db, lock: lock, path: path, opts: opts}, nil
}

// flock opens path and takes an exclusive lock on it, waiting up to timeout (for ever
// at 0) like bbolt does; bolt.ErrTimeout when another holder keeps it.
func flock(path string, timeout time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if err != syscall.EWOULDBLOCK {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if timeout > 0 && time.Now().After(deadline) {
			f.Close()
			return nil, bolt.ErrTimeout
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close closes the file.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.db.Close()
	f.lock.Close() // releases the lock
	return err
}

// View runs fn in a read transaction.
func (f *File) View(fn func(*bolt.Tx) error) (err error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer f.damaged(&err)
	return f.db.View(fn)
}

// Update runs fn in a write transaction, committed (fsynced) when fn returns nil.
func (f *File) Update(fn func(*bolt.Tx) error) (err error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer f.damaged(&err)
	return f.db.Update(fn)
}

// damaged turns a panic raised inside bbolt during a transaction into ErrDamaged
// naming the file: bbolt panics on a page that is not what its parent says it is (a
// damaged disk, a file that opened cleanly), and a fault reading the mapping is a
// panic under SetPanicOnFault. That request fails; the node and its other requests go
// on, where the panic ended the process. bbolt rolls the transaction back as the
// panic passes. A panic raised anywhere else (a bug in fn) goes on as it was.
func (f *File) damaged(err *error) {
	r := recover()
	if r == nil {
		return
	}
	if !panickedInBolt() {
		panic(r)
	}
	*err = fmt.Errorf("%w: %s: %v; restore it from a backup", ErrDamaged, f.path, r)
}

// panickedInBolt reports whether the panic being recovered was raised in bbolt's
// code: the first frame below the runtime's panic frames is bbolt's.
func panickedInBolt() bool {
	var pcs [64]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs[:])])
	for {
		fr, more := frames.Next()
		if !strings.HasPrefix(fr.Function, "runtime.") {
			return strings.HasPrefix(fr.Function, "go.etcd.io/bbolt")
		}
		if !more {
			return false
		}
	}
}

// Batch runs fn in a write transaction shared with concurrent callers (bbolt's Batch:
// fn may run more than once).
func (f *File) Batch(fn func(*bolt.Tx) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.db.Batch(fn)
}

// Compact rewrites the file with its live data only, so that deleted values do not
// linger in free pages, and swaps it in: the time of a copy of the whole file, during
// which transactions wait. On an error before the swap the old file stays in use.
func (f *File) Compact() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	tmp := f.path + ".compact"
	os.Remove(tmp)
	opts := f.opts
	// No process that opens the file through Open can hold it while f holds the
	// ".lock" file; the timeout is for one that does not.
	opts.Timeout = 5 * time.Second
	dst, err := bolt.Open(tmp, 0o600, &opts)
	if err != nil {
		return fmt.Errorf("compact %s: %w", f.path, err)
	}
	var last int
	f.db.View(func(tx *bolt.Tx) error { last = tx.ID(); return nil })
	if err := bolt.Compact(dst, f.db, 64<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return fmt.Errorf("compact %s: %w", f.path, err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("compact %s: %w", f.path, err)
	}
	// From here the old file is closed (bbolt marks it closed even when Close fails):
	// whatever happens, reopen what is at path.
	closeErr := f.db.Close()
	renameErr := closeErr
	if closeErr == nil {
		renameErr = os.Rename(tmp, f.path)
	}
	if renameErr == nil {
		if d, err := os.Open(filepath.Dir(f.path)); err == nil {
			d.Sync() // make the rename durable
			d.Close()
		}
	}
	db, err := bolt.Open(f.path, 0o600, &opts)
	if err != nil {
		return fmt.Errorf("reopen %s after compaction: %w", f.path, err)
	}
	f.db = db
	if renameErr != nil {
		os.Remove(tmp)
		return fmt.Errorf("compact %s: %w", f.path, renameErr)
	}
	f.txBase += last
	return nil
}

// CopyTo writes a consistent copy of the file, as of one read transaction, into dir
// under the file's own name (a backup). Writers go on meanwhile; Compact waits.
func (f *File) CopyTo(dir string) error {
	return f.View(func(tx *bolt.Tx) error {
		return tx.CopyFile(filepath.Join(dir, filepath.Base(f.path)), 0o600)
	})
}

// ErrDamaged is the error for a file bbolt could not open, or read a page of, without
// a panic (a page that is not what the meta page or its parent says it is: a damaged
// disk, a foreign write).
var ErrDamaged = errors.New("the file is damaged")

// openBolt is bolt.Open with its panics on a damaged file, and a fault reading its
// mapping, turned into ErrDamaged: the node refuses to start and says which file,
// where it died at every start with a stack dump.
func openBolt(path string, opts bolt.Options) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: %s: %v; restore it from a backup, or move it away to start without it", ErrDamaged, path, r)
		}
	}()
	return bolt.Open(path, 0o600, &opts)
}

// ErrCutShort is Open's error for a file shorter than its own meta page says: a copy
// cut short, such as a backup archive that did not arrive whole, unpacked.
var ErrCutShort = errors.New("the file is cut short")

// checkWhole refuses a file shorter than the pages its meta page says are in use.
// bbolt maps such a file and then faults (SIGBUS, the process dies with a stack dump)
// on the first page past the end it reads, in Open itself when it rebuilds the free
// list. A file bbolt does not take for its own is left to bbolt's errors.
func checkWhole(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	// The meta pages are pages 0 and 1, each a 16-byte page header then the meta:
	// magic u32, version u32, page size u32, flags u32, root bucket (16), freelist
	// page u64, high water mark u64 (pages in use), txid u64, checksum u64 (FNV-1a of
	// the meta before it). bbolt trusts the valid one with the higher txid.
	var need int64
	var txid uint64
	at := int64(0)
	for range 2 {
		var m [80]byte
		if _, err := f.ReadAt(m[:], at); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		meta := m[16:]
		h := fnv.New64a()
		h.Write(meta[:56])
		pageSize := int64(binary.NativeEndian.Uint32(meta[8:]))
		valid := binary.NativeEndian.Uint32(meta[0:]) == 0xED0CDAED && binary.NativeEndian.Uint32(meta[4:]) == 2 &&
			binary.NativeEndian.Uint64(meta[56:]) == h.Sum64() && pageSize > 0
		if !valid {
			if at > 0 {
				break
			}
			at = int64(os.Getpagesize()) // where bbolt looks for the second one then
			continue
		}
		if id := binary.NativeEndian.Uint64(meta[48:]); need == 0 || id > txid {
			pages := binary.NativeEndian.Uint64(meta[40:])
			need, txid = math.MaxInt64, id // a count no file could hold: cut short
			if pages <= uint64(math.MaxInt64/pageSize) {
				need = int64(pages) * pageSize
			}
		}
		if at > 0 {
			break
		}
		at = pageSize
	}
	if st.Size() < need {
		return fmt.Errorf("%w: %s has %d bytes, but its data reaches byte %d (a partial copy?); "+
			"restore it from a whole copy, or move it away to start without it", ErrCutShort, path, st.Size(), need)
	}
	return nil
}
