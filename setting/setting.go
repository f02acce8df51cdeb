package setting

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"
)

// ErrInvalid marks every configuration error; the command exits with status 2 on it.
var ErrInvalid = errors.New("invalid configuration")

// FieldError names the setting, the value given and what is allowed.
type FieldError struct {
	Key     string
	Value   string
	Allowed string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: %q is not allowed: must be %s", e.Key, e.Value, e.Allowed)
}

// Is makes errors.Is(err, ErrInvalid) true for every FieldError.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Invalid returns a FieldError; packages use it from their Validate methods.
func Invalid(key, value, allowed string) error {
	return &FieldError{Key: key, Value: value, Allowed: allowed}
}

// InRange checks that d lies within [min, max].
func InRange(key string, d, min, max time.Duration) error {
	if d < min || d > max {
		return Invalid(key, d.String(), fmt.Sprintf("between %s and %s", min, max))
	}
	return nil
}

// ListVar registers a comma-separated list flag; a flag or env value replaces the list.
func ListVar(fs *flag.FlagSet, p *[]string, name, usage string) {
	fs.Func(name, usage, func(s string) error {
		*p = SplitList(s)
		return nil
	})
}

// SplitList splits a comma-separated value, trimming blanks and dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
