package chat

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/liveroom/liveroom/token"
)

// longestUser is the longest user id a token may carry.
var longestUser = strings.Repeat("u", token.MaxUserLen)

func TestDecodeFrame(t *testing.T) {
	ok := []struct {
		frame string
		want  clientMsg
	}{
		{`{"type":"danmaku","text":" hi ","id":"x1"}`, clientMsg{Type: msgDanmaku, Text: "hi", ID: "x1"}},
		{`{"type":"like"}`, clientMsg{Type: msgLike, Count: 1}},
		{`{"type":"like","count":100}`, clientMsg{Type: msgLike, Count: 100}},
		{`{"type":"gift","gift":"rose","count":3}`, clientMsg{Type: msgGift, Gift: "rose", Count: 3}},
		{`{"type":"dm","text":"hello"}`, clientMsg{Type: msgDM, Text: "hello"}},
		{`{"type":"product_click","product":"SKU-9"}`, clientMsg{Type: msgProductClick, SKU: "SKU-9"}},
		{`{"type":"mute","user":"u","for":"90s"}`, clientMsg{Type: msgMute, User: "u", For: 90e9}},
		{`{"type":"ban","user":"u","for":30}`, clientMsg{Type: msgBan, User: "u", For: 30e9}},
		{`{"type":"delete","seq":12}`, clientMsg{Type: msgDelete, Seq: 12}},
		{`{"type":"slow","for":"5s"}`, clientMsg{Type: msgSlow, For: 5e9}},
		{`{"type":"pin","product":null}`, clientMsg{Type: msgPin}},
		{`{"type":"ping"}`, clientMsg{Type: msgPing}},
		// Every user a token admits can be named.
		{`{"type":"ban","user":"` + longestUser + `"}`, clientMsg{Type: msgBan, User: longestUser}},
		{`{"type":"dm","to":"` + longestUser + `","text":"hi"}`, clientMsg{Type: msgDM, To: longestUser, Text: "hi"}},
	}
	for _, tc := range ok {
		got, err := decodeFrame([]byte(tc.frame))
		if err != nil || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v", tc.frame, got, err, tc.want)
		}
	}
	// A currency is upper-cased, as the rates are keyed.
	if m, err := decodeFrame([]byte(`{"type":"pin","product":{"sku":"a","price":5,"currency":"usd"}}`)); err != nil || m.Product == nil || m.Product.Currency != "USD" {
		t.Errorf("pin in usd: %+v %v", m.Product, err)
	}
	bad := []struct{ frame, code, mention string }{
		{``, codeBadRequest, "JSON"},
		{`{}`, codeBadRequest, "type is required"},
		{`{"type":"danmaku"}`, codeBadRequest, "text is required"},
		{`{"type":"danmaku","text":""}`, codeBadRequest, "empty"},
		{`{"type":"danmaku","text":"` + strings.Repeat("a", 201) + `"}`, codeTooLong, "201 characters"},
		{`{"type":"danmaku","text":"a\u0000"}`, codeBadRequest, "control"},
		{`{"type":"danmaku","text":"\ud800"}`, codeBadRequest, "control"},
		{`{"type":"like","count":0}`, codeBadRequest, "count"},
		{`{"type":"gift","count":1}`, codeBadRequest, "gift"},
		{`{"type":"mute"}`, codeBadRequest, "user"},
		{`{"type":"mute","user":"u","for":"soon"}`, codeBadRequest, "duration"},
		{`{"type":"mute","user":"u","for":-1}`, codeBadRequest, "duration"},
		{`{"type":"mute","user":"u","for":"100000h"}`, codeBadRequest, "at most a year"},
		{`{"type":"mute","user":"u","for":31536001}`, codeBadRequest, "at most a year"},
		{`{"type":"mute","user":"u","for":0}`, codeBadRequest, "more than 0"},
		{`{"type":"ban","user":"u","for":"0s"}`, codeBadRequest, "more than 0"},
		{`{"type":"delete"}`, codeBadRequest, "seq"},
		{`{"type":"product_click","product":{"sku":"x"}}`, codeBadRequest, "sku string"},
		{`{"type":"pin","product":{"sku":""}}`, codeBadRequest, "sku"},
		{`{"type":"pin","product":{"sku":"a","url":"javascript:alert(1)"}}`, codeBadRequest, "url"},
		{`{"type":"pin","product":{"sku":"a","price":-1}}`, codeBadRequest, "price"},
		{`{"type":"pin","product":{"sku":"a","currency":"u$d"}}`, codeBadRequest, "currency"},
		{`{"type":"danmaku","text":"x"} {"type":"ping"}`, codeBadRequest, "exactly one"},
		{`{"type":"nope"}`, codeBadRequest, "unknown type"},
		{`{"type":"mute","user":"` + longestUser + `x"}`, codeBadRequest, "user"},
		{`{"type":"dm","to":"` + longestUser + `x","text":"hi"}`, codeBadRequest, "to"},
	}
	for _, tc := range bad {
		_, err := decodeFrame([]byte(tc.frame))
		var fe *frameError
		if !errors.As(err, &fe) || fe.Code != tc.code || !strings.Contains(fe.Message, tc.mention) {
			t.Errorf("%s: got %v; want %s mentioning %q", tc.frame, err, tc.code, tc.mention)
		}
	}
}

// A long unknown type is quoted cut at a character, not a byte: the refusal's message
// stays valid UTF-8 however the type is written.
func TestUnknownTypeCutAtACharacter(t *testing.T) {
	_, err := decodeFrame([]byte(`{"type":"` + strings.Repeat("é", 40) + `"}`))
	var fe *frameError
	if !errors.As(err, &fe) || !utf8.ValidString(fe.Message) || !strings.Contains(fe.Message, strings.Repeat("é", 32)+"…") {
		t.Fatalf("got %v; want the type cut at 32 characters, valid UTF-8", err)
	}
}

// FuzzFrame: no input panics the decoder, every refusal is a frameError, and what it
// accepts satisfies the protocol's limits.
func FuzzFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"danmaku","text":"hi","id":"1"}`, `{"type":"like","count":5}`,
		`{"type":"gift","gift":"rose","count":2}`, `{"type":"dm","to":"v","text":"x"}`,
		`{"type":"product_click","product":"S"}`, `{"type":"mute","user":"u","for":"1m"}`,
		`{"type":"delete","seq":3}`, `{"type":"ping"}`, `{"type":"slow","for":2.5}`,
		`{"type":"pin","product":{"sku":"a","title":"t","price":1,"url":"https://x.y/z"}}`,
		`[]`, `null`, `{"type":"danmaku","text":"\u0007"}`, "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeFrame(b)
		if err != nil {
			var fe *frameError
			if !errors.As(err, &fe) || fe.Code == "" || fe.Message == "" {
				t.Fatalf("refusal %v is not a frameError with code and message", err)
			}
			return
		}
		if _, ok := mayUse[m.Type]; !ok {
			t.Fatalf("accepted unknown type %q", m.Type)
		}
		switch m.Type {
		case msgDanmaku, msgDM:
			n := utf8.RuneCountInString(m.Text)
			if n == 0 || n > maxDMRunes || !printable(m.Text) || strings.TrimSpace(m.Text) != m.Text {
				t.Fatalf("accepted text %q", m.Text)
			}
			if m.Type == msgDanmaku && n > maxTextRunes {
				t.Fatalf("accepted a %d-character danmaku", n)
			}
		case msgLike, msgGift:
			if m.Count < 1 || m.Count > maxGiftCount {
				t.Fatalf("accepted count %d", m.Count)
			}
		case msgMute, msgBan, msgSlow:
			if m.For < 0 {
				t.Fatalf("accepted negative duration %s", m.For)
			}
		case msgPin:
			if m.Product != nil && (m.Product.SKU == "" || m.Product.Price < 0) {
				t.Fatalf("accepted product %+v", m.Product)
			}
		}
	})
}

func TestKeywordFilter(t *testing.T) {
	f, err := newKeywordFilter([]string{"bad", "ÉVIL", "a.b"}, KeywordMask)
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"a BAD day": "a *** day", "évil twin": "**** twin", "axb a.b": "axb ***", "fine": "fine",
	} {
		if got, blocked := f.apply(in); got != want || blocked {
			t.Errorf("mask(%q) = %q, %v; want %q", in, got, blocked, want)
		}
	}
	f, _ = newKeywordFilter([]string{"bad"}, KeywordBlock)
	if _, blocked := f.apply("so Bad"); !blocked {
		t.Error("block did not block")
	}
}

func TestHistoryKeepsCountOrAge(t *testing.T) {
	h := history{keep: 3, max: 5, age: 10e9}
	t0 := mustTime("2026-01-01T00:00:00Z")
	for i := uint64(1); i <= 5; i++ {
		h.add(entry{seq: i, at: t0})
	}
	if h.len() != 5 || h.oldest() != 1 {
		t.Fatalf("young events dropped: len %d oldest %d", h.len(), h.oldest())
	}
	h.add(entry{seq: 6, at: t0.Add(11e9)}) // beyond max and the old ones aged out
	if h.len() != 3 || h.oldest() != 4 {
		t.Fatalf("len %d oldest %d, want 3 and 4", h.len(), h.oldest())
	}
	if e := h.find(5); e == nil || e.seq != 5 || h.find(2) != nil {
		t.Fatal("find")
	}
	if got := len(h.after(4, 6)); got != 2 {
		t.Fatalf("after(4) = %d events", got)
	}
}

// FuzzPromptEvent: the hand-written prompt encoding is byte for byte encoding/json's
// of the same event, for any text (the seeds cover every ASCII byte, HTML, invalid
// UTF-8 and the two line separators JSON leaves alone but JavaScript does not).
func FuzzPromptEvent(f *testing.F) {
	var ascii strings.Builder
	for c := range 128 {
		ascii.WriteByte(byte(c))
	}
	f.Add("v1", "", "", "", "", "")
	f.Add("v2", "Ann <b>&amp;", "high", "watched 5m0s\n", "Hi \"Ann\" \u2028\u2029 \xff\xfe", "p123")
	f.Add(ascii.String(), ascii.String(), "\x00\x1f\x7f", "é€😀", "\xed\xa0\x80", "\\")
	f.Fuzz(func(t *testing.T, id, name, tag, reason, suggested, promptID string) {
		p := Prompt{Viewer: PromptViewer{ID: id, Name: name}, Reason: reason, Suggested: suggested, PromptID: promptID}
		if tag != "" {
			p.Viewer.Tags = []string{tag, tag + "2"}
		}
		v := p.Viewer
		want := mustJSON(&outEvent{Type: evPrompt, At: 1764000000123, Viewer: &v, Reason: p.Reason, Suggested: p.Suggested, PromptID: p.PromptID})
		got := appendPromptEvent(nil, 1764000000123, &p)
		if string(got) != string(want) {
			t.Fatalf("prompt event\n got %s\nwant %s", got, want)
		}
		if !strings.Contains(string(got), `,"name":"`) { // the contract's viewer (id, name, tags), a guest's too
			t.Fatalf("no viewer name in %s", got)
		}
	})
}

// FuzzKeywordFilter: for any configured word (1 to 100 bytes, as Validate allows) and
// any text, masking keeps the text's length in characters (a comment within the limit
// stays within it) and leaves valid UTF-8 valid, and blocking refuses every text that
// holds the word as written.
func FuzzKeywordFilter(f *testing.F) {
	f.Add("bad", "a BAD day")
	f.Add("ÉVIL", "évil twin")
	f.Add("a.b", "axb a.b")
	f.Add("k", "\u212a\xff")
	f.Fuzz(func(t *testing.T, word, text string) {
		if len(word) == 0 || len(word) > 100 || !utf8.ValidString(word) { // YAML gives only UTF-8
			return
		}
		mask, err := newKeywordFilter([]string{word}, KeywordMask)
		if err != nil {
			t.Fatalf("word %q: %v", word, err)
		}
		out, blocked := mask.apply(text)
		if blocked || utf8.RuneCountInString(out) != utf8.RuneCountInString(text) || utf8.ValidString(text) && !utf8.ValidString(out) {
			t.Fatalf("mask %q on %q gave %q, %v", word, text, out, blocked)
		}
		block, _ := newKeywordFilter([]string{word}, KeywordBlock)
		if _, blocked := block.apply(text); strings.Contains(text, word) && !blocked {
			t.Fatalf("block %q let %q through", word, text)
		}
	})
}
