// Package rules turns segmentation into action. Rules are data (JSON or YAML of one
// shape): a trigger (an event type, a tag change, or a timer: "stay" in the current
// live, or "after" a delay), a condition in expr-lang compiled against a typed
// environment (the viewer, the current session, the triggering event), and one action
// (a prompt to the room's agents, an automatic DM, a signed webhook, or a custom tag),
// limited per viewer by a cooldown, a cap, quiet hours in the viewer's time zone and
// consent.
//
// The Engine evaluates rules on what the segment engine hands it (snapshots of the
// viewer and session, never segment's own types), arms the stay timers on one timer
// wheel, keeps the prompt queues and the log of actions in a State (bbolt or memory),
// and answers through a narrow Outbox that chat implements. It knows nothing of HTTP
// status codes, chat or media: errors carry a problem.Kind.
package rules
