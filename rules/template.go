package rules

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"

	"github.com/liveroom/liveroom/event"
)

// templateFuncs are the helpers templates may call, besides the built-in ones; those
// of the built-ins that build text are replaced by bounded ones (see boundedText).
var templateFuncs = template.FuncMap{
	"join": join,
	// first is the first word of a list, or "" (e.g. the top preference).
	"first": func(list []string) string {
		if len(list) == 0 {
			return ""
		}
		return list[0]
	},
	// default returns s, or def when s is empty.
	"default": func(def, s string) string {
		if s == "" {
			return def
		}
		return s
	},
	"truncate": func(n int, s string) string { return cut(s, n) },

	"printf":   printf,
	"print":    boundedText(fmt.Sprint),
	"println":  boundedText(fmt.Sprintln),
	"html":     boundedText(template.HTMLEscaper),
	"js":       boundedText(template.JSEscaper),
	"urlquery": boundedText(template.URLQueryEscaper),
}

// maxOutput bounds what a template writes (render) and what a helper builds: fmt
// builds a helper's whole result before the output bound sees any of it.
const maxOutput = 8 * MaxTextLen

// boundedText wraps a built-in that builds text from its arguments: a call whose
// strings together pass maxOutput formats nothing, and a longer result is not
// returned; either stops the template there (errTooLong: the output so far is kept).
// Only strings can grow as a template runs: with `with` or a variable a helper's
// result is fed to it again ({{with print . .}} doubles it), and twenty such steps
// made gigabytes; any other value is the viewer's data, as long as it was.
func boundedText(f func(args ...any) string) func(args ...any) (string, error) {
	return func(args ...any) (string, error) {
		if textLen(args) > maxOutput {
			return "", errTooLong
		}
		return fits(f(args...))
	}
}

// textLen is the length of the strings among args.
func textLen(args []any) int {
	n := 0
	for _, a := range args {
		if s, ok := a.(string); ok {
			n += len(s)
		}
	}
	return n
}

func fits(s string) (string, error) {
	if len(s) > maxOutput {
		return "", errTooLong
	}
	return s, nil
}

// maxWidth bounds a printf verb's width and precision: fmt pads to them before the
// output bound sees the text, and "%0999999d" made a megabyte per verb.
const maxWidth = 100

// printf is the built-in printf with widths and precisions of at most maxWidth,
// written in the format (not taken from an argument with *).
func printf(format string, args ...any) (string, error) {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		n := 0 // the number being read: a width or a precision
	verb:
		for i++; i < len(format); i++ {
			switch c := format[i]; {
			case c >= '0' && c <= '9':
				if n = n*10 + int(c-'0'); n > maxWidth {
					return "", fmt.Errorf("printf: a width or precision over %d", maxWidth)
				}
			case c == '*':
				return "", errors.New("printf: a width or precision from an argument (*)")
			case c == '[': // an argument index, not a width
				if j := strings.IndexByte(format[i:], ']'); j > 0 {
					i += j
				}
				n = 0
			case c == '.' || strings.IndexByte("+-# ", c) >= 0:
				n = 0
			default:
				break verb
			}
		}
	}
	if len(format)+textLen(args) > maxOutput {
		return "", errTooLong
	}
	return fits(fmt.Sprintf(format, args...))
}

// join is strings.Join cut to maxOutput bytes, without building more: its separator
// may be a helper's result, fed to it again (see boundedText). It returns a string
// alone so that the compiled templates can call it (compileCall).
func join(list []string, sep string) string {
	n := len(sep) * max(len(list)-1, 0)
	for _, s := range list {
		n += len(s)
	}
	if n <= maxOutput {
		return strings.Join(list, sep)
	}
	var b strings.Builder
	b.Grow(maxOutput)
	for i, s := range list {
		if i > 0 {
			s = sep + s
		}
		if k := maxOutput - b.Len(); len(s) > k {
			for k > 0 && !utf8.RuneStart(s[k]) { // not within a character
				k--
			}
			b.WriteString(s[:k])
			return b.String()
		}
		b.WriteString(s)
	}
	return b.String()
}

// plainTemplate refuses the constructs that could run long: range (which in Go
// templates also loops over integers), and define/template/block (recursion).
func plainTemplate(t *template.Template) error {
	if len(t.Templates()) > 1 {
		return errors.New("define and block are not allowed")
	}
	var walk func(n parse.Node) error
	walk = func(n parse.Node) error {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return nil
			}
			for _, c := range n.Nodes {
				if err := walk(c); err != nil {
					return err
				}
			}
		case *parse.RangeNode:
			return errors.New("range is not allowed (use join or first)")
		case *parse.TemplateNode:
			return errors.New("template calls are not allowed")
		case *parse.IfNode:
			return walkBranch(&n.BranchNode, walk)
		case *parse.WithNode:
			return walkBranch(&n.BranchNode, walk)
		}
		return nil
	}
	return walk(t.Tree.Root)
}

func walkBranch(b *parse.BranchNode, walk func(parse.Node) error) error {
	if err := walk(b.List); err != nil {
		return err
	}
	if b.ElseList != nil {
		return walk(b.ElseList)
	}
	return nil
}

// errTooLong stops a template whose output passes the limit.
var errTooLong = errors.New("output too long")

type boundedWriter struct {
	b     strings.Builder
	limit int
}

func (w *boundedWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > w.limit {
		return 0, errTooLong
	}
	return w.b.Write(p)
}

func (w *boundedWriter) WriteString(s string) (int, error) {
	if w.b.Len()+len(s) > w.limit {
		return 0, errTooLong
	}
	return w.b.WriteString(s)
}

// render runs t on env; the text is trimmed and cut to MaxTextLen characters.
func render(t *textTemplate, env *Env) (string, error) {
	if t == nil {
		return "", nil
	}
	w := &boundedWriter{limit: maxOutput}
	w.b.Grow(256) // one allocation for a usual line
	if err := t.execute(w, env); err != nil && !errors.Is(err, errTooLong) {
		return "", err
	}
	return cut(strings.TrimSpace(oneLineText(w.b.String())), MaxTextLen), nil
}

// oneLineText turns control characters (a line break of a YAML block, a tab in a
// viewer's comment) and invalid UTF-8 into spaces: chat refuses a DM that holds any,
// and the DM, counted and logged as sent, never reached the viewer.
func oneLineText(s string) string {
	if strings.IndexFunc(s, badRune) < 0 { // an invalid byte comes as utf8.RuneError
		return s
	}
	return strings.Map(func(r rune) rune {
		if badRune(r) {
			return ' '
		}
		return r
	}, s)
}

func badRune(r rune) bool { return event.Unprintable(r) || r == utf8.RuneError }

func (t *textTemplate) execute(w *boundedWriter, env *Env) error {
	if t.fast == nil {
		return t.t.Execute(w, env)
	}
	for _, p := range t.fast {
		if err := p(w, env); err != nil {
			return err
		}
	}
	return nil
}

// cut shortens s to at most n characters without splitting one.
func cut(s string, n int) string {
	if n < 0 {
		n = 0
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}

// sampleEnv is a filled-in Env used to check templates at compile time.
func sampleEnv() *Env {
	return &Env{
		Viewer: Viewer{ID: "v1", Name: "Ann", Sessions: 2, WatchSeconds: 600, Comments: 3,
			LastComment: "is it waterproof?", LastSKU: "sku-1", LastCategory: "shoes", Consent: true,
			Tags: Tags{Activity: "high", Value: "potential", Lifecycle: "new", Preference: []string{"shoes", "price:mid"}}},
		Session: Session{Room: "r1", Live: "l1", WatchSeconds: 372, Comments: 3, Watching: true},
		Event:   Event{Type: "timer", At: time.Unix(0, 0).UTC()},
	}
}

// describe is the default reason of a prompt: what the viewer did in this live. It
// runs for every prompt in a burst, so it appends rather than formats.
func describe(env *Env) string {
	s := env.Session
	b := make([]byte, 0, 64)
	b = append(b, "watched "...)
	// Rounded: a threshold reached at 299.996 s of watching reads "5m0s", not "4m59s".
	b = append(b, (time.Duration(math.Round(s.WatchSeconds)) * time.Second).String()...)
	b = appendCount(b, ", ", s.Comments, " comment")
	if s.Orders == 0 {
		b = append(b, ", no order"...)
	} else {
		b = appendCount(b, ", ", s.Orders, " order")
	}
	if e := env.Event; e.Type == "tag_change" {
		b = append(b, "; "...)
		b = append(b, e.Dimension...)
		b = append(b, ": "...)
		b = append(b, orNone(e.From)...)
		b = append(b, " → "...)
		b = append(b, orNone(e.To)...)
	}
	return string(b)
}

// appendCount appends sep, n and noun, plural when n is not 1.
func appendCount(b []byte, sep string, n int, noun string) []byte {
	b = append(b, sep...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, noun...)
	return append(b, plural(n)...)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
