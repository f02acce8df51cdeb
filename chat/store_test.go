package chat

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/liveroom/liveroom/event"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestStores runs the same contract against every Store.
func TestStores(t *testing.T) {
	stores := map[string]func(t *testing.T) Store{
		"memory": func(*testing.T) Store { return NewMemoryStore() },
		"bolt": func(t *testing.T) Store {
			s, err := OpenBolt(filepath.Join(t.TempDir(), "chat.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) { storeContract(t, open(t)) })
	}
}

func storeContract(t *testing.T, s Store) {
	ctx := context.Background()
	rec, err := s.LoadRoom(ctx, "r")
	if err != nil || rec.Likes != 0 || rec.Pin != nil || rec.SeqCeiling != 0 || len(rec.Sanctions) != 0 {
		t.Fatalf("new room = %+v, %v", rec, err)
	}
	want := RoomRecord{Likes: 42, Pin: &Product{SKU: "S", Title: "T", Price: 9.5}, SeqCeiling: 2000}
	if err := s.SaveRoom(ctx, "r", want); err != nil {
		t.Fatal(err)
	}
	until := mustTime("2030-01-01T00:00:00Z")
	for _, sn := range []Sanction{{User: "a", Kind: SanctionMute, Until: until}, {User: "b", Kind: SanctionBan}, {User: "a", Kind: SanctionBan}} {
		if err := s.SetSanction(ctx, "r", sn); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetSanction(ctx, "r", Sanction{User: "a", Kind: SanctionBan, Lift: true}); err != nil {
		t.Fatal(err)
	}
	rec, err = s.LoadRoom(ctx, "r")
	if err != nil || rec.Likes != 42 || rec.Pin.SKU != "S" || rec.SeqCeiling != 2000 || len(rec.Sanctions) != 2 {
		t.Fatalf("room = %+v, %v", rec, err)
	}
	for _, sn := range rec.Sanctions {
		if (sn.User == "a" && (sn.Kind != SanctionMute || !sn.Until.Equal(until))) || (sn.User == "b" && sn.Kind != SanctionBan) {
			t.Fatalf("sanction %+v", sn)
		}
	}
	for i := range 105 {
		d := DM{ID: string(rune('A' + i%26)), Viewer: "v", Text: "m", At: until.Add(time.Duration(i))}
		if err := s.AppendDMs(ctx, []RoomDM{{"r", d}}, 100); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := s.DMs(ctx, "r", "v")
	if err != nil || len(msgs) != 100 || !msgs[0].At.Equal(until.Add(5)) || !msgs[99].At.Equal(until.Add(104)) {
		t.Fatalf("%d messages, first %v: %v", len(msgs), msgs[0].At, err)
	}
	if other, _ := s.DMs(ctx, "r", "w"); len(other) != 0 {
		t.Fatal("another conversation is not empty")
	}
	// Viewer v in a second room, and viewer w (whose id ends like v's) in room r.
	for _, c := range []struct{ room, viewer string }{{"r2", "v"}, {"r", "xv"}} {
		if err := s.AppendDMs(ctx, []RoomDM{{c.room, DM{ID: "x", Viewer: c.viewer, Text: "hi", At: until}}}, 100); err != nil {
			t.Fatal(err)
		}
	}
	// The room's conversations whose viewer wrote since a time: v's (its last message
	// an agent's, its name from its own), not xv's (only an agent wrote), nor r2's.
	agent := event.User{ID: "ag", Name: "Agent", Role: event.RoleAgent}
	for _, d := range []DM{
		{ID: "y", Viewer: "v", From: event.User{ID: "v", Name: "Vee", Role: event.RoleViewer}, Text: "mine", At: until.Add(time.Hour)},
		{ID: "z", Viewer: "v", From: agent, To: "v", Text: "yours", At: until.Add(2 * time.Hour)},
	} {
		if err := s.AppendDMs(ctx, []RoomDM{{"r", d}}, 100); err != nil {
			t.Fatal(err)
		}
	}
	convs, err := s.Conversations(ctx, "r", until)
	if err != nil || len(convs) != 1 || convs[0].Viewer != "v" || convs[0].Name != "Vee" || convs[0].Text != "yours" || convs[0].From != agent || !convs[0].viewerAt.Equal(until.Add(time.Hour)) {
		t.Fatalf("conversations of r: %+v, %v", convs, err)
	}
	if convs, _ := s.Conversations(ctx, "r", until.Add(90*time.Minute)); len(convs) != 0 {
		t.Fatalf("conversations whose viewer wrote before the window: %+v", convs)
	}
	held, err := s.ViewerDMs(ctx, "v")
	if err != nil || len(held) != 2 || len(held["r"]) != 100 || len(held["r2"]) != 1 {
		t.Fatalf("v's conversations: %d rooms (%v)", len(held), err)
	}
	if err := s.EraseViewer(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if held, _ = s.ViewerDMs(ctx, "v"); len(held) != 0 {
		t.Fatalf("after erasing v: %d conversations", len(held))
	}
	if kept, _ := s.DMs(ctx, "r", "xv"); len(kept) != 1 {
		t.Fatalf("another viewer's conversation: %d messages", len(kept))
	}
}

// slowStore holds every DM write until release is closed.
type slowStore struct {
	*MemoryStore
	release chan struct{}
}

func (s slowStore) AppendDMs(ctx context.Context, dms []RoomDM, keep int) error {
	<-s.release
	return s.MemoryStore.AppendDMs(ctx, dms, keep)
}

// TestEraseAfterQueuedDMs: a viewer's DMs still waiting to be written when it is
// erased are not written after the erasure.
func TestEraseAfterQueuedDMs(t *testing.T) {
	store := slowStore{NewMemoryStore(), make(chan struct{})}
	h, err := New(DefaultConfig(), Deps{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	h.persistDM("r", DM{ID: "1", Viewer: "v", Text: "hello"})
	h.persistDM("r", DM{ID: "2", Viewer: "guest-of-v", Text: "hi"})
	h.persistDM("r", DM{ID: "3", Viewer: "other", Text: "hey"})
	erased := make(chan error, 1)
	go func() { erased <- h.EraseViewer(context.Background(), "v", "guest-of-v") }()
	close(store.release)
	if err := <-erased; err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"v", "guest-of-v"} {
		if held, _ := store.ViewerDMs(context.Background(), v); len(held) != 0 {
			t.Fatalf("a queued DM of %s was written after the erasure: %v", v, held)
		}
	}
	if held, _ := store.ViewerDMs(context.Background(), "other"); len(held) != 1 {
		t.Fatalf("another viewer's DMs: %v", held)
	}
}

// failingRooms fails every SaveRoom while fail is set (a full disk, a lost Redis).
type failingRooms struct {
	*MemoryStore
	fail atomic.Bool
}

func (s *failingRooms) SaveRoom(ctx context.Context, room string, rec RoomRecord) error {
	if s.fail.Load() {
		return errors.New("disk full")
	}
	return s.MemoryStore.SaveRoom(ctx, room, rec)
}

// TestSeqCeilingSavedOnceTheStoreRecovers: the block of seqs a room's first message
// reserves is saved before it is handed out; when that save fails, it is saved again
// once the store takes writes (it was not: only a like or a gift retried, and a
// restart then handed out the same seqs again).
func TestSeqCeilingSavedOnceTheStoreRecovers(t *testing.T) {
	st := &failingRooms{MemoryStore: NewMemoryStore()}
	st.fail.Store(true)
	rs := startTCPHubWith(t, DefaultConfig(), 0, st)
	ws := rs.dial(t, "r", "v1", 0)
	if err := ws.WriteJSON(map[string]any{"type": "danmaku", "text": "hello"}); err != nil {
		t.Fatal(err)
	}
	var seq uint64
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for seq == 0 {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var evs []struct {
			Type string `json:"type"`
			Seq  uint64 `json:"seq"`
		}
		if len(b) > 0 && b[0] != '[' { // one event, or a batch of them
			b = append(append([]byte{'['}, b...), ']')
		}
		if err := json.Unmarshal(b, &evs); err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Type == "danmaku" {
				seq = ev.Seq
			}
		}
	}
	st.fail.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec, err := st.LoadRoom(context.Background(), "r")
		if err == nil && rec.SeqCeiling >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored seq ceiling %d, below the seq %d handed out, 10 s after the store recovered", rec.SeqCeiling, seq)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// burstStore holds the first DM write until release, and counts the writes.
type burstStore struct {
	*MemoryStore
	release chan struct{}
	writes  atomic.Int32
}

func (s *burstStore) AppendDMs(ctx context.Context, dms []RoomDM, keep int) error {
	if s.writes.Add(1) == 1 {
		<-s.release
	}
	return s.MemoryStore.AppendDMs(ctx, dms, keep)
}

// TestDMBurstWrittenTogether: the DMs queued while a write is under way go to the
// store in one write (one fsync on bbolt), in order, not one write each.
func TestDMBurstWrittenTogether(t *testing.T) {
	store := &burstStore{MemoryStore: NewMemoryStore(), release: make(chan struct{})}
	h, err := New(DefaultConfig(), Deps{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	const n = 3 * DMKeep // each conversation full, none trimmed
	for i := range n {
		h.persistDM("r", DM{ID: strconv.Itoa(i), Viewer: "v" + strconv.Itoa(i%3), Text: "hi"})
	}
	close(store.release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		held := 0
		for v := range 3 {
			got, _ := store.DMs(context.Background(), "r", "v"+strconv.Itoa(v))
			for j, d := range got {
				if want := strconv.Itoa(v + 3*j); d.ID != want {
					t.Fatalf("v%d's message %d is %s, want %s", v, j, d.ID, want)
				}
			}
			held += len(got)
		}
		if held == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d DMs written", held, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if w := store.writes.Load(); w > 3 {
		t.Errorf("%d writes for a burst of %d queued DMs, want the first and one or two more", w, n)
	}
}

// BenchmarkBoltAppendDMs is the DM history's write per message, one message per write
// (a quiet room) and 64 (a burst, as writeDMs batches a queue).
func BenchmarkBoltAppendDMs(b *testing.B) {
	for _, per := range []int{1, 64} {
		b.Run(strconv.Itoa(per), func(b *testing.B) {
			s, err := OpenBolt(filepath.Join(b.TempDir(), "chat.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			batch := make([]RoomDM, per)
			n := 0
			for b.Loop() {
				for i := range batch {
					n++
					batch[i] = RoomDM{"r", DM{ID: strconv.Itoa(n), Viewer: "v" + strconv.Itoa(n%500), Text: "hello, is this in stock?", At: time.Now()}}
				}
				if err := s.AppendDMs(context.Background(), batch, DMKeep); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/dm")
		})
	}
}
