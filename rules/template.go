package rules

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"
)

// templateFuncs are the helpers templates may call, besides the built-in ones.
var templateFuncs = template.FuncMap{
	"join": strings.Join,
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
	w := &boundedWriter{limit: 8 * MaxTextLen}
	w.b.Grow(256) // one allocation for a usual line
	if err := t.execute(w, env); err != nil && !errors.Is(err, errTooLong) {
		return "", err
	}
	return cut(strings.TrimSpace(w.b.String()), MaxTextLen), nil
}

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
