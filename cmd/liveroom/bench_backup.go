package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/liveroom/liveroom/app"
	"github.com/liveroom/liveroom/backup"
	"github.com/liveroom/liveroom/chat"
	"github.com/liveroom/liveroom/rules"
	"github.com/liveroom/liveroom/segment"
)

func init() { benchers["backup"] = benchBackup }

// benchBackup copies the stores of a stopped node's --data as GET /api/backup does on
// a running one, and prints how long the copy and the archive took.
func benchBackup(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("liveroom bench backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: liveroom bench backup --data DIR [--rounds N]

Copies the stores under DIR (a stopped node's --data, or one that
"liveroom bench segment --data DIR" filled) into a folder beside them, as
GET /api/backup does on a running node, writes the archive to nowhere, and prints
the time and speed of each. Opening the segment store folds its journal into
segment.db first, as a node's start does.`)
		fs.PrintDefaults()
	}
	data := fs.String("data", "", "the data folder (required)")
	rounds := fs.Int("rounds", 3, "backups to take")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *data == "" || *rounds < 1 {
		fmt.Fprintln(stderr, "liveroom bench backup: --data DIR is required, --rounds ≥ 1")
		return 2
	}
	if _, err := os.Stat(filepath.Join(*data, app.SegmentFile)); err != nil {
		fmt.Fprintf(stderr, "liveroom bench backup: no segment store in %s: %v\n", *data, err)
		return 2
	}
	sources, closeAll, err := openForBackup(*data)
	defer closeAll()
	if err != nil {
		fmt.Fprintln(stderr, "liveroom bench backup:", err)
		return 1
	}
	ctx := context.Background()
	for r := range *rounds {
		start := time.Now()
		snap, err := backup.Take(ctx, *data, sources...)
		if err != nil {
			fmt.Fprintln(stderr, "liveroom bench backup:", err)
			return 1
		}
		copied := time.Since(start)
		start = time.Now()
		n, err := snap.WriteTo(io.Discard)
		written := time.Since(start)
		snap.Close()
		if err != nil {
			fmt.Fprintln(stderr, "liveroom bench backup:", err)
			return 1
		}
		mb := float64(n) / 1e6
		fmt.Fprintf(stdout, "round %d: %d files, %.1f MB; copied in %v (%.0f MB/s), archive read out in %v (%.0f MB/s)\n",
			r+1, len(snap.Names()), mb, copied.Round(time.Millisecond), mb/copied.Seconds(),
			written.Round(time.Millisecond), mb/written.Seconds())
	}
	return 0
}

// openForBackup opens the stores found under data, as a node would, and returns
// what copies them; the closer closes what was opened.
func openForBackup(data string) ([]backup.Source, func(), error) {
	var closers []io.Closer
	closeAll := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	seg, err := segment.OpenJournal(filepath.Join(data, app.SegmentFile), time.Second, segment.JournalLimit, nil)
	if errors.Is(err, segment.ErrLocked) {
		return nil, closeAll, fmt.Errorf("a running node holds %s: back it up with GET /api/backup", data)
	}
	if err != nil {
		return nil, closeAll, err
	}
	closers = append(closers, seg)
	sources := []backup.Source{seg.Backup}
	if exists(filepath.Join(data, app.ChatDB)) {
		st, err := chat.OpenBolt(filepath.Join(data, app.ChatDB))
		if err != nil {
			return nil, closeAll, err
		}
		closers = append(closers, st)
		sources = append(sources, st.Backup)
	}
	if exists(filepath.Join(data, app.RulesDB)) {
		st, err := rules.OpenBolt(filepath.Join(data, app.RulesDB), 0)
		if err != nil {
			return nil, closeAll, err
		}
		closers = append(closers, st)
		sources = append(sources, st.Backup)
	}
	return append(sources, backup.CopyFile(data, app.RulesFile), backup.CopyFile(data, app.TrendFile)), closeAll, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
