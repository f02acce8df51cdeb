// Package segment is the live fan segmentation engine: it reads the event tap (chat and
// media interactions) and imported events (orders, history), keeps one profile per
// viewer with daily buckets for rolling 30/90/365-day figures, tags every viewer on four
// dimensions (activity, value, lifecycle, preference) with the reason and since when,
// scores RFM, and answers the profile, segment and analytics queries.
//
// Hot state lives in memory, sharded by viewer; changes are written through to a Store
// in batches (imports before they are acknowledged). Every tag change is itself an
// event, handed to subscribers (the rules of the next layer).
//
// It knows nothing of HTTP, chat or media: the gateway maps its problem errors to
// statuses, and app wires the tap in.
package segment
