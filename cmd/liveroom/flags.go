package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// parseFlags parses a sub-command's flags; --help prints usage and the flags to stdout.
// It returns the exit status to stop with (0 after help, 2 on a bad flag), or -1 to go on.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer, usage string) int {
	fs.Usage = func() {
		fmt.Fprint(stdout, usage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	return -1
}
