// Command liveroom is the live-commerce streaming server: media relay, room chat and
// live fan segmentation in one binary. See README.md and docs/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/liveroom/liveroom/app"
	"github.com/liveroom/liveroom/config"
)

const usage = `liveroom: a self-hosted live-commerce streaming server.

Usage:
  liveroom [serve] [flags]       run the server (the default; see 'liveroom serve --help')
  liveroom token [flags]         print a signed access token (see 'liveroom token --help')
  liveroom import [flags] FILE   import a shop's history of orders and events (see
                                 'liveroom import --help')
  liveroom bench chat|media|segment|rules|backup [flags]
                                 load generators that print their figures
  liveroom version               print the version

With no flags the server runs on the embedded default: no Redis, data in ./data, a
development secret generated there, and links to open printed at start-up.
Every flag also reads LIVEROOM_<FLAG> (dashes become underscores) and --config FILE.
`

// commands are further sub-commands registered by their own files (e.g. import).
var commands = map[string]func(args []string, stdout, stderr io.Writer) int{}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a sub-command and returns the process exit status:
// 0 success, 1 runtime failure, 2 bad usage or configuration.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stdout, stderr)
	case "token":
		return tokenCmd(args, stdout, stderr)
	case "bench":
		return bench(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "liveroom", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	if c, ok := commands[cmd]; ok {
		return c(args, stdout, stderr)
	}
	fmt.Fprintf(stderr, "liveroom: unknown command %q\n\n%s", cmd, usage)
	return 2
}

func serve(args []string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(args, os.LookupEnv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		d := config.Default()
		fmt.Fprint(stdout, usage+"\nFlags of 'liveroom serve' (each also settable in the environment and in --config FILE):\n")
		config.Usage(stdout, d.FlagSet("serve", io.Discard))
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "liveroom:", err)
		return 2
	}
	log := app.NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	a, err := app.New(cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "liveroom:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go forceOnSecondSignal(ctx, stderr)
	if err := a.Run(ctx, stdout); err != nil {
		fmt.Fprintln(stderr, "liveroom:", err)
		return 1
	}
	return 0
}

// forceOnSecondSignal exits at once when a second SIGINT/SIGTERM arrives during the drain.
func forceOnSecondSignal(ctx context.Context, stderr io.Writer) {
	<-ctx.Done()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	<-ch
	fmt.Fprintln(stderr, "liveroom: second signal, exiting without finishing the drain")
	os.Exit(1)
}
