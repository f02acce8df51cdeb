// Package chat is the live room's interaction layer: danmaku, likes, gifts, presence,
// pinned product, moderation and private messages over WebSocket connections that the
// gateway has authenticated and upgraded. It publishes every interaction on the event
// tap. It knows nothing of HTTP status codes, media or segment.
//
// Structure: a Hub owns the rooms; one goroutine per room (room.run) owns its state and
// hands out seq. Connections pull the room's events (fanout.go): each flush appends
// the new events, encoded once, to the room's log, and cycles over the connections, on
// a few fan-out workers, write each its unsent events in one frame without blocking.
// A connection's writer goroutine exists only while its own frames are queued
// (conn.push never blocks); its reader goroutine decodes and validates client frames
// (protocol.go) before handing them to the room.
//
// Durable state (likes total, pin, seq ceiling, mutes/bans, DM history) sits behind the
// small Store interface: BoltStore (<data>/chat.db) for the embedded default and
// MemoryStore for tests.
package chat
