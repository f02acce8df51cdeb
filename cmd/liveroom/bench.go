package main

import (
	"fmt"
	"io"
)

// benchers maps `liveroom bench NAME` to its load generator; each lives in its own file.
var benchers = map[string]func(args []string, stdout, stderr io.Writer) int{}

func bench(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: liveroom bench chat|media|segment|rules|backup [flags] (each takes --help)")
		return 2
	}
	b, ok := benchers[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "liveroom bench: %q is not available in this build (have: %v)\n", args[0], benchNames())
		return 2
	}
	return b(args[1:], stdout, stderr)
}

func benchNames() []string {
	var names []string
	for n := range benchers {
		names = append(names, n)
	}
	return names
}
