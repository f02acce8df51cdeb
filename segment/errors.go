package segment

import "errors"

// Sentinel errors; the engine wraps them in problem.Error where a client must see them.
var (
	// ErrBadMoney marks an amount that is not an exact decimal.
	ErrBadMoney = errors.New("bad amount")
	// ErrBadEvent marks an imported event that cannot be applied.
	ErrBadEvent = errors.New("bad event")
	// ErrUnknownViewer is returned for a viewer id no profile or alias knows.
	ErrUnknownViewer = errors.New("unknown viewer")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("segment engine closed")
)
