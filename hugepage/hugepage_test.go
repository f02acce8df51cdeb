package hugepage

import (
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

func TestHeapMappings(t *testing.T) {
	unnamed := `00400000-004ab000 r-xp 00000000 fe:00 10084361 /usr/bin/liveroom
00599000-005cf000 rw-p 00000000 00:00 0
3ffa74000000-3ffa74c00000 ---p 00000000 00:00 0
3ffa74c00000-3ffa87c00000 rw-p 00000000 00:00 0
7f24a93df000-7f24a9bdf000 rw-p 00000000 00:00 0
7f24b1400000-7f24b1600000 rw-p 00000000 00:00 0
7f24b1800000-7f24b1c00000 rw-s 00000000 00:05 77 /dev/shm/x
7f24b2000000-7f24b2400000 rw-p 00000000 fe:00 88 /var/lib/data.db
7ffcc3800000-7ffcc3c00000 rw-p 00000000 00:00 0 [stack]
`
	got := heapMappings([]byte(unnamed))
	if len(got) != 1 || got[0].start != 0x3ffa74c00000 || got[0].end != 0x3ffa87c00000 {
		t.Errorf("unnamed maps: got %+v, want only the 4 MiB-aligned anonymous rw-p mapping", got)
	}

	named := `3ffa74c00000-3ffa87c00000 rw-p 00000000 00:00 0 [anon: Go: heap]
3ffa88000000-3ffa88400000 rw-p 00000000 00:00 0 [anon: Go: heap]
7f24b1400000-7f24b3400000 rw-p 00000000 00:00 0
7f24b3400000-7f24b3401000 rw-p 00000000 00:00 0 [anon: Go: heap]
`
	got = heapMappings([]byte(named))
	if len(got) != 3 || got[0].start != 0x3ffa74c00000 || got[1].start != 0x3ffa88000000 || got[2].start != 0x7f24b3400000 {
		t.Errorf("named maps: got %+v, want the three named heap mappings and not the unnamed one", got)
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
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range heapMappings(b) {
			if m.end <= m.start || m.perms != "rw-p" || m.inode != "0" {
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
		if len(heapMappings(maps)) != 1 {
			b.Fatal("no heap")
		}
	}
}
