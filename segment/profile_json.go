package segment

import (
	"encoding/json"

	"github.com/liveroom/liveroom/event"
)

// liveSessionJSON, spanJSON and recentJSON are the stored and exported forms, with
// the names spelled out.
type liveSessionJSON struct {
	Live    string `json:"live"`
	Room    string `json:"room,omitempty"`
	Start   int64  `json:"start"`
	WatchMs int64  `json:"watch_ms"`
}

type recentJSON struct {
	At     int64      `json:"at"`
	Type   event.Type `json:"type"`
	Detail string     `json:"detail,omitempty"`
}

type spanJSON struct {
	Live    string `json:"live,omitempty"`
	Room    string `json:"room,omitempty"`
	Start   int64  `json:"start"`
	Last    int64  `json:"last"`
	Refs    int16  `json:"refs"`
	Players int16  `json:"players,omitempty"`
}

func (l LiveSession) MarshalJSON() ([]byte, error) {
	return json.Marshal(liveSessionJSON{Live: l.Live(), Room: l.Room(), Start: l.Start, WatchMs: l.WatchMs()})
}

func (l *LiveSession) UnmarshalJSON(b []byte) error {
	return decodeAs(b, func(v liveSessionJSON) {
		*l = liveSession(placeOf(v.Live, v.Room), v.Start, v.WatchMs)
	})
}

func (r Recent) MarshalJSON() ([]byte, error) {
	return json.Marshal(recentJSON{At: r.At(), Type: r.Type(), Detail: r.Detail()})
}

func (r *Recent) UnmarshalJSON(b []byte) error {
	return decodeAs(b, func(v recentJSON) { *r = newRecent(v.At, typeCode(v.Type), v.Detail) })
}

func (s Span) MarshalJSON() ([]byte, error) {
	return json.Marshal(spanJSON{Live: s.Live(), Room: s.Room(), Start: s.Start, Last: s.Last, Refs: s.Refs, Players: s.Players})
}

func (s *Span) UnmarshalJSON(b []byte) error {
	return decodeAs(b, func(v spanJSON) {
		*s = Span{at: placeOf(v.Live, v.Room), Start: v.Start, Last: v.Last, Refs: v.Refs, Players: v.Players}
	})
}

// decodeAs reads b as the JSON form W and hands it to set.
func decodeAs[W any](b []byte, set func(W)) error {
	var v W
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	set(v)
	return nil
}

// profileFields is Profile without its methods, for encoding/json.
type profileFields Profile

// profileJSON is a profile's JSON form (records stored before the binary format, and
// the export): its fields with the buyer's lists beside them.
type profileJSON struct {
	*profileFields
	Aliases   []string `json:"aliases,omitempty"`
	Bought    []Count  `json:"bought,omitempty"`
	OrderIDs  []string `json:"order_ids,omitempty"`
	ConsentAt int64    `json:"consent_at,omitempty"`
}

// MarshalJSON writes p's JSON form. A value receiver: a Profile marshalled by value
// (a copy, a list of them) keeps its buyer's lists too.
func (p Profile) MarshalJSON() ([]byte, error) {
	return json.Marshal(profileJSON{profileFields: (*profileFields)(&p), Aliases: p.Aliases(), Bought: p.Bought(), OrderIDs: p.OrderIDs(),
		ConsentAt: p.consentAt()})
}

// UnmarshalJSON reads p's JSON form (records stored before the binary format).
func (p *Profile) UnmarshalJSON(b []byte) error {
	v := profileJSON{profileFields: (*profileFields)(p)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	p.setBuyer(buyerFacts{Aliases: packedOf(v.Aliases), Bought: packedOf(v.Bought), OrderIDs: idListOf(v.OrderIDs), ConsentAt: v.ConsentAt})
	return nil
}

// countJSON and catDayJSON are the stored and exported forms, the category named.
type countJSON struct {
	Cat string `json:"c"`
	N   uint32 `json:"n"`
}

type catDayJSON struct {
	Cat string `json:"c"`
	Day int32  `json:"d"`
	N   uint32 `json:"n"`
}

func (c Count) MarshalJSON() ([]byte, error) { return json.Marshal(countJSON{Cat: c.Cat(), N: c.N}) }

func (c *Count) UnmarshalJSON(b []byte) error {
	return decodeAs(b, func(v countJSON) { *c = newCount(v.Cat, v.N) })
}

func (c CatDay) MarshalJSON() ([]byte, error) {
	return json.Marshal(catDayJSON{Cat: c.Cat(), Day: c.Day(), N: c.N()})
}

func (c *CatDay) UnmarshalJSON(b []byte) error {
	return decodeAs(b, func(v catDayJSON) { *c = catDay(v.Day, categoryOf(v.Cat), v.N) })
}
