//go:build !linux

package chat

import "errors"

// parker is Linux-only (epoll); elsewhere a connection keeps its reader goroutine.
type parker struct{}

func newParker() (*parker, error) { return nil, errors.New("parking idle connections needs Linux") }

func (p *parker) arm(*conn) error { return errors.New("no parker") }
func (p *parker) forget(*conn)    {}
func (p *parker) close()          {}
func (p *parker) poll()           {}
