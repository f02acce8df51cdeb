package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestBenchRules(t *testing.T) {
	var out, errb bytes.Buffer
	if code := benchRules([]string{"--viewers", "200", "--threshold", "1s", "--rounds", "2", "--store", "bolt"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "p99") || !strings.Contains(out.String(), "200 prompts") ||
		!strings.Contains(out.String(), "all 2 rounds") || !strings.Contains(out.String(), "(400 prompts)") {
		t.Fatalf("output: %s", out.String())
	}
	if code := benchRules([]string{"--store", "redis"}, &out, &errb); code != 2 {
		t.Fatalf("bad store: exit %d", code)
	}
}
