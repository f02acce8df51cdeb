package segment

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A backup taken while commits and folds go on holds every commit acknowledged
// before it began, whether folded into the bbolt file, in a sealed journal file or
// in the open one, once the copy is opened as a store. The test seals files itself
// and nudges the folder now and then, so that backups find files of each kind.
func TestJournalBackupDuringCommitsAndFolds(t *testing.T) {
	s, _ := tempStore(t)
	ctx := context.Background()
	var mu sync.Mutex
	acked := map[string]int{} // key → the last version acknowledged
	events := 0               // events e0… acknowledged
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		pad := strings.Repeat("x", 2<<10)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			key := fmt.Sprint("p", i%300)
			b := &Batch{Profiles: profiles(key, strconv.Itoa(i)+" "+pad)}
			b.own(KindEvent, Record{Key: fmt.Sprint("e", i), Owner: key, Data: []byte("event")})
			if err := s.Commit(ctx, b); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			acked[key], events = i, i+1
			mu.Unlock()
			if i%25 == 24 { // sealed, and left for the folder until its next nudge
				s.write.Lock()
				if err := s.seal(); err != nil {
					t.Error(err)
				}
				s.write.Unlock()
			}
			if i%100 == 99 {
				s.nudge()
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()
	withSealed := 0
	for n := range 8 {
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		before, eventsBefore := maps.Clone(acked), events
		mu.Unlock()
		dir := filepath.Join(t.TempDir(), strconv.Itoa(n))
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := s.Backup(ctx, dir); err != nil {
			t.Fatal(err)
		}
		if len(journalFiles(t, filepath.Join(dir, "segment.db"))) > 1 {
			withSealed++
		}
		c, err := OpenJournal(filepath.Join(dir, "segment.db"), time.Second, JournalLimit, quiet)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := stored(t, c)
		for key, v := range before {
			version, _, _ := strings.Cut(got[key], " ")
			if ver, err := strconv.Atoi(version); err != nil || ver < v {
				t.Errorf("backup %d: %s is %.20q, acknowledged at version %d before", n, key, got[key], v)
			}
		}
		ids := make([]string, eventsBefore)
		for i := range ids {
			ids[i] = fmt.Sprint("e", i)
		}
		seen, err := c.Seen(ctx, KindEvent, ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != len(ids) {
			t.Errorf("backup %d: %d of %d acknowledged events seen", n, len(seen), len(ids))
		}
		c.Close()
	}
	if withSealed == 0 {
		t.Error("no backup found a sealed journal file not yet folded: nothing tested that")
	}
}

// An engine's backup writes through what it holds first: an event applied a moment
// before is in the copy.
func TestEngineBackupWritesThroughFirst(t *testing.T) {
	s, _ := tempStore(t)
	e := manualEngine(t, s, &clock{t: t0})
	likeOf(e, "ann")
	dir := t.TempDir()
	if err := e.Backup(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	c := openStore(t, filepath.Join(dir, "segment.db"))
	defer c.Close()
	got, _ := stored(t, c)
	if _, ok := got["ann"]; !ok {
		t.Fatalf("the copy holds %d profiles, not ann's", len(got))
	}
}

func TestBackupOfAClosedOrMemoryStore(t *testing.T) {
	s, _ := tempStore(t)
	s.Close()
	if err := s.Backup(context.Background(), t.TempDir()); !errors.Is(err, errStoreClosed) {
		t.Errorf("closed store: %v", err)
	}
	e := manualEngine(t, NewMemoryStore(), &clock{t: t0})
	if err := e.Backup(context.Background(), t.TempDir()); !errors.Is(err, ErrNoBackup) {
		t.Errorf("memory store: %v", err)
	}
}
