package event

import "unicode"

// Unprintable reports the characters no text of an event may hold (a comment, a DM, a
// name, a product title): control characters, the bidi embedding, override and
// isolate controls — format characters, not Cc, yet controls all the same: an
// unterminated U+202E reverses what a page shows after it on the same line (a name, a
// price) — and the line and paragraph separators. The marks U+200E/U+200F, which
// right-to-left text uses, are printable.
func Unprintable(r rune) bool {
	return unicode.IsControl(r) || r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069 || r == 0x2028 || r == 0x2029
}
