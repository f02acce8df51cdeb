package rules

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/liveroom/liveroom/problem"
)

func TestDefaultRulesCompile(t *testing.T) {
	s := mustCompile(t, DefaultRules(5*time.Minute))
	if s.Len() != 6 || len(s.stays) != 1 || len(s.tags) != 2 {
		t.Fatalf("default set: %d rules, %d stay, %d tag-change", s.Len(), len(s.stays), len(s.tags))
	}
	// The JSON the API returns compiles back to the same rules.
	again, err := Compile(s.Document().JSON())
	if err != nil || again.Len() != s.Len() {
		t.Fatalf("round trip: %v", err)
	}
}

func TestYAMLAndJSONSameShape(t *testing.T) {
	yml := `
quiet_hours: {start: "22:00", end: "08:00", mode: drop}
rules:
  - id: big-spender
    trigger: {event: [order]}
    when: event.total >= 500 && "shoes" in viewer.tags.preference
    action: {type: tag, tag: "big:spender"}
    cooldown: 1d
    cap: 3
`
	js := `{"quiet_hours":{"start":"22:00","end":"08:00","mode":"drop"},"rules":[{"id":"big-spender",
	"trigger":{"event":["order"]},"when":"event.total >= 500 && \"shoes\" in viewer.tags.preference",
	"action":{"type":"tag","tag":"big:spender"},"cooldown":"1d","cap":3}]}`
	a, err := Compile([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Compile([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if string(a.Document().JSON()) != string(b.Document().JSON()) {
		t.Fatalf("YAML and JSON differ:\n%s\n%s", a.Document().JSON(), b.Document().JSON())
	}
	r := a.byID["big-spender"]
	if r.cooldown != 24*time.Hour || r.cap != 3 || !a.quiet.drop {
		t.Fatalf("compiled: %+v", r)
	}
}

func TestCompileErrors(t *testing.T) {
	ok := `{"id":"r1","trigger":{"event":["order"]},"action":{"type":"dm","text":"hi"}}`
	cases := []struct {
		name, doc, want string
	}{
		{"not json", `{"rules": [`, "document: JSON"},
		{"unknown field", `{"rules":[{"id":"r1","colour":"red","trigger":{"event":["order"]},"action":{"type":"dm","text":"hi"}}]}`, `unknown field "colour"`},
		{"bad yaml", "rules:\n  - id: [", "document: YAML"},
		{"empty", "  ", "document is empty"},
		{"bad id", `{"rules":[{"id":"Bad Id!","trigger":{"event":["order"]},"action":{"type":"dm","text":"hi"}}]}`, `rule 0 (id "Bad Id!"): id:`},
		{"duplicate id", `{"rules":[` + ok + `,` + ok + `]}`, `rule 1 (id "r1"): id: duplicate id`},
		{"no trigger", `{"rules":[{"id":"r1","action":{"type":"dm","text":"hi"}}]}`, "trigger: set exactly one of event, tag_change and timer (0 set)"},
		{"two triggers", `{"rules":[{"id":"r1","trigger":{"event":["order"],"timer":{"kind":"stay","threshold":"5m"}},"action":{"type":"dm","text":"hi"}}]}`, "(2 set)"},
		{"unknown event", `{"rules":[{"id":"r1","trigger":{"event":["purchase"]},"action":{"type":"dm","text":"hi"}}]}`, `trigger.event[0]: "purchase" is not an event type`},
		{"bad dimension", `{"rules":[{"id":"r1","trigger":{"tag_change":{"dimension":"mood"}},"action":{"type":"dm","text":"hi"}}]}`, `trigger.tag_change.dimension: "mood"`},
		{"bad tag word", `{"rules":[{"id":"r1","trigger":{"tag_change":{"dimension":"activity","to":["hyper"]}},"action":{"type":"dm","text":"hi"}}]}`, `trigger.tag_change.to: "hyper" is not a activity tag`},
		{"bad timer kind", `{"rules":[{"id":"r1","trigger":{"timer":{"kind":"cron"}},"action":{"type":"dm","text":"hi"}}]}`, `trigger.timer.kind: "cron" is not stay or after`},
		{"stay too short", `{"rules":[{"id":"r1","trigger":{"timer":{"kind":"stay","threshold":"10ms"}},"action":{"type":"dm","text":"hi"}}]}`, "trigger.timer.threshold"},
		{"after no event", `{"rules":[{"id":"r1","trigger":{"timer":{"kind":"after","delay":"7d"}},"action":{"type":"dm","text":"hi"}}]}`, "trigger.timer.event"},
		{"after bad delay", `{"rules":[{"id":"r1","trigger":{"timer":{"kind":"after","event":"order","delay":"soon"}},"action":{"type":"dm","text":"hi"}}]}`, "trigger.timer.delay"},
		{"unknown name in when", `{"rules":[{"id":"r1","trigger":{"event":["order"]},"when":"viewer.age > 3","action":{"type":"dm","text":"hi"}}]}`, "when: type rules.Viewer has no field age"},
		{"when not bool", `{"rules":[{"id":"r1","trigger":{"event":["order"]},"when":"viewer.orders + 1","action":{"type":"dm","text":"hi"}}]}`, "when: expected bool"},
		{"when type error", `{"rules":[{"id":"r1","trigger":{"event":["order"]},"when":"viewer.name > 3","action":{"type":"dm","text":"hi"}}]}`, "when: invalid operation"},
		{"when too long", `{"rules":[{"id":"r1","trigger":{"event":["order"]},"when":"` + strings.Repeat("true && ", 200) + `true","action":{"type":"dm","text":"hi"}}]}`, "when: longer than 1000 bytes"},
		{"when repeat", `{"rules":[{"id":"r1","trigger":{"event":["order"]},"when":"len(repeat(\"a\", 1000000000)) > 0","action":{"type":"dm","text":"hi"}}]}`, "when:"},
		{"unknown action", `{"rules":[{"id":"r1","trigger":{"event":["order"]},"action":{"type":"email"}}]}`, `action.type: "email" is not prompt, dm, webhook or tag`},
		{"dm no text", `{"rules":[{"id":"r1","trigger":{"event":["order"]},"action":{"type":"dm"}}]}`, "action.text: a dm needs text"},
		{"template syntax", `{"rules":[{"id":"r1","trigger":{"event":["order"]},"action":{"type":"dm","text":"hi {{.Viewer.Name"}}]}`, "action.text: template"},
		{"template field", `{"rules":[{"id":"r1","trigger":{"event":["order"]},"action":{"type":"dm","text":"hi {{.Viewer.Nickname}}"}}]}`, "Nickname"},
		{"template range", `{"rules":[{"id":"r1","trigger":{"event":["order"]},"action":{"type":"dm","text":"{{range 1000000000}}x{{end}}"}}]}`, "range is not allowed"},
		{"printf width", `{"rules":[{"id":"r1","trigger":{"event":["order"]},"action":{"type":"dm","text":"{{printf \"%0999999d\" 1}}"}}]}`, "printf: a width or precision over 100"},
		{"printf precision", `{"rules":[{"id":"r1","trigger":{"event":["order"]},"action":{"type":"dm","text":"{{printf \"%.101f\" 1.0}}"}}]}`, "printf: a width or precision over 100"},
		{"printf width argument", `{"rules":[{"id":"r1","trigger":{"event":["order"]},"action":{"type":"dm","text":"{{printf \"%*d\" 999999 1}}"}}]}`, "printf: a width or precision from an argument"},
		{"template recursion", `{"rules":[{"id":"r1","trigger":{"event":["order"]},"action":{"type":"dm","text":"{{define \"a\"}}{{template \"a\"}}{{end}}{{template \"a\"}}"}}]}`, "not allowed"},
		{"webhook url", `{"rules":[{"id":"r1","trigger":{"event":["order"]},"action":{"type":"webhook","url":"ftp://x"}}]}`, `action.url: "ftp://x" is not an http(s) URL`},
		{"tag word", `{"rules":[{"id":"r1","trigger":{"event":["order"]},"action":{"type":"tag","tag":"Big Spender"}}]}`, "action.tag"},
		{"dm with url", `{"rules":[{"id":"r1","trigger":{"event":["order"]},"action":{"type":"dm","text":"x","url":"http://a"}}]}`, "action: a dm takes text"},
		{"cooldown", `{"rules":[{"id":"r1","trigger":{"event":["order"]},"action":{"type":"dm","text":"hi"},"cooldown":"a while"}]}`, `cooldown: "a while"`},
		{"cap", `{"rules":[{"id":"r1","trigger":{"event":["order"]},"action":{"type":"dm","text":"hi"},"cap":-1}]}`, "cap: -1"},
		{"quiet start", `{"quiet_hours":{"start":"25:00","end":"08:00"},"rules":[]}`, `document: quiet_hours.start: "25:00"`},
		{"quiet mode", `{"quiet_hours":{"start":"22:00","end":"08:00","mode":"later"},"rules":[]}`, "quiet_hours.mode"},
		{"too many", `{"rules":[` + strings.TrimSuffix(strings.Repeat(ok+",", 201), ",") + `]}`, "201 rules, at most 200"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile([]byte(c.doc))
			if err == nil {
				t.Fatal("compiled")
			}
			if !errors.Is(err, ErrBadRules) || problem.KindOf(err) != problem.BadRequest {
				t.Fatalf("error %v is not a BadRequest ErrBadRules", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}

func TestCompileReportsEveryError(t *testing.T) {
	_, err := Compile([]byte(`{"rules":[
		{"id":"a","trigger":{"event":["nope"]},"action":{"type":"dm","text":"hi"}},
		{"id":"b","trigger":{"event":["order"]},"action":{"type":"dm","text":"hi"},"cap":-3}]}`))
	var re *RuleError
	if !errors.As(err, &re) {
		t.Fatalf("no RuleError in %v", err)
	}
	for _, want := range []string{`rule 0 (id "a"): trigger.event[0]`, `rule 1 (id "b"): cap`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q missing from %q", want, err)
		}
	}
}

func TestBadRulesKeepOldSet(t *testing.T) {
	e, _, _ := start(t, mustCompile(t, DefaultRules(time.Minute)), nil)
	before := e.Rules()
	if _, err := e.SetRules([]byte(`{"rules":[{"id":"x","trigger":{"event":["order"]},"when":"viewer.nope","action":{"type":"dm","text":"hi"}}]}`)); err == nil {
		t.Fatal("bad rules accepted")
	}
	if e.Rules() != before || e.Rules().Len() != 6 {
		t.Fatal("a refused document replaced the rules in force")
	}
	if _, err := e.SetRules([]byte(`{"rules":[]}`)); err != nil || e.Rules().Len() != 0 {
		t.Fatalf("good document not put in force: %v", err)
	}
}

func FuzzCompile(f *testing.F) {
	f.Add([]byte(DefaultRules(5 * time.Minute).JSON()))
	f.Add([]byte(`{"rules":[{"id":"r","trigger":{"event":["order"]},"when":"viewer.orders > 1","action":{"type":"dm","text":"{{.Viewer.Name}}"}}]}`))
	f.Add([]byte("rules:\n  - id: a\n    trigger: {timer: {kind: stay, threshold: 2s}}\n    action: {type: prompt, text: hi}\n"))
	f.Add([]byte(`{"quiet_hours":{"start":"22:00","end":"07:30"},"rules":[{"id":"t","trigger":{"tag_change":{"dimension":"preference","to":["shoes"]}},"action":{"type":"tag","tag":"x"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Compile(data)
		if err != nil {
			if !errors.Is(err, ErrBadRules) {
				t.Fatalf("error without ErrBadRules: %v", err)
			}
			return
		}
		// Whatever compiles must evaluate and render without panicking.
		env := sampleEnv()
		for _, r := range s.rules {
			if r.cond != nil {
				e := &Engine{}
				e.log = discardLog()
				e.holds(r, env, nil)
			}
			if _, err := render(r.text, env); err != nil && r.text != nil {
				t.Fatalf("rule %s: template compiled but failed: %v", r.id, err)
			}
		}
	})
}

// FuzzRulesRoundTrip: what GET /api/rules returns for any accepted document can be
// PUT back: it compiles (as an update) to the same document, so the dashboard's
// load-edit-save never turns working rules into refused or different ones.
func FuzzRulesRoundTrip(f *testing.F) {
	f.Add([]byte(DefaultRules(5 * time.Minute).JSON()))
	f.Add([]byte(`{"rules":[{"id":"r","trigger":{"event":["order"]},"when":"viewer.orders > 1","action":{"type":"dm","text":"{{.Viewer.Name}}"}}]}`))
	f.Add([]byte("rules:\n  - id: a\n    trigger: {timer: {kind: stay, threshold: 2s}}\n    action: {type: prompt, text: hi}\n"))
	f.Add([]byte(`{"quiet_hours":{"start":"22:00","end":"07:30"},"rules":[{"id":"t","trigger":{"tag_change":{"dimension":"preference","to":["shoes"]}},"action":{"type":"tag","tag":"x"}}]}`))
	f.Add([]byte("rules:\n  - id: \"a\\u00e9\"\n    enabled: false\n    cooldown: 1d\n    cap: 2\n    trigger: {event: [danmaku]}\n    action: {type: webhook, url: \"https://example.com/h\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Compile(data)
		if err != nil {
			return
		}
		out := s.Document().JSON()
		again, err := CompileUpdate(out)
		if err != nil {
			t.Fatalf("GET gave %s, which PUT refuses: %v", out, err)
		}
		if back := again.Document().JSON(); !bytes.Equal(back, out) {
			t.Fatalf("PUT of %s keeps %s", out, back)
		}
	})
}
