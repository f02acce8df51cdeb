package rules

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// MemoryState keeps everything in memory: the fake for tests and the fallback when no
// data folder is wanted. Safe for concurrent use.
type MemoryState struct {
	mu       sync.Mutex
	counters map[string]Counter
	jobs     map[string]Job
	prompts  map[string]*Prompt
	byRoom   map[string][]string // prompt ids, oldest first
	byViewer map[string][]string
	actions  map[string][]Action
}

var _ State = (*MemoryState)(nil)

// NewMemoryState returns an empty MemoryState.
func NewMemoryState() *MemoryState {
	return &MemoryState{counters: map[string]Counter{}, jobs: map[string]Job{},
		prompts: map[string]*Prompt{}, byRoom: map[string][]string{},
		byViewer: map[string][]string{}, actions: map[string][]Action{}}
}

// Commit implements Firings.
func (m *MemoryState) Commit(_ context.Context, fs ...Firing) ([]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ok := make([]bool, len(fs))
	for i, f := range fs {
		ok[i] = m.commit(f)
	}
	return ok, nil
}

func (m *MemoryState) commit(f Firing) bool {
	for _, l := range f.Limits {
		if !l.allows(m.counters[l.Key], f.At) {
			return false
		}
	}
	for _, l := range f.Limits {
		c := m.counters[l.Key]
		m.counters[l.Key] = Counter{N: c.N + 1, Last: f.At}
	}
	rec := f.Rec
	if rec == nil {
		return true
	}
	if p := rec.Prompt; p != nil {
		cp := *p
		m.prompts[p.ID] = &cp
		m.byRoom[p.Room] = append(m.byRoom[p.Room], p.ID)
		m.byViewer[p.Viewer.ID] = append(m.byViewer[p.Viewer.ID], p.ID)
	}
	a := rec.Action
	list := append(m.actions[a.Viewer], a)
	if len(list) > MaxActionsPerViewer {
		list = slices.Delete(list, 0, len(list)-MaxActionsPerViewer)
	}
	m.actions[a.Viewer] = list
	return true
}

// PutJob implements JobStore.
func (m *MemoryState) PutJob(_ context.Context, j Job) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.jobs[j.ID] = j
	return nil
}

// DeleteJob implements JobStore.
func (m *MemoryState) DeleteJob(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.jobs, id)
	return nil
}

// Jobs implements JobStore.
func (m *MemoryState) Jobs(context.Context) ([]Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Job, 0, len(m.jobs))
	for _, j := range m.jobs {
		out = append(out, j)
	}
	slices.SortFunc(out, func(a, b Job) int { return a.Due.Compare(b.Due) })
	return out, nil
}

// UpdatePrompt implements PromptStore.
func (m *MemoryState) UpdatePrompt(_ context.Context, id string, fn func(*Prompt) error) (Prompt, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.prompts[id]
	if !ok {
		return Prompt{}, notFound(id)
	}
	next := *p
	if err := fn(&next); err != nil {
		return *p, err
	}
	*p = next
	return next, nil
}

// Prompts implements PromptStore.
func (m *MemoryState) Prompts(_ context.Context, room string) ([]Prompt, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rooms := []string{room}
	if room == "" {
		rooms = slices.Sorted(maps.Keys(m.byRoom))
	}
	var out []Prompt
	for _, r := range rooms {
		for _, id := range m.byRoom[r] {
			out = append(out, *m.prompts[id])
		}
	}
	return out, nil
}

// ViewerPrompts implements PromptStore.
func (m *MemoryState) ViewerPrompts(_ context.Context, viewer string, since time.Time) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, id := range m.byViewer[viewer] {
		if !m.prompts[id].CreatedAt.Before(since) {
			out = append(out, id)
		}
	}
	return out, nil
}

// AnyTagged implements Firings.
func (m *MemoryState) AnyTagged(context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, acts := range m.actions {
		if slices.ContainsFunc(acts, func(a Action) bool { return a.Type == ActTag }) {
			return true, nil
		}
	}
	return false, nil
}

// Actions implements Firings.
func (m *MemoryState) Actions(_ context.Context, viewer string) ([]Action, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.actions[viewer]), nil
}
