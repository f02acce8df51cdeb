package segment

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/problem"
	"github.com/liveroom/liveroom/token"
)

// ImportResult is the contract's answer: how many items were accepted (a repeated id
// counts as accepted and is not applied again) and the refused ones by index.
type ImportResult struct {
	Accepted   int         `json:"accepted"`
	Duplicates int         `json:"duplicates"`
	Errors     []ItemError `json:"errors"`
}

// orderIn is an order with its amounts converted to the base currency.
type orderIn struct {
	id           string
	base         Money
	items        []itemIn
	customerKeys []string
}

type itemIn struct {
	sku, category string
	price         Money // base currency, 0 when not given
	quantity      int
}

// parseOrder converts an order's amounts exactly to the base currency.
func (e *Engine) parseOrder(o *event.OrderInfo) (*orderIn, error) {
	if o == nil || o.OrderID == "" {
		return nil, fmt.Errorf("%w: order without order_id", ErrBadEvent)
	}
	total, err := ParseMoney(o.Total)
	if err != nil {
		return nil, fmt.Errorf("total: %w", err)
	}
	base, err := e.convert(total, o.Currency)
	if err != nil {
		return nil, err
	}
	out := &orderIn{id: o.OrderID, base: base}
	for i, it := range o.Items {
		var price Money
		if it.Price != "" {
			p, err := ParseMoney(it.Price)
			if err != nil {
				return nil, fmt.Errorf("items[%d].price: %w", i, err)
			}
			if price, err = e.convert(p, o.Currency); err != nil {
				return nil, err
			}
		}
		out.items = append(out.items, itemIn{sku: it.SKU, category: it.Category, price: price, quantity: it.Quantity})
	}
	if c := o.Customer; c != nil {
		if c.ID != "" {
			out.customerKeys = append(out.customerKeys, "customer:"+c.ID)
		}
		if email := strings.ToLower(strings.TrimSpace(c.Email)); email != "" {
			out.customerKeys = append(out.customerKeys, "email:"+email)
		}
	}
	return out, nil
}

// checkIDs checks the ids of viewers, orders, rooms and lives an event brings as
// decoding does (validID), whatever made it (a shop's webhook builds its own): they
// become keys in the stores, where a control character would let one id pass for the
// start of another. The event's own id is the caller's: the node makes some of its
// own (a consent's holds the viewer's id and a time, longer than an imported id).
func checkIDs(ev *event.Event) error {
	required := []struct{ what, v string }{{"viewer", ev.Viewer}}
	optional := []struct{ what, v string }{{"live", ev.Live}}
	if o := ev.Order; o != nil {
		required = append(required, struct{ what, v string }{"order_id", o.OrderID})
		if c := o.Customer; c != nil {
			optional = append(optional, struct{ what, v string }{"customer.id", c.ID}, struct{ what, v string }{"customer.email", c.Email})
		}
	}
	for _, c := range required {
		if err := validID(c.what, c.v); err != nil {
			return err
		}
	}
	for _, c := range optional {
		if err := validID(c.what, c.v); c.v != "" && err != nil {
			return err
		}
	}
	if err := token.ValidRoom(ev.Room); ev.Room != "" && err != nil {
		return err
	}
	return nil
}

// ImportJSON decodes the contract's JSON array and imports it (POST /api/events).
func (e *Engine) ImportJSON(ctx context.Context, r io.Reader) (ImportResult, error) {
	items, errs, err := DecodeJSON(r, e.now())
	if err != nil {
		return ImportResult{}, err
	}
	return e.Import(ctx, items, errs)
}

// Import applies items at most once each (by event id, and by order id for orders)
// and returns only after they are durable in the store. errs are decoding errors to
// report with the result.
func (e *Engine) Import(ctx context.Context, items []Item, errs []ItemError) (ImportResult, error) {
	if e.closed.Load() {
		return ImportResult{}, problem.Wrap(problem.Unavailable, ErrClosed, "segment engine is stopping")
	}
	res := ImportResult{Errors: errs}
	if res.Errors == nil {
		res.Errors = []ItemError{}
	}
	orders := make(map[int]*orderIn)
	refused := make(map[int]bool)
	var ids, orderIDs []string
	for _, it := range items {
		if err := checkIDs(&it.Event); err != nil {
			res.Errors = append(res.Errors, ItemError{it.Index, err.Error()})
			refused[it.Index] = true
			continue
		}
		if it.Event.Type == event.Gift && it.Event.Currency != "" {
			if _, err := e.convert(0, it.Event.Currency); err != nil { // as an order's
				res.Errors = append(res.Errors, ItemError{it.Index, err.Error()})
				refused[it.Index] = true
				continue
			}
		}
		ids = append(ids, it.Event.ID)
		if it.Event.Type == event.Order {
			o, err := e.parseOrder(it.Event.Order)
			if err != nil {
				res.Errors = append(res.Errors, ItemError{it.Index, err.Error()})
				continue
			}
			orders[it.Index] = o
			orderIDs = append(orderIDs, o.id)
		}
	}
	// By index: decoding refused some items, the orders' check others.
	slices.SortStableFunc(res.Errors, func(a, b ItemError) int { return cmp.Compare(a.Index, b.Index) })

	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	seen, err := e.store.Seen(ctx, KindEvent, ids)
	if err != nil {
		return ImportResult{}, problem.Wrap(problem.Unavailable, err, "segment store unavailable")
	}
	seenOrders, err := e.store.Seen(ctx, KindOrder, orderIDs)
	if err != nil {
		return ImportResult{}, problem.Wrap(problem.Unavailable, err, "segment store unavailable")
	}
	// Items applied by an import whose commit failed count as seen: they are in
	// memory already, and are committed with this batch or the next flush.
	for _, k := range []struct {
		kind Kind
		seen map[string]bool
	}{{KindEvent, seen}, {KindOrder, seenOrders}} {
		for _, r := range e.unstored.Owned[k.kind] {
			k.seen[r.Key] = true
		}
	}
	touched := map[*Profile]*shard{}
	b := &Batch{}
	var changes [][]event.Event
	var applied []event.Event
	var raws []json.RawMessage // applied's items as sent, for the hold
	hasOrders := false
	var oldestOrder time.Time // of the orders applied (Event.News): the re-ranking's cause, as rerankCauses keeps it
	var counts tally
	for _, it := range items {
		o := orders[it.Index]
		if refused[it.Index] || it.Event.Type == event.Order && o == nil {
			continue // refused above
		}
		if seen[it.Event.ID] || (o != nil && seenOrders[o.id]) {
			res.Accepted++
			res.Duplicates++
			continue
		}
		seen[it.Event.ID] = true
		ev := it.Event
		changes = append(changes, e.apply(&ev, 0, o, touched, nil, e.now().UnixMilli(), &counts))
		applied, raws = append(applied, ev), append(raws, it.Raw)
		res.Accepted++
		b.own(KindEvent, Record{Key: ev.ID, Owner: ev.Viewer, Data: it.Raw})
		if o != nil {
			seenOrders[o.id] = true
			hasOrders = true
			if at := ev.News(); oldestOrder.IsZero() || at.Before(oldestOrder) {
				oldestOrder = at
			}
			for _, l := range o.items {
				e.catalog.learn(l.sku, l.category, l.price, ev.At.UnixMilli())
			}
			rec, _ := json.Marshal(storedOrder{OrderID: o.id, Viewer: ev.Viewer, Event: ev.ID, At: ev.At, Total: ev.Order.Total,
				Currency: ev.Order.Currency, Base: o.base, BaseCurrency: e.cfg.Currency, Items: ev.Order.Items, Customer: ev.Order.Customer})
			b.own(KindOrder, Record{Key: o.id, Owner: ev.Viewer, Data: rec})
		}
	}
	e.count(counts)
	if e.beforeImportWrite != nil {
		e.beforeImportWrite()
	}
	e.writeTouched(b, touched)
	b.Products = e.catalog.drain()
	if b.empty() && e.unstored.empty() {
		return res, nil // nothing new: no transaction to wait for
	}
	held := e.hold(ctx, applied, raws, changes) // before the commit: held.go
	err = e.commit(ctx, b)
	// Applied either way: after a failed commit the events stay in memory, a later
	// commit stores them and a retry is answered as duplicates, so the subscribers
	// (the rules: an order's thank-you) get them now or never.
	markHeld(applied, changes, held)
	for i := range applied {
		e.publish(&applied[i], changes[i])
	}
	if hasOrders {
		e.rerank.note(oldestOrder)
		e.requestSweep()
	}
	if err != nil {
		return ImportResult{}, problem.Wrap(problem.Unavailable, err, "could not store the events; nothing was acknowledged, retry")
	}
	e.metrics.imported.Add(float64(len(applied)))
	e.importedSinceCompact.Add(int64(len(applied)))
	if len(applied) >= importPart {
		// A part of a large import, perhaps one of many: the early compaction waits for
		// the last. A shop's order webhook or a consent (an event each) is not one, or a
		// steady trickle of them would put it off for good.
		e.lastImport.Store(e.now().UnixMilli())
	}
	e.metrics.duplicates.Add(float64(res.Duplicates))
	return res, nil
}

// storedOrder is what the store keeps of an order (export shows it as is).
type storedOrder struct {
	OrderID      string        `json:"order_id"`
	Viewer       string        `json:"viewer"`
	Event        string        `json:"event"`
	At           time.Time     `json:"at"`
	Total        string        `json:"total"`
	Currency     string        `json:"currency,omitempty"`
	Base         Money         `json:"base_total"`
	BaseCurrency string        `json:"base_currency"`
	Items        []event.Item  `json:"items,omitempty"`
	Customer     *event.Person `json:"customer,omitempty"`
}

// writeTouched adds the profiles an import touched to b. Merges wait meanwhile, and a
// touched profile that a live order has merged away since brings the profile it went
// into along: the deletion and the merged profile must be written together, or a crash
// between two writes would lose the merged-away history.
func (e *Engine) writeTouched(b *Batch, touched map[*Profile]*shard) {
	e.mergeMu.Lock()
	defer e.mergeMu.Unlock()
	written := map[string]bool{}
	var into []string
	for p, sh := range touched {
		sh.mu.Lock()
		if p.is(gone) {
			b.DeletedProfiles = append(b.DeletedProfiles, p.ID)
			if to := sh.alias[p.ID]; to != "" {
				into = append(into, to)
			}
		} else {
			b.Profiles = append(b.Profiles, encodeProfile(p))
			written[p.ID] = true
		}
		sh.mu.Unlock()
	}
	for _, id := range into {
		sh, p := e.lookup(id, false)
		if p == nil {
			continue
		}
		if !p.is(gone) && !written[p.ID] {
			b.Profiles = append(b.Profiles, encodeProfile(p))
			written[p.ID] = true
		}
		sh.mu.Unlock()
	}
}
