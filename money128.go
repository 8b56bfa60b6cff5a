package coffer

import "math/bits"

func mul64(a, b uint64) (hi, lo uint64) { return bits.Mul64(a, b) }

// div128 divides the 128-bit hi:lo by d; ok is false when the quotient
// would not fit in 64 bits.
func div128(hi, lo, d uint64) (q, r uint64, ok bool) {
	if hi >= d {
		return 0, 0, false
	}
	q, r = bits.Div64(hi, lo, d)
	return q, r, true
}
