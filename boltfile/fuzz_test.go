package boltfile

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FuzzOpenDamaged: a data file damaged on disk (a torn write, a bad sector, a hand
// copy cut short) is refused by Open with an error, or opens to a file whose every
// bucket reads and that takes a write; it must not panic the process, which would
// refuse to start on it for ever.
func FuzzOpenDamaged(f *testing.F) {
	dir := f.TempDir()
	seed := filepath.Join(dir, "seed.db")
	db, err := Open(seed, bolt.Options{}, bucket, []byte("other"))
	if err != nil {
		f.Fatal(err)
	}
	for i := range 40 {
		if err := put(db, fmt.Sprintf("k%03d", i), fmt.Sprintf("value %d", i)); err != nil {
			f.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:4096])
	f.Add([]byte{})
	n := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		n++
		path := filepath.Join(dir, fmt.Sprintf("f%d.db", n))
		defer os.Remove(path)
		defer os.Remove(path + ".lock")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := Open(path, bolt.Options{Timeout: time.Second}, bucket)
		if err != nil {
			return
		}
		defer db.Close()
		_ = db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
				return b.ForEach(func(_, _ []byte) error { return nil })
			})
		})
		_ = put(db, "new", "value")
	})
}
