package segment

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"unsafe"
)

// journalFile is one journal file and, for Seen and Held, the ids and owned records it
// holds (they are read from the bbolt file once it is folded).
type journalFile struct {
	path string
	f    *os.File // nil once sealed
	w    *bufio.Writer
	size int64

	scratch []byte // the record being written
	err     error  // a record that could not be written; the batch's sync returns it

	ids   map[Kind]map[string]struct{}
	owned map[string][]ownedRecord // by owner
}

type ownedRecord struct {
	kind Kind
	rec  Record
}

// openFile starts journal file seq and makes its name durable.
func (s *JournalStore) openFile(seq uint64) error {
	path := s.path + journalSuffix + strconv.FormatUint(seq, 10)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("segment journal: %w", err)
	}
	j := &journalFile{path: path, f: f, w: bufioWriter(f),
		ids: map[Kind]map[string]struct{}{}, owned: map[string][]ownedRecord{}}
	if _, err := j.w.WriteString(journalMagic); err == nil {
		err = j.sync()
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("segment journal %s: %w", path, err)
	}
	j.size = int64(len(journalMagic))
	s.journaled.Add(j.size)
	s.seq = seq
	s.mu.Lock()
	s.files = append(s.files, j)
	s.mu.Unlock()
	return nil
}

// bufioWriter buffers a journal file's writes: a write-through of many profiles is a
// few large writes.
func bufioWriter(w io.Writer) *bufio.Writer { return bufio.NewWriterSize(w, 1<<20) }

func (j *journalFile) sync() error {
	if err := j.err; err != nil {
		j.err = nil
		return err
	}
	if err := j.w.Flush(); err != nil {
		return err
	}
	return j.f.Sync()
}

// open returns the file being written, nil after Close.
func (s *JournalStore) open() *journalFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.files) == 0 || s.files[len(s.files)-1].f == nil {
		return nil
	}
	return s.files[len(s.files)-1]
}

// writable returns the file to write, opening one if opening the last failed.
func (s *JournalStore) writable() (*journalFile, error) {
	if s.closed {
		return nil, errStoreClosed
	}
	if j := s.open(); j != nil {
		return j, nil
	}
	if err := s.openFile(s.seq + 1); err != nil {
		return nil, err
	}
	return s.open(), nil
}

// seal closes the open file for writing (it is folded from then on) and opens the
// next one. When that fails, the next Commit tries again.
func (s *JournalStore) seal() error {
	if j := s.open(); j != nil {
		err := j.f.Close()
		s.mu.Lock()
		j.f, j.w = nil, nil
		s.mu.Unlock()
		if err != nil {
			s.log.Warn("segment journal: closing a sealed file", "file", j.path, "err", err)
		}
	}
	return s.openFile(s.seq + 1)
}

// remember keeps what Seen and Held must find in b until the file is folded (the
// batch's bytes are the caller's again once Commit returns).
func (j *journalFile) remember(b *Batch) {
	for k, rs := range b.Owned {
		ids := j.ids[k]
		if ids == nil {
			ids = map[string]struct{}{}
			j.ids[k] = ids
		}
		for _, r := range rs {
			ids[r.Key] = struct{}{}
			j.owned[r.Owner] = append(j.owned[r.Owner], ownedRecord{k, Record{Key: r.Key, Owner: r.Owner, Data: bytes.Clone(r.Data)}})
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// The journal file: journalMagic, then records, each
//
//	u32 payload length | u32 CRC-32C of the payload | payload
//
// (little-endian). A payload is an op byte and its fields, strings and bytes each a
// uvarint length then the bytes:
//
//	opDeleted id | opProfile id data | opProduct sku data | opOwned kind id owner data
//	opCommit uvarint(records of the batch)
//
// A batch is its records then a commit record; replay keeps whole batches only.
const journalMagic = "liveroom segment journal 1\n"

const (
	opDeleted byte = 1 + iota
	opProfile
	opProduct
	opOwned
	opCommit
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// append writes b as one batch (its errors come out at the sync after it).
func (j *journalFile) append(b *Batch) {
	n := 0
	for _, id := range b.DeletedProfiles {
		j.record(j.payload(opDeleted).str(id))
		n++
	}
	for _, r := range b.Profiles {
		j.record(j.payload(opProfile).str(r.Key).bytes(r.Data))
		n++
	}
	for _, r := range b.Products {
		j.record(j.payload(opProduct).str(r.Key).bytes(r.Data))
		n++
	}
	for k, rs := range b.Owned {
		for _, r := range rs {
			j.record(j.payload(opOwned).str(string(k)).str(r.Key).str(r.Owner).bytes(r.Data))
			n++
		}
	}
	j.record(j.payload(opCommit).uint(uint64(n)))
}

// payload is one record's payload, built in the file's scratch buffer.
type payload []byte

func (j *journalFile) payload(op byte) payload { return append(payload(j.scratch[:0]), op) }

func (p payload) uint(v uint64) payload { return binary.AppendUvarint(p, v) }

func (p payload) str(v string) payload { return append(p.uint(uint64(len(v))), v...) }

func (p payload) bytes(v []byte) payload { return append(p.uint(uint64(len(v))), v...) }

// record writes one record. Write errors stay in the bufio.Writer and come out at the
// batch's sync.
func (j *journalFile) record(p payload) {
	if uint64(len(p)) > math.MaxUint32 {
		j.err = fmt.Errorf("a record of %d bytes: more than a journal record holds", len(p))
		return
	}
	var hdr [8]byte
	binary.LittleEndian.PutUint32(hdr[0:], uint32(len(p)))
	binary.LittleEndian.PutUint32(hdr[4:], crc32.Checksum(p, castagnoli))
	j.w.Write(hdr[:])
	j.w.Write(p)
	j.size += int64(len(hdr) + len(p))
	j.scratch = p[:0] // keep the buffer as it grew
}

// readJournal calls batch for each whole batch in data, a journal file's bytes (the
// batches' keys and data are views into data, so they live only as long as data is
// mapped; the batch's lists are reused for the next one once batch returns, so it must
// copy what it keeps of them). It returns how far the whole batches reach, and why it
// stopped before the end: a crash leaves a torn batch last.
func readJournal(data []byte, batch func(*Batch)) (good int, err error) {
	if !bytes.HasPrefix(data, []byte(journalMagic)) {
		return 0, errors.New("not a liveroom segment journal (wrong first line)")
	}
	off := len(journalMagic)
	good = off
	var b Batch
	n := 0
	for off < len(data) {
		if len(data)-off < 8 {
			return good, fmt.Errorf("record header at %d cut short", off)
		}
		size := int(binary.LittleEndian.Uint32(data[off:]))
		sum := binary.LittleEndian.Uint32(data[off+4:])
		if size == 0 || size > len(data)-off-8 {
			return good, fmt.Errorf("record at %d: length %d beyond the file", off, size)
		}
		p := data[off+8 : off+8+size]
		if crc32.Checksum(p, castagnoli) != sum {
			return good, fmt.Errorf("record at %d: checksum mismatch", off)
		}
		r := reader{b: p[1:]}
		switch p[0] {
		case opDeleted:
			b.DeletedProfiles = append(b.DeletedProfiles, r.str())
		case opProfile:
			b.Profiles = append(b.Profiles, Record{Key: r.str(), Data: r.bytes()})
		case opProduct:
			b.Products = append(b.Products, Record{Key: r.str(), Data: r.bytes()})
		case opOwned:
			k := Kind(r.str())
			b.own(k, Record{Key: r.str(), Owner: r.str(), Data: r.bytes()})
		case opCommit:
			if count := r.uint(); r.err == nil && count != uint64(n) {
				return good, fmt.Errorf("commit at %d: %d records, the batch has %d", off, count, n)
			}
		default:
			return good, fmt.Errorf("record at %d: unknown op %d", off, p[0])
		}
		if r.err == nil && len(r.b) > 0 {
			r.err = errors.New("bytes left over")
		}
		if r.err != nil {
			return good, fmt.Errorf("record at %d: %w", off, r.err)
		}
		off += 8 + size
		if p[0] != opCommit {
			n++
			continue
		}
		batch(&b)
		b, n, good = b.emptied(), 0, off
	}
	if n > 0 {
		return good, fmt.Errorf("the last batch (%d records) has no commit record", n)
	}
	return good, nil
}

// emptied is b's lists emptied for the next batch read (Owned starts anew): a fold
// reads files of hundreds of batches, and each list grown anew was about half of a
// fold's garbage (BenchmarkFold/fold-batches).
func (b Batch) emptied() Batch {
	clear(b.Profiles)
	clear(b.DeletedProfiles)
	clear(b.Products)
	return Batch{Profiles: b.Profiles[:0], DeletedProfiles: b.DeletedProfiles[:0], Products: b.Products[:0]}
}

// reader takes a payload's fields apart; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, l := binary.Uvarint(r.b)
	if l <= 0 {
		r.err = errors.New("bad length")
		return 0
	}
	r.b = r.b[l:]
	return v
}

func (r *reader) bytes() []byte {
	l := r.uint()
	if r.err != nil {
		return nil
	}
	if l > uint64(len(r.b)) {
		r.err = errors.New("field beyond the record")
		return nil
	}
	v := r.b[:l:l]
	r.b = r.b[l:]
	return v
}

// str is a view of the next field, not a copy: a fold reads hundreds of thousands of
// keys from a mapped file, and bbolt copies each key it keeps.
func (r *reader) str() string {
	b := r.bytes()
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// mapFile maps a journal file to fold it: its pages are the page cache's, not the
// heap's, so folding a large journal does not grow the process by its size.
func mapFile(path string) (data []byte, unmap func() error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.Size() == 0 {
		return nil, func() error { return nil }, nil
	}
	data, err = syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return syscall.Munmap(data) }, nil
}
