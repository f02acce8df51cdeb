package segment

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Money is an amount in millionths of a currency unit. Integers keep sums exact: a
// million orders of 0.10 add up to exactly 100000.00, which float64 does not promise.
type Money int64

// moneyScale is how many Money units make one currency unit.
const moneyScale = 1_000_000

// moneyDigits is how many decimals a Money holds.
const moneyDigits = 6

// ParseMoney reads a plain decimal string ("12", "12.5", "0.99", "-3.25") exactly.
// Exponents, thousands separators and more than six decimals are refused.
func ParseMoney(s string) (Money, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: empty amount", ErrBadMoney)
	}
	neg := false
	body := s
	if body[0] == '-' || body[0] == '+' {
		neg = body[0] == '-'
		body = body[1:]
	}
	whole, frac, hasDot := strings.Cut(body, ".")
	if whole == "" && frac == "" || hasDot && frac == "" || !digits(whole) || !digits(frac) {
		return 0, fmt.Errorf("%w: %q is not a decimal number like 12.50", ErrBadMoney, s)
	}
	if len(frac) > moneyDigits {
		return 0, fmt.Errorf("%w: %q has more than %d decimals", ErrBadMoney, s, moneyDigits)
	}
	w := int64(0)
	if whole != "" {
		v, err := strconv.ParseInt(whole, 10, 64)
		if err != nil || v > math.MaxInt64/moneyScale-1 {
			return 0, fmt.Errorf("%w: %q is too large", ErrBadMoney, s)
		}
		w = v
	}
	f := int64(0)
	if frac != "" {
		v, _ := strconv.ParseInt(frac+strings.Repeat("0", moneyDigits-len(frac)), 10, 64)
		f = v
	}
	m := Money(w*moneyScale + f)
	if neg {
		m = -m
	}
	return m, nil
}

// add returns m + n, stopping at the largest or smallest Money rather than wrapping:
// one order may be up to about 9.2 trillion (ParseMoney), and two such make a sum
// past int64.
func (m Money) add(n Money) Money {
	if s := m + n; (s > m) == (n > 0) {
		return s
	}
	if n > 0 {
		return math.MaxInt64
	}
	return math.MinInt64
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// MoneyFromFloat converts a float (gift values on the tap) to Money, rounding to the
// nearest millionth. Non-finite values become 0.
func MoneyFromFloat(v float64) Money {
	if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > float64(math.MaxInt64/moneyScale) {
		return 0
	}
	return Money(math.Round(v * moneyScale))
}

// String formats m as a decimal with at least two decimals ("12.50", "0.125").
func (m Money) String() string {
	var buf [32]byte
	return string(m.appendTo(buf[:0]))
}

// appendTo appends m's text to b: at least two decimals, no trailing zeros past them.
func (m Money) appendTo(b []byte) []byte {
	u := uint64(m)
	if m < 0 {
		b = append(b, '-')
		u = uint64(-m)
	}
	b = strconv.AppendUint(b, u/moneyScale, 10)
	b = append(b, '.')
	frac := u % moneyScale
	digits := 0 // of the 6 decimals, those up to the last non-zero one, at least 2
	for d, f := 6, frac; d > 0; d-- {
		if f%10 != 0 {
			digits = d
			break
		}
		f /= 10
	}
	digits = max(digits, 2)
	for scale := uint64(moneyScale / 10); digits > 0; digits-- {
		b = append(b, byte('0'+frac/scale%10))
		scale /= 10
	}
	return b
}

// MarshalJSON writes m as a JSON number whose text is exact ("12.50").
func (m Money) MarshalJSON() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalJSON reads a JSON number or a decimal string exactly.
func (m *Money) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := ParseMoney(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Convert multiplies m by rate (both exact), rounding half away from zero to a millionth.
func (m Money) Convert(rate Money) (Money, error) {
	if rate == moneyScale {
		return m, nil
	}
	p := new(big.Int).Mul(big.NewInt(int64(m)), big.NewInt(int64(rate)))
	q, r := new(big.Int).QuoRem(p, big.NewInt(moneyScale), new(big.Int))
	if r.CmpAbs(big.NewInt(moneyScale/2)) >= 0 {
		if p.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	if !q.IsInt64() {
		return 0, fmt.Errorf("%w: %s × %s overflows", ErrBadMoney, m, rate)
	}
	return Money(q.Int64()), nil
}

// Div returns m/n rounded toward zero (averages); 0 when n is 0.
func (m Money) Div(n int64) Money {
	if n == 0 {
		return 0
	}
	return m / Money(n)
}
