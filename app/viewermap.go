package app

import (
	"hash/maphash"
	"sync"
)

// viewerMap is a concurrent map from viewer id to V, striped by the id's hash. The
// rules read two of them for every viewer snapshot (time zone, custom tags): plain
// maps under a striped lock cost one or two cache misses a lookup where sync.Map's
// trie cost several, which showed in a burst of ten thousand stay prompts.
type viewerMap[V any] struct {
	seed    maphash.Seed
	stripes [64]viewerStripe[V]
}

type viewerStripe[V any] struct {
	mu sync.RWMutex
	m  map[string]V
}

func newViewerMap[V any]() *viewerMap[V] {
	vm := &viewerMap[V]{seed: maphash.MakeSeed()}
	for i := range vm.stripes {
		vm.stripes[i].m = map[string]V{}
	}
	return vm
}

func (vm *viewerMap[V]) stripe(id string) *viewerStripe[V] {
	return &vm.stripes[maphash.String(vm.seed, id)%uint64(len(vm.stripes))]
}

func (vm *viewerMap[V]) load(id string) (V, bool) {
	s := vm.stripe(id)
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.m[id]
	return v, ok
}

func (vm *viewerMap[V]) store(id string, v V) {
	s := vm.stripe(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = v
}

// loadOrStore returns the value kept for id, storing v first if there was none.
func (vm *viewerMap[V]) loadOrStore(id string, v V) V {
	s := vm.stripe(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[id]; ok {
		return old
	}
	s.m[id] = v
	return v
}

func (vm *viewerMap[V]) delete(id string) {
	s := vm.stripe(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}
