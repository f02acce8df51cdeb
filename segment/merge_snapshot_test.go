package segment

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
)

// TestMergeLandsWhollyInOneWriteThrough: a live order that merges a guest into a
// known customer while a write-through is taking its snapshot must not let that
// snapshot delete the guest without the merged customer (a crash right after would
// lose the guest's history). The merge is started after the customer's shard has
// been snapshotted and before the guest's.
func TestMergeLandsWhollyInOneWriteThrough(t *testing.T) {
	store := NewMemoryStore()
	e := newEngine(t, store, &clock{t: t0})
	// Shards are chosen by a hash with a seed of the process's: find a customer id
	// in a shard before the last, then a guest id in a later one.
	shop := ""
	for i := range 100 {
		if id := fmt.Sprint("shop-", i); e.shardIndex(e.shardOf(id)) < len(e.shards)-1 {
			shop = id
			break
		}
	}
	shopShard := e.shardIndex(e.shardOf(shop))
	guest := ""
	for i := range 100 {
		if id := fmt.Sprint("guest-", i); e.shardIndex(e.shardOf(id)) > shopShard {
			guest = id
			break
		}
	}
	if shop == "" || guest == "" {
		t.Fatal("no customer and guest ids in shards in that order")
	}
	importJSON(t, e, `[{"id":"h1","type":"order","viewer":"`+shop+`","at":"2026-05-01T10:00:00Z","order_id":"s1","total":"30","customer":{"id":"42"}}]`)
	for _, x := range session(guest, "L1", t0.Add(-time.Hour), 10*time.Minute, 3) {
		e.Apply(x)
	}
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.Apply(ev(event.Like, shop, t0)) // the customer has something to write too

	merged := make(chan struct{})
	e.afterShardSnapshot = func(i int) {
		if i != shopShard {
			return
		}
		e.afterShardSnapshot = nil
		order := ev(event.Order, guest, t0)
		order.Order = &event.OrderInfo{OrderID: "s2", Total: "20", Currency: "EUR", Customer: &event.Person{ID: "42"}}
		go func() {
			e.Apply(order)
			close(merged)
		}()
		select { // give the merge every chance to run inside the snapshot
		case <-merged:
		case <-time.After(300 * time.Millisecond):
		}
	}
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkStored := func(when string) (guestKept bool) {
		t.Helper()
		store.mu.Lock()
		gData, gOK := store.profiles[guest]
		cData := store.profiles[shop]
		store.mu.Unlock()
		c, err := unmarshalProfile(cData)
		if err != nil {
			t.Fatal(err)
		}
		if !gOK && c.Comments != 3 {
			t.Fatalf("%s: the guest is deleted from the store but the stored customer has %d comments, want the guest's 3", when, c.Comments)
		}
		if gOK {
			if _, err := unmarshalProfile(gData); err != nil {
				t.Fatal(err)
			}
		}
		return gOK
	}
	checkStored("after the write-through the merge raced")
	<-merged
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if checkStored("after the next write-through") {
		t.Fatal("the guest merged into the customer is still stored on its own")
	}
}

// TestImportWritesTheProfileAGuestWasMergedInto: an import that touched a guest whom a
// live order merges into a customer before the import writes must write the merged
// customer in the same transaction that deletes the guest.
func TestImportWritesTheProfileAGuestWasMergedInto(t *testing.T) {
	store := NewMemoryStore()
	e := newEngine(t, store, &clock{t: t0})
	importJSON(t, e, `[{"id":"h1","type":"order","viewer":"shop-42","at":"2026-05-01T10:00:00Z","order_id":"s1","total":"30","customer":{"id":"42"}}]`)
	for _, x := range session("guest-7", "L1", t0.Add(-time.Hour), 10*time.Minute, 3) {
		e.Apply(x)
	}
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.beforeImportWrite = func() {
		e.beforeImportWrite = nil
		order := ev(event.Order, "guest-7", t0)
		order.Order = &event.OrderInfo{OrderID: "s2", Total: "20", Currency: "EUR", Customer: &event.Person{ID: "42"}}
		e.Apply(order) // the live order merges the guest into the customer now
	}
	importJSON(t, e, `[{"id":"h2","type":"like","viewer":"guest-7","at":"2026-06-15T11:50:00Z","count":1}]`)
	store.mu.Lock()
	_, guestKept := store.profiles["guest-7"]
	cData := store.profiles["shop-42"]
	store.mu.Unlock()
	c, err := unmarshalProfile(cData)
	if err != nil {
		t.Fatal(err)
	}
	if !guestKept && c.Comments != 3 {
		t.Fatalf("the import deleted the merged guest but the stored customer has %d comments, want the guest's 3", c.Comments)
	}
}
