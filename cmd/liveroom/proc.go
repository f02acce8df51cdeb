package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// Figures of a local server process for the load generators (--pid).

// procCPU is the user+system CPU-seconds of pid (0 when pid is 0 or unreadable).
func procCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// procRSS is pid's resident set size in bytes.
func procRSS(pid int) int64 { return procStatus(pid, "VmRSS") }

// procStatus is the figure of field (a memory figure in kB, such as "VmRSS" or
// "RssAnon") in pid's /proc status, in bytes; 0 when pid is 0 or unreadable.
func procStatus(pid int, field string) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
