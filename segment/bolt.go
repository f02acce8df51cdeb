package segment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
	"unsafe"

	bolt "go.etcd.io/bbolt"

	"github.com/liveroom/liveroom/boltfile"
)

// Buckets of the bbolt file.
var (
	bucketProfiles = []byte("profiles") // viewer id → Profile JSON
	bucketProducts = []byte("products") // sku → Product JSON
	bucketIDs      = []byte("ids")      // kind NUL id → owner
	bucketOwned    = []byte("owned")    // owner NUL kind NUL id → record data
)

// ErrLocked is returned when another process (a running server) holds the file.
var ErrLocked = errors.New("the segment store is in use by another process")

// BoltStore is the embedded default store: one bbolt file, every Commit one fsynced
// transaction. Erase rewrites the file without the erased data (bbolt leaves deleted
// values in free pages otherwise).
type BoltStore struct {
	f *boltfile.File
}

// profileFill is how full bbolt packs the profile pages it splits; profiles grow
// slowly, so little room is left for growth.
const profileFill = 0.9

// boltOptions: the initial map reserves address space (not memory) for a store of a
// million profiles, because each time bbolt grows its map it first copies every key
// and value of the open write transaction onto the heap.
var boltOptions = bolt.Options{FreelistType: bolt.FreelistMapType, NoFreelistSync: true, InitialMmapSize: 1 << 30}

var _ Store = (*BoltStore)(nil)

// OpenBolt opens (creating) the store file at path. It waits up to wait for another
// process holding the file, then returns ErrLocked.
func OpenBolt(path string, wait time.Duration) (*BoltStore, error) {
	opts := boltOptions
	opts.Timeout = wait
	f, err := boltfile.Open(path, opts, bucketProfiles, bucketProducts, bucketIDs, bucketOwned)
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("open segment store %s: %w", path, err)
	}
	return &BoltStore{f: f}, nil
}

// Close closes the file.
func (s *BoltStore) Close() error { return s.f.Close() }

// size is how much of the file holds data, free pages included.
func (s *BoltStore) size() int64 {
	var n int64
	s.f.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// Load implements Store.
func (s *BoltStore) Load(ctx context.Context, profile, product func(string, []byte) error) error {
	return s.f.View(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketProfiles).ForEach(func(k, v []byte) error { return profile(string(k), v) }); err != nil {
			return err
		}
		return tx.Bucket(bucketProducts).ForEach(func(k, v []byte) error { return product(string(k), v) })
	})
}

// Commit implements Store.
func (s *BoltStore) Commit(ctx context.Context, b *Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.f.Update(func(tx *bolt.Tx) error {
		profiles := tx.Bucket(bucketProfiles)
		for _, id := range b.DeletedProfiles {
			if err := profiles.Delete(keyBytes(id)); err != nil {
				return err
			}
		}
		// Pages are rewritten whole on every commit; split at bbolt's default half-full
		// they would stay half empty, doubling both the file and every write-through.
		profiles.FillPercent = profileFill
		// bbolt inserts fastest in key order (pages fill instead of splitting). Large
		// batches come in sorted parts (inParts); the rest are sorted here, by key then
		// position, so a later snapshot of the same profile is still written last.
		order := putOrder(b.Profiles)
		for j := range b.Profiles {
			r := &b.Profiles[j]
			if order != nil {
				r = &b.Profiles[order[j].i]
			}
			if err := profiles.Put(keyBytes(r.Key), r.Data); err != nil {
				return err
			}
		}
		for _, r := range b.Products {
			if err := tx.Bucket(bucketProducts).Put(keyBytes(r.Key), r.Data); err != nil {
				return err
			}
		}
		ids, owned := tx.Bucket(bucketIDs), tx.Bucket(bucketOwned)
		for k, rs := range b.Owned {
			for _, r := range rs {
				if err := ids.Put(idKey(k, r.Key), []byte(r.Owner)); err != nil {
					return err
				}
				if err := owned.Put(ownedKey(r.Owner, k, r.Key), r.Data); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// putOrder returns the positions of recs sorted by key then position (sortedByKey),
// or nil if recs are in that order already.
func putOrder(recs []Record) []keyOrder {
	for i := 1; i < len(recs); i++ {
		if recs[i-1].Key > recs[i].Key {
			return sortedByKey(recs)
		}
	}
	return nil
}

// keyBytes is k's bytes without a copy, for bbolt's Put and Delete: Put copies the key
// it keeps, and Delete only looks it up.
func keyBytes(k string) []byte { return unsafe.Slice(unsafe.StringData(k), len(k)) }

func idKey(k Kind, id string) []byte { return []byte(string(k) + "\x00" + id) }

// Seen implements Store.
func (s *BoltStore) Seen(ctx context.Context, k Kind, list []string) (map[string]bool, error) {
	out := map[string]bool{}
	err := s.f.View(func(tx *bolt.Tx) error {
		ids := tx.Bucket(bucketIDs)
		for _, id := range list {
			if ids.Get(idKey(k, id)) != nil {
				out[id] = true
			}
		}
		return nil
	})
	return out, err
}

// Held implements Store.
func (s *BoltStore) Held(ctx context.Context, owners []string) (map[Kind][]Record, error) {
	out := map[Kind][]Record{}
	err := s.f.View(func(tx *bolt.Tx) error {
		return eachOwned(tx, owners, func(k Kind, id, owner string, data []byte) error {
			out[k] = append(out[k], Record{Key: id, Owner: owner, Data: bytes.Clone(data)})
			return nil
		})
	})
	return out, err
}

// Erase implements Store: it deletes, then compacts the file so the erased values do
// not linger in free pages. The compaction copies every live record (seconds for a
// store of a million profiles); erasures are rare.
func (s *BoltStore) Erase(ctx context.Context, owners []string) error {
	if err := s.f.Update(func(tx *bolt.Tx) error { return eraseTx(tx, owners) }); err != nil {
		return err
	}
	return s.f.Compact()
}

func eraseTx(tx *bolt.Tx, owners []string) error {
	{
		type gone struct {
			owned, id []byte
		}
		var del []gone
		err := eachOwned(tx, owners, func(k Kind, id, owner string, _ []byte) error {
			del = append(del, gone{ownedKey(owner, k, id), idKey(k, id)})
			return nil
		})
		if err != nil {
			return err
		}
		for _, g := range del {
			if err := tx.Bucket(bucketOwned).Delete(g.owned); err != nil {
				return err
			}
			if err := tx.Bucket(bucketIDs).Delete(g.id); err != nil {
				return err
			}
		}
		for _, o := range owners {
			if err := tx.Bucket(bucketProfiles).Delete([]byte(o)); err != nil {
				return err
			}
		}
		return nil
	}
}

// eachOwned visits the owned records of each owner (a prefix scan per owner).
func eachOwned(tx *bolt.Tx, owners []string, fn func(k Kind, id, owner string, data []byte) error) error {
	c := tx.Bucket(bucketOwned).Cursor()
	for _, o := range owners {
		prefix := []byte(o + "\x00")
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			kind, id, ok := bytes.Cut(k[len(prefix):], []byte{0})
			if !ok {
				continue
			}
			if err := fn(Kind(kind), string(id), o, v); err != nil {
				return err
			}
		}
	}
	return nil
}
