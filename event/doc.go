// Package event defines the one event type that chat and media publish and segment
// consumes (the "tap"), and a bounded, non-blocking queue that carries it.
//
// It imports none of media, chat or segment; they all import it.
package event
