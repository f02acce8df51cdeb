package hugepage

import (
	"slices"
	"testing"
)

func TestParseMapping(t *testing.T) {
	for _, c := range []struct {
		line string
		ok   bool
		want mapping
	}{
		{"c000000000-c004000000 rw-p 00000000 00:00 0 \n", true,
			mapping{start: 0xc000000000, end: 0xc004000000, perms: "rw-p", inode: "0"}},
		{"3ffa74c00000-3ffa87c00000 rw-p 00000000 00:00 0                          [anon: Go: heap]", true,
			mapping{start: 0x3ffa74c00000, end: 0x3ffa87c00000, perms: "rw-p", inode: "0", path: "[anon: Go: heap]"}},
		{"00400000-004ab000 r-xp 00000000 fe:00 10084361   /tmp/my file (deleted)", true,
			mapping{start: 0x400000, end: 0x4ab000, perms: "r-xp", inode: "10084361", path: "/tmp/my file (deleted)"}},
		{"7ffcc3908000-7ffcc3929000 rw-p 00000000 00:00 0 [stack]", true,
			mapping{start: 0x7ffcc3908000, end: 0x7ffcc3929000, perms: "rw-p", inode: "0", path: "[stack]"}},
		{"", false, mapping{}},
		{"c000000000 rw-p 00000000 00:00 0", false, mapping{}},            // no range
		{"c004000000-c000000000 rw-p 00000000 00:00 0", false, mapping{}}, // end before start
		{"xyz-c000000000 rw-p 00000000 00:00 0", false, mapping{}},
		{"c000000000-c004000000 rw-p 00000000 00:00", false, mapping{}}, // no inode
	} {
		got, ok := parseMapping([]byte(c.line))
		if ok != c.ok || got != c.want {
			t.Errorf("parseMapping(%q) = %+v, %v; want %+v, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

func TestCandidates(t *testing.T) {
	maps := `00400000-004ab000 r-xp 00000000 fe:00 10084361 /usr/bin/liveroom
00599000-005cf000 rw-p 00000000 00:00 0
3ffa74000000-3ffa74c00000 ---p 00000000 00:00 0
3ffa74c00000-3ffa87c00000 rw-p 00000000 00:00 0
3ffa88000000-3ffa88400000 rw-p 00000000 00:00 0 [anon: Go: heap]
7f24a93df000-7f24a9bdf000 rw-p 00000000 00:00 0
7f24a9bdf000-7f24a9de0000 rw-p 00000000 00:00 0
7f24a9e00000-7f24a9ffffff rw-p 00000000 00:00 0
7f24b1400000-7f24b1600000 r--p 00000000 00:00 0
7f24b1800000-7f24b1c00000 rw-s 00000000 00:05 77 /dev/shm/x
7f24b2000000-7f24b2400000 rw-p 00000000 fe:00 88 /var/lib/data.db
7ffcc3800000-7ffcc3c00000 rw-p 00000000 00:00 0 [stack]
`
	var got []uint64
	for _, m := range candidates([]byte(maps)) {
		got = append(got, m.start)
	}
	// Private, writable, anonymous or process-named, holding a whole aligned 2 MiB
	// region: not the small ones, not 7f24a9bdf000 (2 MiB long but unaligned), not
	// 7f24a9e00000 (one byte short), not read-only, shared, file or stack mappings.
	want := []uint64{0x3ffa74c00000, 0x3ffa88000000, 0x7f24a93df000}
	if !slices.Equal(got, want) {
		t.Errorf("candidates: %#x, want %#x", got, want)
	}
}

func TestRollupField(t *testing.T) {
	b := []byte("Rss:             1234 kB\nAnonymous:       1000 kB\nAnonHugePages:    512 kB\nBad: x kB\n")
	for _, c := range []struct {
		name string
		want uint64
	}{{"Anonymous:", 1000 << 10}, {"AnonHugePages:", 512 << 10}, {"Bad:", 0}, {"Swap:", 0}} {
		if got := rollupField(b, c.name); got != c.want {
			t.Errorf("rollupField(%q) = %d, want %d", c.name, got, c.want)
		}
	}
}

// FuzzMaps feeds arbitrary text to the maps reader: it must not panic, and what it
// picks is a well-formed, non-empty, private read-write anonymous mapping.
func FuzzMaps(f *testing.F) {
	f.Add([]byte("3ffa74c00000-3ffa87c00000 rw-p 00000000 00:00 0 [anon: Go: heap]\n"))
	f.Add([]byte("c000000000-c004000000 rw-p 00000000 00:00 0\n00400000-004ab000 r-xp 0 fe:00 1 /bin/x\n"))
	f.Add([]byte("-\n \t\n0-1 a b c d e f\n"))
	f.Add([]byte("ffffffffffe00001-ffffffffffffffff rw-p 00000000 00:00 0\n0-200000 rw-p 0 00:00 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range candidates(b) {
			if a := firstRegion(m); m.end <= m.start || m.perms != "rw-p" || m.inode != "0" ||
				a < m.start || a%hugeSize != 0 || a > m.end-hugeSize {
				t.Fatalf("picked %+v", m)
			}
		}
	})
}

func BenchmarkHeapMappings(b *testing.B) {
	maps := []byte(`00400000-004ab000 r-xp 00000000 fe:00 10084361 /usr/bin/liveroom
3ffa74c00000-3ffa87c00000 rw-p 00000000 00:00 0
7f24a93df000-7f24a9bdf000 rw-p 00000000 00:00 0
7ffcc3908000-7ffcc3929000 rw-p 00000000 00:00 0 [stack]
`)
	for b.Loop() {
		if len(candidates(maps)) != 1 {
			b.Fatal("no heap")
		}
	}
}
