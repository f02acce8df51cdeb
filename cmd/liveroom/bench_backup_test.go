package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liveroom/liveroom/app"
	"github.com/liveroom/liveroom/chat"
	"github.com/liveroom/liveroom/segment"
)

func TestBenchBackup(t *testing.T) {
	data := t.TempDir()
	seg, err := segment.OpenJournal(filepath.Join(data, app.SegmentFile), time.Second, segment.JournalLimit, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &segment.Batch{Profiles: []segment.Record{{Key: "ann", Data: []byte(`{"id":"ann"}`)}}}
	if err := seg.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	ch, err := chat.OpenBolt(filepath.Join(data, app.ChatDB))
	if err != nil {
		t.Fatal(err)
	}
	ch.Close()

	var out, errb bytes.Buffer
	if code := benchBackup([]string{"--data", data}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "GET /api/backup") {
		t.Errorf("a held store: exit %d, %s", code, errb.String())
	}
	seg.Close()
	out.Reset()
	errb.Reset()
	if code := benchBackup([]string{"--data", data, "--rounds", "2"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if s := out.String(); !strings.Contains(s, "round 2:") || !strings.Contains(s, "MB/s") {
		t.Errorf("output: %s", s)
	}
	if left, _ := filepath.Glob(filepath.Join(data, ".backup-*")); len(left) > 0 {
		t.Errorf("left: %v", left)
	}
	for _, args := range [][]string{{}, {"--data", t.TempDir()}, {"--data", data, "--rounds", "0"}} {
		if code := benchBackup(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d", args, code)
		}
	}
}
