package segment

import (
	"cmp"
	"slices"
)

// link ties viewer to the shop customer an order names (keys are customer:ID and
// email:ADDR). When the customer is already known under another profile, the viewer's
// profile (a guest's) is merged into it; else the viewer's profile becomes the
// customer's. When the keys were known under different profiles (the customer id under
// one, the e-mail under another), the order says they are one customer: the others
// are merged in too, so every key has one owner. Lookups by any of the ids then find
// the one profile.
func (e *Engine) link(viewer string, keys []string, touched map[*Profile]*shard) {
	if len(keys) == 0 {
		return
	}
	var owners []string // the profiles the keys lead to, the first key's first
	for _, k := range keys {
		// A key may be an alias, or the id of a profile of its own: a shop's order that
		// named none of our viewers was filed under its customer key.
		if c := e.ownerOf(k); c != "" && !slices.Contains(owners, c) {
			owners = append(owners, c)
		}
	}
	own := cmp.Or(e.ownerOf(viewer), viewer) // where the order itself will be applied
	if len(owners) > 0 && owners[0] != own {
		if e.merge(own, owners[0], touched) {
			own = owners[0]
		}
	}
	for _, o := range owners {
		if o != own {
			e.merge(o, own, touched)
		}
	}
	e.addAliases(own, keys, touched)
}

// ownerOf is the id of the profile id leads to, as lookup finds it; "" when none.
func (e *Engine) ownerOf(id string) string {
	sh, p := e.lookup(id, false)
	if p == nil {
		return ""
	}
	defer sh.mu.Unlock()
	return p.ID
}

// addAliases points keys at the profile id (creating it) and records them on it.
func (e *Engine) addAliases(id string, keys []string, touched map[*Profile]*shard) {
	var added []string
	for _, k := range keys {
		if k == id {
			continue
		}
		sh := e.shardOf(k)
		sh.mu.Lock()
		if sh.alias[k] != id {
			sh.alias[k] = id
			added = append(added, k)
		}
		sh.mu.Unlock()
	}
	if len(added) == 0 {
		return
	}
	sh, p := e.lookup(id, true)
	defer sh.mu.Unlock()
	for _, k := range added {
		p.addAlias(k)
	}
	sh.markDirty(p)
	if touched != nil {
		touched[p] = sh
	}
}

// merge folds profile from into profile into; both keep their history in the result.
// It reports whether into exists (else nothing is merged).
func (e *Engine) merge(from, into string, touched map[*Profile]*shard) bool {
	ok, later := e.mergeLocked(from, into, touched)
	// Aliases of the source kept in other shards are re-pointed after the two shard
	// locks are released, so no goroutine ever holds more than two, in index order.
	for _, a := range later {
		e.repoint(a, into)
	}
	return ok
}

func (e *Engine) mergeLocked(from, into string, touched map[*Profile]*shard) (bool, []string) {
	e.liveMu.RLock() // before mergeMu and any shard lock
	defer e.liveMu.RUnlock()
	e.mergeMu.RLock() // before any shard lock, as snapshotDirty takes them
	defer e.mergeMu.RUnlock()
	fsh, ish := e.shardOf(from), e.shardOf(into)
	first, second := fsh, ish
	if e.shardIndex(ish) < e.shardIndex(fsh) {
		first, second = ish, fsh
	}
	first.mu.Lock()
	defer first.mu.Unlock()
	if second != first {
		second.mu.Lock()
		defer second.mu.Unlock()
	}
	dst := ish.profiles.get(into)
	if dst == nil {
		return false, nil
	}
	src := fsh.profiles.get(from)
	if src != nil {
		// Their order ids: dst's are replaced by both's, src's let go; either may be in
		// a chunk others keep (compact.go).
		dstIDs, srcIDs := dst.orderIDList(), src.orderIDList()
		e.texts.wipeRecent(mergeProfile(dst, src, e.oldestCat(e.now().UnixMilli()))...)
		e.texts.wipeReplaced(dstIDs, dst.orderIDList())
		e.texts.wipeReplaced(srcIDs, dst.orderIDList()) // dst's may be src's itself, when dst had none
		fsh.profiles.del(from)
		delete(fsh.open, src)
		src.mark(gone, true)
		clear(src.Recent.get()) // in dst now; its array may be a chunk others keep (compact.go)
		fsh.deleted = append(fsh.deleted, from)
		if len(dst.Open.get()) > 0 {
			ish.open[dst] = struct{}{}
		}
		if touched != nil {
			touched[src] = fsh
		}
	}
	fsh.alias[from] = into
	dst.addAlias(from)
	ish.markDirty(dst)
	if touched != nil {
		touched[dst] = ish
	}
	var later []string
	if src != nil {
		for _, a := range src.Aliases() {
			dst.addAlias(a)
			if ash := e.shardOf(a); ash == first || ash == second {
				ash.alias[a] = into
			} else {
				later = append(later, a)
			}
		}
		src.clearBuyer() // in dst now; they may be in chunks others keep (compact.go)
	}
	return true, later
}

func (e *Engine) repoint(alias, into string) {
	sh := e.shardOf(alias)
	sh.mu.Lock()
	sh.alias[alias] = into
	sh.mu.Unlock()
}

func (e *Engine) shardIndex(sh *shard) int { return slices.Index(e.shards, sh) }

// mergeProfile adds src's history to dst; oldestCat is the last day whose category
// counts are out of the preference window. It returns the recent events (src's or
// dst's) that dst's list let go.
func mergeProfile(dst, src *Profile, oldestCat int32) (dropped []Recent) {
	if dst.FirstSeen == 0 || (src.FirstSeen != 0 && src.FirstSeen < dst.FirstSeen) {
		dst.FirstSeen = src.FirstSeen
	}
	dst.LastSeen = max(dst.LastSeen, src.LastSeen)
	dst.LastVisit = max(dst.LastVisit, src.LastVisit)
	if dst.Name == "" {
		dst.Name = src.Name
	}
	dst.Sessions += src.Sessions
	dst.WatchMs += src.WatchMs
	dst.Comments += src.Comments
	dst.Likes += src.Likes
	dst.Gifts += src.Gifts
	dst.GiftValue = dst.GiftValue.add(src.GiftValue)
	dst.Interactions += src.Interactions
	for _, c := range src.Clicks.get() {
		dst.Clicks = packedOf(addCount(dst.Clicks.get(), c.cat, c.N))
	}
	dst.Orders += src.Orders
	dst.Spend = dst.Spend.add(src.Spend)
	for _, t := range []int64{src.FirstOrder, src.SecondOrder} {
		if t != 0 {
			dst.addOrderTime(t)
		}
	}
	dst.LastOrder = max(dst.LastOrder, src.LastOrder)
	if src.buy != nil {
		b := dst.buyer()
		for _, c := range src.buy.Bought.get() {
			b.Bought = packedOf(addCount(b.Bought.get(), c.cat, c.N))
		}
		b.OrderIDs = (b.OrderIDs + src.buy.OrderIDs).first(maxOrders) // as many as an order keeps
	}
	for _, b := range src.Days.get() {
		d := dst.bucket(b.Day, b.Day-1)
		d.Sessions = sat16(uint32(d.Sessions) + uint32(b.Sessions))
		d.Orders = sat16(uint32(d.Orders) + uint32(b.Orders))
		d.Interactions += b.Interactions
		d.WatchSec = sat32(uint64(d.WatchSec) + uint64(b.WatchSec))
		d.Spend = d.Spend.add(b.Spend)
	}
	for _, c := range src.Cats.get() {
		dst.addCat(c.Day(), oldestCat, c.cat, c.N()) // a full list drops what an event would
	}
	for _, l := range src.Lives.get() {
		i := slices.IndexFunc(dst.Lives.get(), func(x LiveSession) bool { return x.Live() == l.Live() })
		if i < 0 {
			dst.Lives = packedOf(append(dst.Lives.get(), l))
			continue
		}
		// One live under both ids (a guest on one device, the customer on another):
		// one session, with the watch time of both.
		same := &dst.Lives.get()[i]
		same.addWatch(l.WatchMs())
		same.Start = min(same.Start, l.Start)
		dst.Sessions = max(dst.Sessions, 1) - 1
		day := dayOf(l.Start) // where src counted it, now among dst's buckets
		days := dst.Days.get()
		if j := slices.IndexFunc(days, func(b Bucket) bool { return b.Day == day }); j >= 0 && days[j].Sessions > 0 {
			days[j].Sessions--
		}
	}
	if len(dst.Lives.get()) > maxLives { // the latest by start stay, as liveSession keeps them
		slices.SortFunc(dst.Lives.get(), func(a, b LiveSession) int { return cmp.Compare(b.Start, a.Start) })
		dst.Lives = packedOf(dst.Lives.get()[:maxLives:maxLives])
	}
	for _, r := range src.Rooms.get() {
		dst.addRoom(r)
	}
	for _, s := range src.Open.get() { // one presence per place, both ids' connections in it
		if i := dst.openIndex(s.Live(), s.Room()); i >= 0 {
			dst.Open.get()[i].add(s)
		} else {
			dst.Open = packedOf(append(dst.Open.get(), s))
		}
	}
	var buf [maxRecent]Recent
	for _, r := range src.recentInOrder(&buf) {
		if d := dst.remember(r); d != (Recent{}) {
			dropped = append(dropped, d)
		}
	}
	dst.answer(src.Consent, src.consentAt())
	return dropped
}
