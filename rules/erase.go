package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Held is what the rules hold about one viewer (GDPR access): its action log, agents'
// notes included, the prompts about it and its scheduled jobs (follow-ups and
// messages deferred past quiet hours, each with the snapshot of the viewer it fires
// with).
type Held struct {
	Actions []Action `json:"actions"`
	Prompts []Prompt `json:"prompts"`
	Jobs    []Job    `json:"jobs"`
}

// Eraser is the part of a State that shows and forgets what it keeps about a viewer
// (GDPR access and erasure).
type Eraser interface {
	// AboutPrompts lists the prompts about viewer, oldest first.
	AboutPrompts(ctx context.Context, viewer string) ([]Prompt, error)
	// Erase removes everything kept about each of viewers (the ids of one person):
	// its action log and notes, the prompts about it, its limit counters and its
	// scheduled jobs.
	Erase(ctx context.Context, viewers ...string) error
}

// aboutAny reports whether a limit key is one of viewers' (see aboutViewer).
func aboutAny(key string, viewers []string) bool {
	return slices.ContainsFunc(viewers, func(v string) bool { return aboutViewer(key, v) })
}

// aboutViewer reports whether a limit key is viewer's: "r\x00rule\x00viewer",
// "g\x00group\x00viewer" or "onces\x00rule\x00viewer\x00live" (see rule.limit and
// onceKey). The viewer's field is matched by its place: a viewer id equal to a rule,
// group or live id must not match other viewers' keys.
func aboutViewer(key, viewer string) bool {
	f := strings.Split(key, "\x00")
	switch {
	case len(f) == 3 && (f[0] == "r" || f[0] == "g"):
		return f[2] == viewer
	case len(f) == 4 && f[0]+"\x00" == oncePrefix:
		return f[2] == viewer
	}
	return false
}

// Held returns what the rules hold about viewer.
func (e *Engine) Held(ctx context.Context, viewer string) (Held, error) {
	acts, err := e.deps.State.Actions(ctx, viewer)
	if err != nil {
		return Held{}, err
	}
	prompts, err := e.deps.State.AboutPrompts(ctx, viewer)
	if err != nil {
		return Held{}, err
	}
	jobs, err := e.deps.State.Jobs(ctx)
	if err != nil {
		return Held{}, err
	}
	out := Held{Actions: acts, Prompts: prompts, Jobs: []Job{}}
	for _, j := range jobs {
		if j.Env.Viewer.ID == viewer {
			out.Jobs = append(out.Jobs, j)
		}
	}
	if out.Actions == nil {
		out.Actions = []Action{}
	}
	if out.Prompts == nil {
		out.Prompts = []Prompt{}
	}
	return out, nil
}

// Erase forgets viewers (the ids of one person): nothing fires or arms for them while
// the erase runs, their armed timers and scheduled jobs are disarmed, those being
// fired right now are waited for (what they commit must be erased too), their webhook
// deliveries not yet made are dropped, and the state erases the rest (see Eraser).
// Events about them that arrive afterwards start afresh.
func (e *Engine) Erase(ctx context.Context, viewers ...string) error {
	// From here on nothing fires or arms for them, and what was under way has
	// finished (and is erased below) once the lock is had.
	defer e.Hold(viewers...)()
	gone := make(map[string]bool, len(viewers))
	for _, v := range viewers {
		gone[v] = true
		e.hooks.forget(v) // nothing enqueues for v any more
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(e.ctx, cancel)() // a closing engine fires nothing more
	// Until no firing of the viewer's is under way: one may arm another (a message
	// deferred past quiet hours), which the next pass disarms.
	for {
		firing := e.wheel.cancelWhere(func(data any) bool {
			switch d := data.(type) {
			case *stayTimer:
				return gone[d.viewer]
			case *readyStay:
				return gone[d.timer.viewer]
			case Job:
				return gone[d.Env.Viewer.ID]
			}
			return false
		})
		if len(firing) == 0 {
			break
		}
		if err := e.wheel.forgotten(ctx, firing); err != nil {
			return err
		}
	}
	defer e.forgetConversions() // their prompts no longer count
	// Which stay prompts they had, as their once-per-live counters below: while held,
	// nothing marks them again.
	e.stayDone.forget(e.set.Load(), viewers)
	return e.deps.State.Erase(ctx, viewers...)
}

// Hold keeps viewers marked as being erased (nothing fires or arms for them) until
// release is called; what was under way has committed once Hold returns.
func (e *Engine) Hold(viewers ...string) (release func()) {
	e.eraseMu.Lock()
	for _, v := range viewers {
		e.erasing[v]++
	}
	e.eraseMu.Unlock()
	return func() {
		e.eraseMu.Lock()
		for _, v := range viewers {
			if e.erasing[v]--; e.erasing[v] <= 0 {
				delete(e.erasing, v)
			}
		}
		e.eraseMu.Unlock()
	}
}

// AboutPrompts implements Eraser.
func (m *MemoryState) AboutPrompts(_ context.Context, viewer string) ([]Prompt, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Prompt
	for _, id := range m.byViewer[viewer] {
		if p := m.prompts[id]; p != nil {
			out = append(out, *p)
		}
	}
	return out, nil
}

// Erase implements Eraser.
func (m *MemoryState) Erase(_ context.Context, viewers ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, viewer := range viewers {
		m.eraseLocked(viewer)
	}
	return nil
}

func (m *MemoryState) eraseLocked(viewer string) {
	delete(m.actions, viewer)
	for _, id := range m.byViewer[viewer] {
		if p := m.prompts[id]; p != nil {
			m.byRoom[p.Room] = slices.DeleteFunc(m.byRoom[p.Room], func(x string) bool { return x == id })
		}
		delete(m.prompts, id)
	}
	delete(m.byViewer, viewer)
	for k := range m.counters {
		if aboutViewer(k, viewer) {
			delete(m.counters, k)
		}
	}
	for id, j := range m.jobs {
		if j.Env.Viewer.ID == viewer {
			delete(m.jobs, id)
		}
	}
}

// AboutPrompts implements Eraser.
func (s *BoltState) AboutPrompts(_ context.Context, viewer string) ([]Prompt, error) {
	if viewer == "" {
		return nil, nil // not every viewer's
	}
	return s.indexedPrompts(bViewer, viewer)
}

// Erase implements Eraser: one rewrite (see rewrite) deletes the viewers' action logs,
// prompts, counters and jobs, found by a scan where no index leads to them, and then
// compacts the file once: bbolt keeps deleted bytes in free pages until they are
// reused.
func (s *BoltState) Erase(_ context.Context, viewers ...string) error {
	return s.rewrite(func(tx *bolt.Tx) error {
		for _, viewer := range viewers {
			if err := eraseViewerTx(tx, viewer); err != nil {
				return err
			}
		}
		_, err := deleteWhere(tx.Bucket(bCounters), nil, func(k, _ []byte) bool { return aboutAny(string(k), viewers) })
		if err != nil {
			return err
		}
		_, err = deleteWhere(tx.Bucket(bJobs), nil, func(_, v []byte) bool {
			var j Job
			return json.Unmarshal(v, &j) == nil && slices.Contains(viewers, j.Env.Viewer.ID)
		})
		if err != nil {
			return err
		}
		// A hold (events kept until handled) that names a viewer, as a JSON string,
		// goes whole: the other viewers' events in it are not handed over again after
		// a crash.
		quoted := make([][]byte, len(viewers))
		for i, id := range viewers {
			quoted[i], _ = json.Marshal(id)
		}
		_, err = deleteWhere(tx.Bucket(bHeld), nil, func(_, v []byte) bool {
			return slices.ContainsFunc(quoted, func(q []byte) bool { return bytes.Contains(v, q) })
		})
		return err
	}, func(w *writeBehind) {
		for k := range w.cache { // counted since the flush: not written again
			if aboutAny(k, viewers) {
				delete(w.cache, k)
			}
		}
		w.recs = slices.DeleteFunc(w.recs, func(r *Record) bool { return slices.Contains(viewers, r.Action.Viewer) })
		maps.DeleteFunc(w.jobs, func(_ string, c jobChange) bool { return slices.Contains(viewers, c.viewer) })
	}, true)
}

// eraseViewerTx deletes viewer's action log and the prompts about it, from the room
// queues' index too.
func eraseViewerTx(tx *bolt.Tx, viewer string) error {
	prefix := append([]byte(viewer), 0)
	if err := deletePrefix(tx.Bucket(bActions), prefix); err != nil {
		return err
	}
	prompts, rooms := tx.Bucket(bPrompts), tx.Bucket(bRoom)
	var ids [][]byte
	c := tx.Bucket(bViewer).Cursor()
	for k, id := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, id = c.Next() {
		ids = append(ids, bytes.Clone(id))
	}
	for _, id := range ids {
		var p Prompt
		if v := prompts.Get(id); v != nil && json.Unmarshal(v, &p) == nil {
			at := indexKey(p.Room, p.CreatedAt)
			rc := rooms.Cursor()
			for k, v := rc.Seek(at); k != nil && bytes.HasPrefix(k, at); k, v = rc.Next() {
				if bytes.Equal(v, id) {
					if err := rc.Delete(); err != nil {
						return err
					}
					break
				}
			}
		}
		if err := prompts.Delete(id); err != nil {
			return err
		}
	}
	return deletePrefix(tx.Bucket(bViewer), prefix)
}

// rewrite runs change in one write transaction, then clean on what the write-behind
// holds in memory, with no flush in between: first everything pending is written, so
// that the file is the one place to change, and no flush runs until clean has dropped
// what was committed in memory meanwhile (a flush in between could write it after the
// change). With compact, the file is then compacted, still with no flush running: a
// flush takes the write-behind's lock inside its transaction, a commit holding that
// lock may be waiting to read the file, and a compaction waiting to start holds up
// that read (boltfile.File).
func (s *BoltState) rewrite(change func(tx *bolt.Tx) error, clean func(w *writeBehind), compact bool) error {
	if s.wb == nil {
		if err := s.db.Update(change); err != nil || !compact {
			return err
		}
		return s.db.Compact()
	}
	s.wb.flushMu.Lock()
	defer s.wb.flushMu.Unlock()
	if err := s.wb.flushLocked(); err != nil {
		return err
	}
	if err := s.db.Update(change); err != nil {
		return err
	}
	if s.afterRewrite != nil {
		s.afterRewrite()
	}
	s.wb.mu.Lock()
	clean(s.wb)
	s.wb.flushes++ // the file changed: a commit's read from before is stale
	s.wb.mu.Unlock()
	if compact {
		return s.db.Compact()
	}
	return nil
}

func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	_, err := deleteWhere(b, prefix, nil)
	return err
}

// deleteWhere deletes b's keys that start with prefix (all keys for nil) and for which
// match holds (all of them for nil), and returns the keys it deleted.
func deleteWhere(b *bolt.Bucket, prefix []byte, match func(k, v []byte) bool) ([][]byte, error) {
	var keys [][]byte
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if match == nil || match(k, v) {
			keys = append(keys, bytes.Clone(k))
		}
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return nil, err
		}
	}
	return keys, nil
}
