package rules

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/problem"
)

// Limits on what a rules document may hold, so a rule cannot be costly to run.
const (
	MaxRules     = 200
	MaxExprLen   = 1000
	MaxExprNodes = 300
	// MaxExprMemory is the memory budget of one run of a condition (expr counts the
	// elements of ranges, arrays and maps it makes): expr's default (a million) let
	// len(map(1..999999, #*2)) > 0 take half a second of every event's evaluation.
	// Conditions read a viewer's figures and short lists.
	MaxExprMemory     = 10_000
	MaxTemplateLen    = 2000
	MaxTextLen        = 500 // rendered prompt/DM text is cut here
	maxCooldown       = 365 * 24 * time.Hour
	maxCap            = 1000
	minStay, maxStay  = time.Second, 24 * time.Hour
	minDelay          = time.Second
	maxDelay          = 365 * 24 * time.Hour
	maxNameLen        = 100
	maxWordsPerChange = 20
)

// Action types.
const (
	ActPrompt  = "prompt"
	ActDM      = "dm"
	ActWebhook = "webhook"
	ActTag     = "tag"
)

// Timer kinds.
const (
	TimerStay  = "stay"
	TimerAfter = "after"
)

var (
	idPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	tagPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_:-]{0,39}$`)
	hhmm       = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])$`)

	// eventTypes are the tap's event types a rule may trigger on.
	eventTypes = []event.Type{event.Join, event.Leave, event.WatchStart, event.WatchStop,
		event.Watch, event.Danmaku, event.Like, event.Gift, event.ProductClick, event.DM,
		event.Order, event.Consent, event.LiveStart, event.LiveEnd}

	// tagWords are the contract's fixed words; preference words are free (categories).
	tagWords = map[string][]string{
		"activity":   {"high", "medium", "low", "dormant", "churned"},
		"value":      {"vip", "important", "ordinary", "potential"},
		"lifecycle":  {"new", "first_purchase", "repeat", "loyal", "dormant", "churned"},
		"preference": nil,
	}
)

// RuleError names the rule (index and id), the field and what is wrong with it.
type RuleError struct {
	Index  int // -1 for the document itself
	ID     string
	Field  string
	Reason string
}

func (e *RuleError) Error() string {
	where := "document"
	if e.Index >= 0 {
		where = fmt.Sprintf("rule %d", e.Index)
		if e.ID != "" {
			where += fmt.Sprintf(" (id %q)", e.ID)
		}
	}
	if e.Field != "" {
		where += ": " + e.Field
	}
	return where + ": " + e.Reason
}

// Set is a compiled rules document: immutable, safe to share between goroutines.
type Set struct {
	doc     Document
	rules   []*rule
	byEvent map[event.Type][]*rule
	byID    map[string]*rule
	tags    []*rule // tag_change triggers
	stays   []*rule // stay timers
	quiet   *quiet
}

// Document returns the document the set was compiled from.
func (s *Set) Document() Document { return s.doc }

// Len is the number of rules, enabled or not.
func (s *Set) Len() int { return len(s.rules) }

type rule struct {
	id        string
	enabled   bool
	events    []event.Type
	tagDim    string
	tagFrom   []string
	tagTo     []string
	timer     string // "", stay, after
	threshold time.Duration
	delay     time.Duration
	cond      *vm.Program
	warned    atomic.Int64 // when its condition's failure was last logged (Unix ns)
	action    string
	text      *textTemplate
	reason    *textTemplate
	url       string
	tag       string
	cooldown  time.Duration
	cap       int
	group     string
}

// Compile parses and checks a whole document; on any error it returns them all (each a
// RuleError) wrapped in a problem.BadRequest carrying ErrBadRules.
func Compile(data []byte) (*Set, error) {
	doc, err := Parse(data)
	if err != nil {
		return nil, bad([]error{&RuleError{Index: -1, Reason: err.Error()}})
	}
	return CompileDocument(doc)
}

// CompileUpdate is Compile for a document sent to replace the rules in force: it must
// list them ("rules": [] turns every rule off), so that an empty, null or mistyped
// document cannot turn them all off unnoticed.
func CompileUpdate(data []byte) (*Set, error) {
	doc, err := Parse(data)
	if err == nil && doc.Rules == nil {
		err = errors.New(`the document has no "rules" list (send "rules": [] to turn every rule off)`)
	}
	if err != nil {
		return nil, bad([]error{&RuleError{Index: -1, Reason: err.Error()}})
	}
	return CompileDocument(doc)
}

// CompileDocument checks and compiles a parsed document.
func CompileDocument(doc Document) (*Set, error) {
	c := &compiler{}
	set := &Set{doc: doc, byEvent: map[event.Type][]*rule{}, byID: map[string]*rule{}}
	if len(doc.Rules) > MaxRules {
		c.fail(-1, "", "rules", fmt.Sprintf("%d rules, at most %d", len(doc.Rules), MaxRules))
	}
	set.quiet = c.quiet(doc.QuietHours)
	for i, spec := range doc.Rules {
		r := c.rule(i, spec)
		if r == nil {
			continue
		}
		if _, dup := set.byID[r.id]; dup {
			c.fail(i, r.id, "id", "duplicate id")
			continue
		}
		set.byID[r.id] = r
		set.rules = append(set.rules, r)
	}
	if len(c.errs) > 0 {
		return nil, bad(c.errs)
	}
	for _, r := range set.rules {
		if !r.enabled {
			continue
		}
		switch {
		case len(r.events) > 0:
			for _, t := range r.events {
				set.byEvent[t] = append(set.byEvent[t], r)
			}
		case r.tagDim != "":
			set.tags = append(set.tags, r)
		case r.timer == TimerStay:
			set.stays = append(set.stays, r)
		}
	}
	return set, nil
}

func bad(errs []error) error {
	return &problem.Error{Kind: problem.BadRequest, Code: "bad_rules", Message: "rules refused", Err: badRules(errs)}
}

// badRules is every RuleError of one document; errors.Is(err, ErrBadRules) holds.
type badRules []error

func (b badRules) Error() string {
	msgs := make([]string, len(b))
	for i, e := range b {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

func (b badRules) Unwrap() []error { return b }

func (b badRules) Is(target error) bool { return target == ErrBadRules }

type compiler struct{ errs []error }

func (c *compiler) fail(i int, id, field, reason string) {
	c.errs = append(c.errs, &RuleError{Index: i, ID: id, Field: field, Reason: reason})
}

func (c *compiler) quiet(q *QuietSpec) *quiet {
	if q == nil {
		return nil
	}
	out := &quiet{drop: q.Mode == "drop"}
	var ok bool
	if out.start, ok = minuteOfDay(q.Start); !ok {
		c.fail(-1, "", "quiet_hours.start", fmt.Sprintf("%q is not HH:MM (00:00 to 23:59)", q.Start))
	}
	if out.end, ok = minuteOfDay(q.End); !ok {
		c.fail(-1, "", "quiet_hours.end", fmt.Sprintf("%q is not HH:MM (00:00 to 23:59)", q.End))
	}
	if q.Start == q.End && q.Start != "" {
		c.fail(-1, "", "quiet_hours", "start and end are equal")
	}
	if q.Mode != "" && q.Mode != "defer" && q.Mode != "drop" {
		c.fail(-1, "", "quiet_hours.mode", fmt.Sprintf("%q is not defer or drop", q.Mode))
	}
	return out
}

func minuteOfDay(s string) (int, bool) {
	m := hhmm.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	h, _ := strconv.Atoi(m[1])
	mm, _ := strconv.Atoi(m[2])
	return h*60 + mm, true
}

func (c *compiler) rule(i int, s RuleSpec) *rule {
	before := len(c.errs)
	fail := func(field, format string, args ...any) { c.fail(i, s.ID, field, fmt.Sprintf(format, args...)) }
	r := &rule{id: s.ID, enabled: s.Enabled == nil || *s.Enabled, cap: s.Cap, group: s.Group}
	if !idPattern.MatchString(s.ID) {
		fail("id", "%q must be 1-64 of a-z, 0-9, _ and -, starting with a letter or digit", s.ID)
	}
	if len(s.Name) > maxNameLen {
		fail("name", "longer than %d bytes", maxNameLen)
	}
	c.trigger(r, s.Trigger, fail)
	r.cond = c.condition(s.When, fail)
	c.action(r, s.Action, fail)
	if s.Cooldown != "" {
		d, err := parseDuration(s.Cooldown)
		if err != nil || d < 0 || d > maxCooldown {
			fail("cooldown", "%q must be a duration from 0 to 365d", s.Cooldown)
		}
		r.cooldown = d
	}
	if s.Group != "" && !idPattern.MatchString(s.Group) {
		fail("group", "%q must be 1-64 of a-z, 0-9, _ and -", s.Group)
	}
	if s.Cap < 0 || s.Cap > maxCap {
		fail("cap", "%d must be from 0 (no cap) to %d", s.Cap, maxCap)
	}
	if len(c.errs) > before {
		return nil
	}
	return r
}

type failFunc func(field, format string, args ...any)

func (c *compiler) trigger(r *rule, t TriggerSpec, fail failFunc) {
	set := 0
	for _, b := range []bool{len(t.Event) > 0, t.TagChange != nil, t.Timer != nil} {
		if b {
			set++
		}
	}
	if set != 1 {
		fail("trigger", "set exactly one of event, tag_change and timer (%d set)", set)
		return
	}
	switch {
	case len(t.Event) > 0:
		for j, name := range t.Event {
			et, ok := eventType(name)
			if !ok {
				fail(fmt.Sprintf("trigger.event[%d]", j), "%q is not an event type (one of %s)", name, typeNames())
				continue
			}
			if !slices.Contains(r.events, et) {
				r.events = append(r.events, et)
			}
		}
	case t.TagChange != nil:
		tc := t.TagChange
		words, ok := tagWords[tc.Dimension]
		if !ok {
			fail("trigger.tag_change.dimension", "%q is not activity, value, lifecycle or preference", tc.Dimension)
			return
		}
		for _, fl := range []struct {
			field string
			list  []string
		}{{"from", tc.From}, {"to", tc.To}} {
			field, list := fl.field, fl.list
			if len(list) > maxWordsPerChange {
				fail("trigger.tag_change."+field, "more than %d words", maxWordsPerChange)
			}
			for _, w := range list {
				if words != nil && !slices.Contains(words, w) {
					fail("trigger.tag_change."+field, "%q is not a %s tag (one of %s)", w, tc.Dimension, strings.Join(words, ", "))
				}
			}
		}
		r.tagDim, r.tagFrom, r.tagTo = tc.Dimension, tc.From, tc.To
	default:
		c.timer(r, t.Timer, fail)
	}
}

func (c *compiler) timer(r *rule, t *TimerSpec, fail failFunc) {
	r.timer = t.Kind
	switch t.Kind {
	case TimerStay:
		d, err := parseDuration(t.Threshold)
		if err != nil || d < minStay || d > maxStay {
			fail("trigger.timer.threshold", "%q must be a duration from 1s to 24h", t.Threshold)
		}
		if t.Event != "" || t.Delay != "" {
			fail("trigger.timer", "a stay timer takes only threshold")
		}
		r.threshold = d
	case TimerAfter:
		d, err := parseDuration(t.Delay)
		if err != nil || d < minDelay || d > maxDelay {
			fail("trigger.timer.delay", "%q must be a duration from 1s to 365d", t.Delay)
		}
		et, ok := eventType(t.Event)
		if !ok {
			fail("trigger.timer.event", "%q is not an event type (one of %s)", t.Event, typeNames())
		}
		if t.Threshold != "" {
			fail("trigger.timer", "an after timer takes event and delay, not threshold")
		}
		r.delay, r.events = d, []event.Type{et}
	default:
		fail("trigger.timer.kind", "%q is not stay or after", t.Kind)
	}
}

// condition compiles a condition against Env with strict typing: unknown names, a
// non-bool result and costly builtins are refused.
func (c *compiler) condition(src string, fail failFunc) *vm.Program {
	if strings.TrimSpace(src) == "" {
		return nil
	}
	if len(src) > MaxExprLen {
		fail("when", "longer than %d bytes", MaxExprLen)
		return nil
	}
	opts := append([]expr.Option{expr.Env(Env{}), expr.AsBool(), expr.MaxNodes(MaxExprNodes),
		expr.DisableBuiltin("repeat"), expr.DisableBuiltin("now"), expr.DisableBuiltin("date")}, boundedStrings...)
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		fail("when", "%s", oneLine(err.Error()))
		return nil
	}
	return prog
}

func (c *compiler) action(r *rule, a ActionSpec, fail failFunc) {
	r.action = a.Type
	switch a.Type {
	case ActPrompt, ActDM:
		if strings.TrimSpace(a.Text) == "" {
			fail("action.text", "a %s needs text", a.Type)
		}
		r.text = c.template("action.text", a.Text, fail)
		if a.Reason != "" {
			if a.Type != ActPrompt {
				fail("action.reason", "only a prompt has a reason")
			}
			r.reason = c.template("action.reason", a.Reason, fail)
		}
		if a.URL != "" || a.Tag != "" {
			fail("action", "a %s takes text (and reason), not url or tag", a.Type)
		}
	case ActWebhook:
		u, err := url.Parse(a.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fail("action.url", "%q is not an http(s) URL", a.URL)
		}
		if a.Text != "" || a.Tag != "" || a.Reason != "" {
			fail("action", "a webhook takes only url")
		}
		r.url = a.URL
	case ActTag:
		if !tagPattern.MatchString(a.Tag) {
			fail("action.tag", "%q must be 1-40 of a-z, 0-9, _, : and -", a.Tag)
		}
		if a.Text != "" || a.URL != "" || a.Reason != "" {
			fail("action", "a tag action takes only tag")
		}
		r.tag = a.Tag
	default:
		fail("action.type", "%q is not prompt, dm, webhook or tag", a.Type)
	}
}

// template parses src and runs it once on a sample Env, so that a misspelt field is
// refused now rather than when the rule fires.
func (c *compiler) template(field, src string, fail failFunc) *textTemplate {
	if len(src) > MaxTemplateLen {
		fail(field, "longer than %d bytes", MaxTemplateLen)
		return nil
	}
	t, err := template.New(field).Funcs(templateFuncs).Option("missingkey=error").Parse(src)
	if err != nil {
		fail(field, "%s", oneLine(err.Error()))
		return nil
	}
	if err := plainTemplate(t); err != nil {
		fail(field, "%s", err)
		return nil
	}
	tt := newTextTemplate(t)
	if _, err := render(tt, sampleEnv()); err != nil {
		fail(field, "%s", oneLine(err.Error()))
		return nil
	}
	return tt
}

func eventType(name string) (event.Type, bool) {
	for _, t := range eventTypes {
		if string(t) == name {
			return t, true
		}
	}
	return "", false
}

func typeNames() string {
	names := make([]string, len(eventTypes))
	for i, t := range eventTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// parseDuration is time.ParseDuration plus whole days ("7d").
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 36500 {
			return 0, fmt.Errorf("bad days %q", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
