// Package peer holds real pion WHIP/WHEP clients: a publisher that loops an H.264 +
// Opus clip and viewers that count what they receive (packets, sequence gaps, time to
// the first keyframe). Tests drive the relay with them and `liveroom bench media`
// loads any WHIP/WHEP server with them. It talks HTTP to the server only.
package peer
