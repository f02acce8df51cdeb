package chat

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/liveroom/liveroom/boltfile"
)

// BoltStore is the embedded Store: one bbolt file (<data>/chat.db). Every write is a
// committed (fsynced) transaction, so a mute or ban is durable once SetSanction returns.
type BoltStore struct {
	db *boltfile.File
}

var _ Store = (*BoltStore)(nil)

var (
	bucketRooms     = []byte("rooms")
	bucketSanctions = []byte("sanctions")
	bucketDMs       = []byte("dms")
)

// OpenBolt opens (creating if needed) the store file at path.
func OpenBolt(path string) (*BoltStore, error) {
	db, err := boltfile.Open(path, bolt.Options{Timeout: 5 * time.Second}, bucketRooms, bucketSanctions, bucketDMs)
	if err != nil {
		return nil, fmt.Errorf("chat store %s: %w", path, err)
	}
	return &BoltStore{db: db}, nil
}

// Close closes the file.
func (s *BoltStore) Close() error { return s.db.Close() }

// LoadRoom implements Store.
func (s *BoltStore) LoadRoom(_ context.Context, room string) (RoomRecord, error) {
	var rec RoomRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketRooms).Get([]byte(room)); v != nil {
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
		}
		if b := tx.Bucket(bucketSanctions).Bucket([]byte(room)); b != nil {
			return b.ForEach(func(_, v []byte) error {
				var sn Sanction
				if err := json.Unmarshal(v, &sn); err != nil {
					return err
				}
				rec.Sanctions = append(rec.Sanctions, sn)
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return RoomRecord{}, fmt.Errorf("%w: load room %s: %v", ErrStore, room, err)
	}
	return rec, nil
}

// SaveRoom implements Store.
func (s *BoltStore) SaveRoom(_ context.Context, room string, rec RoomRecord) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketRooms).Put([]byte(room), v) }); err != nil {
		return fmt.Errorf("%w: save room %s: %v", ErrStore, room, err)
	}
	return nil
}

// SetSanction implements Store.
func (s *BoltStore) SetSanction(_ context.Context, room string, sn Sanction) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketSanctions).CreateBucketIfNotExists([]byte(room))
		if err != nil {
			return err
		}
		key := []byte(sanctionKey(sn))
		if sn.Lift {
			return b.Delete(key)
		}
		v, err := json.Marshal(sn)
		if err != nil {
			return err
		}
		return b.Put(key, v)
	})
	if err != nil {
		return fmt.Errorf("%w: sanction in room %s: %v", ErrStore, room, err)
	}
	return nil
}

// AppendDMs implements Store: one transaction, one fsync, for a burst of messages.
// Messages are keyed by a per-conversation sequence, so the bucket's order is the
// conversation's order.
func (s *BoltStore) AppendDMs(_ context.Context, dms []RoomDM, keep int) error {
	values := make([][]byte, len(dms))
	for i := range dms {
		v, err := json.Marshal(dms[i].DM)
		if err != nil {
			return err
		}
		values[i] = v
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		touched := map[string]*bolt.Bucket{}
		for i, d := range dms {
			name := d.Room + "/" + d.DM.Viewer
			b, err := tx.Bucket(bucketDMs).CreateBucketIfNotExists([]byte(name))
			if err != nil {
				return err
			}
			next, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put(binary.BigEndian.AppendUint64(nil, next), values[i]); err != nil {
				return err
			}
			touched[name] = b
		}
		for _, b := range touched {
			if err := trimTo(b, keep); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %d dms: %v", ErrStore, len(dms), err)
	}
	return nil
}

// trimTo deletes the oldest messages of a conversation past keep.
func trimTo(b *bolt.Bucket, keep int) error {
	n := 0
	_ = b.ForEach(func(_, _ []byte) error { n++; return nil })
	c := b.Cursor()
	for k, _ := c.First(); k != nil && n > keep; k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return err
		}
		n--
	}
	return nil
}

// DMs implements Store.
func (s *BoltStore) DMs(_ context.Context, room, viewer string) ([]DM, error) {
	var out []DM
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDMs).Bucket([]byte(room + "/" + viewer))
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var m DM
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			out = append(out, m)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("%w: dms of %s/%s: %v", ErrStore, room, viewer, err)
	}
	return out, nil
}

// ViewerDMs implements Store.
func (s *BoltStore) ViewerDMs(_ context.Context, viewer string) (map[string][]DM, error) {
	out := map[string][]DM{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDMs).ForEachBucket(func(k []byte) error {
			room, ok := conversationRoom(string(k), viewer)
			if !ok {
				return nil
			}
			list := []DM{}
			err := tx.Bucket(bucketDMs).Bucket(k).ForEach(func(_, v []byte) error {
				var m DM
				if err := json.Unmarshal(v, &m); err != nil {
					return err
				}
				list = append(list, m)
				return nil
			})
			out[room] = list
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("%w: dms of %s: %v", ErrStore, viewer, err)
	}
	return out, nil
}

// EraseViewer implements Store. It compacts the file afterwards: bbolt keeps deleted
// bytes in free pages until they are reused.
func (s *BoltStore) EraseViewer(_ context.Context, viewers ...string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		dms := tx.Bucket(bucketDMs)
		var gone [][]byte
		if err := dms.ForEachBucket(func(k []byte) error {
			if ofAny(string(k), viewers) {
				gone = append(gone, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range gone {
			if err := dms.DeleteBucket(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: erase dms of %v: %v", ErrStore, viewers, err)
	}
	if err := s.db.Compact(); err != nil {
		return fmt.Errorf("%w: erase dms of %v: %v", ErrStore, viewers, err)
	}
	return nil
}

// Conversations implements Store. Conversations are buckets keyed room/viewer, so the
// room's are next to each other; each is read backwards, to the viewer's last message.
func (s *BoltStore) Conversations(_ context.Context, room string, since time.Time) ([]Conversation, error) {
	var out []Conversation
	prefix := []byte(room + "/")
	err := s.db.View(func(tx *bolt.Tx) error {
		dms := tx.Bucket(bucketDMs)
		c := dms.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			b := dms.Bucket(k)
			if v != nil || b == nil {
				continue
			}
			mc := b.Cursor()
			_, raw := mc.Last()
			conv, ok, err := summarize(string(k[len(prefix):]), since, func() (DM, bool, error) {
				if raw == nil {
					return DM{}, false, nil
				}
				var m DM
				err := json.Unmarshal(raw, &m)
				_, raw = mc.Prev()
				return m, err == nil, err
			})
			if err != nil {
				return err
			}
			if ok {
				out = append(out, conv)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: conversations of %s: %v", ErrStore, room, err)
	}
	return out, nil
}

// Ready reports whether the store file is open and readable (for /readyz).
func (s *BoltStore) Ready(context.Context) error {
	return s.db.View(func(*bolt.Tx) error { return nil })
}

// Backup copies the file, as one read transaction sees it, into dir (backup.Source).
func (s *BoltStore) Backup(_ context.Context, dir string) error { return s.db.CopyTo(dir) }
