package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/liveroom/liveroom/app"
	"github.com/liveroom/liveroom/config"
	"github.com/liveroom/liveroom/hugepage"
	"github.com/liveroom/liveroom/segment"
)

func init() { commands["import"] = importCmd }

const importUsage = `Usage: liveroom import [flags] FILE

Import generic events (a shop's order history, watch or chat history) from FILE, one
event per line as JSON (.jsonl, .ndjson, .json) or CSV with a header row (.csv); "-"
reads standard input (give --format). Items have the fields of POST /api/events; an
id already imported is skipped, so re-running an import is safe.

With --url the events are posted to a running server's /api/events (an admin --token
is required). Without it they are written straight into the embedded store in --data,
which only works while no server holds that folder.

Flags:
`

// batchPoster sends one chunk of items somewhere and returns the result for it.
type batchPoster func(ctx context.Context, items []segment.Item) (segment.ImportResult, error)

// chunkReader is the JSON-lines or CSV reader.
type chunkReader interface {
	Next(n int) ([]segment.Item, []segment.ItemError, error)
}

func importCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("liveroom import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "auto", "jsonl, csv, or auto (by the file's extension)")
	batch := fs.Int("batch", 1000, "events per request or transaction (1 to 10000)")
	url := fs.String("url", "", "base URL of a running server, e.g. http://127.0.0.1:8080 (else write --data directly)")
	// Not the flag's default: usage prints defaults, and this one is an admin token.
	tok := fs.String("token", "", "admin token for --url (default: the LIVEROOM_TOKEN environment variable)")
	cfgFile := fs.String("config", "", "YAML config (currency and rates) for direct import")
	data := fs.String("data", "", "data folder for direct import (default: the config's, ./data)")
	if code := parseFlags(fs, args, stdout, importUsage); code >= 0 {
		return code
	}
	if fs.NArg() != 1 || *batch < 1 || *batch > segment.MaxBatch {
		fmt.Fprintln(stderr, "liveroom import: give one FILE (and --batch from 1 to 10000); see --help")
		return 2
	}
	if *tok == "" {
		*tok = os.Getenv("LIVEROOM_TOKEN")
	}
	file := fs.Arg(0)
	in := io.Reader(os.Stdin)
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			fmt.Fprintln(stderr, "liveroom import:", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	rd, err := openReader(in, file, *format)
	if err != nil {
		fmt.Fprintln(stderr, "liveroom import:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var post batchPoster
	if *url != "" {
		if *tok == "" {
			fmt.Fprintln(stderr, "liveroom import: --url needs an admin --token (or LIVEROOM_TOKEN)")
			return 2
		}
		post = httpPoster(strings.TrimRight(*url, "/"), *tok)
	} else {
		eng, closeAll, code := directEngine(*cfgFile, *data, stderr)
		if eng == nil {
			return code
		}
		defer func() {
			eng.Sweep() // store the tags as of now, RFM over the whole history
			if err := closeAll(); err != nil {
				fmt.Fprintln(stderr, "liveroom import: closing the store:", err)
			}
		}()
		post = func(ctx context.Context, items []segment.Item) (segment.ImportResult, error) {
			return eng.Import(ctx, items, nil)
		}
	}
	return runImport(ctx, rd, post, *batch, stderr)
}

// openReader picks the reader by --format or the file's extension.
func openReader(in io.Reader, name, format string) (chunkReader, error) {
	if format == "auto" {
		switch strings.ToLower(filepath.Ext(name)) {
		case ".csv":
			format = "csv"
		case ".jsonl", ".ndjson", ".json":
			format = "jsonl"
		default:
			return nil, fmt.Errorf("cannot tell the format of %q: give --format jsonl or csv", name)
		}
	}
	switch format {
	case "csv":
		return segment.NewCSVReader(in, time.Now())
	case "jsonl":
		return segment.NewLineReader(in, time.Now()), nil
	}
	return nil, fmt.Errorf("--format %q: must be jsonl, csv or auto", format)
}

// directEngine opens the embedded store of --data with the configured currency rates.
func directEngine(cfgFile, data string, stderr io.Writer) (*segment.Engine, func() error, int) {
	var args []string
	if cfgFile != "" {
		args = append(args, "--config", cfgFile)
	}
	if data != "" {
		args = append(args, "--data", data)
	}
	cfg, err := config.Load(args, os.LookupEnv, io.Discard)
	if err != nil {
		fmt.Fprintln(stderr, "liveroom import:", err)
		return nil, nil, 2
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		fmt.Fprintln(stderr, "liveroom import:", err)
		return nil, nil, 1
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := segment.OpenJournal(filepath.Join(cfg.Data, app.SegmentFile), time.Second, int64(cfg.Segment.JournalMiB)<<20, log)
	if errors.Is(err, segment.ErrLocked) {
		fmt.Fprintf(stderr, "liveroom import: a running server holds %s; import through it with --url and --token\n", cfg.Data)
		return nil, nil, 1
	}
	if err != nil {
		fmt.Fprintln(stderr, "liveroom import:", err)
		return nil, nil, 1
	}
	eng, err := segment.New(cfg.Segment, segment.Deps{Store: store, Log: log})
	if err != nil {
		store.Close()
		fmt.Fprintln(stderr, "liveroom import:", err)
		return nil, nil, 1
	}
	// As the server does (--huge-pages): a shop's history applies events to random
	// profiles, which miss the TLB less in huge pages.
	var huge *hugepage.Watcher
	if cfg.HugePages {
		if huge, err = hugepage.Start(hugepage.Interval); err != nil {
			fmt.Fprintln(stderr, "liveroom import: huge pages off:", err)
		} else {
			fmt.Fprintln(stderr, "liveroom import: huge pages on")
		}
	}
	return eng, func() error {
		if huge != nil {
			huge.Stop()
		}
		return errors.Join(eng.Close(context.Background()), store.Close())
	}, 0
}

// requestLimit is the largest request body httpPoster sends: the server's default
// --body-limit (1 MiB). Large orders make a chunk of --batch items larger than that.
const requestLimit = 1 << 20

// httpPoster posts a chunk as the contract's JSON array, in as many requests as keep
// each body within requestLimit; a server with a lower limit answers 413, and the
// request is then sent again in halves (down to one item). Re-sending is safe: the
// import is idempotent by event id.
func httpPoster(base, tok string) batchPoster {
	client := &http.Client{Timeout: 2 * time.Minute}
	var post batchPoster
	post = func(ctx context.Context, items []segment.Item) (segment.ImportResult, error) {
		var total segment.ImportResult
		for len(items) > 0 {
			n, size := 1, 2+len(items[0].Raw)
			for n < len(items) && size+1+len(items[n].Raw) <= requestLimit {
				size += 1 + len(items[n].Raw)
				n++
			}
			res, err := postOnce(ctx, client, base, tok, items[:n])
			if errors.Is(err, errTooLarge) && n > 1 {
				res, err = post(ctx, items[:n/2])
				if err == nil {
					var rest segment.ImportResult
					rest, err = post(ctx, items[n/2:n])
					res = addResults(res, rest)
				}
			}
			total = addResults(total, res)
			if err != nil {
				return total, err
			}
			items = items[n:]
		}
		return total, nil
	}
	return post
}

func addResults(a, b segment.ImportResult) segment.ImportResult {
	a.Accepted += b.Accepted
	a.Duplicates += b.Duplicates
	a.Errors = append(a.Errors, b.Errors...)
	return a
}

// errTooLarge is a 413 answer: the server takes smaller requests.
var errTooLarge = errors.New("request too large")

// postOnce posts items as one request; the answer's indexes are positions in items and
// are mapped back to the file's.
func postOnce(ctx context.Context, client *http.Client, base, tok string, items []segment.Item) (segment.ImportResult, error) {
	var body bytes.Buffer
	body.WriteByte('[')
	for i, it := range items {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(it.Raw)
	}
	body.WriteByte(']')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/events", &body)
	if err != nil {
		return segment.ImportResult{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		return segment.ImportResult{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode == http.StatusRequestEntityTooLarge {
		return segment.ImportResult{}, fmt.Errorf("%w: %s: %s", errTooLarge, resp.Status, strings.TrimSpace(string(b)))
	}
	if resp.StatusCode != http.StatusOK {
		return segment.ImportResult{}, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var res segment.ImportResult
	if err := json.Unmarshal(b, &res); err != nil {
		return segment.ImportResult{}, fmt.Errorf("unexpected answer: %w", err)
	}
	for i := range res.Errors {
		if k := res.Errors[i].Index; k >= 0 && k < len(items) {
			res.Errors[i].Index = items[k].Index
		}
	}
	return res, nil
}

// maxShownErrors is how many refused items are printed one by one.
const maxShownErrors = 20

// runImport reads chunks, sends them, and keeps a progress line on stderr. It returns
// 0 when every item was accepted, 1 when some were refused or sending failed.
func runImport(ctx context.Context, rd chunkReader, post batchPoster, batch int, stderr io.Writer) int {
	start := time.Now()
	var read, accepted, dups, refused int
	report := func(errs []segment.ItemError) {
		for _, e := range errs {
			refused++
			if refused <= maxShownErrors {
				fmt.Fprintf(stderr, "\r\033[Kitem %d: %s\n", e.Index, e.Error)
			}
		}
	}
	progress := func(end string) {
		rate := float64(accepted) / max(time.Since(start).Seconds(), 1e-3)
		fmt.Fprintf(stderr, "\r\033[Kread %d, accepted %d (%d already imported), refused %d — %.0f events/s%s", read, accepted, dups, refused, rate, end)
	}
	for ctx.Err() == nil {
		items, errs, err := rd.Next(batch)
		if errors.Is(err, io.EOF) {
			break
		}
		read += len(items) + len(errs)
		report(errs)
		if len(items) > 0 {
			res, perr := post(ctx, items)
			accepted += res.Accepted // of the requests answered before a failure too
			dups += res.Duplicates
			report(res.Errors)
			if perr != nil {
				progress("\n")
				fmt.Fprintln(stderr, "liveroom import: stopped:", perr, "(everything counted as accepted above is stored; re-run to continue)")
				return 1
			}
		}
		progress("")
		if err != nil {
			fmt.Fprintln(stderr, "\nliveroom import: reading:", err)
			return 1
		}
	}
	progress("\n")
	if refused > maxShownErrors {
		fmt.Fprintf(stderr, "(%d more refused items not shown)\n", refused-maxShownErrors)
	}
	if ctx.Err() != nil || refused > 0 {
		return 1
	}
	return 0
}
