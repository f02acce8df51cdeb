package segment

import (
	"encoding/json"
	"unsafe"
)

// packed is a slice in 16 bytes instead of 24: its length and capacity in 32 bits
// each. A profile holds eight lists, and 8 bytes less for each took it from its
// 384-byte size class to 320: 64 bytes less for every profile (a million profiles
// took 1.01 GiB of heap spans at the bench's steady state before). get gives the
// slice back; packedOf packs one.
type packed[T any] struct {
	p    *T
	n, c uint32
}

// packedOf packs s; nil stays nil, and empty but not nil stays so.
func packedOf[T any](s []T) packed[T] {
	return packed[T]{unsafe.SliceData(s), uint32(len(s)), uint32(cap(s))}
}

// get is the slice l packs.
func (l packed[T]) get() []T {
	if l.p == nil {
		return nil
	}
	return unsafe.Slice(l.p, l.c)[:l.n]
}

// loose is get for the warming stages, which read l without the shard's lock
// (warm.go): a header read half old and half new gives a wrong list, which they only
// take addresses from, never a panic. Not checked by -race's checkptr, which stops the
// process on a list that runs past its array (a new array's address with an old
// one's capacity).
//
//go:nocheckptr
func (l packed[T]) loose() []T {
	if l.p == nil {
		return nil
	}
	return unsafe.Slice(l.p, min(l.n, l.c))
}

// IsZero says whether l is empty, for the JSON forms' omitzero (as omitempty omits an
// empty slice).
func (l packed[T]) IsZero() bool { return l.n == 0 }

// MarshalJSON writes l as its slice.
func (l packed[T]) MarshalJSON() ([]byte, error) { return json.Marshal(l.get()) }

// UnmarshalJSON reads a slice into l.
func (l *packed[T]) UnmarshalJSON(b []byte) error {
	var s []T
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*l = packedOf(s)
	return nil
}
