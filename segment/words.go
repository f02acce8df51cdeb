package segment

import (
	"encoding/json"
	"strings"

	"github.com/liveroom/liveroom/segment/rfm"
)

// tagWord is a tag word of activity, value or lifecycle, or an RFM segment, by its
// number in a process-wide table: a profile holds its four in four bytes instead of
// four strings (64), which with the consent's byte brings it from the 448-byte size
// class to the 384. Its JSON form is the word.
type tagWord uint8

// tagWords numbers the words; the fixed ones first. Up to 255 words: past that (only
// words read from a store written by another version could be new) a word reads "".
var tagWords = newTable[string](256, rfm.NoOrders,
	High, Medium, Low, Dormant, Churned, NewViewer, FirstPurchase, Repeat, Loyal,
	rfm.VIP, rfm.Important, rfm.Potential, rfm.Ordinary,
	rfm.Champions, rfm.LoyalCustomers, rfm.PotentialLoyal, rfm.NewCustomers, rfm.Promising, rfm.NeedAttention,
	rfm.AboutToSleep, rfm.AtRisk, rfm.CantLoseThem, rfm.Hibernating, rfm.Lost)

// fixedWords are the numbers of the words the engine itself gives, read without the
// table's lock (a tag change numbers its word on the tap's hot path).
var fixedWords = func() map[string]tagWord {
	m := map[string]tagWord{}
	for n := range tagWords.size() {
		m[tagWords.value(uint32(n))] = tagWord(n)
	}
	return m
}()

// The engine's own words by number: the tags worked out on every event compare and
// keep a byte, with no lookup.
var (
	wordHigh, wordMedium, wordLow = wordOf(High), wordOf(Medium), wordOf(Low)
	wordDormant, wordChurned      = wordOf(Dormant), wordOf(Churned)
	wordNew, wordFirstPurchase    = wordOf(NewViewer), wordOf(FirstPurchase)
	wordRepeat, wordLoyal         = wordOf(Repeat), wordOf(Loyal)
)

// tiers holds the value tier of each fixed segment word, by number.
var tiers = func() []tagWord {
	t := make([]tagWord, tagWords.size())
	for seg := range t {
		t[seg] = wordOf(rfm.Tier(tagWords.value(uint32(seg))))
	}
	return t
}()

// tierOf is the value tier's word of the RFM segment word seg.
func tierOf(seg tagWord) tagWord {
	if int(seg) < len(tiers) {
		return tiers[seg]
	}
	return wordOf(rfm.Tier(seg.String())) // a word read from another version's store
}

// wordOf numbers w.
func wordOf(w string) tagWord {
	if n, ok := fixedWords[w]; ok {
		return n
	}
	return tagWord(tagWords.id(w, strings.Clone))
}

func (w tagWord) String() string { return tagWords.value(uint32(w)) }

func (w tagWord) MarshalJSON() ([]byte, error) { return json.Marshal(w.String()) }

func (w *tagWord) UnmarshalJSON(b []byte) error {
	return decodeAs(b, func(s string) { *w = wordOf(s) })
}

// consent is a viewer's answer to whether they accept messages: 0 when they never
// gave one (a byte instead of a pointer to a bool). Its JSON form is the bool.
type consent uint8

// The store's numbers too (codec.go).
const (
	consentYes consent = 1 + iota
	consentNo
)

func consentOf(yes bool) consent {
	if yes {
		return consentYes
	}
	return consentNo
}

// get is the answer, nil when none was given.
func (c consent) get() *bool {
	if c == 0 {
		return nil
	}
	yes := c == consentYes
	return &yes
}

func (c consent) MarshalJSON() ([]byte, error) { return json.Marshal(c.get()) }

func (c *consent) UnmarshalJSON(b []byte) error {
	return decodeAs(b, func(v *bool) {
		*c = 0
		if v != nil {
			*c = consentOf(*v)
		}
	})
}
