package segment

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// The table against a map, through random puts, deletes and lookups, once with the
// real hash and once with one that gives many ids the same hash and the rest few
// starting slots, so that probes are long and cross each other (the next test makes
// them wrap around the table's end).
func TestProfileTableAgreesWithAMap(t *testing.T) {
	for name, hash := range map[string]func(string) uint64{
		"real":      idHash,
		"colliding": func(id string) uint64 { n, _ := strconv.Atoi(id[3:]); return uint64(n%5) << 61 },
	} {
		t.Run(name, func(t *testing.T) {
			churn(t, hash, 300, 20_000, 1000, rand.New(rand.NewPCG(1, 2)))
		})
	}
}

// churn puts and deletes random ids of ids ("id-0"…) for steps steps, against a map,
// checking after each step that the id is found where the map has it, and the whole
// table every checkEvery steps; it returns what is left.
func churn(t *testing.T, hash func(string) uint64, ids, steps, checkEvery int, rng *rand.Rand) (*profileTable, map[string]*Profile) {
	t.Helper()
	tab, model := newProfileTable(), map[string]*Profile{}
	for step := range steps {
		id := "id-" + strconv.Itoa(rng.IntN(ids))
		h := hash(id)
		switch rng.IntN(3) {
		case 0:
			p := &Profile{ID: id}
			tab.putHashed(p, h)
			model[id] = p
		case 1:
			tab.delHashed(id, h)
			delete(model, id)
		}
		if i := tab.find(id, h); (i >= 0) != (model[id] != nil) || (i >= 0 && tab.slots[i].p != model[id]) {
			t.Fatalf("%d ids, step %d: %s found at %d, model %v", ids, step, id, i, model[id])
		}
		if step%checkEvery == 0 {
			checkTable(t, tab, model, hash)
		}
	}
	checkTable(t, tab, model, hash)
	return tab, model
}

func checkTable(t *testing.T, tab *profileTable, model map[string]*Profile, hash func(string) uint64) {
	t.Helper()
	if tab.len() != len(model) {
		t.Fatalf("len %d, model %d", tab.len(), len(model))
	}
	for id, p := range model {
		if i := tab.find(id, hash(id)); i < 0 || tab.slots[i].p != p {
			t.Fatalf("%s not found", id)
		}
	}
	var got, want []string
	for p := range tab.all() {
		got = append(got, p.ID)
	}
	for id := range model {
		want = append(want, id)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("all: %d ids, want %d", len(got), len(want))
	}
	if tab.n*4 > len(tab.slots)*3 {
		t.Fatalf("%d profiles in %d slots", tab.n, len(tab.slots))
	}
}

// With the real hash: get, put, del and guess by id.
func TestProfileTableByID(t *testing.T) {
	tab := newProfileTable()
	for i := range 1000 {
		tab.put(&Profile{ID: "viewer-" + strconv.Itoa(i)})
	}
	for i := 0; i < 1000; i += 2 {
		tab.del("viewer-" + strconv.Itoa(i))
	}
	if tab.len() != 500 {
		t.Fatalf("len %d, want 500", tab.len())
	}
	for i := range 1000 {
		id := "viewer-" + strconv.Itoa(i)
		p := tab.get(id)
		if (p != nil) != (i%2 == 1) || (p != nil && p.ID != id) {
			t.Fatalf("get(%q) = %v", id, p)
		}
		if p != nil && tab.guess(idHash(id)) != p {
			t.Fatalf("guess(%q) is not its profile", id)
		}
	}
	q := &Profile{ID: "viewer-1"}
	tab.put(q)
	if tab.get("viewer-1") != q || tab.len() != 500 {
		t.Fatal("put did not replace viewer-1's profile")
	}
}

// An id whose hash another id holds is found further along, never taken for it.
func TestProfileTableKeepsIDsWhoseHashIsTaken(t *testing.T) {
	tab := newProfileTable()
	h := idHash("viewer-b")
	holder := &Profile{ID: "holder"}
	tab.putHashed(holder, h) // as if "holder" hashed like viewer-b
	b := &Profile{ID: "viewer-b"}
	tab.put(b)
	if tab.get("viewer-b") != b || tab.len() != 2 {
		t.Fatal("viewer-b not found while another id holds its hash")
	}
	if tab.guess(h) != holder {
		t.Fatal("the guess is the first with the hash, unchecked")
	}
	tab.delHashed("holder", h)
	if tab.get("viewer-b") != b || tab.guess(h) != b || tab.len() != 1 {
		t.Fatal("viewer-b lost when the id before it went")
	}
}

// Probes that start at the table's last slot wrap to its first; deletions must move
// entries back across that edge too, at every size the table grows through.
func TestProfileTableWrapsAtEverySize(t *testing.T) {
	hash := func(id string) uint64 {
		n, _ := strconv.Atoi(id[3:])
		switch n % 3 {
		case 0:
			return ^uint64(0) - uint64(n) // the last slot, whatever the size
		case 1:
			return uint64(n) // the first slot
		}
		return idHash(id)
	}
	for _, ids := range []int{10, 40, 200, 2000} {
		tab, model := churn(t, hash, ids, 30_000, 500, rand.New(rand.NewPCG(uint64(ids), 7)))
		for id := range model {
			tab.delHashed(id, hash(id))
		}
		checkTable(t, tab, map[string]*Profile{}, hash)
	}
}
