// Package backup copies a running node's stores into one tar archive. Each store
// copies its own files into a temporary folder under --data, consistent as of the
// moment it copies them, while the node goes on; the archive is then written from
// that folder, whatever time the reader takes, with no store held meanwhile.
package backup

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A Source copies one store's files into dir under the names they have in --data.
type Source func(ctx context.Context, dir string) error

// A Snapshot is the copies of every store, ready to be written as a tar archive.
type Snapshot struct {
	dir   string
	files []file
	taken time.Time
}

type file struct {
	name string
	size int64
}

// folderPrefix names the temporary folders under --data (RemoveLeftovers).
const folderPrefix = ".backup-"

// Take runs every source into a new temporary folder under data. The snapshot must
// be closed (which removes the folder).
func Take(ctx context.Context, data string, sources ...Source) (*Snapshot, error) {
	dir, err := os.MkdirTemp(data, folderPrefix)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	s := &Snapshot{dir: dir, taken: time.Now().UTC()}
	for _, source := range sources {
		if err := source(ctx, dir); err != nil {
			s.Close()
			return nil, fmt.Errorf("backup: %w", err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("backup: %w", err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("backup: %w", err)
		}
		if !info.Mode().IsRegular() {
			s.Close()
			return nil, fmt.Errorf("backup: %s is not a regular file", e.Name())
		}
		s.files = append(s.files, file{e.Name(), info.Size()})
	}
	return s, nil
}

// Taken is when the snapshot was begun.
func (s *Snapshot) Taken() time.Time { return s.taken }

// Names lists the files in the snapshot, in the archive's order.
func (s *Snapshot) Names() []string {
	names := make([]string, len(s.files))
	for i, f := range s.files {
		names[i] = f.name
	}
	return names
}

// Size is the length of the archive WriteTo writes: a header block per file, its
// data rounded up to whole blocks, and two zero blocks at the end.
func (s *Snapshot) Size() int64 {
	n := int64(2 * blockSize)
	for _, f := range s.files {
		n += blockSize + (f.size+blockSize-1)/blockSize*blockSize
	}
	return n
}

const blockSize = 512

// WriteTo writes the archive: every file under its name in --data, mode 0600.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &counter{w: w}
	tw := tar.NewWriter(cw)
	for _, f := range s.files {
		if err := tw.WriteHeader(s.header(f)); err != nil {
			return cw.n, err
		}
		if err := copyFile(tw, filepath.Join(s.dir, f.name)); err != nil {
			return cw.n, err
		}
	}
	err := tw.Close()
	return cw.n, err
}

// header is f's tar header: one block, as Size counts, whatever f's size. The GNU
// format writes sizes of 8 GiB and more in binary (USTAR cannot hold them; PAX would
// add blocks).
func (s *Snapshot) header(f file) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Size: f.size, Mode: 0o600, ModTime: s.taken, Format: tar.FormatGNU}
}

func copyFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// Close removes the snapshot's folder.
func (s *Snapshot) Close() error { return os.RemoveAll(s.dir) }

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// RemoveLeftovers removes the temporary folders a node stopped during a backup left
// under data.
func RemoveLeftovers(data string) error {
	entries, err := os.ReadDir(data)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), folderPrefix) {
			errs = append(errs, os.RemoveAll(filepath.Join(data, e.Name())))
		}
	}
	return errors.Join(errs...)
}

// CopyFile is a Source for a file that is replaced whole when it changes (written
// to a temporary name and renamed): name under data, copied if it exists.
func CopyFile(data, name string) Source {
	return func(_ context.Context, dir string) error {
		in, err := os.Open(filepath.Join(data, name))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		defer in.Close()
		return WriteFile(filepath.Join(dir, name), in)
	}
}

// WriteFile writes what r reads into a new file at path.
func WriteFile(path string, r io.Reader) error {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
