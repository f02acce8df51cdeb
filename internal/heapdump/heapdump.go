// Package heapdump reads the file runtime/debug.WriteHeapDump writes and tells, for
// each object size, how many bytes live objects take and how many pages they keep in
// use. A span of small objects stays in use while any object in it lives, so a few
// long-lived objects made among short-lived ones of their size keep whole pages; the
// memory statistics show the sum of such gaps (HeapInuse less HeapAlloc), this shows
// which sizes they are in.
//
// The format is the one the Go wiki describes as heapdump15-through-heapdump17 (the
// header still reads "go1.7 heap dump"); only objects are counted, the other records
// are skipped.
package heapdump

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// PageSize is the runtime's page: every span of objects up to MaxOnePage bytes is one
// page long, so the distinct pages its objects lie in are the spans they keep.
const (
	PageSize   = 8192
	MaxOnePage = 1024
)

// Size is what the live objects of one size take.
type Size struct {
	Bytes   int64 // the object size
	Objects int64
	Live    int64 // Objects × Bytes
	// Pages is the bytes of the distinct pages the objects lie in (sizes up to
	// MaxOnePage only; 0 above), and Free what of those pages no live object takes.
	Pages, Free int64
}

const header = "go1.7 heap dump\n"

// Record kinds (the wiki's numbering).
const (
	recEOF = iota
	recObject
	recOtherRoot
	recType
	recGoroutine
	recStackFrame
	recParams
	recFinalizer
	recItab
	recOSThread
	recMemStats
	recQueuedFinalizer
	recData
	recBSS
	recDefer
	recPanic
	recMemProf
	recAllocSample
)

// Read tallies the objects of the heap dump in r, by size, smallest first.
func Read(r io.Reader) ([]Size, error) {
	d := decoder{r: bufio.NewReaderSize(r, 64<<10)}
	got := make([]byte, len(header))
	if _, err := io.ReadFull(d.r, got); err != nil || string(got) != header {
		return nil, errors.New("heapdump: not a Go heap dump (wrong header)")
	}
	pages := map[pageKey]struct{}{}
	sizes := map[uint64]*Size{}
	for {
		kind := d.uvarint()
		if d.err != nil {
			return nil, d.err
		}
		switch kind {
		case recEOF:
			return tally(sizes, pages), nil
		case recObject:
			addr := d.uvarint()
			n := d.skipString()
			d.fields()
			s := sizes[n]
			if s == nil {
				s = &Size{Bytes: int64(n)}
				sizes[n] = s
			}
			s.Objects++
			if n <= MaxOnePage {
				pages[pageKey{n, addr / PageSize}] = struct{}{}
			}
		case recOtherRoot:
			d.skipString()
			d.uvarint()
		case recType:
			d.uvarints(2)
			d.skipString()
			d.byte()
		case recGoroutine:
			d.uvarints(5)
			d.byte()
			d.byte()
			d.uvarint()
			d.skipString()
			d.uvarints(4)
		case recStackFrame:
			d.uvarints(3)
			d.skipString()
			d.uvarints(3)
			d.skipString()
			d.fields()
		case recParams:
			d.byte()
			d.uvarints(3)
			d.skipString()
			d.skipString()
			d.uvarint()
		case recFinalizer, recQueuedFinalizer:
			d.uvarints(5)
		case recItab:
			d.uvarints(2)
		case recOSThread:
			d.uvarints(3)
		case recMemStats:
			d.uvarints(24 + 256 + 1) // MemStats' fields, PauseNs, NumGC
		case recData, recBSS:
			d.uvarint()
			d.skipString()
			d.fields()
		case recDefer:
			d.uvarints(7)
		case recPanic:
			d.uvarints(6)
		case recMemProf:
			d.uvarints(2)
			for n := d.uvarint(); n > 0 && d.err == nil; n-- {
				d.skipString()
				d.skipString()
				d.uvarint()
			}
			d.uvarints(2)
		case recAllocSample:
			d.uvarints(2)
		default:
			return nil, fmt.Errorf("heapdump: unknown record kind %d", kind)
		}
	}
}

// pageKey is a page in which objects of a size lie.
type pageKey struct{ size, page uint64 }

func tally(sizes map[uint64]*Size, pages map[pageKey]struct{}) []Size {
	for k := range pages {
		sizes[k.size].Pages += PageSize
	}
	out := make([]Size, 0, len(sizes))
	for _, s := range sizes {
		s.Live = s.Objects * s.Bytes
		if s.Pages > 0 {
			s.Free = s.Pages - s.Live
		}
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Size) int { return int(a.Bytes - b.Bytes) })
	return out
}

// decoder reads the dump's varints and strings; the first error sticks.
type decoder struct {
	r   *bufio.Reader
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(d.r)
	if err != nil {
		d.err = fmt.Errorf("heapdump: %w", unexpected(err))
	}
	return v
}

func (d *decoder) uvarints(n int) {
	for range n {
		d.uvarint()
	}
}

func (d *decoder) byte() {
	if d.err == nil {
		if _, err := d.r.ReadByte(); err != nil {
			d.err = fmt.Errorf("heapdump: %w", unexpected(err))
		}
	}
}

// skipString skips a string (a length and its bytes) and returns its length.
func (d *decoder) skipString() uint64 {
	n := d.uvarint()
	if d.err == nil {
		if _, err := d.r.Discard(int(n)); err != nil {
			d.err = fmt.Errorf("heapdump: %w", unexpected(err))
		}
	}
	return n
}

// fields skips a field list: kind and offset pairs up to a kind of 0.
func (d *decoder) fields() {
	for d.err == nil && d.uvarint() != 0 {
		d.uvarint()
	}
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
