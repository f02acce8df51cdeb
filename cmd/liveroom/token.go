package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/liveroom/liveroom/app"
	"github.com/liveroom/liveroom/config"
	"github.com/liveroom/liveroom/token"
)

// tokenCmd prints a signed token with the secret the server would use: --secret,
// LIVEROOM_SECRET, or the one kept in --data.
func tokenCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("liveroom token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	spec := token.Spec{TTL: 24 * time.Hour}
	fs.StringVar(&spec.Role, "role", "", "host, viewer, agent or admin (required)")
	fs.StringVar(&spec.Room, "room", "", "room id, or * for every room (required)")
	fs.StringVar(&spec.User, "user", "", "user id, the token's sub (required)")
	fs.StringVar(&spec.Name, "name", "", "display name")
	fs.DurationVar(&spec.TTL, "ttl", spec.TTL, "lifetime")
	var secret, data, file string
	fs.StringVar(&secret, "secret", "", "signing secret (default: as the server finds it: --config file, LIVEROOM_SECRET, else the one kept in --data)")
	fs.StringVar(&data, "data", "", "data folder holding the generated secret (default: as the server finds it, ./data)")
	fs.StringVar(&file, "config", "", "the server's YAML config file, to find its secret and data folder (also LIVEROOM_CONFIG)")
	if code := parseFlags(fs, args, stdout, "Usage: liveroom token --role ROLE --room ROOM --user ID [--name N] [--ttl 24h]\n\nPrint a signed token.\n"); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		// The flags after it were not parsed (a name with a space, an unquoted --room *
		// the shell expanded): refused rather than a token unlike the one asked for.
		fmt.Fprintf(stderr, "liveroom token: unexpected argument %q (quote a value with spaces, and --room '*')\n", fs.Arg(0))
		return 2
	}
	if err := spec.Validate(); err != nil {
		fmt.Fprintln(stderr, "liveroom token:", err)
		return 2
	}
	// The same secret the server would use: its config file and environment, then flags.
	var args2 []string
	if file != "" {
		args2 = []string{"--config", file}
	}
	cfg, err := config.Load(args2, os.LookupEnv, io.Discard)
	if err != nil {
		fmt.Fprintln(stderr, "liveroom token:", err)
		return 2
	}
	if secret == "" {
		secret = cfg.Secret
	}
	if data == "" {
		data = cfg.Data
	}
	s, _, err := app.LoadSecret(secret, data)
	if err != nil {
		fmt.Fprintln(stderr, "liveroom token:", err)
		return 1
	}
	signer, err := token.NewSigner(s)
	if err != nil {
		fmt.Fprintln(stderr, "liveroom token: secret:", err)
		return 2
	}
	raw, err := signer.Issue(spec)
	if err != nil {
		fmt.Fprintln(stderr, "liveroom token:", err)
		return 2
	}
	fmt.Fprintln(stdout, raw)
	return 0
}
