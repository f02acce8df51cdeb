package segment

import (
	"slices"
	"strconv"
	"testing"
)

func TestProfileTableFindsWhatItHolds(t *testing.T) {
	tab := newProfileTable()
	var want []string
	for i := range 1000 {
		id := "viewer-" + strconv.Itoa(i)
		tab.put(&Profile{ID: id})
		want = append(want, id)
	}
	for i := 0; i < 1000; i += 2 {
		tab.del("viewer-" + strconv.Itoa(i))
	}
	want = slices.DeleteFunc(want, func(id string) bool { n, _ := strconv.Atoi(id[7:]); return n%2 == 0 })
	if tab.len() != 500 {
		t.Fatalf("len %d, want 500", tab.len())
	}
	for i := range 1000 {
		id := "viewer-" + strconv.Itoa(i)
		p := tab.get(id)
		if (p != nil) != (i%2 == 1) || (p != nil && p.ID != id) {
			t.Fatalf("get(%q) = %v", id, p)
		}
	}
	var got []string
	for p := range tab.all() {
		got = append(got, p.ID)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("all: %d profiles, want %d", len(got), len(want))
	}
	// put replaces the profile of an id it holds.
	q := &Profile{ID: "viewer-1"}
	tab.put(q)
	if tab.get("viewer-1") != q || tab.len() != 500 {
		t.Fatal("put did not replace viewer-1's profile")
	}
}

// Two ids with one hash: the second is kept aside by id, never taken for the first,
// and moves to the hash's slot once the first has gone.
func TestProfileTableKeepsIDsWhoseHashIsTaken(t *testing.T) {
	tab := newProfileTable()
	holder := &Profile{ID: "holder"}
	tab.byHash[idHash("viewer-b")] = holder // as if "holder" hashed like viewer-b
	b := &Profile{ID: "viewer-b"}
	tab.put(b)
	if tab.get("viewer-b") != b {
		t.Fatal("viewer-b not found while another id holds its hash")
	}
	if tab.guess("viewer-b") != holder {
		t.Fatal("the guess is the slot's holder, unchecked")
	}
	if tab.len() != 2 {
		t.Fatalf("len %d, want 2", tab.len())
	}
	n := 0
	for range tab.all() {
		n++
	}
	if n != 2 {
		t.Fatalf("all yields %d, want 2", n)
	}
	tab.del("viewer-b")
	if tab.get("viewer-b") != nil || tab.len() != 1 {
		t.Fatal("viewer-b still there after del")
	}
	if tab.byHash[idHash("viewer-b")] != holder {
		t.Fatal("deleting viewer-b removed the slot's holder")
	}
	// Back aside; then the holder leaves and viewer-b comes again into the slot.
	tab.put(b)
	delete(tab.byHash, idHash("viewer-b"))
	if tab.get("viewer-b") != b {
		t.Fatal("viewer-b lost when its hash's slot emptied")
	}
	b2 := &Profile{ID: "viewer-b"}
	tab.put(b2)
	if tab.get("viewer-b") != b2 || len(tab.more) != 0 || tab.len() != 1 {
		t.Fatalf("viewer-b not moved into its slot: more %v, len %d", tab.more, tab.len())
	}
}
