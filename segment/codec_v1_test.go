package segment

func (e *enc) counts(v []Count) {
	e.u(uint64(len(v)))
	for _, c := range v {
		e.s(c.Cat())
		e.u(uint64(c.N))
	}
}

// appendProfileV1 is the first binary format's encoder, kept to make the records that
// stores written before format 2 hold, which must still decode.
func appendProfileV1(dst []byte, p *Profile) []byte {
	e := &enc{b: dst}
	e.u(1)
	e.s(p.ID)
	e.s(p.Name)
	e.ss(p.Aliases())
	for _, v := range []int64{p.FirstSeen, p.LastSeen, p.LastVisit, p.WatchMs, int64(p.GiftValue), int64(p.Spend), p.FirstOrder, p.SecondOrder, p.LastOrder} {
		e.i(v)
	}
	for _, v := range []uint32{p.Sessions, p.Comments, p.Likes, p.Gifts, p.Interactions, p.Orders} {
		e.u(uint64(v))
	}
	e.counts(p.Clicks.get())
	e.counts(p.Bought())
	e.ss(p.OrderIDs())
	e.u(uint64(len(p.Days.get())))
	for _, d := range p.Days.get() {
		e.i(int64(d.Day))
		e.u(uint64(d.Sessions))
		e.u(uint64(d.Orders))
		e.u(uint64(d.Interactions))
		e.u(uint64(d.WatchSec))
		e.i(int64(d.Spend))
	}
	e.u(uint64(len(p.Cats.get())))
	for _, c := range p.Cats.get() {
		e.i(int64(c.Day()))
		e.s(c.Cat())
		e.u(uint64(c.N()))
	}
	e.u(uint64(len(p.Lives.get())))
	for _, l := range p.Lives.get() {
		e.s(l.Live())
		e.s(l.Room())
		e.i(l.Start)
		e.i(l.WatchMs())
	}
	e.ss(p.Rooms.get())
	e.u(uint64(len(p.Open.get())))
	for _, s := range p.Open.get() {
		e.s(s.Live())
		e.s(s.Room())
		e.i(s.Start)
		e.i(s.Last)
		e.i(int64(s.Refs))
	}
	e.u(uint64(len(p.Recent.get())))
	for _, r := range p.Recent.get() {
		e.i(r.At())
		e.s(string(r.Type()))
		e.s(r.Detail())
	}
	e.u(uint64(p.Consent)) // 0 (none), 1 (yes), 2 (no)
	e.s(p.Tags.Activity.String())
	e.s(p.Tags.Value.String())
	e.s(p.Tags.Lifecycle.String())
	e.ss(p.Tags.Preference.get())
	for _, v := range p.Tags.Since {
		e.i(v)
	}
	e.u(uint64(p.RFM.R))
	e.u(uint64(p.RFM.F))
	e.u(uint64(p.RFM.M))
	e.s(p.RFM.Segment.String())
	if at := p.consentAt(); at != 0 {
		// Last, and only when known: the format's first records end before it. A field
		// added after it must write it (0) first, or an old record would be misread.
		e.i(at)
	}
	return e.b
}
