package segment

import (
	"encoding/json"
	"slices"
	"sync"
)

// Product is what the engine knows of one SKU: its category and price in the base
// currency, learnt from pinned products and order lines, each with the time (Unix ms)
// of the event it came from: an imported order older than what is known (history
// arrives in any order) does not take a newer price's place.
type Product struct {
	Category   string `json:"category,omitempty"`
	Price      Money  `json:"price,omitempty"`
	CategoryAt int64  `json:"category_at,omitempty"`
	PriceAt    int64  `json:"price_at,omitempty"`
}

// maxProducts bounds the catalog against a flood of made-up SKUs.
const maxProducts = 1_000_000

// catalog holds the products and the price terciles the price bands compare with.
type catalog struct {
	mu       sync.RWMutex
	products map[string]Product
	dirty    map[string]struct{} // to write through
	lo, hi   Money               // terciles; valid when ok
	ok       bool
	stale    bool
}

func newCatalog() *catalog {
	return &catalog{products: map[string]Product{}, dirty: map[string]struct{}{}}
}

func (c *catalog) category(sku string) string {
	if sku == "" {
		return ""
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.products[sku].Category
}

// learn records what an event at at (Unix ms) says of sku: each of its fields that is
// set and no older than what is known. Products stored before the times were kept
// have none (0), so anything replaces them.
func (c *catalog) learn(sku, category string, price Money, at int64) {
	if sku == "" || (category == "" && price <= 0) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old, had := c.products[sku]
	if !had && len(c.products) >= maxProducts {
		return
	}
	p := old
	if category != "" && !priceBandWord(category) && at >= p.CategoryAt {
		p.Category, p.CategoryAt = category, at
	}
	if price > 0 && at >= p.PriceAt {
		p.Price, p.PriceAt = price, at
	}
	if had && p == old {
		return
	}
	c.products[sku] = p
	c.dirty[sku] = struct{}{}
	c.stale = true
}

// load puts a stored product back (start-up).
func (c *catalog) load(sku string, data []byte) error {
	var p Product
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	c.mu.Lock()
	c.products[sku] = p
	c.stale = true
	c.mu.Unlock()
	return nil
}

// drain returns the changed products as records to store.
func (c *catalog) drain() []Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Record, 0, len(c.dirty))
	for sku := range c.dirty {
		b, _ := json.Marshal(c.products[sku])
		out = append(out, Record{Key: sku, Data: b})
	}
	clear(c.dirty)
	return out
}

// band places an average order value against the catalog's price terciles.
func (c *catalog) band(aov Money, ordered bool) (string, Money, Money) {
	if !ordered {
		return "", 0, 0
	}
	c.mu.RLock()
	if c.stale {
		c.mu.RUnlock()
		c.mu.Lock()
		c.terciles()
		c.mu.Unlock()
		c.mu.RLock()
	}
	lo, hi, ok := c.lo, c.hi, c.ok
	c.mu.RUnlock()
	switch {
	case !ok:
		return "", 0, 0
	case aov <= lo:
		return PriceLow, lo, hi
	case aov > hi:
		return PriceHigh, lo, hi
	}
	return PriceMid, lo, hi
}

// terciles recomputes the prices at one and two thirds of the sorted catalog
// (nearest rank). Fewer than three priced products give no bands. Called locked.
func (c *catalog) terciles() {
	c.stale = false
	prices := make([]Money, 0, len(c.products))
	for _, p := range c.products {
		if p.Price > 0 {
			prices = append(prices, p.Price)
		}
	}
	if len(prices) < 3 {
		c.ok = false
		return
	}
	slices.Sort(prices)
	n := len(prices)
	c.lo = prices[(n+2)/3-1]
	c.hi = prices[(2*n+2)/3-1]
	c.ok = true
}
