package chat

import (
	"errors"

	"github.com/liveroom/liveroom/problem"
)

// Sentinel errors; the problem.Error values carry the kind the gateway maps to a status.
var (
	// ErrClosed is returned once the hub is shutting down.
	ErrClosed = errors.New("chat: closed")
	// ErrStore wraps a failure of the durable store.
	ErrStore = errors.New("chat: store")
	// ErrBanned refuses a banned user's connection (403).
	ErrBanned = problem.New(problem.Forbidden, "you are banned from this room").WithCode("banned")
	// ErrTooManyConns refuses a connection past the per-address cap (429).
	ErrTooManyConns = problem.New(problem.RateLimited, "too many chat connections from this address").WithCode("too_many_connections")
	// ErrUnavailable refuses work while the hub is shutting down (503).
	ErrUnavailable = problem.Wrap(problem.Unavailable, ErrClosed, "chat is shutting down")
	// ErrBadText refuses an empty, over-long or control-character message text (400).
	ErrBadText = problem.New(problem.BadRequest, "text must be 1 to 1000 printable characters")
)
