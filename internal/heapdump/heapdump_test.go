package heapdump

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
)

// dump writes the test process's heap dump and returns its bytes.
func dump(t testing.TB) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "heap.dump")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	debug.WriteHeapDump(f.Fd())
	f.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func sizeOf(sizes []Size, n int64) Size {
	for _, s := range sizes {
		if s.Bytes == n {
			return s
		}
	}
	return Size{}
}

// One object kept of every page's worth made shows as pages nearly empty: the gaps
// the package is for. 704 bytes is a size class of its own, eleven to a page.
func TestReadCountsLiveObjectsAndThePagesTheyKeep(t *testing.T) {
	const perPage = PageSize / 704
	all := make([]*[88]uint64, 22_000)
	for i := range all {
		all[i] = new([88]uint64)
	}
	var kept []*[88]uint64
	for i := 0; i < len(all); i += perPage {
		kept = append(kept, all[i])
	}
	all = nil
	runtime.GC()
	sizes, err := Read(bytes.NewReader(dump(t)))
	if err != nil {
		t.Fatal(err)
	}
	s := sizeOf(sizes, 704)
	if s.Objects < int64(len(kept)) || s.Live != s.Objects*704 || s.Free != s.Pages-s.Live {
		t.Fatalf("704-byte objects: %+v, %d kept", s, len(kept))
	}
	// Each kept object alone in its page (allocation fills a page in order).
	if s.Free < 5*s.Live {
		t.Errorf("704-byte objects: %d bytes live in %d bytes of pages, want the pages nearly empty", s.Live, s.Pages)
	}
	runtime.KeepAlive(kept)
	if big := sizeOf(sizes, 2<<20); big.Pages != 0 {
		t.Errorf("pages counted for objects beyond one page: %+v", big)
	}
}

func TestReadRefusesWhatIsNotAWholeDump(t *testing.T) {
	d := dump(t)
	for name, in := range map[string][]byte{
		"empty":        nil,
		"not a dump":   []byte("hello, this is not a heap dump at all\n"),
		"cut short":    d[:len(d)/2],
		"unknown kind": append([]byte(header), 99),
	} {
		if _, err := Read(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzRead: any bytes give a tally or an error, never a panic or a hang. The seeds
// are made by hand (a dump taken in a fuzzing worker hung it): two objects, a type
// and a root.
func FuzzRead(f *testing.F) {
	rec := func(b []byte, vs ...uint64) []byte {
		for _, v := range vs {
			b = binary.AppendUvarint(b, v)
		}
		return b
	}
	seed := []byte(header)
	seed = rec(seed, recObject, 0xc000010000, 48)
	seed = append(seed, make([]byte, 48)...)
	seed = rec(seed, 1, 0, 0) // a pointer at offset 0, then the list's end
	seed = rec(seed, recObject, 0xc000010030, 16)
	seed = append(seed, make([]byte, 16)...)
	seed = rec(seed, 0)
	seed = rec(seed, recType, 0x4000, 24, 4)
	seed = append(seed, "main"...)
	seed = append(seed, 0)
	seed = rec(seed, recOtherRoot, 4)
	seed = append(seed, "root"...)
	seed = rec(seed, 0xc000010000, recEOF)
	sizes, err := Read(bytes.NewReader(seed))
	if err != nil || len(sizes) != 2 || sizes[1].Bytes != 48 || sizes[1].Pages != PageSize {
		f.Fatalf("the seed reads as %+v, %v", sizes, err)
	}
	f.Add(seed)
	f.Add([]byte(header))
	f.Fuzz(func(t *testing.T, in []byte) {
		Read(bytes.NewReader(in))
	})
}
