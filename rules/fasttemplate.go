package rules

import (
	"fmt"
	"reflect"
	"strconv"
	"text/template"
	"text/template/parse"
)

// textTemplate is a rule's text: the parsed text/template, which defines what the
// text says, and, when every node of it is in the small subset below, the same tree
// compiled to closures over *Env. A stay prompt renders its suggested line on every
// firing, and text/template resolves each field by name through reflection (about
// 8 µs for the shipped line on the benchmark machine); the compiled form writes the
// same output, in the same Write calls, at a fraction of that. Templates outside the
// subset run on text/template; the two are compared in tests.
type textTemplate struct {
	t    *template.Template
	fast []piece // nil: render with t
}

func newTextTemplate(t *template.Template) *textTemplate {
	tt := &textTemplate{t: t}
	if list, ok := compileList(t.Tree.Root); ok {
		tt.fast = list
	}
	return tt
}

// piece writes one node's output.
type piece func(w *boundedWriter, env *Env) error

// value computes a pipeline's value.
type value func(env *Env) reflect.Value

var envType = reflect.TypeFor[Env]()

// The subset: text; {{pipeline}} and {{if pipeline}}…{{else}}…{{end}}, where a
// pipeline is one command without variables: a field chain from the root
// (.Viewer.Name) or a call of default, truncate, first or join on literals and such
// chains, argument types matching exactly.
func compileList(l *parse.ListNode) ([]piece, bool) {
	if l == nil {
		return nil, true
	}
	out := make([]piece, 0, len(l.Nodes))
	for _, n := range l.Nodes {
		p, ok := compileNode(n)
		if !ok {
			return nil, false
		}
		out = append(out, p)
	}
	return out, true
}

func compileNode(n parse.Node) (piece, bool) {
	switch n := n.(type) {
	case *parse.TextNode:
		text := n.Text
		return func(w *boundedWriter, _ *Env) error {
			_, err := w.Write(text)
			return err
		}, true
	case *parse.ActionNode:
		v, ok := compilePipe(n.Pipe)
		if !ok {
			return nil, false
		}
		return func(w *boundedWriter, env *Env) error { return printValue(w, v(env)) }, true
	case *parse.IfNode:
		cond, ok := compilePipe(n.Pipe)
		then, ok1 := compileList(n.List)
		els, ok2 := compileList(n.ElseList)
		if !ok || !ok1 || !ok2 {
			return nil, false
		}
		return func(w *boundedWriter, env *Env) error {
			list := els
			if truth(cond(env)) {
				list = then
			}
			for _, p := range list {
				if err := p(w, env); err != nil {
					return err
				}
			}
			return nil
		}, true
	}
	return nil, false
}

func compilePipe(p *parse.PipeNode) (value, bool) {
	if p == nil || len(p.Decl) > 0 || len(p.Cmds) != 1 {
		return nil, false
	}
	args := p.Cmds[0].Args
	if len(args) == 1 {
		v, _, ok := compileArg(args[0])
		return v, ok
	}
	id, ok := args[0].(*parse.IdentifierNode)
	if !ok {
		return nil, false
	}
	return compileCall(id.Ident, args[1:])
}

// compileArg compiles a field chain or a literal.
func compileArg(n parse.Node) (value, reflect.Type, bool) {
	switch n := n.(type) {
	case *parse.FieldNode:
		t, index := envType, []int(nil)
		for _, name := range n.Ident {
			if t.Kind() != reflect.Struct {
				return nil, nil, false
			}
			f, ok := t.FieldByName(name)
			if !ok || !f.IsExported() {
				return nil, nil, false
			}
			t, index = f.Type, append(index, f.Index...)
		}
		return func(env *Env) reflect.Value { return reflect.ValueOf(env).Elem().FieldByIndex(index) }, t, true
	case *parse.StringNode:
		v := reflect.ValueOf(n.Text)
		return func(*Env) reflect.Value { return v }, v.Type(), true
	case *parse.NumberNode:
		// Only integers written as integers: text/template prints 1e6 as a float.
		if _, err := strconv.ParseInt(n.Text, 0, 64); !n.IsInt || err != nil {
			return nil, nil, false
		}
		v := reflect.ValueOf(int(n.Int64))
		return func(*Env) reflect.Value { return v }, v.Type(), true
	}
	return nil, nil, false
}

var (
	stringType = reflect.TypeFor[string]()
)

// compileCall compiles a call of one of templateFuncs whose argument types match
// its parameters exactly (text/template would convert others; those stay with it).
func compileCall(name string, argNodes []parse.Node) (value, bool) {
	fn, ok := templateFuncs[name]
	if !ok {
		return nil, false
	}
	ft := reflect.TypeOf(fn)
	if ft.NumIn() != len(argNodes) || ft.NumOut() != 1 || ft.Out(0) != stringType {
		return nil, false
	}
	args := make([]value, len(argNodes))
	for i, n := range argNodes {
		v, t, ok := compileArg(n)
		if !ok || t != ft.In(i) {
			return nil, false
		}
		args[i] = v
	}
	var call func(env *Env) string
	switch f := fn.(type) {
	case func(string, string) string:
		call = func(env *Env) string { return f(args[0](env).String(), args[1](env).String()) }
	case func(int, string) string:
		call = func(env *Env) string { return f(int(args[0](env).Int()), args[1](env).String()) }
	case func([]string, string) string:
		call = func(env *Env) string { return f(args[0](env).Interface().([]string), args[1](env).String()) }
	case func([]string) string:
		call = func(env *Env) string { return f(args[0](env).Interface().([]string)) }
	default:
		return nil, false
	}
	return func(env *Env) reflect.Value { return reflect.ValueOf(call(env)) }, true
}

// printValue writes v as text/template prints a value: fmt's default format, in one Write.
func printValue(w *boundedWriter, v reflect.Value) error {
	var err error
	if v.Kind() == reflect.String {
		_, err = w.WriteString(v.String())
	} else {
		_, err = fmt.Fprint(w, v.Interface())
	}
	return err
}

// truth is text/template's notion of a true condition.
func truth(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() > 0
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() != 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() != 0
	case reflect.Float32, reflect.Float64:
		return v.Float() != 0
	case reflect.Struct:
		return true
	case reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func:
		return !v.IsNil()
	}
	return false
}
