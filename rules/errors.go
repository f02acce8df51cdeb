package rules

import (
	"errors"

	"github.com/liveroom/liveroom/problem"
)

// Sentinel errors; each is wrapped in a problem.Error whose Kind the gateway maps.
var (
	// ErrBadRules: a rules document failed to compile (problem.BadRequest); the rules in
	// force stay unchanged.
	ErrBadRules = errors.New("bad rules")
	// ErrPromptNotFound: no prompt has that id (problem.NotFound).
	ErrPromptNotFound = errors.New("prompt not found")
	// ErrPromptClaimed: another agent holds the prompt (problem.Conflict).
	ErrPromptClaimed = errors.New("prompt claimed by another agent")
	// ErrPromptResolved: the prompt is already resolved (problem.Conflict).
	ErrPromptResolved = errors.New("prompt already resolved")
	// ErrBadOutcome: an empty or too long outcome, or an empty agent (problem.BadRequest).
	ErrBadOutcome = errors.New("bad outcome")
)

func notFound(id string) error {
	return &problem.Error{Kind: problem.NotFound, Code: "prompt_not_found", Message: "no prompt " + quote(id), Err: ErrPromptNotFound}
}

func claimed(by string) error {
	return &problem.Error{Kind: problem.Conflict, Code: "prompt_claimed", Message: "the prompt is claimed by " + quote(by), Err: ErrPromptClaimed}
}

func resolved() error {
	return &problem.Error{Kind: problem.Conflict, Code: "prompt_resolved", Message: "the prompt is already resolved", Err: ErrPromptResolved}
}

func badOutcome(msg string) error {
	return &problem.Error{Kind: problem.BadRequest, Message: msg, Err: ErrBadOutcome}
}

// ErrPrivateAddress refuses a webhook to a non-public address (see webhookClient).
var ErrPrivateAddress = errors.New("webhook to a non-public address refused (rules-webhook-allow-private is off)")

// errNotString: join of a list that holds something other than strings.
var errNotString = errors.New("join: the list holds something other than strings")
