package segment

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
)

// Kind names a family of records kept by id and by owner.
type Kind string

// Record kinds the store keeps by id (for at-most-once) and by owning viewer.
const (
	KindEvent Kind = "event" // imported events, kept as sent (idempotency and export)
	KindOrder Kind = "order" // orders, by order id (an order counts once, whoever sends it)
)

// Record is one stored value: Key is its id, Owner the viewer it belongs to.
type Record struct {
	Key   string
	Owner string
	Data  []byte
}

// Batch is one atomic write: after Commit returns nil, all of it is durable.
type Batch struct {
	Profiles        []Record // Key = viewer id, Data = the encoded Profile
	DeletedProfiles []string // profiles merged into another one
	Owned           map[Kind][]Record
	Products        []Record // Key = SKU
}

func (b *Batch) empty() bool {
	return len(b.Profiles) == 0 && len(b.DeletedProfiles) == 0 && len(b.Owned) == 0 && len(b.Products) == 0
}

func (b *Batch) own(k Kind, r Record) {
	if b.Owned == nil {
		b.Owned = map[Kind][]Record{}
	}
	b.Owned[k] = append(b.Owned[k], r)
}

// Store keeps profiles, imported events' ids, orders and the catalog. The embedded
// default is BoltStore; MemoryStore is the test fake, and the shape a Redis store fills.
type Store interface {
	// Load calls profile for every stored profile and product for every product.
	Load(ctx context.Context, profile, product func(key string, data []byte) error) error
	// Commit writes b atomically and durably. It keeps none of b's records or their
	// bytes once it returns: the write-through reuses that memory.
	Commit(ctx context.Context, b *Batch) error
	// Seen reports which ids of kind k are stored.
	Seen(ctx context.Context, k Kind, ids []string) (map[string]bool, error)
	// Held returns every owned record of the owners, by kind (for export).
	Held(ctx context.Context, owners []string) (map[Kind][]Record, error)
	// Erase deletes the owners' profiles and every record they own.
	Erase(ctx context.Context, owners []string) error
}

// MemoryStore keeps everything in maps: the test fake and the reference behaviour.
type MemoryStore struct {
	mu       sync.Mutex
	profiles map[string][]byte
	products map[string][]byte
	ids      map[Kind]map[string]Record
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{profiles: map[string][]byte{}, products: map[string][]byte{}, ids: map[Kind]map[string]Record{}}
}

// Load implements Store.
func (m *MemoryStore) Load(ctx context.Context, profile, product func(string, []byte) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range slices.Sorted(maps.Keys(m.profiles)) {
		if err := profile(k, m.profiles[k]); err != nil {
			return err
		}
	}
	for k, v := range m.products {
		if err := product(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Commit implements Store.
func (m *MemoryStore) Commit(ctx context.Context, b *Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range b.DeletedProfiles {
		delete(m.profiles, id)
	}
	for _, r := range b.Profiles {
		m.profiles[r.Key] = slices.Clone(r.Data)
	}
	for _, r := range b.Products {
		m.products[r.Key] = slices.Clone(r.Data)
	}
	for k, rs := range b.Owned {
		if m.ids[k] == nil {
			m.ids[k] = map[string]Record{}
		}
		for _, r := range rs {
			m.ids[k][r.Key] = Record{Key: r.Key, Owner: r.Owner, Data: slices.Clone(r.Data)}
		}
	}
	return nil
}

// Seen implements Store.
func (m *MemoryStore) Seen(ctx context.Context, k Kind, ids []string) (map[string]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]bool{}
	for _, id := range ids {
		if _, ok := m.ids[k][id]; ok {
			out[id] = true
		}
	}
	return out, nil
}

// Held implements Store.
func (m *MemoryStore) Held(ctx context.Context, owners []string) (map[Kind][]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[Kind][]Record{}
	for k, recs := range m.ids {
		for _, key := range slices.Sorted(maps.Keys(recs)) {
			if slices.Contains(owners, recs[key].Owner) {
				out[k] = append(out[k], recs[key])
			}
		}
	}
	return out, nil
}

// Erase implements Store.
func (m *MemoryStore) Erase(ctx context.Context, owners []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range owners {
		delete(m.profiles, o)
	}
	for _, recs := range m.ids {
		for key, r := range recs {
			if slices.Contains(owners, r.Owner) {
				delete(recs, key)
			}
		}
	}
	return nil
}

// ownedKey is owner, kind and id joined by NUL (ids are text and never hold a NUL).
func ownedKey(owner string, k Kind, id string) []byte {
	return []byte(strings.Join([]string{owner, string(k), id}, "\x00"))
}
