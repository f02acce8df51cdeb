//go:build !linux

package hugepage

import (
	"errors"
	"time"
)

var errNotLinux = errors.New("transparent huge pages are a Linux feature")

// Mode fails: only Linux has transparent huge pages.
func Mode() (string, error) { return "", errNotLinux }

// Watcher does nothing outside Linux; Start never returns one.
type Watcher struct{}

// Start fails: only Linux has transparent huge pages.
func Start(time.Duration) (*Watcher, error) { return nil, errNotLinux }

// Stop does nothing.
func (w *Watcher) Stop() {}

// Stats is zero.
func (w *Watcher) Stats() Stats { return Stats{} }

// Resident fails: only Linux has transparent huge pages.
func Resident() (anon, huge uint64, err error) { return 0, 0, errNotLinux }
