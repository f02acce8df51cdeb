package setting

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"regexp"
	"strconv"
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

// Invalid returns a FieldError; packages use it from their Validate methods. A
// password in a URL of value (a TURN server's, Redis's) is masked: the message goes to
// the terminal and the logs.
func Invalid(key, value, allowed string) error {
	return &FieldError{Key: key, Value: redact(value), Allowed: allowed}
}

// urlPassword finds a URL's "scheme:[//]user:password@" (turn:USER:PASS@host has no
// slashes).
var urlPassword = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*:(?://)?[^\s/@:]*):[^\s/@]*@`)

// redact masks the passwords of the URLs in s.
func redact(s string) string { return urlPassword.ReplaceAllString(s, "${1}:xxxxx@") }

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

// Addr checks a listen address: host:port or :port, the port a number from 0 to
// 65535 (0: any free one). A port the system cannot open otherwise passed as
// configuration and failed at listen, after the stores were opened, with status 1.
func Addr(key, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		return Invalid(key, addr, "host:port or :port, the port from 0 to 65535, e.g. :8080")
	}
	return nil
}
