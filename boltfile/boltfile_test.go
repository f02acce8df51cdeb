package boltfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

var bucket = []byte("b")

func get(t *testing.T, f *File, key string) string {
	t.Helper()
	var out string
	if err := f.View(func(tx *bolt.Tx) error {
		out = string(tx.Bucket(bucket).Get([]byte(key)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func txID(t *testing.T, f *File) (id int) {
	t.Helper()
	if err := f.View(func(tx *bolt.Tx) error { id = f.TxID(tx); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

func put(f *File, key, value string) error {
	return f.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(key), []byte(value)) })
}

// TestCompactDropsDeletedBytes: a deleted value is in the file's bytes (a free page)
// until Compact; after it the file holds only the live data, and the File keeps
// working on the new file, across a reopen too.
func TestCompactDropsDeletedBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	f, err := Open(path, bolt.Options{}, bucket)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := put(f, fmt.Sprintf("k%02d", i), fmt.Sprintf("secret-value-%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	put(f, "keep", "kept-value")
	if err := f.Update(func(tx *bolt.Tx) error {
		for i := range 50 {
			if err := tx.Bucket(bucket).Delete(fmt.Appendf(nil, "k%02d", i)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(path); !bytes.Contains(raw, []byte("secret-value")) {
		t.Fatal("the deleted values are not in the file before compaction: the test shows nothing")
	}
	before := txID(t, f)
	if err := f.Compact(); err != nil {
		t.Fatal(err)
	}
	if after := txID(t, f); after <= before {
		t.Errorf("transaction id went back from %d to %d", before, after)
	}
	if raw, _ := os.ReadFile(path); bytes.Contains(raw, []byte("secret-value")) {
		t.Error("the deleted values are still in the file's bytes")
	}
	if got := get(t, f, "keep"); got != "kept-value" {
		t.Fatalf("after compaction: %q", got)
	}
	if err := put(f, "after", "written-after"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Errorf("the temporary file is left: %v", err)
	}
	f, err = Open(path, bolt.Options{}, bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if get(t, f, "keep") != "kept-value" || get(t, f, "after") != "written-after" {
		t.Fatal("lost data across the reopen")
	}
}

// TestCompactWhileWriting: writers running during compactions all succeed and every
// value they wrote is there afterwards.
func TestCompactWhileWriting(t *testing.T) {
	f, err := Open(filepath.Join(t.TempDir(), "x.db"), bolt.Options{}, bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if err := f.Batch(func(tx *bolt.Tx) error {
					return tx.Bucket(bucket).Put(fmt.Appendf(nil, "w%d-%d", w, i), []byte("v"))
				}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 5 {
		if err := f.Compact(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	n := 0
	f.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucket).Stats().KeyN; return nil })
	if n != 200 {
		t.Fatalf("%d keys, want 200", n)
	}
}

// TestOpenHeldFile: a second Open of a held file gives bbolt's timeout.
func TestOpenHeldFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	f, err := Open(path, bolt.Options{}, bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Open(path, bolt.Options{Timeout: 20e6}, bucket); err != bolt.ErrTimeout {
		t.Fatalf("second open: %v", err)
	}
}

// TestOpenRemovesLeftoverCompaction: a copy left by a crash during a compaction (a
// full copy of the data, erased viewers' included until then) is removed on Open.
func TestOpenRemovesLeftoverCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	if err := os.WriteFile(path+".compact", []byte("stale copy"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path, bolt.Options{}, bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Fatalf("the leftover copy is still there: %v", err)
	}
}

// TestOpenRefusesAFileCutShort: a file shorter than its pages in use (a backup
// archive cut short, unpacked) is refused with an error that says so, instead of
// bbolt faulting on a page past the end (SIGBUS: the process died with a stack dump).
// A file whose unused tail alone is gone still opens.
func TestOpenRefusesAFileCutShort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	f, err := Open(path, bolt.Options{}, bucket)
	if err != nil {
		t.Fatal(err)
	}
	value := string(bytes.Repeat([]byte("x"), 3000))
	for i := range 400 {
		if err := put(f, fmt.Sprintf("k%04d", i), value); err != nil {
			t.Fatal(err)
		}
	}
	var used int64
	f.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil })
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range []bolt.Options{{}, {NoFreelistSync: true, FreelistType: bolt.FreelistMapType}} {
		for _, size := range []int64{used / 2, 5 * 4096, used - 1} {
			if err := os.WriteFile(path, whole[:size], 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := Open(path, opts, bucket)
			if err == nil {
				f.View(func(tx *bolt.Tx) error { return tx.Bucket(bucket).ForEach(func(k, v []byte) error { return nil }) })
				f.Close()
				t.Fatalf("a file of %d of its %d bytes in use opened (NoFreelistSync %v)", size, used, opts.NoFreelistSync)
			}
			if !errors.Is(err, ErrCutShort) || !strings.Contains(err.Error(), path) {
				t.Fatalf("cut to %d bytes: %v", size, err)
			}
		}
		if err := os.WriteFile(path, whole[:used], 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := Open(path, opts, bucket)
		if err != nil {
			t.Fatalf("the file without its unused tail: %v", err)
		}
		if got := get(t, f, "k0399"); got != value {
			t.Fatalf("k0399: %d bytes", len(got))
		}
		f.Close()
	}
}

// A page damaged inside a file that opens cleanly fails the transaction that reads it
// with ErrDamaged naming the file, instead of a panic that ended the process; a panic
// in the transaction's own code still panics.
func TestDamagedPageFailsItsTransaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	f, err := Open(path, bolt.Options{}, bucket)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		if err := put(f, fmt.Sprintf("k%04d", i), strings.Repeat("v", 100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A leaf page of the bucket's (flag 0x02, holding its keys) gets a type no page has.
	const pageSize, leaf = 4096, 0x02
	damaged := false
	for at := 4 * pageSize; at+pageSize <= len(data) && !damaged; at += pageSize {
		if data[at+8] == leaf && bytes.Contains(data[at:at+pageSize], []byte("k1")) {
			data[at+8], damaged = 0x20, true
		}
	}
	if !damaged {
		t.Fatal("no leaf page of the bucket found")
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if f, err = Open(path, bolt.Options{}, bucket); err != nil {
		t.Fatalf("the file with one damaged leaf did not open: %v", err)
	}
	defer f.Close()
	err = f.View(func(tx *bolt.Tx) error { return tx.Bucket(bucket).ForEach(func(k, v []byte) error { return nil }) })
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) {
		t.Fatalf("reading the damaged page: %v, want ErrDamaged naming the file", err)
	}
	if err := f.View(func(*bolt.Tx) error { return nil }); err != nil {
		t.Fatalf("the next transaction: %v", err)
	}
	defer func() {
		if r := recover(); r != "a bug" {
			t.Errorf("a panic in the transaction's code came out as %v", r)
		}
	}()
	f.View(func(*bolt.Tx) error { panic("a bug") })
}
