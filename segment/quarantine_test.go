package segment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liveroom/liveroom/event"
)

// unreadableRecord does not decode (an unknown format byte) and holds a marker that
// the test looks for in the store's files.
var unreadableRecord = []byte("\xffQUARANTINE-MARKER-7c1d")

// storeWithUnreadableProfile makes a store in a new folder holding the viewers
// "good" and "bad" (with an imported order each), "bad"'s profile overwritten by
// bytes that do not decode, and returns the folder, the store's path and the store
// opened again (closed when the test ends).
func storeWithUnreadableProfile(t *testing.T, clk *clock) (dir, path string, _ *JournalStore) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "segment.db")
	store := openStore(t, path)
	e := newEngine(t, store, clk)
	importJSON(t, e, "["+orderJSON("o-good", "good", 1, "5", "shoes")+","+orderJSON("o-bad", "bad", 1, "7", "hats")+"]")
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	base := openBolt(t, path)
	if err := base.Commit(context.Background(), &Batch{Profiles: []Record{{Key: "bad", Data: unreadableRecord}}}); err != nil {
		t.Fatal(err)
	}
	base.Close()
	store = openStore(t, path)
	t.Cleanup(func() { store.Close() })
	return dir, path, store
}

// A stored profile that does not decode neither stops the engine's start nor is
// lost: it is set aside under the viewer's id (logged and counted), shows in the
// viewer's export, survives restarts and the viewer's return, and goes with an erase.
func TestUnreadableProfileIsSetAside(t *testing.T) {
	clk := &clock{t: t0}
	dir, path, store := storeWithUnreadableProfile(t, clk)
	var logs bytes.Buffer
	e, err := New(testConfig(), Deps{Store: store, Now: clk.Now, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("the engine refused to start over one unreadable profile: %v", err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	if n := counterValue(t, e.metrics.quarantined); n != 1 {
		t.Errorf("quarantined profiles counted %v, want 1", n)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "viewer=bad") {
		t.Errorf("no error logged for the unreadable profile:\n%s", logs.String())
	}
	if v := viewer(t, e, "good"); v.Orders != 1 {
		t.Errorf("the readable profile: %+v", v)
	}
	if _, err := e.Viewer(context.Background(), "bad"); !errors.Is(err, ErrUnknownViewer) {
		t.Errorf("the unreadable profile is served: %v", err)
	}
	checkSetAside := func(e *Engine, wantProfile bool) {
		t.Helper()
		x, err := e.Export(context.Background(), "bad")
		if err != nil {
			t.Fatal(err)
		}
		if len(x.Quarantined) != 1 || !bytes.Equal(x.Quarantined[0].Data, unreadableRecord) || !strings.HasPrefix(x.Quarantined[0].Key, "bad@") {
			t.Errorf("export's quarantined records: %+v", x.Quarantined)
		}
		if len(x.Orders) != 1 {
			t.Errorf("export's orders: %d, want the viewer's order as imported", len(x.Orders))
		}
		if hasProfile := x.View != nil && string(x.Profile) != "null"; hasProfile != wantProfile {
			t.Errorf("export has a profile: %v, want %v", hasProfile, wantProfile)
		}
		if ids, err := e.Identities(context.Background(), "bad"); err != nil || len(ids) != 1 || ids[0] != "bad" {
			t.Errorf("identities %v %v", ids, err)
		}
	}
	checkSetAside(e, false)

	// The viewer comes back: a new profile begins; the old bytes stay aside.
	x := ev(event.Danmaku, "bad", t0)
	e.Apply(x)
	if v := viewer(t, e, "bad"); v.Comments != 1 || v.Orders != 0 {
		t.Errorf("the returning viewer's new profile: %+v", v)
	}
	checkSetAside(e, true)

	// A restart loads the new profile and sets nothing more aside.
	logs.Reset()
	e2, _ := restart(t, e, store, path, clk)
	if n := counterValue(t, e2.metrics.quarantined); n != 0 {
		t.Errorf("after a restart %v more set aside", n)
	}
	checkSetAside(e2, true)

	// The erase takes the bytes set aside too, from every file.
	if err := e2.Erase(context.Background(), "bad"); err != nil {
		t.Fatal(err)
	}
	if _, err := e2.Export(context.Background(), "bad"); !errors.Is(err, ErrUnknownViewer) {
		t.Errorf("export after the erase: %v", err)
	}
	assertNoFileHolds(t, dir, "QUARANTINE-MARKER")
}

// A viewer known only by a profile set aside (not back since) can be erased by its
// id (its export is checked in TestUnreadableProfileIsSetAside).
func TestSetAsideProfileErasedWithoutItsViewerBack(t *testing.T) {
	clk := &clock{t: t0}
	dir, _, store := storeWithUnreadableProfile(t, clk)
	e := newEngine(t, store, clk)
	if err := e.Erase(context.Background(), "bad"); err != nil {
		t.Fatalf("erase of a viewer known only by a record set aside: %v", err)
	}
	if _, err := e.Identities(context.Background(), "bad"); !errors.Is(err, ErrUnknownViewer) {
		t.Errorf("identities after the erase: %v", err)
	}
	if err := e.Erase(context.Background(), "nobody"); !errors.Is(err, ErrUnknownViewer) {
		t.Errorf("erase of an unknown id: %v", err)
	}
	if v := viewer(t, e, "good"); v.Orders != 1 {
		t.Errorf("the other viewer: %+v", v)
	}
	assertNoFileHolds(t, dir, "QUARANTINE-MARKER")
}

// A profile set aside stays aside across restarts, once: the next load does not find
// it among the profiles again.
func TestSetAsideProfileStaysAsideAcrossRestarts(t *testing.T) {
	clk := &clock{t: t0}
	_, path, store := storeWithUnreadableProfile(t, clk)
	e := newEngine(t, store, clk)
	for range 2 {
		e, store = restart(t, e, store, path, clk)
		if n := counterValue(t, e.metrics.quarantined); n != 0 {
			t.Errorf("a restart set %v more aside", n)
		}
		x, err := e.Export(context.Background(), "bad")
		if err != nil || len(x.Quarantined) != 1 {
			t.Fatalf("export after a restart: %+v, %v", x.Quarantined, err)
		}
	}
}

// A profile stored under an e-mail key in capitals (before e-mail keys were kept in
// lower case) is set aside under the key as lookups write it: found, exported and
// erased by the address in any case.
func TestSetAsideProfileOfAMixedCaseEmailKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "segment.db")
	base := openBolt(t, path)
	if err := base.Commit(context.Background(), &Batch{Profiles: []Record{{Key: "email:Bob@X.com", Data: unreadableRecord}}}); err != nil {
		t.Fatal(err)
	}
	base.Close()
	store := openStore(t, path)
	t.Cleanup(func() { store.Close() })
	e := newEngine(t, store, &clock{t: t0})
	for _, id := range []string{"email:Bob@X.com", "email:bob@x.com"} {
		x, err := e.Export(context.Background(), id)
		if err != nil || len(x.Quarantined) != 1 || !bytes.Equal(x.Quarantined[0].Data, unreadableRecord) {
			t.Errorf("export by %s: %+v, %v", id, x.Quarantined, err)
		}
	}
	if err := e.Erase(context.Background(), "email:BOB@x.com"); err != nil {
		t.Fatal(err)
	}
	assertNoFileHolds(t, dir, "QUARANTINE-MARKER")
}

// refusingStore takes no write.
type refusingStore struct{ *MemoryStore }

func (refusingStore) Commit(context.Context, *Batch) error { return errors.New("disk full") }

// When the store cannot take the record set aside, the engine does not start:
// starting would drop it.
func TestUnreadableProfileNotSetAsideStopsTheStart(t *testing.T) {
	m := NewMemoryStore()
	if err := m.Commit(context.Background(), &Batch{Profiles: []Record{{Key: "bad", Data: unreadableRecord}}}); err != nil {
		t.Fatal(err)
	}
	_, err := New(testConfig(), Deps{Store: refusingStore{m}, Now: (&clock{t: t0}).Now, Log: quiet})
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), `"bad"`) {
		t.Fatalf("start over a store that refuses the record set aside: %v", err)
	}
	if len(m.profiles["bad"]) == 0 {
		t.Error("the unreadable record is gone")
	}
}

// A stored product that does not decode is skipped with an error logged: the engine
// starts with the rest of the catalog.
func TestUnreadableProductIsSkipped(t *testing.T) {
	m := NewMemoryStore()
	good, _ := json.Marshal(Product{Category: "shoes", Price: MoneyFromFloat(10)})
	if err := m.Commit(context.Background(), &Batch{Products: []Record{{Key: "bad-sku", Data: []byte("{not json")}, {Key: "good-sku", Data: good}}}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	e, err := New(testConfig(), Deps{Store: m, Now: (&clock{t: t0}).Now, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("the engine refused to start over one unreadable product: %v", err)
	}
	defer e.Close(context.Background())
	if got := e.catalog.category("good-sku"); got != "shoes" {
		t.Errorf("the readable product's category: %q", got)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "sku=bad-sku") {
		t.Errorf("no error logged for the unreadable product:\n%s", logs.String())
	}
}
