package event

import "testing"

func TestUnprintable(t *testing.T) {
	for r, want := range map[rune]bool{
		'a': false, 'é': false, '中': false, '😀': false, ' ': false,
		'\u200e': false, '\u200f': false, // the marks right-to-left text uses
		'\x00': true, '\n': true, '\t': true, '\x7f': true, '\u0085': true,
		'\u202a': true, '\u202e': true, '\u2066': true, '\u2069': true, '\u2028': true, '\u2029': true,
	} {
		if got := Unprintable(r); got != want {
			t.Errorf("Unprintable(%U) = %v, want %v", r, got, want)
		}
	}
}
