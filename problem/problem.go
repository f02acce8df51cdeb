// Package problem carries the one typed error whose Kind the gateway maps to an HTTP
// status. media, chat and segment return it (or wrap it) and know nothing of HTTP.
package problem

import (
	"errors"
	"fmt"
)

// Kind classifies a failure the way a client must react to it.
type Kind int

// Kinds, each mapped to one status by the gateway.
const (
	Internal           Kind = iota // 500
	BadRequest                     // 400
	Unauthorized                   // 401
	Forbidden                      // 403
	NotFound                       // 404
	Conflict                       // 409
	TooLarge                       // 413
	UnsupportedType                // 415
	RateLimited                    // 429
	Unavailable                    // 503
	PreconditionFailed             // 412
)

var codes = map[Kind]string{
	Internal:           "internal",
	BadRequest:         "bad_request",
	Unauthorized:       "unauthorized",
	Forbidden:          "forbidden",
	NotFound:           "not_found",
	Conflict:           "conflict",
	TooLarge:           "too_large",
	UnsupportedType:    "unsupported_media_type",
	RateLimited:        "rate_limited",
	Unavailable:        "unavailable",
	PreconditionFailed: "precondition_failed",
}

// Code is the machine-readable word for k, used in JSON error bodies.
func (k Kind) Code() string {
	if c, ok := codes[k]; ok {
		return c
	}
	return "internal"
}

// Error is a failure with a Kind, a client-facing message and an optional cause.
type Error struct {
	Kind    Kind
	Code    string // overrides Kind.Code() when set (e.g. "room_not_live")
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorCode is the JSON `code` for the error.
func (e *Error) ErrorCode() string {
	if e.Code != "" {
		return e.Code
	}
	return e.Kind.Code()
}

// New returns an Error of kind k with a formatted message.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error of kind k whose cause is err.
func Wrap(k Kind, err error, message string) *Error {
	return &Error{Kind: k, Message: message, Err: err}
}

// WithCode sets a specific code word and returns e.
func (e *Error) WithCode(code string) *Error { e.Code = code; return e }

// KindOf returns the Kind of the first *Error in err's chain, or Internal.
func KindOf(err error) Kind {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return Internal
}
