package rules

import (
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"text/template"
	"time"
	"unicode/utf8"
)

// fastTemplates are in the compiled subset; slowTemplates are not and must run on
// text/template.
var (
	fastTemplates = []string{
		`{{.Viewer.Name}} {{.Viewer.Sessions}} {{.Viewer.WatchSeconds}} {{.Viewer.Consent}}`,
		`{{.Viewer.Tags.Preference}}|{{.Viewer.Tags.Custom}}|{{.Event.At}}|{{.Event.Total}}|{{.Session.Watching}}`,
		`{{if .Viewer.Tags.Preference}}likes {{first .Viewer.Tags.Preference}}{{else}}none{{end}}`,
		`{{if .Session.Orders}}o{{end}}{{if .Session.Watching}}w{{end}}{{if .Event.At}}t{{end}}{{if .Viewer.WatchSeconds}}s{{end}}`,
		`{{join .Viewer.Tags.Preference ", "}} / {{truncate 3 .Viewer.Name}} / {{truncate .Viewer.Sessions .Viewer.LastComment}}`,
		`{{truncate 0x10 .Viewer.Name}}{{truncate 1_0 .Viewer.LastSKU}}`,
		`  {{- .Viewer.Name -}}  {{if .Viewer.Name}}a{{else if .Viewer.LastSKU}}b{{else}}c{{end}}`,
		`{{default "friend" .Viewer.Name}}{{default .Viewer.LastSKU .Viewer.LastCategory}}`,
	}
	slowTemplates = []string{
		`{{printf "%s!" .Viewer.Name}}`,
		`{{with .Viewer}}{{.Name}}{{end}}`,
		`{{$n := .Viewer.Name}}{{$n}}`,
		`{{.Viewer.Name | printf "%q"}}`,
		`{{default 1 .Viewer.Name}}`,
		`{{.}}`,
		`{{if eq .Viewer.Name "x"}}y{{end}}`,
		`{{1e6}} {{1e18}}`,
		`{{truncate 1e1 .Viewer.Name}}`,
		`{{truncate 'a' .Viewer.Name}}`,
	}
)

func TestFastTemplateMatchesTextTemplate(t *testing.T) {
	var srcs []string
	for _, r := range DefaultRules(time.Minute).Rules {
		srcs = append(srcs, r.Action.Text)
		if r.Action.Reason != "" {
			srcs = append(srcs, r.Action.Reason)
		}
	}
	srcs = append(srcs, fastTemplates...)
	for i, src := range append(srcs, slowTemplates...) {
		tt, err := template.New("t").Funcs(templateFuncs).Option("missingkey=error").Parse(src)
		if err != nil {
			t.Fatal(src, err)
		}
		fast, slow := newTextTemplate(tt), &textTemplate{t: tt}
		if want := i < len(srcs); (fast.fast != nil) != want {
			t.Errorf("%q: compiled %v, want %v", src, fast.fast != nil, want)
		}
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		for range 300 {
			env := randomEnv(rng)
			got, gerr := render(fast, env)
			want, werr := render(slow, env)
			if got != want || (gerr == nil) != (werr == nil) {
				t.Fatalf("%q on %+v:\n fast %q, %v\n text/template %q, %v", src, env, got, gerr, want, werr)
			}
		}
	}
}

func randomEnv(rng *rand.Rand) *Env {
	word := func() string {
		words := []string{"", "Ann", "李雷", "  spaced  ", "a\"quote", "<b>", strings.Repeat("long ", 900), "😀x"}
		return words[rng.IntN(len(words))]
	}
	list := func() []string {
		out := make([]string, rng.IntN(3))
		for i := range out {
			out[i] = word()
		}
		return out
	}
	var at time.Time
	if rng.IntN(2) == 0 {
		at = time.Unix(rng.Int64N(2e9), 0).UTC()
	}
	return &Env{
		Viewer: Viewer{ID: word(), Name: word(), Sessions: rng.IntN(5) - 1, WatchSeconds: float64(rng.IntN(4)) * 1.5,
			LastComment: word(), LastSKU: word(), LastCategory: word(), Consent: rng.IntN(2) == 0,
			Tags: Tags{Activity: word(), Preference: list(), Custom: list()}},
		Session: Session{Room: word(), Orders: rng.IntN(2), Watching: rng.IntN(2) == 0},
		Event:   Event{Type: "timer", At: at, Total: float64(rng.IntN(3)) / 4},
	}
}

// TestTemplateTextBounded: a template may feed a helper's result back to it (with,
// a variable), each step multiplying its text; the steps stop at the output bound, so
// a template of a few hundred bytes renders in little memory (it took gigabytes) and
// its text is cut as any other. Widths are bounded too (TestCompileErrors).
func TestTemplateTextBounded(t *testing.T) {
	nest := func(step string, n int) string {
		return `{{with print "0123456789"}}` + strings.Repeat(`{{with `+step+`}}`, n) + `{{.}}` + strings.Repeat(`{{end}}`, n+1)
	}
	env := sampleEnv()
	env.Viewer.Tags.Preference = strings.Fields(strings.Repeat("shoes ", 50))
	for _, c := range []struct{ name, src string }{
		{"print", nest(`print . . . . . . . .`, 7)},
		{"printf", nest(`printf "%s%s%s%s%s%s%s%s" . . . . . . . .`, 7)},
		{"html", nest(`html . . . . . . . .`, 7)},
		{"join", nest(`join $.Viewer.Tags.Preference .`, 4)},
		{"variable", `{{$s := "0123456789"}}` + strings.Repeat(`{{$s = print $s $s $s $s $s $s $s $s}}`, 7) + `{{$s}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			tt, err := template.New("t").Funcs(templateFuncs).Parse(c.src)
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			out, err := render(newTextTemplate(tt), env)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("rendering a %d-byte template allocated %d KiB", len(c.src), n>>10)
			}
			if n := utf8.RuneCountInString(out); n > MaxTextLen {
				t.Errorf("%d characters, over %d", n, MaxTextLen)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	for _, c := range []struct {
		env  Env
		want string
	}{
		{Env{Session: Session{WatchSeconds: 372.4}}, "watched 6m12s, 0 comments, no order"},
		{Env{Session: Session{WatchSeconds: 299.996}}, "watched 5m0s, 0 comments, no order"}, // at a 5m threshold
		{Env{Session: Session{WatchSeconds: 5, Comments: 1, Orders: 1}}, "watched 5s, 1 comment, 1 order"},
		{Env{Session: Session{Comments: 12, Orders: 2}, Event: Event{Type: "tag_change", Dimension: "activity", From: "", To: "high"}},
			"watched 0s, 12 comments, 2 orders; activity: none → high"},
	} {
		if got := describe(&c.env); got != c.want {
			t.Errorf("describe = %q, want %q", got, c.want)
		}
	}
}

// FuzzFastTemplate: any template a rule may hold (it parses, passes plainTemplate and
// renders the sample) renders the same text and the same success through the compiled
// subset as through text/template, on the sample and on random viewers, and never
// longer than MaxTextLen characters, whatever text a viewer gave (its name, its
// last comment).
func FuzzFastTemplate(f *testing.F) {
	for _, r := range DefaultRules(time.Minute).Rules {
		f.Add(r.Action.Text, uint64(1), "Ann")
	}
	for _, s := range append(fastTemplates, slowTemplates...) {
		f.Add(s, uint64(2), "\xff\xfe李")
	}
	f.Add(`{{if .Viewer.Tags.Custom}}{{first .Viewer.Tags.Custom}}{{end}}`, uint64(3), "")
	f.Fuzz(func(t *testing.T, src string, seed uint64, text string) {
		if len(src) > MaxTemplateLen {
			return
		}
		tt, err := template.New("t").Funcs(templateFuncs).Option("missingkey=error").Parse(src)
		if err != nil || plainTemplate(tt) != nil {
			return
		}
		fast, slow := newTextTemplate(tt), &textTemplate{t: tt}
		if _, err := render(slow, sampleEnv()); err != nil {
			return // Compile refuses it
		}
		rng := rand.New(rand.NewPCG(seed, 7))
		for i := range 20 {
			env := sampleEnv()
			if i > 0 {
				env = randomEnv(rng)
			}
			if i%2 == 1 {
				env.Viewer.Name, env.Viewer.LastComment = text, text
			}
			got, gerr := render(fast, env)
			want, werr := render(slow, env)
			if got != want || (gerr == nil) != (werr == nil) {
				t.Fatalf("%q on %+v:\n fast %q, %v\n text/template %q, %v", src, env, got, gerr, want, werr)
			}
			if n := utf8.RuneCountInString(got); n > MaxTextLen {
				t.Fatalf("%q: %d characters, over %d", src, n, MaxTextLen)
			}
		}
	})
}
