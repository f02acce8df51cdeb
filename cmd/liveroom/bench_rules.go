package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
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
	var all []time.Duration
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
		fmt.Fprintf(stdout, "round %d: threshold→prompt %s (%d prompts in %v)\n", r+1, delaySummary(d), len(d),
			time.Since(start).Round(time.Millisecond))
		all = append(all, d...)
	}
	if *rounds > 1 {
		slices.Sort(all)
		fmt.Fprintf(stdout, "all %d rounds: threshold→prompt %s (%d prompts)\n", *rounds, delaySummary(all), len(all))
	}
	return 0
}

// delaySummary is first/p50/p99/max of sorted delays, in milliseconds.
func delaySummary(d []time.Duration) string {
	ms := func(x time.Duration) time.Duration { return x.Round(time.Millisecond) }
	return fmt.Sprintf("first %v p50 %v p99 %v max %v", ms(d[0]), ms(d[len(d)/2]), ms(d[len(d)*99/100]), ms(d[len(d)-1]))
}
