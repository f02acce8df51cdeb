package segment

import (
	"errors"
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
