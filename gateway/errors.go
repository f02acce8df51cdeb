package gateway

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/liveroom/liveroom/problem"
	"github.com/liveroom/liveroom/token"
)

var statusOf = map[problem.Kind]int{
	problem.Internal:           http.StatusInternalServerError,
	problem.BadRequest:         http.StatusBadRequest,
	problem.Unauthorized:       http.StatusUnauthorized,
	problem.Forbidden:          http.StatusForbidden,
	problem.NotFound:           http.StatusNotFound,
	problem.Conflict:           http.StatusConflict,
	problem.TooLarge:           http.StatusRequestEntityTooLarge,
	problem.UnsupportedType:    http.StatusUnsupportedMediaType,
	problem.RateLimited:        http.StatusTooManyRequests,
	problem.Unavailable:        http.StatusServiceUnavailable,
	problem.PreconditionFailed: http.StatusPreconditionFailed,
}

// errorBody is the contract's error shape: {"error":{"code":"...","message":"..."}}.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// asProblem classifies any error: problem errors keep their kind, token errors become
// 401/403, body-size errors 413, everything else 500.
func asProblem(err error) *problem.Error {
	var pe *problem.Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe): // first: a handler's "bad body" may wrap it
		return problem.New(problem.TooLarge, "request body is larger than %d bytes", mbe.Limit)
	case errors.As(err, &pe):
		return pe
	case errors.Is(err, token.ErrForbidden):
		return problem.Wrap(problem.Forbidden, err, "forbidden")
	case errors.Is(err, token.ErrExpired):
		return problem.Wrap(problem.Unauthorized, err, "token expired").WithCode("token_expired")
	case errors.Is(err, token.ErrInvalid), errors.Is(err, token.ErrNotGuest):
		return problem.Wrap(problem.Unauthorized, err, "invalid token").WithCode("invalid_token")
	}
	return problem.Wrap(problem.Internal, err, "internal error")
}

// writeError answers err in the contract's JSON shape with the status its kind maps to.
// Internal errors are logged and their detail is not shown to the client.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	pe := asProblem(err)
	status := statusOf[pe.Kind]
	var body errorBody
	body.Error.Code = pe.ErrorCode()
	body.Error.Message = pe.Error()
	if pe.Kind == problem.Internal {
		slog.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		body.Error.Message = "internal error"
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="liveroom"`)
	}
	writeJSON(w, status, body)
}

// writeRateLimited answers 429 with Retry-After in whole seconds (at least 1).
func writeRateLimited(w http.ResponseWriter, r *http.Request, wait time.Duration, what string) {
	secs := int(wait.Seconds() + 0.999)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeError(w, r, problem.New(problem.RateLimited, "too many %s from this address; retry in %ds", what, secs))
}

// writeMethodNotAllowed answers 405 in the JSON error shape (the caller sets Allow).
func writeMethodNotAllowed(w http.ResponseWriter, method string) {
	var body errorBody
	body.Error.Code, body.Error.Message = "method_not_allowed", "method "+method+" is not allowed here"
	writeJSON(w, http.StatusMethodNotAllowed, body)
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	// Encoded before the status goes out: a value that cannot be encoded is a 500
	// with a reason, not a 200 with an empty body.
	data, err := json.Marshal(v)
	if err != nil {
		slog.Error("response not encodable", "err", err)
		var body errorBody
		body.Error.Code, body.Error.Message = problem.New(problem.Internal, "").ErrorCode(), "internal error"
		status = http.StatusInternalServerError
		data, _ = json.Marshal(body) // plain strings: always encodes
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}
