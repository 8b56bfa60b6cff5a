package coffer

import "time"

// WealthProduct is a wealth-management product of the catalog. TermDays 0
// is a demand product, redeemable at any time; otherwise each purchase is a
// lot that matures TermDays after the day it was bought.
type WealthProduct struct {
	Kind string
	Name string
	// AnnualYieldBP is the annual yield in hundredths of a percent
	// (basis points): 235 is 2.35% a year.
	AnnualYieldBP int64
	MinAmount     Amount
	TermDays      int
	Retired       bool
}

// Fund is a fund of the catalog with its latest NAV.
type Fund struct {
	Code    string
	Name    string
	NAV     NAV
	NAVDate string // YYYY-MM-DD
	Retired bool
}

// GoldQuote is the current gold price in fen per gram.
type GoldQuote struct {
	Price     Amount
	UpdatedAt time.Time
}

// DefaultCatalog is seeded into a fresh database so that a new user can try
// every mode at once.
func DefaultCatalog(today string) ([]WealthProduct, []Fund, Amount) {
	wealth := []WealthProduct{
		{Kind: "demand", Name: "活期宝", AnnualYieldBP: 185, MinAmount: 100, TermDays: 0},
		{Kind: "fixed90", Name: "稳健90天", AnnualYieldBP: 260, MinAmount: 1000_00, TermDays: 90},
		{Kind: "fixed365", Name: "安享一年", AnnualYieldBP: 310, MinAmount: 5000_00, TermDays: 365},
	}
	funds := []Fund{
		{Code: "000001", Name: "华夏成长混合", NAV: 1_2345, NAVDate: today},
		{Code: "110022", Name: "易方达消费行业", NAV: 3_4567, NAVDate: today},
	}
	return wealth, funds, 560_00
}
