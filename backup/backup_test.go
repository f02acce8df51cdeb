package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func writeSource(name, content string) Source {
	return func(_ context.Context, dir string) error {
		return os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600)
	}
}

func folders(t *testing.T, data string) []string {
	t.Helper()
	entries, err := os.ReadDir(data)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs
}

// The archive holds every source's files as they wrote them, its length is the size
// announced before, and closing the snapshot leaves nothing under the data folder.
func TestBackupArchive(t *testing.T) {
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "rules.json"), []byte(`{"rules":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	big := string(bytes.Repeat([]byte("0123456789"), 1000)) // not a whole number of blocks
	snap, err := Take(context.Background(), data,
		writeSource("chat.db", "chat"), writeSource("segment.db", big),
		CopyFile(data, "rules.json"), CopyFile(data, "absent.json"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := snap.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != snap.Size() || int64(buf.Len()) != snap.Size() {
		t.Errorf("wrote %d (counted %d), announced %d", buf.Len(), n, snap.Size())
	}
	got := map[string]string{}
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Mode != 0o600 || hdr.Typeflag != tar.TypeReg {
			t.Errorf("%s: mode %o, type %c", hdr.Name, hdr.Mode, hdr.Typeflag)
		}
		got[hdr.Name] = string(body)
	}
	want := map[string]string{"chat.db": "chat", "segment.db": big, "rules.json": `{"rules":[]}`}
	if len(got) != len(want) {
		t.Errorf("files %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for name, body := range want {
		if got[name] != body {
			t.Errorf("%s: %d bytes, want %d", name, len(got[name]), len(body))
		}
	}
	if dirs := folders(t, data); len(dirs) != 1 {
		t.Errorf("while open, folders under data: %v", dirs)
	}
	if err := snap.Close(); err != nil {
		t.Fatal(err)
	}
	if dirs := folders(t, data); len(dirs) != 0 {
		t.Errorf("after Close, folders left under data: %v", dirs)
	}
}

// A source that fails fails the snapshot, and what the others copied is removed.
func TestBackupSourceFails(t *testing.T) {
	data := t.TempDir()
	broken := errors.New("disk full")
	_, err := Take(context.Background(), data, writeSource("chat.db", "chat"),
		func(context.Context, string) error { return broken })
	if !errors.Is(err, broken) {
		t.Fatalf("err %v", err)
	}
	if dirs := folders(t, data); len(dirs) != 0 {
		t.Errorf("folders left under data: %v", dirs)
	}
	_, err = Take(context.Background(), data, func(_ context.Context, dir string) error {
		return os.Mkdir(filepath.Join(dir, "sub"), 0o700)
	})
	if err == nil {
		t.Error("a folder in the snapshot was taken as a file")
	}
	if _, err := Take(context.Background(), filepath.Join(data, "absent")); err == nil {
		t.Error("a snapshot under a data folder that does not exist")
	}
}

// A reader that stops early gets the error, and the snapshot can still be closed.
func TestBackupShortWrite(t *testing.T) {
	snap, err := Take(context.Background(), t.TempDir(), writeSource("segment.db", "0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if _, err := snap.WriteTo(&limited{n: 100}); err == nil {
		t.Error("no error from a writer that stopped")
	}
}

type limited struct{ n int }

func (l *limited) Write(p []byte) (int, error) {
	if len(p) > l.n {
		n := l.n
		l.n = 0
		return n, io.ErrShortWrite
	}
	l.n -= len(p)
	return len(p), nil
}

func TestBackupRemoveLeftovers(t *testing.T) {
	data := t.TempDir()
	for _, d := range []string{".backup-123", ".backup-x", "acme", "backup-kept"} {
		if err := os.MkdirAll(filepath.Join(data, d, "inner"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveLeftovers(data); err != nil {
		t.Fatal(err)
	}
	if dirs := folders(t, data); !slices.Equal(dirs, []string{"acme", "backup-kept"}) {
		t.Errorf("left %v", dirs)
	}
}

// A file of 8 GiB or more still takes one header block (USTAR could not say its size).
func TestBackupHeaderOfALargeFile(t *testing.T) {
	s := &Snapshot{}
	for _, size := range []int64{0, 1, 8<<30 - 1, 8 << 30, 9<<30 + 7, 1 << 40} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(s.header(file{"segment.db", size})); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if buf.Len() != blockSize {
			t.Errorf("size %d: header of %d bytes", size, buf.Len())
		}
		hdr, err := tar.NewReader(&buf).Next()
		if err != nil || hdr.Size != size {
			t.Errorf("size %d: read back %v, %v", size, hdr, err)
		}
	}
}
