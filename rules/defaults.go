package rules

import "time"

// Default rule ids.
const (
	RuleStay         = "stay-no-order"
	RuleFirstThanks  = "first-order-thanks"
	RuleFirstFollow  = "first-order-follow-up"
	RuleActivePerk   = "active-fan-perk"
	RuleWelcomeTag   = "welcome-back"
	RuleWelcomeVisit = "welcome-back-visit"
)

// DefaultRules is the shipped playbook: a long stay without an order earns one prompt
// per live, at most one an hour; a first order earns a thank-you DM at once and a follow-up prompt 7 days
// later; a fan whose activity becomes high earns a member-perk prompt; a dormant or
// churned fan who comes back earns a "welcome back" recall-offer prompt (caught either
// by the tag change or by a visit while still tagged; the two share one cooldown).
func DefaultRules(stayThreshold time.Duration) Document {
	return Document{Rules: []RuleSpec{
		{
			ID: RuleStay, Name: "Watched a while without buying",
			Trigger: TriggerSpec{Timer: &TimerSpec{Kind: TimerStay, Threshold: stayThreshold.String()}},
			When:    "session.orders == 0",
			// A host whose connection drops goes live again at once, which is a new live:
			// its lingering viewers are not put before the agents a second time.
			Cooldown: "1h",
			Action: ActionSpec{Type: ActPrompt, Text: `Hi {{default "there" .Viewer.Name}}! ` +
				`{{if .Viewer.LastComment}}You asked "{{truncate 60 .Viewer.LastComment}}" — happy to help. {{end}}` +
				`{{if .Viewer.LastCategory}}Can I help you choose in {{.Viewer.LastCategory}}?{{else}}Anything I can help you find?{{end}}`},
		},
		{
			ID: RuleFirstThanks, Name: "Thank a first order",
			Trigger: TriggerSpec{Event: []string{"order"}},
			When:    "viewer.orders == 1",
			Action:  ActionSpec{Type: ActDM, Text: `Thank you for your first order, {{default "friend" .Viewer.Name}}! Write to us here any time.`},
			Cap:     1,
		},
		{
			ID: RuleFirstFollow, Name: "Follow up a first order after 7 days",
			Trigger: TriggerSpec{Timer: &TimerSpec{Kind: TimerAfter, Event: "order", Delay: "7d"}},
			When:    "viewer.orders == 1",
			Action: ActionSpec{Type: ActPrompt,
				Reason: `first order {{.Event.OrderID}} 7 days ago`,
				Text:   `Hi {{default "there" .Viewer.Name}}, how are you finding your {{default "order" .Event.Category}}? Anything we can help with?`},
			Cap: 1,
		},
		{
			ID: RuleActivePerk, Name: "Member perk for a highly active fan",
			Trigger:  TriggerSpec{TagChange: &TagChangeSpec{Dimension: "activity", To: []string{"high"}}},
			Action:   ActionSpec{Type: ActPrompt, Reason: `activity became high ({{.Viewer.Sessions}} sessions, {{.Viewer.Comments}} comments)`, Text: `Hi {{default "there" .Viewer.Name}}, thanks for being one of our most active fans! Here is a member perk for you.`},
			Cooldown: "30d",
		},
		{
			ID: RuleWelcomeTag, Name: "Welcome back a dormant or churned fan",
			Trigger:  TriggerSpec{TagChange: &TagChangeSpec{Dimension: "activity", From: []string{"dormant", "churned"}, To: []string{"high", "medium", "low"}}},
			Action:   ActionSpec{Type: ActPrompt, Reason: `back after being {{.Event.From}}`, Text: welcomeText},
			Cooldown: "7d", Group: "welcome-back",
		},
		{
			ID: RuleWelcomeVisit, Name: "Welcome back on a visit while still dormant or churned",
			Trigger:  TriggerSpec{Event: []string{"join", "watch_start"}},
			When:     `viewer.tags.activity in ["dormant", "churned"] || viewer.tags.lifecycle in ["dormant", "churned"]`,
			Action:   ActionSpec{Type: ActPrompt, Reason: `back after being {{.Viewer.Tags.Activity}}`, Text: welcomeText},
			Cooldown: "7d", Group: "welcome-back",
		},
	}}
}

const welcomeText = `Welcome back, {{default "friend" .Viewer.Name}}! We missed you — here is a recall offer just for you.`
