package segment

import (
	"encoding/binary"
	"iter"
)

// idList holds a list of ids in one string, each after its length (a uvarint). A
// buyer's order ids are one: a string header (16 bytes) and a string (16 or more) per
// order was 32 bytes an order, 101 bytes a profile at the bench's steady state; in one
// string they are the ids' bytes and one more each.
type idList string

// idListOf packs list.
func idListOf(list []string) idList { return idList(appendPrefixed(nil, list)) }

// appendPrefixed appends each of list to dst after its length (a uvarint): an
// idList's form, and a shared list's key (internList), where no two lists share one.
func appendPrefixed(dst []byte, list []string) []byte {
	for _, s := range list {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	return dst
}

// add returns l with id after the rest (a new string: l is shared by nothing else,
// and a buyer's orders come one at a time).
func (l idList) add(id string) idList {
	var n [binary.MaxVarintLen64]byte
	return l + idList(binary.AppendUvarint(n[:0], uint64(len(id)))) + idList(id)
}

// first returns the start of l that holds its first n ids (all of l when it holds no
// more).
func (l idList) first(n int) idList {
	end := 0
	for ; n > 0 && end < len(l); n-- {
		size, k := uvarintIn(string(l[end:]))
		if k == 0 || size > uint64(len(l)-end-k) {
			break // as all stops
		}
		end += k + int(size)
	}
	return l[:end]
}

// all yields the ids in order, as views into l.
func (l idList) all() iter.Seq[string] {
	return func(yield func(string) bool) {
		for s := string(l); len(s) > 0; {
			n, k := uvarintIn(s)
			if k == 0 || n > uint64(len(s)-k) {
				return // not made by idListOf or add: nothing more to read
			}
			if !yield(s[k : k+int(n)]) {
				return
			}
			s = s[k+int(n):]
		}
	}
}

// count is how many ids l holds.
func (l idList) count() int {
	n := 0
	for range l.all() {
		n++
	}
	return n
}

// list returns the ids (views into l).
func (l idList) list() []string {
	var out []string
	for id := range l.all() {
		out = append(out, id)
	}
	return out
}

// uvarintIn reads the uvarint that s starts with, and its length in bytes (0 when s
// does not start with one).
func uvarintIn(s string) (uint64, int) {
	var x uint64
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		b := s[i]
		if b < 0x80 {
			return x | uint64(b)<<(7*i), i + 1
		}
		x |= uint64(b&0x7f) << (7 * i)
	}
	return 0, 0
}
