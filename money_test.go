package coffer_test

import (
	"testing"

	"coffer"
)

func TestParseAmountFollowsTheContract(t *testing.T) {
	tests := []struct {
		in   string
		want coffer.Amount
		ok   bool
	}{
		{"12", 1200, true}, {"12.5", 1250, true}, {"12.50", 1250, true}, {"0.01", 1, true},
		{"1000000000.00", 100_000_000_000, true}, {"1000000000", 100_000_000_000, true},
		{"0", 0, false}, {"0.00", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {"1.234", 0, false},
		{"1e3", 0, false}, {"NaN", 0, false}, {"Infinity", 0, false}, {"", 0, false}, {" 12", 0, false},
		{"12 ", 0, false}, {"1000000000.01", 0, false}, {"012", 0, false}, {"1.", 0, false}, {".5", 0, false},
		{"1,000", 0, false}, {"１２", 0, false}, {"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, ok := coffer.ParseAmount(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseAmount(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestFormatDecimal(t *testing.T) {
	tests := []struct {
		v     int64
		scale int
		want  string
	}{
		{0, 2, "0.00"}, {5, 2, "0.05"}, {-2000, 2, "-20.00"}, {123450, 2, "1234.50"}, {1500, 3, "1.500"},
		{1_2345, 4, "1.2345"}, {7, 0, "7"}, {-1, 4, "-0.0001"},
	}
	for _, tt := range tests {
		if got := coffer.FormatDecimal(tt.v, tt.scale); got != tt.want {
			t.Errorf("FormatDecimal(%d, %d) = %q, want %q", tt.v, tt.scale, got, tt.want)
		}
	}
}

func TestMulRoundHalfUp(t *testing.T) {
	tests := []struct {
		a, b, div, want int64
		ok              bool
	}{
		{1500, 56000, 1000, 84000, true}, // 1.5 g x 560.00 = 840.00
		{1, 56049, 1000, 56, true},       // 0.001 g x 560.49 = 0.56049 -> 0.56
		{1, 500, 1000, 1, true},          // exactly half a fen rounds up
		{1, 499, 1000, 0, true},
		{810044, 12345, 1_000_000, 10000, true}, // 81.0044 shares x 1.2345 = 99.99993 -> 100.00
		{1 << 62, 1 << 62, 1, 0, false},
		{-1, 5, 1, 0, false},
	}
	for _, tt := range tests {
		got, ok := coffer.MulRoundHalfUp(tt.a, tt.b, tt.div)
		if got != tt.want || ok != tt.ok {
			t.Errorf("MulRoundHalfUp(%d, %d, %d) = %d, %v; want %d, %v", tt.a, tt.b, tt.div, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCardAndMobileValidation(t *testing.T) {
	for in, want := range map[string]bool{"6222020200112233446": true, "6222 0202 0011 2233 446": true, "6222020200112233447": false, "622202020011223": false, "62220202001122334466666": false, "622202020011223344a": false} {
		if _, ok := coffer.NormalizeCardNum(in); ok != want {
			t.Errorf("NormalizeCardNum(%q) ok = %v, want %v", in, ok, want)
		}
	}
	for in, want := range map[string]string{"13800138000": "13800138000", "+8613800138000": "13800138000", "12800138000": "", "1380013800": "", "138001380001": "", "1380013800a": ""} {
		got, ok := coffer.NormalizeMobile(in)
		if got != want || ok != (want != "") {
			t.Errorf("NormalizeMobile(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}
