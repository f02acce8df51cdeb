package segment

import (
	"encoding/json"
	"strings"
	"testing"
	"unsafe"
)

// A packed list gives back the slice it packed: its elements, length and capacity,
// nil as nil and empty as empty; its JSON is the slice's.
func TestPackedGivesBackItsSlice(t *testing.T) {
	s := make([]string, 2, 5)
	s[0], s[1] = "a", "b"
	l := packedOf(s)
	got := l.get()
	if len(got) != 2 || cap(got) != 5 || got[1] != "b" || unsafe.SliceData(got) != unsafe.SliceData(s) {
		t.Fatalf("got %q (len %d, cap %d)", got, len(got), cap(got))
	}
	if packedOf([]string(nil)).get() != nil || packedOf([]string{}).get() == nil {
		t.Fatal("nil and empty are not told apart")
	}
	for _, c := range []struct {
		l    packed[string]
		want string
	}{{packedOf([]string{"r1", "r2"}), `["r1","r2"]`}, {packed[string]{}, `null`}, {packedOf([]string{}), `[]`}} {
		b, err := json.Marshal(c.l)
		if err != nil || string(b) != c.want {
			t.Errorf("JSON %s, %v; want %s", b, err, c.want)
		}
		var back packed[string]
		if err := json.Unmarshal(b, &back); err != nil || strings.Join(back.get(), ",") != strings.Join(c.l.get(), ",") || (back.get() == nil) != (c.l.get() == nil) {
			t.Errorf("%s read back as %q, %v", b, back.get(), err)
		}
	}
	var bad packed[Bucket]
	if err := json.Unmarshal([]byte(`{"d":1}`), &bad); err == nil {
		t.Error("an object read as a list")
	}
	// As omitempty left out an empty slice, omitzero leaves out an empty list.
	b, _ := json.Marshal(&Profile{ID: "v", Rooms: packedOf([]string{}), Days: packedOf(make([]Bucket, 0, 3))})
	if strings.Contains(string(b), `"rooms"`) || strings.Contains(string(b), `"days"`) {
		t.Errorf("empty lists in the JSON form: %s", b)
	}
}

// The warming stages read a list's header without the lock: one read half before and
// half after a change (a length past the capacity) gives some list, not a panic.
func TestPackedLooseNeverPanics(t *testing.T) {
	s := []Bucket{{Day: 1}, {Day: 2}}
	torn := packed[Bucket]{p: unsafe.SliceData(s), n: 7, c: 2}
	if got := torn.loose(); len(got) != 2 {
		t.Fatalf("a torn header gave %d buckets", len(got))
	}
	if (packed[Bucket]{n: 3, c: 3}).loose() != nil {
		t.Fatal("a header without its array gave a list")
	}
}

// Under -race, checkptr stops the process on a list built past its array: a header
// read with a new, small array's address and an old, larger one's capacity.
func TestPackedLooseTakesATornHeaderUnderRace(t *testing.T) {
	small := make([]Count, 1)
	torn := packed[Count]{p: unsafe.SliceData(small), n: 64, c: 64}
	warmTail(torn.loose(), 2) // only addresses: nothing is read
}
