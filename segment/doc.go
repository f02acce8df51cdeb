// Package segment keeps every viewer's profile and tags on four dimensions (activity,
// value, lifecycle, preference) live from the event tap and imported events, and runs
// the rules that act on them. It knows nothing of HTTP status codes, chat or media; it
// answers through a narrow "send to agents / send DM" interface.
package segment
