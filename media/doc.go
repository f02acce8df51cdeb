// Package media is the video path: WHIP publishers in, an SFU that fans each live
// room's stream out, WHEP viewers out. It knows nothing of HTTP status codes, chat or
// segment; it reports going live, ending and viewers' watch time on the event tap.
package media
