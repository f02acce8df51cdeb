package segment

import "iter"

// profileTable holds a shard's profiles by id. Most are found by a 64-bit hash of the
// id, whose slot holds the hash itself (8 bytes) rather than a string whose bytes lie
// elsewhere. So the consumer, warming the cache for an event ahead (guess), finds the
// profile without reading the id's bytes; the match is settled later, when the event
// is applied, by the profile's own id, whose bytes it has warmed by then. An id
// whose hash another id already holds (rare by chance; or crafted, as FNV-1a can be)
// goes to a plain map by id instead, so nothing is ever mistaken for another viewer.
type profileTable struct {
	byHash map[uint64]*Profile
	more   map[string]*Profile // ids whose hash's slot another id holds
}

func newProfileTable() profileTable {
	return profileTable{byHash: map[uint64]*Profile{}, more: map[string]*Profile{}}
}

// idHash is the 64-bit FNV-1a hash of id (no allocation).
func idHash(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h
}

// get returns the profile of id, nil when there is none.
func (t *profileTable) get(id string) *Profile {
	if p := t.byHash[idHash(id)]; p != nil && p.ID == id {
		return p
	}
	if len(t.more) == 0 {
		return nil
	}
	return t.more[id]
}

// guess returns the profile that most likely has id, without checking: a hint for
// warming the cache, which must not wait for the id's bytes.
func (t *profileTable) guess(id string) *Profile {
	return t.byHash[idHash(id)]
}

// put adds p, or replaces the profile with p's id.
func (t *profileTable) put(p *Profile) {
	h := idHash(p.ID)
	if q := t.byHash[h]; q == nil || q.ID == p.ID {
		if q == nil {
			delete(t.more, p.ID) // it may have been there while another held the slot
		}
		t.byHash[h] = p
		return
	}
	t.more[p.ID] = p
}

// del removes the profile of id, if any.
func (t *profileTable) del(id string) {
	h := idHash(id)
	if p := t.byHash[h]; p != nil && p.ID == id {
		delete(t.byHash, h)
		return
	}
	delete(t.more, id)
}

func (t *profileTable) len() int { return len(t.byHash) + len(t.more) }

// all yields every profile, in no order.
func (t *profileTable) all() iter.Seq[*Profile] {
	return func(yield func(*Profile) bool) {
		for _, p := range t.byHash {
			if !yield(p) {
				return
			}
		}
		for _, p := range t.more {
			if !yield(p) {
				return
			}
		}
	}
}
