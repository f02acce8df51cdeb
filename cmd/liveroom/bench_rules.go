package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/liveroom/liveroom/rules"
)

func init() { benchers["rules"] = benchRules }

// benchRules arms many viewers' stay timers at once and prints the delay from each
// threshold to its prompt, on the memory state or the embedded bbolt state.
func benchRules(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("liveroom bench rules", flag.ContinueOnError)
	fs.SetOutput(stderr)
	viewers := fs.Int("viewers", 10_000, "stay timers armed at once")
	threshold := fs.Duration("threshold", 2*time.Second, "the stay threshold")
	store := fs.String("store", "bolt", "rules state: memory or bolt (write-behind, the default)")
	rounds := fs.Int("rounds", 3, "rounds to run")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *viewers < 1 || *threshold < time.Second || (*store != "memory" && *store != "bolt") || *rounds < 1 {
		fmt.Fprintln(stderr, "liveroom bench rules: --viewers ≥ 1, --threshold ≥ 1s, --store memory|bolt, --rounds ≥ 1")
		return 2
	}
	cfg := rules.DefaultConfig()
	fmt.Fprintf(stdout, "rules stay delay: %d viewers, threshold %s, store %s\n", *viewers, *threshold, *store)
	for r := range *rounds {
		var st rules.State = rules.NewMemoryState()
		dir := ""
		if *store == "bolt" {
			var err error
			if dir, err = os.MkdirTemp("", "liveroom-bench-rules"); err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			bs, err := rules.OpenBolt(filepath.Join(dir, "rules.db"), cfg.FlushEvery)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			st = bs
		}
		start := time.Now()
		d, err := rules.MeasureStay(context.Background(), cfg, st, *viewers, *threshold)
		if c, ok := st.(io.Closer); ok {
			c.Close()
		}
		if dir != "" {
			os.RemoveAll(dir)
		}
		if err != nil {
			fmt.Fprintln(stderr, "liveroom bench rules:", err)
			return 1
		}
		fmt.Fprintf(stdout, "round %d: threshold→prompt first %v p50 %v p99 %v max %v (%d prompts in %v)\n", r+1,
			d[0].Round(time.Millisecond), d[len(d)/2].Round(time.Millisecond), d[len(d)*99/100].Round(time.Millisecond),
			d[len(d)-1].Round(time.Millisecond), len(d), time.Since(start).Round(time.Millisecond))
	}
	return 0
}
