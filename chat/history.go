package chat

import (
	"encoding/json"
	"time"
)

// entry is one room event kept for resume, already encoded.
type entry struct {
	seq     uint64
	at      time.Time
	typ     string
	raw     []byte
	deleted bool
	user    string // who the event is from ("" for the room's own)
	about   string // whom a notice names
}

// history is a room's recent events in seq order. It keeps at least keep events and,
// beyond that, events younger than age, never more than max.
type history struct {
	items []entry
	head  int // items[head:] are live; the prefix is reclaimed in batches
	keep  int
	max   int
	age   time.Duration
}

func (h *history) add(e entry) {
	h.items = append(h.items, e)
	h.trim(e.at)
}

func (h *history) len() int { return len(h.items) - h.head }

// trim drops what is both beyond keep and older than age, or beyond max.
func (h *history) trim(now time.Time) {
	for h.len() > h.max || (h.len() > h.keep && now.Sub(h.items[h.head].at) > h.age) {
		h.items[h.head] = entry{}
		h.head++
	}
	if h.head > 1024 && h.head > len(h.items)/2 {
		h.items = append([]entry(nil), h.items[h.head:]...)
		h.head = 0
	}
}

// fresh reports whether an event younger than age is held: its room stays loaded
// while it is, so that a client can resume within age of the room's last event.
func (h *history) fresh(now time.Time) bool {
	return h.len() > 0 && now.Sub(h.items[len(h.items)-1].at) <= h.age
}

// oldest is the first seq still held, or 0 when empty.
func (h *history) oldest() uint64 {
	if h.len() == 0 {
		return 0
	}
	return h.items[h.head].seq
}

// find returns the entry with seq, if held.
func (h *history) find(seq uint64) *entry {
	live := h.items[h.head:]
	lo, hi := 0, len(live)
	for lo < hi {
		mid := (lo + hi) / 2
		if live[mid].seq < seq {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(live) && live[lo].seq == seq {
		return &live[lo]
	}
	return nil
}

// after returns every event with since < seq ≤ upTo, in order.
func (h *history) after(since, upTo uint64) [][]byte {
	var out [][]byte
	for _, e := range h.items[h.head:] {
		if e.seq > since && e.seq <= upTo {
			out = append(out, e.raw)
		}
	}
	return out
}

// recent returns up to n displayable events with seq ≤ upTo (no likes, nothing deleted).
func (h *history) recent(n int, upTo uint64) []json.RawMessage {
	var out []json.RawMessage
	for i := len(h.items) - 1; i >= h.head && len(out) < n; i-- {
		e := h.items[i]
		if e.seq > upTo || e.deleted || e.typ == evLikes {
			continue
		}
		out = append(out, e.raw)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
