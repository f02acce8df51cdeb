package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Held is what the rules hold about one viewer (GDPR access): its action log, agents'
// notes included, and the prompts about it.
type Held struct {
	Actions []Action `json:"actions"`
	Prompts []Prompt `json:"prompts"`
}

// Eraser is the part of a State that shows and forgets what it keeps about a viewer
// (GDPR access and erasure).
type Eraser interface {
	// AboutPrompts lists the prompts about viewer, oldest first.
	AboutPrompts(ctx context.Context, viewer string) ([]Prompt, error)
	// Erase removes everything kept about viewer: its action log and notes, the
	// prompts about it, its limit counters and its scheduled jobs.
	Erase(ctx context.Context, viewer string) error
}

// aboutViewer reports whether a limit key names viewer: keys are NUL-separated
// fields, one of which is the viewer id (see rule.limit and stayKey).
func aboutViewer(key, viewer string) bool {
	return slices.Contains(strings.Split(key, "\x00"), viewer)
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
	out := Held{Actions: acts, Prompts: prompts}
	if out.Actions == nil {
		out.Actions = []Action{}
	}
	if out.Prompts == nil {
		out.Prompts = []Prompt{}
	}
	return out, nil
}

// Erase forgets viewer: its armed timers and scheduled jobs are disarmed and the
// state erases the rest (see Eraser).
func (e *Engine) Erase(ctx context.Context, viewer string) error {
	e.wheel.cancelWhere(func(key string, data any) bool {
		switch d := data.(type) {
		case *stayTimer:
			return d.env.Viewer.ID == viewer
		case Job:
			return d.Env.Viewer.ID == viewer
		}
		return aboutViewer(key, viewer)
	})
	return e.deps.State.Erase(ctx, viewer)
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
func (m *MemoryState) Erase(_ context.Context, viewer string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
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
	return nil
}

// AboutPrompts implements Eraser.
func (s *BoltState) AboutPrompts(_ context.Context, viewer string) ([]Prompt, error) {
	return s.indexedPrompts(bViewer, viewer)
}

// Erase implements Eraser. What the write-behind holds is written first, so that the
// file is the one place left to erase from; the counters and jobs are found by a scan.
// bbolt keeps the deleted bytes in free pages until they are reused.
func (s *BoltState) Erase(_ context.Context, viewer string) error {
	if err := s.flush(); err != nil {
		return err
	}
	prefix := append([]byte(viewer), 0)
	err := s.db.Update(func(tx *bolt.Tx) error {
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
		if err := deletePrefix(tx.Bucket(bViewer), prefix); err != nil {
			return err
		}
		if err := deleteWhere(tx.Bucket(bCounters), func(k, _ []byte) bool { return aboutViewer(string(k), viewer) }); err != nil {
			return err
		}
		return deleteWhere(tx.Bucket(bJobs), func(_, v []byte) bool {
			var j Job
			return json.Unmarshal(v, &j) == nil && j.Env.Viewer.ID == viewer
		})
	})
	if err != nil || s.wb == nil {
		return err
	}
	s.wb.mu.Lock()
	defer s.wb.mu.Unlock()
	for k := range s.wb.cache { // counted since the flush: not written again
		if aboutViewer(k, viewer) {
			delete(s.wb.cache, k)
		}
	}
	s.wb.recs = slices.DeleteFunc(s.wb.recs, func(r *Record) bool { return r.Action.Viewer == viewer })
	return nil
}

func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	return deleteWhere(b, func(k, _ []byte) bool { return bytes.HasPrefix(k, prefix) })
}

// deleteWhere deletes b's keys for which match holds.
func deleteWhere(b *bolt.Bucket, match func(k, v []byte) bool) error {
	var keys [][]byte
	if err := b.ForEach(func(k, v []byte) error {
		if match(k, v) {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	}); err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
