// Package chat is the live room's interaction layer: danmaku, likes, gifts, presence,
// pinned product, moderation and private messages over WebSocket connections that the
// gateway has authenticated and upgraded. It publishes every interaction on the event
// tap. It knows nothing of HTTP status codes, media or segment.
package chat
