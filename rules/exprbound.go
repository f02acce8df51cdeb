package rules

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"
)

// expr's memory budget counts the elements of ranges, arrays and maps, not the bytes of
// strings: a condition that feeds a string back to itself (reduce's accumulator, a chain
// of let) doubled it at every step, and forty steps made a terabyte. So every string a
// condition builds (with +, or a builtin) is checked against maxOutput as it is made,
// and replace and join refuse to build a longer one at all.
var boundedStrings = []expr.Option{
	expr.Patch(stringBound{}),
	expr.Function(boundName, boundAny, new(func(any) any)),
	expr.Function(boundStringName, boundAny, new(func(string) string)),
	expr.Function("replace", boundedReplace, strings.Replace, strings.ReplaceAll),
	expr.Function("join", boundedJoin, strings.Join, new(func([]any, string) string),
		new(func([]any) string), new(func([]string) string)),
	// A list of a few thousand copies of a string just under the bound made one string
	// of megabytes before the bound could look at it: these look at the list first.
	expr.Function("toJSON", boundedToJSON, new(func(any) string)),
	expr.Function("string", boundedString, new(func(any) string)),
}

// textSize is about how many bytes printing v takes (strings' bytes, 24 per other
// value), counted up to past limit.
func textSize(v reflect.Value, limit int) int {
	switch v.Kind() {
	case reflect.String:
		return v.Len()
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return 4
		}
		return textSize(v.Elem(), limit)
	case reflect.Slice, reflect.Array:
		n := 2
		for i := 0; i < v.Len() && n <= limit; i++ {
			n += 2 + textSize(v.Index(i), limit-n)
		}
		return n
	case reflect.Map:
		n := 2
		for it := v.MapRange(); it.Next() && n <= limit; {
			n += 4 + textSize(it.Key(), limit-n) + textSize(it.Value(), limit-n)
		}
		return n
	case reflect.Struct:
		if t := v.Type(); t.Implements(stringerType) || t.Implements(marshalerType) {
			return 64 // a time, a duration...: prints itself, short
		}
		n := 2
		for i := 0; i < v.NumField() && n <= limit; i++ {
			n += 24 + textSize(v.Field(i), limit-n)
		}
		return n
	}
	return 24
}

var (
	stringerType  = reflect.TypeFor[fmt.Stringer]()
	marshalerType = reflect.TypeFor[json.Marshaler]()
)

func boundedToJSON(args ...any) (any, error) {
	if textSize(reflect.ValueOf(args[0]), maxOutput) > maxOutput {
		return nil, errTooLong
	}
	b, err := json.MarshalIndent(args[0], "", "  ")
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func boundedString(args ...any) (any, error) {
	if textSize(reflect.ValueOf(args[0]), maxOutput) > maxOutput {
		return nil, errTooLong
	}
	return fmt.Sprintf("%v", args[0]), nil
}

const (
	boundName       = "__liveroom_bound"
	boundStringName = "__liveroom_bound_string"
)

// stringBound wraps each + and builtin call whose result is (or may be) a string in a
// call that fails when it is longer than maxOutput.
type stringBound struct{}

func (stringBound) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		if n.Operator != "+" {
			return
		}
	case *ast.BuiltinNode, *ast.CallNode:
		if c, ok := n.(*ast.CallNode); ok {
			if id, ok := c.Callee.(*ast.IdentifierNode); ok && strings.HasPrefix(id.Value, "__liveroom_bound") {
				return
			}
		}
	default:
		return
	}
	name := boundName
	switch t := (*node).Type(); {
	case t == stringType:
		name = boundStringName
	case t.Kind() != reflect.Interface:
		return // a number, a bool, a list...: not a string
	}
	ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: name}, Arguments: []ast.Node{*node}})
}

func boundAny(args ...any) (any, error) {
	if s, ok := args[0].(string); ok && len(s) > maxOutput {
		return nil, errTooLong
	}
	return args[0], nil
}

func boundedReplace(args ...any) (any, error) {
	s, old, repl := args[0].(string), args[1].(string), args[2].(string)
	limit := -1
	if len(args) == 4 {
		limit = runtime.ToInt(args[3])
	}
	n := strings.Count(s, old) // an empty old matches len(s)+1 times
	if limit >= 0 {
		n = min(n, limit)
	}
	if len(repl) > len(old) && len(s)+n*(len(repl)-len(old)) > maxOutput {
		return nil, errTooLong
	}
	return strings.Replace(s, old, repl, limit), nil
}

func boundedJoin(args ...any) (any, error) {
	glue := ""
	if len(args) == 2 {
		glue = args[1].(string)
	}
	var list []string
	switch l := args[0].(type) {
	case []string:
		list = l
	case []any:
		list = make([]string, len(l))
		for i, v := range l {
			s, ok := v.(string)
			if !ok {
				return nil, errNotString
			}
			list[i] = s
		}
	default:
		return nil, errNotString
	}
	n := len(glue) * max(len(list)-1, 0)
	for _, s := range list {
		n += len(s)
	}
	if n > maxOutput {
		return nil, errTooLong
	}
	return strings.Join(list, glue), nil
}
