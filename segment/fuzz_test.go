package segment

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/liveroom/liveroom/event"
)

var importSeeds = []string{
	`[]`,
	`[{"id":"a","type":"watch","viewer":"v1","at":"2026-06-15T10:00:00Z","seconds":600}]`,
	`[{"id":"o","type":"order","viewer":"v","at":1781517600000,"order_id":"1","total":"19.90","currency":"EUR","items":[{"sku":"s","category":"c","price":"9.95","quantity":2}],"customer":{"id":"42","email":"a@b.c"}}]`,
	`[{"id":"g","type":"gift","viewer":"v","at":"2026-06-15T10:00:00+02:00","gift":"rose","value":1.5,"count":3}]`,
	`[{"id":"c","type":"consent","viewer":"v","at":"2026-06-15T10:00:00Z","messages":false},{"id":"p","type":"product_click","viewer":"v","at":"2026-06-15T10:00:00Z","sku":"x"}]`,
	`[{"id":"x","type":"order","total":1e99}]`,
	`[1, "two", null, {"id":{}}]`,
	`{"not":"array"}`,
	`[{"id":"a","type":"like","viewer":"v","at":"2026-06-15T10:00:00Z","count":-1}]`,
}

// FuzzImport: the decoder never panics, every item is either decoded or reported by
// a valid index, and decoded events carry valid ids.
func FuzzImport(f *testing.F) {
	for _, s := range importSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		items, errs, err := DecodeJSON(strings.NewReader(body), t0)
		if err != nil {
			if items != nil || errs != nil {
				t.Fatal("an error with partial results")
			}
			return
		}
		seen := map[int]bool{}
		for _, it := range items {
			if seen[it.Index] || validID("id", it.Event.ID) != nil || validID("viewer", it.Event.Viewer) != nil || it.Event.At.IsZero() {
				t.Fatalf("bad item %+v", it)
			}
			seen[it.Index] = true
		}
		for _, e := range errs {
			if seen[e.Index] || e.Error == "" || !utf8.ValidString(e.Error) {
				t.Fatalf("bad error %+v", e)
			}
			seen[e.Index] = true
		}
	})
}

// FuzzImportLines: JSON lines give the same guarantees, line by line.
func FuzzImportLines(f *testing.F) {
	for _, s := range importSeeds {
		f.Add(strings.Trim(s, "[]"))
	}
	f.Fuzz(func(t *testing.T, body string) {
		lr := NewLineReader(strings.NewReader(body), t0)
		for range 1000 {
			items, errs, err := lr.Next(7)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				t.Fatal(err) // a strings.Reader has none to give, and a long line is an item's error
			}
			if len(items)+len(errs) == 0 || len(items)+len(errs) > 7 {
				t.Fatalf("chunk of %d", len(items)+len(errs))
			}
		}
	})
}

// A JSON line longer than an item may be is refused by its index, and the lines
// after it are read: one large order does not stop a shop's history at that line.
// Indexes are 0-based line numbers, blank lines included; the last line needs no
// newline.
func TestLineReaderRefusesALongLineAndReadsOn(t *testing.T) {
	like := func(id string) string {
		return `{"id":"` + id + `","type":"like","viewer":"v","at":"2026-06-15T10:00:00Z"}`
	}
	long := `{"id":"big","type":"danmaku","viewer":"v","at":"2026-06-15T10:00:00Z","text":"` + strings.Repeat("x", 70<<10) + `"}`
	body := like("a") + "\n" + long + "\r\n\n" + like("b") + "\n" + long + "\n" + like("c")
	lr := NewLineReader(strings.NewReader(body), t0)
	var ids []string
	var refused []int
	for {
		items, errs, err := lr.Next(2)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			ids = append(ids, it.Event.ID)
		}
		for _, e := range errs {
			if !strings.Contains(e.Error, "larger than") {
				t.Errorf("line %d: %s", e.Index, e.Error)
			}
			refused = append(refused, e.Index)
		}
	}
	if !slices.Equal(ids, []string{"a", "b", "c"}) || !slices.Equal(refused, []int{1, 4}) {
		t.Fatalf("read %q, refused lines %v; want a, b, c and lines 1 and 4 refused", ids, refused)
	}
}

var csvSeeds = []string{
	"id,type,viewer,at,order_id,total,currency,sku,category,price,quantity,customer_email\n" +
		"e1,order,v1,2026-06-01T10:00:00Z,o1,30.00,USD,s1,shoes,10.00,1,a@b.c\n" +
		"e1,order,v1,2026-06-01T10:00:00Z,o1,30.00,USD,s2,bags,20.00,1,a@b.c\n" +
		"e2,like,v2,1781517600000,,,,,,,,\n",
	"id,type,viewer,at,seconds\nw,watch,v,2026-06-01T10:00:00Z,60\n",
	"id,type,viewer,at,messages\nc,consent,v,2026-06-01T10:00:00Z,maybe\n",
	"id,type\n",
	"bogus\n",
	"\"id,type,viewer,at\nx",
}

// FuzzCSV: the CSV reader never panics and reports rows by valid indexes.
func FuzzCSV(f *testing.F) {
	for _, s := range csvSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		cr, err := NewCSVReader(strings.NewReader(body), t0)
		if err != nil {
			return
		}
		for range 1000 {
			items, errs, err := cr.Next(5)
			if err != nil {
				return
			}
			for _, e := range errs {
				if e.Index < 0 || e.Error == "" {
					t.Fatalf("bad error %+v", e)
				}
			}
			for _, it := range items {
				if it.Event.ID == "" || !bytes.HasPrefix(it.Raw, []byte("{")) {
					t.Fatalf("bad item %+v", it)
				}
			}
		}
	})
}

func TestCSVImport(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	cr, err := NewCSVReader(strings.NewReader(csvSeeds[0]), t0)
	if err != nil {
		t.Fatal(err)
	}
	items, errs, err := cr.Next(100)
	if err != nil || len(errs) > 0 || len(items) != 2 || len(items[0].Event.Order.Items) != 2 {
		t.Fatalf("items %+v errs %+v err %v", items, errs, err)
	}
	res, err := e.Import(t.Context(), items, errs)
	if err != nil || res.Accepted != 2 {
		t.Fatal(res, err)
	}
	v := viewer(t, e, "v1")
	if v.Orders != 1 || v.Spend.String() != "30.00" || len(v.Bought) != 2 {
		t.Fatalf("%+v", v)
	}
	for _, bad := range []string{"id,type,viewer\n", "id,type,viewer,at,colour\n", "id,id,type,viewer,at\n"} {
		if _, err := NewCSVReader(strings.NewReader(bad), t0); err == nil {
			t.Errorf("header %q accepted", bad)
		}
	}
	cr, _ = NewCSVReader(strings.NewReader(csvSeeds[2]), t0)
	if _, errs, _ := cr.Next(10); len(errs) != 1 || !strings.Contains(errs[0].Error, "maybe") {
		t.Fatalf("bad messages: %+v", errs)
	}
	// Seconds that are not a number between 0 and a day (NaN, which compares false
	// with everything, and infinities read as floats) are refused as JSON's are.
	for _, secs := range []string{"NaN", "nan", "Inf", "-Inf", "0", "86401"} {
		cr, _ = NewCSVReader(strings.NewReader("id,type,viewer,at,seconds\nw1,watch,v,2026-06-15T10:00:00Z,"+secs+"\n"), t0)
		if items, errs, _ := cr.Next(10); len(items) != 0 || len(errs) != 1 {
			t.Errorf("seconds %s: %d items, errors %+v; want the row refused", secs, len(items), errs)
		}
	}
	// A row with more fields than the header (an unquoted comma) is refused; one with
	// fewer (trailing empty columns dropped) is read.
	cr, _ = NewCSVReader(strings.NewReader("id,type,viewer,at,count\n"+
		"q1,like,v,2026-06-15T10:00:00Z,2,extra\nq2,like,v,2026-06-15T10:00:00Z\n"), t0)
	if items, errs, _ := cr.Next(10); len(items) != 1 || items[0].Event.ID != "q2" || len(errs) != 1 || errs[0].Index != 0 ||
		!strings.Contains(errs[0].Error, "6 fields, more than the header's 5") {
		t.Fatalf("items %+v errs %+v", items, errs)
	}
}

// FuzzProfileRecord: a stored record, however damaged, decodes or fails without a
// panic, and one that decodes encodes to a record that decodes to the same profile and
// the same encoding.
func FuzzProfileRecord(f *testing.F) {
	e := newEngine(f, nil, &clock{t: t0})
	for i, x := range session("v", "L1", t0.Add(-time.Hour), 10*time.Minute, 3) {
		x.Consent = nil
		if i == 1 {
			x.Type, x.Consent = event.Consent, new(bool)
		}
		e.Apply(x)
	}
	importJSON(f, e, "["+orderJSON("o1", "v", 3, "19.99", "shoes")+"]")
	sh, p := e.lookup("v", false)
	f.Add(marshalProfile(p))
	f.Add(appendProfileV1(nil, p)) // stores from before format 2 hold these
	sh.mu.Unlock()
	f.Add(marshalProfile(livelyProfile()))
	untyped := livelyProfile()
	untyped.Recent.get()[0] = newRecent(untyped.Recent.get()[0].At(), typeCode(""), "x")
	f.Add(appendProfileV1(nil, untyped)) // no type: spelled out in format 2
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := unmarshalProfile(data)
		if err != nil {
			return
		}
		once := marshalProfile(p)
		q, err := unmarshalProfile(once)
		if err != nil {
			t.Fatalf("a decoded record's encoding does not decode: %v", err)
		}
		if a, b := jsonOf(t, p), jsonOf(t, q); a != b {
			t.Fatalf("a decoded record changed on a round trip:\n%s\n%s", a, b)
		}
		if twice := marshalProfile(q); !bytes.Equal(once, twice) {
			t.Fatalf("encoding changed on a round trip:\n%x\n%x", once, twice)
		}
	})
}

// FuzzImportApply: any /api/events body, imported twice (a retried request), then
// swept, leaves an engine that answers for every viewer it names, whose stored
// records read back to the same profile, whose counts add up, and that flushes to its
// store. It drives the hot path with what a shop may send: any times, amounts, counts.
func FuzzImportApply(f *testing.F) {
	for _, s := range importSeeds {
		f.Add(s)
	}
	f.Add(`[` + orderJSON("o1", "v", 3, "19.99", "shoes") + `,` + orderJSON("o2", "v", 3, "-19.99", "") + `]`)
	f.Add(`[{"id":"w","type":"watch","viewer":"v","at":"0001-01-01T00:00:01Z","seconds":86400},{"id":"w2","type":"watch","viewer":"v","at":"9999-12-31T23:59:59Z","seconds":1}]`)
	f.Add(`[{"id":"a","type":"order","viewer":"v","at":1,"order_id":"1","total":"9223372036853.999999","currency":"USD"},{"id":"b","type":"order","viewer":"v","at":2,"order_id":"2","total":"9223372036853","currency":"USD"}]`)
	f.Fuzz(func(t *testing.T, body string) {
		items, _, err := DecodeJSON(strings.NewReader(body), t0)
		if err != nil || len(items) > 50 {
			return
		}
		e := newEngine(t, nil, &clock{t: t0})
		ctx := t.Context()
		first, err := e.ImportJSON(ctx, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		again, err := e.ImportJSON(ctx, strings.NewReader(body))
		if err != nil || again.Accepted > first.Accepted {
			t.Fatalf("a retried import accepted %d (first %d), %v", again.Accepted, first.Accepted, err)
		}
		e.Sweep()
		for _, it := range items {
			id := it.Event.Viewer
			if _, err := e.Viewer(ctx, id); err != nil && !errors.Is(err, ErrUnknownViewer) {
				t.Fatalf("viewer %q: %v", id, err)
			}
			sh, p := e.lookup(id, false)
			if p == nil {
				continue
			}
			rec := marshalProfile(p)
			sh.mu.Unlock()
			q, err := unmarshalProfile(rec)
			if err != nil {
				t.Fatalf("viewer %q: its record does not read back: %v", id, err)
			}
			if again := marshalProfile(q); !bytes.Equal(again, rec) {
				t.Fatalf("viewer %q changed through its record:\n%x\n%x", id, rec, again)
			}
		}
		c := e.Segments(ctx)
		for _, d := range []string{"activity", "value", "lifecycle"} { // one word a viewer
			sum := 0
			for _, n := range c.Dimensions[d] {
				sum += n
			}
			if sum > c.Viewers {
				t.Fatalf("%s counts %v add up to more than the %d viewers", d, c.Dimensions[d], c.Viewers)
			}
		}
		if err := e.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
