package segment

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/liveroom/liveroom/event"
)

// csvColumns are the columns a CSV import may have; id, type, viewer and at are required.
// An order's lines are sku, category, price, quantity; consecutive rows with the same
// order id add lines to one order.
var csvColumns = []string{"id", "type", "viewer", "name", "room", "live", "at", "order_id", "total", "currency",
	"customer_id", "customer_email", "seconds", "count", "gift", "value", "sku", "category", "price", "quantity", "text", "messages"}

// CSVReader reads generic events from CSV with a header row.
type CSVReader struct {
	r       *csv.Reader
	col     map[string]int
	width   int // the header's columns
	now     time.Time
	row     int // data rows read (the index of the next one)
	pending *wireItem
	pendIdx int
	refused string // the order (id) a line of which was refused: its other lines are too
	err     error  // a read error, which ends the input
}

// NewCSVReader reads the header and checks its columns.
func NewCSVReader(r io.Reader, now time.Time) (*CSVReader, error) {
	// A byte-order mark goes before the parser sees it: before a quoted header name
	// it would make the quote a bare one.
	br := bufio.NewReader(r)
	if b, _ := br.Peek(len(bom)); string(b) == bom {
		_, _ = br.Discard(len(bom)) // peeked: it is buffered
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: CSV header: %v", ErrBadEvent, err)
	}
	col := map[string]int{}
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(csvColumns, h) {
			return nil, fmt.Errorf("%w: unknown CSV column %q (columns: %s)", ErrBadEvent, h, strings.Join(csvColumns, ","))
		}
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("%w: CSV column %q appears twice", ErrBadEvent, h)
		}
		col[h] = i
	}
	for _, req := range []string{"id", "type", "viewer", "at"} {
		if _, ok := col[req]; !ok {
			return nil, fmt.Errorf("%w: CSV header lacks the %q column", ErrBadEvent, req)
		}
	}
	return &CSVReader{r: cr, col: col, width: len(head), now: now}, nil
}

// Next returns up to n more items and errors (indexes are 0-based data rows), io.EOF
// when done.
func (c *CSVReader) Next(n int) ([]Item, []ItemError, error) {
	var items []Item
	var errs []ItemError
	emit := func(w *wireItem, idx int) {
		if it, ie := c.finish(w, idx); ie != nil {
			errs = append(errs, *ie)
		} else {
			items = append(items, it)
		}
	}
	// A refused line of an order refuses the whole order: imported without it, the
	// order's id would be taken, and a re-run of the fixed file could not add the line.
	refuse := func(idx int, rec []string, msg string) {
		errs = append(errs, ItemError{idx, msg})
		if c.get(rec, "type") != "order" {
			return
		}
		id := c.get(rec, "id")
		if p := c.pending; p != nil && p.Type == "order" && p.ID == id {
			errs = append(errs, ItemError{c.pendIdx, fmt.Sprintf("order %q: its line in row %d was refused", id, idx)})
			c.pending = nil
		}
		c.refused = id
	}
	for len(items)+len(errs) < n && c.err == nil {
		rec, err := c.r.Read()
		if errors.Is(err, io.EOF) {
			if c.pending != nil {
				emit(c.pending, c.pendIdx)
				c.pending = nil
			}
			break
		}
		idx := c.row
		c.row++
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				// The input cannot be read on: no row to refuse. An order still
				// pending may lack lines not read yet, so it is not handed out (its
				// id would be taken); another pending event is whole.
				c.err = fmt.Errorf("row %d: %w", idx, err)
				if p := c.pending; p != nil && p.Type != "order" {
					emit(p, c.pendIdx)
				}
				c.pending = nil
				break
			}
			if !errors.Is(pe.Err, csv.ErrFieldCount) {
				refuse(idx, rec, err.Error())
				continue
			}
		}
		if !slices.ContainsFunc(rec, func(f string) bool { return strings.TrimSpace(f) != "" }) {
			continue // a spreadsheet's empty row (",,,"), as a blank line
		}
		if len(rec) > c.width {
			// Fewer fields are empty trailing columns (spreadsheets drop them); more
			// would put values under the wrong columns without a word.
			refuse(idx, rec, fmt.Sprintf("row has %d fields, more than the header's %d (an unquoted comma in a value?)", len(rec), c.width))
			continue
		}
		w, err := c.parseRow(rec)
		if err != nil {
			refuse(idx, rec, err.Error())
			continue
		}
		if w.Type == "order" && w.ID == c.refused {
			errs = append(errs, ItemError{idx, fmt.Sprintf("order %q: another of its lines was refused", w.ID)})
			continue
		}
		c.refused = ""
		if p := c.pending; p != nil && p.Type == "order" && w.Type == "order" && p.ID == w.ID {
			p.Items = append(p.Items, w.Items...)
			continue
		}
		if c.pending != nil {
			emit(c.pending, c.pendIdx)
		}
		c.pending, c.pendIdx = w, idx
	}
	if c.err != nil {
		return items, errs, c.err
	}
	if len(items) == 0 && len(errs) == 0 && c.pending == nil {
		return nil, nil, io.EOF
	}
	return items, errs, nil
}

func (c *CSVReader) finish(w *wireItem, idx int) (Item, *ItemError) {
	ev, err := w.toEvent(c.now)
	if err != nil {
		return Item{}, &ItemError{idx, err.Error()}
	}
	raw, _ := json.Marshal(w)
	return Item{Index: idx, Event: ev, Raw: raw}, nil
}

func (c *CSVReader) get(rec []string, name string) string {
	if i, ok := c.col[name]; ok && i < len(rec) {
		return strings.TrimSpace(rec[i])
	}
	return ""
}

// parseRow turns one CSV row into a generic event (checked later by toEvent).
func (c *CSVReader) parseRow(rec []string) (*wireItem, error) {
	g := func(name string) string { return c.get(rec, name) }
	w := &wireItem{ID: g("id"), Type: g("type"), Viewer: g("viewer"), Name: g("name"), Room: g("room"), Live: g("live"),
		OrderID: g("order_id"), Currency: g("currency"), Gift: g("gift"), SKU: g("sku"), Category: g("category"), Text: g("text")}
	if err := w.At.set(g("at")); err != nil {
		return nil, err
	}
	for _, d := range []struct {
		name string
		dst  *decimal
	}{{"total", &w.Total}, {"value", &w.Value}} {
		if s := g(d.name); s != "" {
			if _, err := ParseMoney(s); err != nil {
				return nil, fmt.Errorf("%s: %w", d.name, err)
			}
			*d.dst = decimal(s)
		}
	}
	if s := g("seconds"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("seconds %q is not a number", s)
		}
		w.Seconds = &v
	}
	if s := g("count"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("count %q is not a whole number", s)
		}
		w.Count = &v
	}
	if s := g("messages"); s != "" {
		v, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("messages %q is not true or false", s)
		}
		w.Messages = &v
	}
	if id, email := g("customer_id"), g("customer_email"); id != "" || email != "" {
		w.Customer = &event.Person{ID: id, Email: email}
	}
	if w.Type == "order" && (w.SKU != "" || w.Category != "") {
		line := wireLine{SKU: w.SKU, Category: w.Category}
		if s := g("price"); s != "" {
			if _, err := ParseMoney(s); err != nil {
				return nil, fmt.Errorf("price: %w", err)
			}
			line.Price = decimal(s)
		}
		if s := g("quantity"); s != "" {
			q, err := strconv.Atoi(s)
			if err != nil {
				return nil, fmt.Errorf("quantity %q is not a whole number", s)
			}
			line.Quantity = q
		}
		w.Items = []wireLine{line}
		w.SKU, w.Category = "", ""
	}
	return w, nil
}
