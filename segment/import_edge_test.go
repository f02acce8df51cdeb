package segment

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/liveroom/liveroom/event"
)

// A CSV file that cannot be read on (an I/O error part-way: a failing disk, a network
// share, a broken pipe on standard input) ends the import with that error. Before, the
// reader took each failed read for a row of empty fields ("at is required") and never
// reached the end: `liveroom import` looped for ever, and the row read before the
// error was never handed out.
func TestCSVReadErrorEndsTheImport(t *testing.T) {
	eio := errors.New("input/output error")
	r := io.MultiReader(strings.NewReader("id,type,viewer,at\na,like,v,2026-06-15T10:00:00Z\n"), iotest.ErrReader(eio))
	cr, err := NewCSVReader(r, t0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	var refused []ItemError
	for call := 0; ; call++ {
		if call == 10 {
			t.Fatalf("the reader never ends: after %d calls, read %q, refused %+v", call, ids, refused[:min(len(refused), 3)])
		}
		items, errs, err := cr.Next(3)
		for _, it := range items {
			ids = append(ids, it.Event.ID)
		}
		refused = append(refused, errs...)
		if errors.Is(err, io.EOF) {
			t.Fatalf("the input ended with EOF, not its read error; read %q, refused %+v", ids, refused)
		}
		if err != nil {
			if !errors.Is(err, eio) {
				t.Fatalf("error %v, want the read error", err)
			}
			break
		}
	}
	if len(refused) != 0 || len(ids) != 1 || ids[0] != "a" {
		t.Fatalf("read %q, refused %+v; want row a read and no row refused for the read error", ids, refused)
	}
}

// A CSV file saved with a byte-order mark (Excel's "CSV UTF-8", Python's utf-8-sig)
// whose header names are quoted: the mark precedes the first quote, and the CSV
// parser refused the header ("bare \" in non-quoted-field") before the mark was
// trimmed off the name.
func TestCSVWithBOMAndQuotedHeader(t *testing.T) {
	body := "\ufeff\"id\",\"type\",\"viewer\",\"at\"\r\n\"a\",\"like\",\"v\",\"2026-06-15T10:00:00Z\"\r\n"
	cr, err := NewCSVReader(strings.NewReader(body), t0)
	if err != nil {
		t.Fatalf("header refused: %v", err)
	}
	items, errs, _ := cr.Next(10)
	if len(items) != 1 || len(errs) != 0 {
		t.Fatalf("items %+v errs %+v", items, errs)
	}
}

// A JSON-lines file with a byte-order mark (Windows editors save "UTF-8 with BOM"):
// its first line is an item like the others. The CSV reader trims the mark; the
// JSON-lines reader refused line 0 ("invalid character 'ï'").
func TestJSONLinesWithBOM(t *testing.T) {
	lr := NewLineReader(strings.NewReader("\ufeff"+`{"id":"a","type":"like","viewer":"v","at":"2026-06-15T10:00:00Z"}`+"\n"), t0)
	items, errs, err := lr.Next(10)
	if err != nil || len(items) != 1 || len(errs) != 0 {
		t.Fatalf("items %d, errors %+v, %v; want the item", len(items), errs, err)
	}
}

// A count or quantity that is not whole is refused with a message that says what it
// must be: "must be a number, not number 2.5" contradicted itself.
func TestImportSaysWholeNumber(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	res, err := e.ImportJSON(t.Context(), strings.NewReader(`[
	 {"id":"a","type":"like","viewer":"v","at":"2026-06-15T10:00:00Z","count":2.5},
	 {"id":"b","type":"order","viewer":"v","at":"2026-06-15T10:00:00Z","order_id":"o1","total":"10","items":[{"sku":"s","quantity":1.5}]}]`))
	if err != nil || len(res.Errors) != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	for _, ie := range res.Errors {
		if !strings.Contains(ie.Error, "a whole number") {
			t.Errorf("item %d: %q does not say it must be a whole number", ie.Index, ie.Error)
		}
	}
}

// A gift's value is kept in the base currency, as an order's spend and a pin's price
// are: a gift priced in another currency (chat's gift catalog gives each gift its
// currency; an import may name one) is converted. It was added as it came, so a
// base-USD shop with a EUR gift catalog showed EUR amounts as dollars.
func TestGiftValueInBaseCurrency(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	g := ev(event.Gift, "v", t0)
	g.Gift, g.Count, g.Value, g.Currency = "rocket", 1, 10, "EUR"
	e.Apply(g)
	if v := viewer(t, e, "v"); v.GiftValue.String() != "11.00" {
		t.Errorf("a 10 EUR gift from the tap: gift_value %s, want 11.00 (USD at 1.1)", v.GiftValue)
	}
	res, err := e.ImportJSON(t.Context(), strings.NewReader(`[
	 {"id":"g1","type":"gift","viewer":"w","at":"2026-06-15T10:00:00Z","gift":"rose","value":"10","currency":"EUR"},
	 {"id":"g2","type":"gift","viewer":"w","at":"2026-06-15T10:00:00Z","gift":"rose","value":"10","currency":"XXX"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if v := viewer(t, e, "w"); v.GiftValue.String() != "11.00" || res.Accepted != 1 || len(res.Errors) != 1 || res.Errors[0].Index != 1 {
		t.Errorf("imported gifts of 10 EUR and 10 XXX: gift_value %s (want 11.00), %+v (want the XXX one refused)", v.GiftValue, res)
	}
}

// Spreadsheets save their empty rows as a row of empty fields (",,,"): they are
// skipped as blank lines are, not refused as events without an id and a time.
func TestCSVEmptyRowsAreSkipped(t *testing.T) {
	cr, err := NewCSVReader(strings.NewReader("id,type,viewer,at\r\na,like,v,2026-06-15T10:00:00Z\r\n,,,\r\n,,,\r\n"), t0)
	if err != nil {
		t.Fatal(err)
	}
	items, errs, _ := cr.Next(10)
	if len(items) != 1 || len(errs) != 0 {
		t.Fatalf("items %d, errors %+v; want the one event and the empty rows skipped", len(items), errs)
	}
}

// A JSON-lines file that cannot be read on ends the import with its error, saying how
// many lines were read (item errors name 0-based lines: a count is not one of them).
func TestJSONLinesReadErrorSaysHowFar(t *testing.T) {
	eio := errors.New("input/output error")
	line := `{"id":"%s","type":"like","viewer":"v","at":"2026-06-15T10:00:00Z"}` + "\n"
	r := io.MultiReader(strings.NewReader(strings.ReplaceAll(line, "%s", "a")+strings.ReplaceAll(line, "%s", "b")), iotest.ErrReader(eio))
	items, errs, err := NewLineReader(r, t0).Next(10)
	if len(items) != 2 || len(errs) != 0 || !errors.Is(err, eio) || !strings.Contains(err.Error(), "after 2 lines") {
		t.Fatalf("items %d, errors %+v, err %v; want both items and the read error after 2 lines", len(items), errs, err)
	}
}
