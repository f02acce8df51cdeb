// Package chat is the live room's interaction layer: danmaku, likes, gifts, presence,
// pinned product, moderation and private messages over WebSocket connections that the
// gateway has authenticated and upgraded. It publishes every interaction on the event
// tap. It knows nothing of HTTP status codes, media or segment.
//
// Structure: a Hub owns the rooms; one goroutine per room (room.run) owns its state and
// hands out seq. Fan-out does not go event by event through anything: each flush tick
// encodes the room's new events once into a websocket.PreparedMessage and queues it on
// every connection's bounded queue (conn.push never blocks). A connection's writer
// goroutine exists only while its queue holds frames; its reader goroutine decodes and
// validates client frames (protocol.go) before handing them to the room.
//
// Durable state (likes total, pin, seq ceiling, mutes/bans, DM history) sits behind the
// small Store interface: BoltStore (<data>/chat.db) for the embedded default and
// MemoryStore for tests.
package chat
