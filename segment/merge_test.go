package segment

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
)

// idIn returns an id made from prefix whose shard is none of avoid.
func idIn(t *testing.T, e *Engine, prefix string, avoid ...string) string {
	t.Helper()
	for i := range 1000 {
		id := fmt.Sprint(prefix, i)
		free := true
		for _, a := range avoid {
			free = free && e.shardOf(id) != e.shardOf(a)
		}
		if free {
			return id
		}
	}
	t.Fatal("no id in a free shard")
	return ""
}

// A merge points the ids that pointed at the merged-away profile at its target only
// after it lets the two shards go. An event of such an id in between must still find
// the target, not make a profile of its own that would hide the target for good.
func TestAliasFollowedThroughAMergeInProgress(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	from := idIn(t, e, "cust-a-")
	into := idIn(t, e, "cust-b-", from)
	guest := idIn(t, e, "guest-", from, into)
	for _, id := range []string{guest, from, into} {
		e.Apply(ev(event.Like, id, t0))
	}
	if !e.merge(guest, from, nil) {
		t.Fatal("guest not merged")
	}
	ok, later := e.mergeLocked(from, into, nil) // the merge, up to its repoint
	if !ok || len(later) != 1 || later[0] != guest {
		t.Fatalf("mergeLocked: %v, to repoint %v", ok, later)
	}
	e.Apply(ev(event.Like, guest, t0.Add(time.Second))) // an event in between
	if got := e.ownerOf(guest); got != into {
		t.Errorf("ownerOf(%s) = %s in between, want %s", guest, got, into)
	}
	for _, a := range later {
		e.repoint(a, into)
	}
	if got := e.ownerOf(guest); got != into {
		t.Fatalf("%s leads to profile %q, not to %q it was merged into", guest, got, into)
	}
	if v := viewer(t, e, into); v.Likes != 4 {
		t.Fatalf("%s has %d likes, want 4 (every id's, the one in between too)", into, v.Likes)
	}
}

// A write-through that failed is retried with the next one's snapshot. When a profile
// it held was merged away meanwhile, the retry must not write its old record back:
// after a restart it would be a viewer of its own again, its history counted twice.
func TestRetriedWriteThroughDoesNotBringBackAMergedProfile(t *testing.T) {
	store := &failingStore{MemoryStore: NewMemoryStore()}
	e := newEngine(t, store, &clock{t: t0})
	e.Apply(ev(event.Like, "guest", t0))
	e.Apply(ev(event.Like, "cust", t0))
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.Apply(ev(event.Like, "guest", t0))
	store.fail.Store(true)
	if err := e.Flush(context.Background()); err == nil {
		t.Fatal("the write-through did not fail")
	}
	store.fail.Store(false)
	if !e.merge("guest", "cust", nil) {
		t.Fatal("not merged")
	}
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.Close(context.Background())
	again := newEngine(t, store.MemoryStore, &clock{t: t0})
	if got := again.ownerOf("guest"); got != "cust" {
		t.Fatalf("after a restart guest leads to %q, not to the customer it was merged into", got)
	}
	if v := viewer(t, again, "cust"); v.Likes != 3 {
		t.Fatalf("cust has %d likes after a restart, want 3", v.Likes)
	}
}

// Merging a guest into a customer whose category list is full drops one entry as an
// event would, not every entry older than the guest's.
func TestMergeIntoAFullCategoryListKeepsTheWindow(t *testing.T) {
	today := dayOf(t0.UnixMilli())
	dst, src := &Profile{ID: "dst"}, &Profile{ID: "src"}
	for i := range maxCats {
		dst.addCat(today-int32(i%30)-1, today-90, categoryOf(fmt.Sprint("cat-", i)), 1)
	}
	src.addCat(today, today-90, categoryOf("shoes"), 1)
	mergeProfile(dst, src, today-90)
	if len(dst.Cats.get()) < maxCats {
		t.Fatalf("after the merge %d category counts are left of %d, all in the 90-day window", len(dst.Cats.get()), maxCats)
	}
}

// A shop's order with no viewer of ours is filed under its customer key as a viewer id
// (customer:ID, else email:ADDR). A viewer's later order naming that customer makes
// them one profile, as it does when the key is already an alias, not a second profile
// that the key as an alias would point away from.
func TestOrderLinksAViewerToAProfileNamedByItsCustomerKey(t *testing.T) {
	for _, c := range []struct{ key, customer string }{
		{"customer:K1", `{"id":"K1"}`},
		{"email:k3@x.com", `{"email":"K3@x.com"}`},
	} {
		e := newEngine(t, nil, &clock{t: t0})
		importJSON(t, e, `[{"id":"h1","type":"danmaku","viewer":"`+c.key+`","at":"2026-06-01T10:00:00Z","text":"hi"},
		 {"id":"h2","type":"order","viewer":"g1","at":"2026-06-02T10:00:00Z","order_id":"O1","total":"20.00","customer":`+c.customer+`}]`)
		a, b := viewer(t, e, c.key), viewer(t, e, "g1")
		if a.ID != b.ID || a.Comments != 1 || a.Orders != 1 || e.Count() != 1 {
			t.Errorf("%s: %s leads to %s (%d comments, %d orders), g1 to %s; %d profiles, want one with both",
				c.key, c.key, a.ID, a.Comments, a.Orders, b.ID, e.Count())
		}
	}
}

// An e-mail key is found whatever the case of its address, as orders compare e-mails,
// and an import naming one as its viewer files it under the same key.
func TestEmailKeysIgnoreTheAddressCase(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	importJSON(t, e, `[{"id":"o","type":"order","viewer":"g1","at":"2026-06-02T10:00:00Z","order_id":"O1","total":"20.00","customer":{"email":"Zed@Shop.com"}},
	 {"id":"c","type":"danmaku","viewer":"EMAIL:ZED@SHOP.COM","at":"2026-06-03T10:00:00Z","text":"hi"}]`)
	for _, id := range []string{"email:zed@shop.com", "email:ZED@shop.COM", "Email:Zed@Shop.com"} {
		v, err := e.Viewer(context.Background(), id)
		if err != nil || v.ID != "g1" || v.Orders != 1 || v.Comments != 1 {
			t.Errorf("%s: %v, profile %q with %d orders and %d comments; want g1's with 1 and 1", id, err, v.ID, v.Orders, v.Comments)
		}
	}
	if e.Count() != 1 {
		t.Errorf("%d profiles, want 1", e.Count())
	}
}

// A live's end visits the shards one by one. A merge meanwhile, from a shard not yet
// visited into one already visited, must not carry the ended live's presence past
// the visit: it waits for the end to finish.
func TestMergeDuringALivesEndLeavesNoPresenceInIt(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	var into, from string
	for i := 0; from == ""; i++ {
		a, b := fmt.Sprint("cust-", i), fmt.Sprint("guest-", i)
		if e.shardIndex(e.shardOf(a)) < e.shardIndex(e.shardOf(b)) {
			into, from = a, b
		}
	}
	e.Apply(ev(event.Like, into, t0))
	join := ev(event.Join, from, t0)
	join.Room, join.Live = "r", "L"
	e.Apply(join)
	merged := make(chan bool, 1)
	e.afterLiveShard = func(shard int) {
		if shard == e.shardIndex(e.shardOf(into)) {
			go func() { merged <- e.merge(from, into, nil) }()
			time.Sleep(50 * time.Millisecond) // long enough for a merge that does not wait
		}
	}
	e.endLive("L", t0.Add(time.Minute).UnixMilli())
	e.afterLiveShard = nil
	if !<-merged {
		t.Fatal("not merged")
	}
	if ids := e.PresentIn("L"); len(ids) > 0 {
		t.Fatalf("present in the ended live after the merge: %v", ids)
	}
}

// A viewer id that is an e-mail key comes in lower case whatever the source: a chat
// token's subject as much as an import. A profile stored under a mixed-case key before
// is found by the lower-case one after a restart, and an opt-out reaches it.
func TestEmailKeyIdsFromEverySource(t *testing.T) {
	path := t.TempDir() + "/segment.db"
	store := openStore(t, path)
	clk := &clock{t: t0}
	e := newEngine(t, store, clk)
	e.Apply(ev(event.Like, "email:Ann@Shop.com", t0)) // the tap: a token's subject
	if v, err := e.Viewer(context.Background(), "email:Ann@Shop.com"); err != nil || v.ID != "email:ann@shop.com" || v.Likes != 1 {
		t.Fatalf("the tap's viewer: %v, profile %q with %d likes", err, v.ID, v.Likes)
	}
	// A profile stored under a mixed-case key (before keys were kept in lower case).
	legacy := &Profile{ID: "email:Bob@Shop.com", Likes: 2}
	if err := store.Commit(context.Background(), &Batch{Profiles: []Record{{Key: legacy.ID, Data: marshalProfile(legacy)}}}); err != nil {
		t.Fatal(err)
	}
	e, store = restart(t, e, store, path, clk)
	no := false
	consent := event.Event{ID: "c1", Type: event.Consent, Viewer: "email:bob@shop.com", At: t0, Consent: &no}
	if _, err := e.Import(context.Background(), []Item{{Event: consent}}, nil); err != nil {
		t.Fatal(err)
	}
	b, err := e.Brief(context.Background(), "email:bob@shop.com", "")
	if err != nil || b.ID != legacy.ID || b.Consent == nil || *b.Consent {
		t.Fatalf("the stored mixed-case profile: %v, %q, consent %v; %d profiles", err, b.ID, b.Consent, e.Count())
	}
	if err := e.Erase(context.Background(), "email:BOB@shop.com"); err != nil || e.Count() != 1 {
		t.Fatalf("erase: %v, %d profiles left, want 1", err, e.Count())
	}
}

// An erasure after a failed write-through also drops what that write-through left to
// retry: the retry must not write the erased profile back.
func TestEraseAfterAFailedWriteThroughStaysErased(t *testing.T) {
	store := &failingStore{MemoryStore: NewMemoryStore()}
	e := newEngine(t, store, &clock{t: t0})
	e.Apply(ev(event.Like, "v", t0))
	store.fail.Store(true)
	if err := e.Flush(context.Background()); err == nil {
		t.Fatal("the write-through did not fail")
	}
	store.fail.Store(false)
	if err := e.Erase(context.Background(), "v"); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.Close(context.Background())
	again := newEngine(t, store.MemoryStore, &clock{t: t0})
	if _, err := again.Viewer(context.Background(), "v"); err == nil {
		t.Fatal("the erased viewer is back after a restart")
	}
}

// A merge keeps at most as many order ids as orders do (maxOrders), the destination's
// first: two buyers at the limit do not make a list of twice as many.
func TestMergeKeepsAtMostMaxOrderIDs(t *testing.T) {
	today := dayOf(t0.UnixMilli())
	dst, src := &Profile{ID: "dst"}, &Profile{ID: "src"}
	var dstIDs, srcIDs []string
	for i := range maxOrders {
		dstIDs, srcIDs = append(dstIDs, fmt.Sprint("d-", i)), append(srcIDs, fmt.Sprint("s-", i))
	}
	dst.setBuyer(buyerFacts{OrderIDs: idListOf(dstIDs)})
	src.setBuyer(buyerFacts{OrderIDs: idListOf(srcIDs[:3])})
	mergeProfile(dst, src, today-90)
	if got := dst.OrderIDs(); len(got) != maxOrders || got[0] != "d-0" || got[maxOrders-1] != dstIDs[maxOrders-1] {
		t.Fatalf("a full list merged with 3 more holds %d ids (first %q, last %q), want the %d it had", len(got), got[0], got[len(got)-1], maxOrders)
	}
	dst.setBuyer(buyerFacts{OrderIDs: idListOf(dstIDs[:maxOrders-2])})
	mergeProfile(dst, src, today-90)
	if got := dst.OrderIDs(); len(got) != maxOrders || got[maxOrders-2] != "s-0" || got[maxOrders-1] != "s-1" {
		t.Fatalf("a list 2 short merged with 3 more holds %d ids, ending %q, want %d ending with the first 2 merged", len(got), got[len(got)-2:], maxOrders)
	}
}
