package chat

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// keywordFilter masks or blocks configured words, case-insensitively.
type keywordFilter struct {
	re    *regexp.Regexp // nil: no keywords
	block bool
}

func newKeywordFilter(words []string, action string) (*keywordFilter, error) {
	f := &keywordFilter{block: action == KeywordBlock}
	if len(words) == 0 {
		return f, nil
	}
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = regexp.QuoteMeta(w)
	}
	re, err := regexp.Compile(`(?i)` + strings.Join(quoted, "|"))
	if err != nil {
		return nil, err
	}
	f.re = re
	return f, nil
}

// apply returns the text to broadcast, or blocked when it must be refused.
func (f *keywordFilter) apply(text string) (out string, blocked bool) {
	if f.re == nil || !f.re.MatchString(text) {
		return text, false
	}
	if f.block {
		return "", true
	}
	return f.re.ReplaceAllStringFunc(text, func(w string) string {
		return strings.Repeat("*", utf8.RuneCountInString(w))
	}), false
}
