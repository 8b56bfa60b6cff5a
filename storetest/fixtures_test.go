package storetest

import (
	"testing"

	"coffer"
)

func TestFixturesAreValidAndUnique(t *testing.T) {
	cards, mobiles := map[string]bool{}, map[string]bool{}
	for _, n := range []int{0, 1, 2, 9, 10, 99, 1000, 123456, 999_999_999} {
		c, ok := coffer.NormalizeCardNum(CardNumber(n))
		if !ok || len(c) != 16 {
			t.Errorf("CardNumber(%d) = %q fails the card rules", n, CardNumber(n))
		}
		if _, ok := coffer.NormalizeCardNum(breakLuhn(CardNumber(n))); ok {
			t.Errorf("breakLuhn(CardNumber(%d)) still passes Luhn", n)
		}
		if _, ok := coffer.NormalizeMobile(MobileNumber(n % 100_000_000)); !ok {
			t.Errorf("MobileNumber(%d) = %q is not a mobile", n, MobileNumber(n))
		}
		r := Registration(n % 100_000_000)
		if err := r.Validate(); err != nil {
			t.Errorf("Registration(%d): %v", n, err)
		}
		if cards[c] || mobiles[r.Mobile] {
			t.Errorf("fixture %d repeats a card or mobile", n)
		}
		cards[c], mobiles[r.Mobile] = true, true
	}
	// A known Luhn number: 4539 1488 0343 6467.
	if _, ok := coffer.NormalizeCardNum("4539148803436467"); !ok {
		t.Error("NormalizeCardNum rejects a valid Luhn number")
	}
}
