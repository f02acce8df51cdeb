package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// Document is a rules file: quiet hours shared by all rules and the rules in order.
// JSON and YAML have the same shape (field names below).
type Document struct {
	// QuietHours, when set, hold back dm and prompt actions during the viewer's local
	// night (their IANA time zone; UTC when unknown).
	QuietHours *QuietSpec `json:"quiet_hours,omitempty" yaml:"quiet_hours,omitempty"`
	Rules      []RuleSpec `json:"rules" yaml:"rules"`
}

// QuietSpec is a daily window in the viewer's local time, "HH:MM" to "HH:MM" (it may
// wrap past midnight). Mode "defer" (the default) sends the action when the window
// ends; "drop" skips it.
type QuietSpec struct {
	Start string `json:"start" yaml:"start"`
	End   string `json:"end" yaml:"end"`
	Mode  string `json:"mode,omitempty" yaml:"mode,omitempty"`
}

// RuleSpec is one rule as written.
type RuleSpec struct {
	ID   string `json:"id" yaml:"id"`
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Enabled defaults to true when absent.
	Enabled *bool       `json:"enabled,omitempty" yaml:"enabled,omitempty"`
	Trigger TriggerSpec `json:"trigger" yaml:"trigger"`
	// When is an expr-lang condition returning bool; empty means always.
	When   string     `json:"when,omitempty" yaml:"when,omitempty"`
	Action ActionSpec `json:"action" yaml:"action"`
	// Cooldown is the least time between two firings for one viewer (Go duration,
	// with "d" for days allowed); empty means none.
	Cooldown string `json:"cooldown,omitempty" yaml:"cooldown,omitempty"`
	// Cap is the most firings for one viewer, ever; 0 means no cap.
	Cap int `json:"cap,omitempty" yaml:"cap,omitempty"`
	// Group, when set, makes rules share one counter per viewer (two ways to catch the
	// same moment must not both fire); each rule checks its own cooldown and cap
	// against that counter.
	Group string `json:"group,omitempty" yaml:"group,omitempty"`
}

// TriggerSpec sets exactly one of Event, TagChange and Timer.
type TriggerSpec struct {
	// Event fires on any of these event types (order, danmaku, watch_start, join, ...).
	Event []string `json:"event,omitempty" yaml:"event,omitempty"`
	// TagChange fires when a viewer's tag on Dimension changes from one of From (any
	// when empty) to one of To (any when empty).
	TagChange *TagChangeSpec `json:"tag_change,omitempty" yaml:"tag_change,omitempty"`
	Timer     *TimerSpec     `json:"timer,omitempty" yaml:"timer,omitempty"`
}

// TagChangeSpec selects tag changes.
type TagChangeSpec struct {
	Dimension string   `json:"dimension" yaml:"dimension"`
	From      []string `json:"from,omitempty" yaml:"from,omitempty"`
	To        []string `json:"to,omitempty" yaml:"to,omitempty"`
}

// TimerSpec is kind "stay" (fires once per viewer per live when they have watched the
// current live for Threshold with no order in it) or kind "after" (fires Delay after
// an event of type Event for which the condition held).
type TimerSpec struct {
	Kind      string `json:"kind" yaml:"kind"`
	Threshold string `json:"threshold,omitempty" yaml:"threshold,omitempty"`
	Event     string `json:"event,omitempty" yaml:"event,omitempty"`
	Delay     string `json:"delay,omitempty" yaml:"delay,omitempty"`
}

// ActionSpec is what a rule does.
type ActionSpec struct {
	// Type is prompt, dm, webhook or tag.
	Type string `json:"type" yaml:"type"`
	// Text is a text/template: the suggested opening line of a prompt, or the DM.
	Text string `json:"text,omitempty" yaml:"text,omitempty"`
	// Reason is an optional template for the prompt's reason; the default describes
	// the viewer's stay ("watched 6m12s, 3 comments, no order").
	Reason string `json:"reason,omitempty" yaml:"reason,omitempty"`
	// URL receives a webhook's signed JSON POST.
	URL string `json:"url,omitempty" yaml:"url,omitempty"`
	// Tag is the custom tag a tag action adds.
	Tag string `json:"tag,omitempty" yaml:"tag,omitempty"`
}

// MaxDocumentBytes bounds a rules document.
const MaxDocumentBytes = 256 << 10

// Parse reads a JSON or YAML rules document, refusing unknown fields.
func Parse(data []byte) (Document, error) {
	var doc Document
	if len(data) > MaxDocumentBytes {
		return doc, fmt.Errorf("document is %d bytes, more than %d", len(data), MaxDocumentBytes)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return doc, errors.New("document is empty")
	}
	if trimmed[0] == '{' || trimmed[0] == '[' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&doc); err != nil {
			return doc, fmt.Errorf("JSON: %w", err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return doc, errors.New("JSON: data after the document")
		}
		return doc, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(trimmed))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return doc, fmt.Errorf("YAML: %w", err)
	}
	return doc, nil
}

// JSON encodes the document (the form GET /api/rules returns).
func (d Document) JSON() []byte {
	if d.Rules == nil {
		d.Rules = []RuleSpec{} // [], not null: a document without rules still lists them
	}
	b, _ := json.MarshalIndent(d, "", "  ") // plain strings, slices and pointers: cannot fail
	return b
}
