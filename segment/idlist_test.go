package segment

import (
	"slices"
	"strings"
	"testing"
)

// An id list gives back what was put in, in order, however it was made: packed at
// once (a stored record read), an id at a time (orders applied), or two lists one
// after the other (a merge).
func TestIDListGivesBackItsIDs(t *testing.T) {
	long := strings.Repeat("x", 300) // a length of two bytes
	ids := []string{"order-1", "", long, "#1001", "日本-42"}
	packed := idListOf(ids)
	var added idList
	for _, id := range ids {
		added = added.add(id)
	}
	if packed != added {
		t.Fatalf("packed %q, added one at a time %q", packed, added)
	}
	if got := packed.list(); !slices.Equal(got, ids) || packed.count() != len(ids) {
		t.Fatalf("got %q (count %d), want %q", got, packed.count(), ids)
	}
	merged := idListOf(ids[:2]) + idListOf(ids[2:])
	if !slices.Equal(merged.list(), ids) {
		t.Fatalf("two lists one after the other: %q", merged.list())
	}
	if idList("").count() != 0 || idList("").list() != nil || idListOf(nil) != "" {
		t.Fatal("an empty list is not empty")
	}
	// A string not made by idListOf or add (a length past its end, a length that does
	// not end) yields what it can and stops.
	for _, bad := range []idList{"\x05ab", "\x02ab\x09c", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"} {
		if n := bad.count(); n > 1 {
			t.Errorf("%q: %d ids", bad, n)
		}
	}
}

func FuzzIDList(f *testing.F) {
	f.Add("order-1", "", "x")
	f.Add(strings.Repeat("y", 200), "#1", "\xff")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		ids := []string{a, b, c}
		if got := idListOf(ids).list(); !slices.Equal(got, ids) {
			t.Fatalf("got %q, want %q", got, ids)
		}
		idList(a + b + c).count() // any string: no panic
	})
}

// first keeps a list's first n ids, whole, and all of a shorter or broken one that
// all would read.
func TestIDListFirstKeepsWholeIDs(t *testing.T) {
	ids := []string{"order-1", "", strings.Repeat("x", 300), "#1001"}
	l := idListOf(ids)
	for n := range len(ids) + 2 {
		want := ids[:min(n, len(ids))]
		if got := l.first(n).list(); !slices.Equal(got, want) {
			t.Errorf("first(%d) = %q, want %q", n, got, want)
		}
		if l.first(n).count() != len(want) {
			t.Errorf("first(%d) holds %d ids, want %d", n, l.first(n).count(), len(want))
		}
	}
	if bad := idList("\x02ab\x09c"); bad.first(5) != "\x02ab" {
		t.Errorf("a broken list: %q", bad.first(5))
	}
}
