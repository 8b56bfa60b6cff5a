package coffer_test

import (
	"regexp"
	"strings"
	"testing"

	"coffer"
)

var plainDecimal = regexp.MustCompile(`^(0|[1-9][0-9]*)(\.[0-9]+)?$`)

// FuzzParseDecimal checks that whatever parses is a plain decimal with at
// most scale decimals and survives a round trip through FormatDecimal.
func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"0", "12", "12.5", "12.50", "0.01", "1000000000.00", "1e3", "-1", "+1", " 1", "1.", ".5", "00.1", "NaN", "Infinity", "１２", "1.234", "999999999999999"} {
		f.Add(s, 2)
	}
	f.Fuzz(func(t *testing.T, s string, scale int) {
		scale = ((scale % 5) + 5) % 5
		v, ok := coffer.ParseDecimal(s, scale)
		if !ok {
			return
		}
		if v < 0 {
			t.Fatalf("ParseDecimal(%q, %d) = %d, negative", s, scale, v)
		}
		if !plainDecimal.MatchString(s) {
			t.Fatalf("ParseDecimal accepted %q, not a plain decimal", s)
		}
		if _, frac, _ := strings.Cut(s, "."); len(frac) > scale {
			t.Fatalf("ParseDecimal(%q, %d) accepted %d decimals", s, scale, len(frac))
		}
		back, ok := coffer.ParseDecimal(coffer.FormatDecimal(v, scale), scale)
		if !ok || back != v {
			t.Fatalf("round trip of %q: %d -> %q -> %d, %v", s, v, coffer.FormatDecimal(v, scale), back, ok)
		}
	})
}

// FuzzParseAmount checks the contract's bounds on money in requests.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"12", "12.5", "12.50", "0", "0.00", "0.01", "1000000000.00", "1000000000.01", "-5", "1e2", "NaN", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, ok := coffer.ParseAmount(s)
		if !ok {
			return
		}
		if a <= 0 || a > coffer.MaxAmount {
			t.Fatalf("ParseAmount(%q) = %d, outside (0, %d]", s, a, coffer.MaxAmount)
		}
		if got, ok := coffer.ParseAmount(a.String()); !ok || got != a {
			t.Fatalf("ParseAmount(%q) = %d, but its String %q parses to %d, %v", s, a, a.String(), got, ok)
		}
	})
}

// FuzzFieldValidators checks that the validators never panic and that what
// they accept meets the contract's rules.
func FuzzFieldValidators(f *testing.F) {
	for _, s := range []string{"13800138000", "+8613800138000", "12800138000", "6222020200112233446", "6222 0202 0011 2233 446", "a@example.com", "Alice <a@example.com>", "张三", "a", "x\x00y", "😀😀", strings.Repeat("a", 300)} {
		f.Add(s)
	}
	digitsOnly := regexp.MustCompile(`^[0-9]+$`)
	f.Fuzz(func(t *testing.T, s string) {
		if m, ok := coffer.NormalizeMobile(s); ok && (len(m) != 11 || m[0] != '1' || m[1] < '3' || !digitsOnly.MatchString(m)) {
			t.Fatalf("NormalizeMobile(%q) accepted %q", s, m)
		}
		if c, ok := coffer.NormalizeCardNum(s); ok && (len(c) < 16 || len(c) > 19 || !digitsOnly.MatchString(c)) {
			t.Fatalf("NormalizeCardNum(%q) accepted %q", s, c)
		}
		if coffer.ValidEmail(s) && (len(s) > 254 || strings.ContainsAny(s, "<> \x00") || !strings.Contains(s, "@")) {
			t.Fatalf("ValidEmail accepted %q", s)
		}
		if coffer.ValidUsername(s) && (strings.ContainsAny(s, " \x00\"'<>@") || len([]rune(s)) > 32) {
			t.Fatalf("ValidUsername accepted %q", s)
		}
		if coffer.ValidPayPassword(s) && (len(s) != 6 || !digitsOnly.MatchString(s)) {
			t.Fatalf("ValidPayPassword accepted %q", s)
		}
	})
}
