package coffer

import (
	"strconv"
	"strings"
)

// Amount is a sum of money in fen (0.01 yuan). Money is never held in a float.
type Amount int64

// Weight is a quantity of gold in milligrams.
type Weight int64

// Shares is a quantity of fund shares in ten-thousandths of a share.
type Shares int64

// NAV is a fund's net asset value per share in ten-thousandths of a yuan.
type NAV int64

// Scales of the decimal quantities: the number of decimals each carries.
const (
	AmountScale = 2
	WeightScale = 3
	SharesScale = 4
	NAVScale    = 4
)

// MaxAmount is the largest amount a request may carry: 1,000,000,000.00 yuan.
const MaxAmount Amount = 1_000_000_000_00

// maxDecimalDigits bounds the digits of a parsed decimal, scale included,
// so that parsing never overflows int64 (18 digits < 9.2 x 10^18).
const maxDecimalDigits = 18

// String formats the amount in yuan with exactly two decimals ("-20.00").
func (a Amount) String() string { return FormatDecimal(int64(a), AmountScale) }

// String formats the weight in grams with three decimals.
func (w Weight) String() string { return FormatDecimal(int64(w), WeightScale) }

// String formats the shares with four decimals.
func (s Shares) String() string { return FormatDecimal(int64(s), SharesScale) }

// String formats the NAV in yuan with four decimals.
func (n NAV) String() string { return FormatDecimal(int64(n), NAVScale) }

// FormatDecimal formats v, a count of 10^-scale units, as a decimal string
// with exactly scale decimals.
func FormatDecimal(v int64, scale int) string {
	neg := v < 0
	u := uint64(v)
	if neg {
		u = uint64(-v)
	}
	s := strconv.FormatUint(u, 10)
	if scale > 0 {
		if len(s) <= scale {
			s = strings.Repeat("0", scale-len(s)+1) + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// ParseDecimal parses a non-negative plain decimal ("12", "12.5", "0.75") into
// a count of 10^-scale units. It rejects signs, exponents, spaces, empty
// strings, NaN and Infinity, a leading or trailing dot, redundant leading
// zeros and more than scale decimals.
func ParseDecimal(s string, scale int) (int64, bool) {
	intPart, fracPart, hasDot := strings.Cut(s, ".")
	if intPart == "" || len(intPart)+scale > maxDecimalDigits || (hasDot && fracPart == "") || len(fracPart) > scale {
		return 0, false
	}
	if len(intPart) > 1 && intPart[0] == '0' {
		return 0, false
	}
	var v int64
	for _, part := range []string{intPart, fracPart} {
		for i := 0; i < len(part); i++ {
			c := part[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int64(c-'0')
		}
	}
	for i := len(fracPart); i < scale; i++ {
		v *= 10
	}
	return v, true
}

// ParseAmount parses a positive amount of yuan with at most two decimals, at
// most MaxAmount.
func ParseAmount(s string) (Amount, bool) {
	v, ok := ParseDecimal(s, AmountScale)
	if !ok || v <= 0 || Amount(v) > MaxAmount {
		return 0, false
	}
	return Amount(v), true
}

// MulRoundHalfUp returns a*b/divisor rounded half-up, for non-negative
// operands. It is how weight x price and shares x NAV become fen. It reports
// false when the result does not fit in an int64.
func MulRoundHalfUp(a, b, divisor int64) (int64, bool) {
	if a < 0 || b < 0 || divisor <= 0 {
		return 0, false
	}
	hi, lo := mul64(uint64(a), uint64(b))
	q, r, ok := div128(hi, lo, uint64(divisor))
	if !ok {
		return 0, false
	}
	if r*2 >= uint64(divisor) {
		q++
	}
	if q > 1<<62 {
		return 0, false
	}
	return int64(q), true
}

// MulDivFloor returns a*b/divisor rounded down, for non-negative operands.
func MulDivFloor(a, b, divisor int64) (int64, bool) {
	if a < 0 || b < 0 || divisor <= 0 {
		return 0, false
	}
	hi, lo := mul64(uint64(a), uint64(b))
	q, _, ok := div128(hi, lo, uint64(divisor))
	if !ok || q > 1<<62 {
		return 0, false
	}
	return int64(q), true
}
