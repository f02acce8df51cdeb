package segment

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/liveroom/liveroom/event"
)

func TestPrefKey(t *testing.T) {
	a, b, c := categoryOf("keyed-a"), categoryOf("keyed-b"), categoryOf("keyed-c")
	seen := map[uint64]string{}
	for _, x := range []struct {
		cats []category
		band string
	}{
		{nil, ""}, {nil, PriceLow}, {nil, PriceMid}, {nil, PriceHigh},
		{[]category{a}, ""}, {[]category{b}, ""}, {[]category{a, b}, ""}, {[]category{b, a}, ""},
		{[]category{a, b, c}, ""}, {[]category{a, b, c}, PriceHigh}, {[]category{c, b, a}, PriceLow},
		{[]category{maxCategories - 1, maxCategories - 1, maxCategories - 1}, PriceHigh},
	} {
		var counts []catN
		for _, cat := range x.cats {
			counts = append(counts, catN{cat: cat, n: 1})
		}
		key, ok := prefKey(counts, x.band)
		name := fmt.Sprint(x.cats, x.band)
		if !ok {
			t.Errorf("%s: no key", name)
			continue
		}
		if other, dup := seen[key]; dup {
			t.Errorf("%s and %s share key %#x", name, other, key)
		}
		seen[key] = name
	}
	for name, x := range map[string]struct {
		cats []catN
		band string
	}{
		"four categories": {[]catN{{a, 1}, {b, 1}, {c, 1}, {a, 1}}, ""},
		"category 0":      {[]catN{{0, 1}}, ""},
		"unknown band":    {nil, "price:other"},
	} {
		if key, ok := prefKey(x.cats, x.band); ok {
			t.Errorf("%s: key %#x, want none", name, key)
		}
	}
}

// preferenceChanges applies clicks of viewers to an engine keeping top categories
// and returns the preference tag changes it reported.
func preferenceChanges(t *testing.T, top int, clicks [][2]string) []event.TagInfo {
	t.Helper()
	cfg := testConfig()
	cfg.TopCategories = top
	e, err := New(cfg, Deps{Store: NewMemoryStore(), Now: (&clock{t: t0}).Now, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	q := event.NewQueue(1024)
	stop := e.Subscribe(q, event.TagChange)
	defer stop()
	for i, c := range clicks {
		x := ev(event.ProductClick, c[0], t0.Add(time.Duration(i)*time.Second))
		x.SKU, x.Category = "x", c[1]
		e.Apply(x)
	}
	var got []event.TagInfo
	for x, ok := q.TryNext(); ok; x, ok = q.TryNext() {
		if x.Tag.Dimension == DimPreference {
			got = append(got, *x.Tag)
		}
	}
	return got
}

// TestPreferenceChangesKeyedAndNot: the tag changes say from and to alike whether
// the lists are shared by key (up to three categories) or by their words.
func TestPreferenceChangesKeyedAndNot(t *testing.T) {
	clicks := [][2]string{{"v", "shoes"}, {"w", "shoes"}, {"v", "bags"}, {"v", "bags"}, {"w", "hats"}, {"v", "hats"}, {"w", "socks"},
		{"v", "coats"}, {"v", "rings"}, {"w", "hats"}}
	want := func(pairs ...string) []event.TagInfo {
		var out []event.TagInfo
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, event.TagInfo{Dimension: DimPreference, From: pairs[i], To: pairs[i+1]})
		}
		return out
	}
	for _, c := range []struct {
		top  int
		want []event.TagInfo
	}{
		{3, want("", "shoes", "", "shoes", "shoes", "bags,shoes", "shoes", "hats,shoes", "bags,shoes", "bags,hats,shoes",
			"hats,shoes", "hats,shoes,socks", "bags,hats,shoes", "bags,coats,hats")},
		{5, want("", "shoes", "", "shoes", "shoes", "bags,shoes", "shoes", "hats,shoes", "bags,shoes", "bags,hats,shoes",
			"hats,shoes", "hats,shoes,socks", "bags,hats,shoes", "bags,coats,hats,shoes",
			"bags,coats,hats,shoes", "bags,coats,hats,rings,shoes")},
	} {
		got := preferenceChanges(t, c.top, clicks)
		for i := range got {
			got[i].Cause, got[i].CauseAt = "", time.Time{}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("top %d: changes\n%v\nwant\n%v", c.top, got, c.want)
		}
	}
}

// TestPreferenceListsSharedAcrossShards: viewers in different shards who prefer the
// same keep one list between them, and one whose list does not pack (four categories)
// still gets a shared copy of its own shard's.
func TestPreferenceListsSharedAcrossShards(t *testing.T) {
	cfg := testConfig()
	cfg.TopCategories = 4
	e, err := New(cfg, Deps{Store: NewMemoryStore(), Now: (&clock{t: t0}).Now, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	// Two viewers in different shards, two in one.
	ids := []string{"v0"}
	for i := 1; len(ids) < 3; i++ {
		id := fmt.Sprint("v", i)
		if (len(ids) == 1) != (e.shardOf(id) == e.shardOf(ids[0])) {
			ids = append(ids, id)
		}
	}
	click := func(id string, cats ...string) {
		for _, c := range cats {
			x := ev(event.ProductClick, id, t0)
			x.SKU, x.Category = "x", c
			e.Apply(x)
		}
	}
	list := func(id string) []string {
		sh, p := e.lookup(id, false)
		defer sh.mu.Unlock()
		return p.Tags.Preference.get()
	}
	for _, id := range ids[:2] {
		click(id, "shoes", "shoes", "bags")
	}
	a, b := list(ids[0]), list(ids[1])
	if !slices.Equal(a, []string{"shoes", "bags"}) || unsafe.SliceData(a) != unsafe.SliceData(b) {
		t.Errorf("%s and %s (other shards): %v at %p, %v at %p; want one list", ids[0], ids[1], a, unsafe.SliceData(a), b, unsafe.SliceData(b))
	}
	// Four categories do not pack: shared within the shard, by the words.
	click(ids[0], "hats", "socks", "coats")
	click(ids[2], "shoes", "shoes", "bags", "hats", "socks", "coats")
	a, c := list(ids[0]), list(ids[2])
	if want := []string{"shoes", "bags", "coats", "hats"}; !slices.Equal(a, want) || unsafe.SliceData(a) != unsafe.SliceData(c) {
		t.Errorf("%s and %s (one shard): %v at %p, %v at %p; want one list %v", ids[0], ids[2], a, unsafe.SliceData(a), c, unsafe.SliceData(c), want)
	}
}
