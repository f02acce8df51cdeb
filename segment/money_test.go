package segment

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func TestParseMoney(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Money
		out  string
	}{
		{"12", 12_000_000, "12.00"},
		{"12.5", 12_500_000, "12.50"},
		{"0.99", 990_000, "0.99"},
		{"-3.25", -3_250_000, "-3.25"},
		{".5", 500_000, "0.50"},
		{"0.000001", 1, "0.000001"},
		{"1234567.123456", 1_234_567_123_456, "1234567.123456"},
	} {
		got, err := ParseMoney(c.in)
		if err != nil || got != c.want || got.String() != c.out {
			t.Errorf("ParseMoney(%q) = %d (%s), %v; want %d (%s)", c.in, got, got, err, c.want, c.out)
		}
	}
	for _, bad := range []string{"", "-", "1.", "1e3", "1,000", "12.1234567", "abc", "1.2.3", "99999999999999999999", " 1"} {
		if _, err := ParseMoney(bad); !errors.Is(err, ErrBadMoney) {
			t.Errorf("ParseMoney(%q) error = %v, want ErrBadMoney", bad, err)
		}
	}
}

func TestMoneySumsExact(t *testing.T) {
	var sum Money
	dime, _ := ParseMoney("0.10")
	for range 1_000_000 {
		sum += dime
	}
	if sum.String() != "100000.00" {
		t.Fatalf("a million dimes = %s", sum)
	}
}

func TestMoneyConvert(t *testing.T) {
	for _, c := range []struct{ amount, rate, want string }{
		{"100", "1.1", "110.00"},
		{"19.99", "1.08", "21.5892"},
		{"1000", "0.0067", "6.70"},
		{"0.000001", "0.5", "0.000001"}, // half rounds away from zero
		{"-0.000001", "0.5", "-0.000001"},
		{"5", "1", "5.00"},
	} {
		a, _ := ParseMoney(c.amount)
		r, _ := ParseMoney(c.rate)
		got, err := a.Convert(r)
		if err != nil || got.String() != c.want {
			t.Errorf("%s × %s = %s, %v; want %s", c.amount, c.rate, got, err, c.want)
		}
	}
}

// TestMoneyTextAgreesWithFmt checks the allocation-free text against the plain
// formatting it replaced, over random amounts and the edges.
func TestMoneyTextAgreesWithFmt(t *testing.T) {
	plain := func(m Money) string {
		u, sign := uint64(m), ""
		if m < 0 {
			u, sign = uint64(-m), "-"
		}
		frac := strings.TrimRight(fmt.Sprintf("%06d", u%moneyScale), "0")
		for len(frac) < 2 {
			frac += "0"
		}
		return sign + strconv.FormatUint(u/moneyScale, 10) + "." + frac
	}
	r := rand.New(rand.NewPCG(1, 2))
	cases := []Money{0, 1, -1, 10, 100_000, 1_000_000, -1_000_000, 1_230_000, 999_999, math.MaxInt64, math.MinInt64, math.MinInt64 + 1}
	for range 10_000 {
		cases = append(cases, Money(r.Int64N(1<<40)-1<<39), Money(r.Int64N(1000))*10_000)
	}
	for _, m := range cases {
		if got, want := m.String(), plain(m); got != want {
			t.Fatalf("Money(%d).String() = %q, want %q", int64(m), got, want)
		}
	}
}

// A sum of Money stops at its largest or smallest rather than wrapping to the other
// sign.
func TestMoneyAddStopsAtItsBounds(t *testing.T) {
	for _, c := range []struct{ m, n, want Money }{
		{1, 2, 3},
		{-1, -2, -3},
		{math.MaxInt64 - 1, 1, math.MaxInt64},
		{math.MaxInt64 - 1, 5, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64, math.MaxInt64},
		{math.MinInt64 + 1, -5, math.MinInt64},
		{math.MaxInt64, math.MinInt64, -1},
		{math.MaxInt64, 0, math.MaxInt64},
	} {
		if got := c.m.add(c.n); got != c.want {
			t.Errorf("%d + %d = %d, want %d", c.m, c.n, got, c.want)
		}
	}
}

// Two orders each as large as an order may be (about 9.2 trillion) make a spend at
// the largest Money, not a negative one: the profile, its day and the RFM monetary
// figure (a 365-day window) all stop there.
func TestSpendStopsAtItsLargest(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	importJSON(t, e, "["+orderJSON("e1", "v", 3, "5000000000000", "shoes")+","+orderJSON("e2", "v", 3, "5000000000000", "shoes")+"]")
	v := viewer(t, e, "v")
	w := held(e, "v", func(p *Profile) window { return p.window(dayOf(t0.UnixMilli()), 365) })
	if v.Spend != math.MaxInt64 || w.Spend != math.MaxInt64 || v.AOV <= 0 {
		t.Fatalf("spend %s, in the year's window %s, average order %s; want the largest Money", v.Spend, w.Spend, v.AOV)
	}
}

// FuzzParseMoney: an amount is refused with ErrBadMoney or read exactly: its String
// reads back to the same Money, and the JSON forms (number or string) agree with it.
// Conversion by any rate either overflows with ErrBadMoney or stays within a
// millionth of the exact product.
func FuzzParseMoney(f *testing.F) {
	for _, s := range []string{"12", "12.5", "0.99", "-3.25", ".5", "0.000001", "1234567.123456", "+7",
		"", "-", "1.", "1e3", "1,000", "12.1234567", "abc", "1.2.3", "99999999999999999999", " 1",
		"9223372036853.999999", "9223372036854", "-0", "00012.000"} {
		f.Add(s, "1.5")
	}
	f.Fuzz(func(t *testing.T, s, rate string) {
		m, err := ParseMoney(s)
		if err != nil {
			if !errors.Is(err, ErrBadMoney) {
				t.Fatalf("ParseMoney(%q): error without ErrBadMoney: %v", s, err)
			}
			return
		}
		again, err := ParseMoney(m.String())
		if err != nil || again != m {
			t.Fatalf("ParseMoney(%q) = %d, written %q, read back as %d, %v", s, m, m.String(), again, err)
		}
		for _, js := range []string{s, strconv.Quote(s)} {
			var j Money
			if err := j.UnmarshalJSON([]byte(js)); err != nil || j != m {
				t.Fatalf("UnmarshalJSON(%s) = %d, %v; want %d", js, j, err, m)
			}
		}
		b, _ := m.MarshalJSON()
		var j Money
		if err := j.UnmarshalJSON(b); err != nil || j != m {
			t.Fatalf("MarshalJSON(%d) = %s, read back as %d, %v", m, b, j, err)
		}
		r, err := ParseMoney(rate)
		if err != nil {
			return
		}
		c, err := m.Convert(r)
		if err != nil {
			if !errors.Is(err, ErrBadMoney) {
				t.Fatalf("Convert: error without ErrBadMoney: %v", err)
			}
			return
		}
		exact := new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(int64(m)), big.NewInt(int64(r))), big.NewInt(moneyScale))
		diff := new(big.Rat).Sub(exact, new(big.Rat).SetInt64(int64(c)))
		if diff.Abs(diff).Cmp(big.NewRat(1, 2)) > 0 {
			t.Fatalf("%s × %s = %s, exact %s", m, r, c, exact.FloatString(6))
		}
	})
}
