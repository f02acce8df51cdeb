package main

import (
	"os"
	"testing"
)

func TestParseBitrate(t *testing.T) {
	for in, want := range map[string]int{"2500k": 2500000, "4M": 4000000, "800000": 800000} {
		if got, err := parseBitrate(in); err != nil || got != want {
			t.Errorf("%s: %d %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "k", "-5k", "fast"} {
		if _, err := parseBitrate(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestProcFigures(t *testing.T) {
	if procRSS(os.Getpid()) <= 0 || procCPU(os.Getpid()) < 0 {
		t.Fatal("cannot read /proc for this process")
	}
	if _, ok := udpCounters()["RcvbufErrors"]; !ok {
		t.Fatal("no UDP RcvbufErrors in /proc/net/snmp")
	}
	if benchMedia([]string{"--viewers", "0"}, os.Stdout, os.Stderr) != 2 {
		t.Fatal("bad flags must exit 2")
	}
}
