package coffer_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"coffer"
	"coffer/internal/teststores"
	"coffer/storetest"
)

func TestDailyInterestExactFen(t *testing.T) {
	tests := []struct {
		name                   string
		closingFen, yieldBP    int64
		carry                  int64
		wantPostFen, wantCarry int64
	}{
		// 10,000.00 at 1.85%: 1,000,000 x 185 / 365 = 506,849.315... -> 506,849 (10^-4 fen)
		{"ten thousand yuan at 1.85%", 1_000_000, 185, 0, 50, 6849},
		{"carry tips over a fen", 1_000_000, 185, 3151, 51, 0},
		{"one fen earns nothing visible", 1, 185, 0, 0, 0},
		{"one yuan at 3.65% is 0.01 fen a day", 100, 365, 0, 0, 100},
		{"zero balance keeps the carry", 0, 185, 1234, 0, 1234},
		{"zero yield", 1_000_000, 0, 0, 0, 0},
		{"a billion yuan at 100%", 100_000_000_000, 10_000, 0, 273_972_602, 7397},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			post, carry := coffer.AccrueDay(tt.closingFen, tt.yieldBP, tt.carry)
			if post != tt.wantPostFen || carry != tt.wantCarry {
				t.Errorf("AccrueDay(%d, %d, %d) = %d fen carry %d, want %d fen carry %d", tt.closingFen, tt.yieldBP, tt.carry, post, carry, tt.wantPostFen, tt.wantCarry)
			}
		})
	}
}

// TestYearOfDailyAccrualAgainstClosedForm compounds a year of daily
// postings and compares with P(1+r/365)^365 computed exactly: the posted
// balance may trail the exact value only by the carry below one fen and
// the 10^-4 fen truncations, never exceed it.
func TestYearOfDailyAccrualAgainstClosedForm(t *testing.T) {
	for _, tc := range []struct{ principalFen, yieldBP int64 }{
		{1_000_000, 185}, {100_000, 260}, {500_000_00, 310}, {1_00, 185}, {123_456_789, 999},
	} {
		balance, carry := tc.principalFen, int64(0)
		for day := 0; day < 365; day++ {
			post, c := coffer.AccrueDay(balance, tc.yieldBP, carry)
			balance, carry = balance+post, c
		}
		rate := new(big.Rat).SetFrac64(tc.yieldBP, 10_000*365)
		factor := new(big.Rat).Add(big.NewRat(1, 1), rate)
		exact := new(big.Rat).SetInt64(tc.principalFen)
		for day := 0; day < 365; day++ {
			exact.Mul(exact, factor)
		}
		got := new(big.Rat).Add(new(big.Rat).SetInt64(balance), big.NewRat(carry, coffer.InterestScale))
		diff, _ := new(big.Rat).Sub(exact, got).Float64()
		if diff < 0 || diff > 1 {
			t.Errorf("principal %d fen at %d bp: posted %d fen + carry %d, exact %s fen: off by %.6f fen", tc.principalFen, tc.yieldBP, balance, carry, exact.FloatString(4), diff)
		}
	}
}

type accrualWorld struct {
	bank  *coffer.Bank
	clock *storetest.Clock
	store coffer.Store
	user  coffer.UserID
}

func newAccrualWorld(t *testing.T, open storetest.Opener) accrualWorld {
	t.Helper()
	store := open(t)
	bank, clock := storetest.NewBank(t, store)
	ctx := context.Background()
	reg := coffer.Registration{Username: "saver", Password: "long enough", Email: "saver@example.com", Mobile: "13700137000", CardNum: "6217000000000000012", PayPassword: "246810"}
	if err := bank.Register(ctx, reg); err != nil {
		t.Fatal(err)
	}
	if _, err := bank.Deposit(ctx, reg.Mobile, 100_000_00); err != nil {
		t.Fatal(err)
	}
	var id coffer.UserID
	err := store.View(ctx, func(tx coffer.ReadTx) error {
		user, err := tx.UserByMobile(ctx, reg.Mobile)
		id = user.ID
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return accrualWorld{bank: bank, clock: clock, store: store, user: id}
}

func (w accrualWorld) buy(t *testing.T, kind string, money coffer.Amount) {
	t.Helper()
	if _, err := w.bank.Pay(context.Background(), w.user, coffer.PayRequest{Mode: coffer.ModeMoneyManagement, Kind: kind, Money: money}); err != nil {
		t.Fatalf("buy %s %s: %v", kind, money, err)
	}
}

func (w accrualWorld) wealth(t *testing.T) coffer.Amount {
	t.Helper()
	info, err := w.bank.Info(context.Background(), w.user)
	if err != nil {
		t.Fatal(err)
	}
	return info.MoneyManagment
}

func TestAccrualDailyEqualsCatchUpAndMatchesModel(t *testing.T) {
	for _, s := range teststores.All(t) {
		t.Run(s.Name, func(t *testing.T) {
			ctx := context.Background()
			daily, caught := newAccrualWorld(t, s.Open), newAccrualWorld(t, s.Open)
			for _, w := range []accrualWorld{daily, caught} {
				w.buy(t, "demand", 10_000_00)
			}
			const days = 40
			// The model: closing balance x 185 bp / 365 in 10^-4 fen, carried.
			balance, carry := int64(10_000_00), int64(0)
			for d := 0; d < days; d++ {
				post, c := coffer.AccrueDay(balance, 185, carry)
				balance, carry = balance+post, c
			}
			for d := 0; d < days; d++ {
				daily.clock.Advance(24 * time.Hour)
				r, err := daily.bank.CloseDays(ctx, daily.bank.Yesterday())
				if err != nil || len(r.Days) != 1 {
					t.Fatalf("day %d: closed %v, err %v", d, r.Days, err)
				}
			}
			caught.clock.Advance(days * 24 * time.Hour)
			r, err := caught.bank.CloseDays(ctx, caught.bank.Yesterday())
			if err != nil || len(r.Days) != days {
				t.Fatalf("catch-up closed %d days, err %v; want %d", len(r.Days), err, days)
			}
			if got := daily.wealth(t); int64(got) != balance {
				t.Errorf("closing daily: wealth %s, model %s", got, coffer.Amount(balance))
			}
			if got := caught.wealth(t); int64(got) != balance {
				t.Errorf("catching up: wealth %s, model %s", got, coffer.Amount(balance))
			}
			again, err := caught.bank.CloseDays(ctx, caught.bank.Yesterday())
			if err != nil || !again.AlreadyClosed || again.InterestFen != 0 {
				t.Errorf("closing again: %+v, %v; want nothing closed", again, err)
			}
			if got := caught.wealth(t); int64(got) != balance {
				t.Errorf("after closing again: wealth %s, want %s", got, coffer.Amount(balance))
			}
			page, err := caught.bank.Wallet(ctx, caught.user, coffer.KindWealth, "", 5)
			if err != nil || len(page.Bills) == 0 || page.Bills[0].Method != coffer.MethodInterest || page.Bills[0].BalanceAfter != balance {
				t.Errorf("wealth bills: %+v, %v; want interest rows ending at %d", page.Bills, err, balance)
			}
			storetest.AssertLedger(t, daily.store)
			storetest.AssertLedger(t, caught.store)
		})
	}
}

// A lot bought on day P matures on P+term: it is held at the end of each
// day from P to P+term, so it earns term+1 days of interest (the
// contract's closing rule), then returns to the card.
func TestFixedTermLotMaturesWithItsInterest(t *testing.T) {
	for _, s := range teststores.All(t) {
		t.Run(s.Name, func(t *testing.T) {
			ctx := context.Background()
			w := newAccrualWorld(t, s.Open)
			w.buy(t, "fixed90", 20_000_00)
			_, err := w.bank.Pay(ctx, w.user, coffer.PayRequest{Mode: coffer.ModeRedeem, Kind: "fixed90", Money: 1_00})
			if !coffer.IsCode(err, coffer.ErrNotMatured) {
				t.Fatalf("early redemption: %v, want NOT_MATURED", err)
			}
			balance, carry := int64(20_000_00), int64(0)
			for d := 0; d <= 90; d++ {
				post, c := coffer.AccrueDay(balance, 260, carry)
				balance, carry = balance+post, c
			}
			w.clock.Advance(89 * 24 * time.Hour)
			if _, err := w.bank.CloseDays(ctx, w.bank.Yesterday()); err != nil {
				t.Fatal(err)
			}
			if got := w.wealth(t); got == 0 {
				t.Fatalf("lot returned before its maturity day")
			}
			w.clock.Advance(2 * 24 * time.Hour)
			r, err := w.bank.CloseDays(ctx, w.bank.Yesterday())
			if err != nil || r.LotsMatured != 1 || int64(r.MaturedFen) != balance {
				t.Fatalf("maturity: %+v, %v; want one lot returning %d fen", r, err, balance)
			}
			if got := w.wealth(t); got != 0 {
				t.Errorf("wealth after maturity %s, want 0.00", got)
			}
			card, err := w.bank.CardBalance(ctx, w.user)
			if want := coffer.Amount(100_000_00 - 20_000_00 + balance); err != nil || card != want {
				t.Errorf("card %s, %v; want %s", card, err, want)
			}
			page, err := w.bank.Wallet(ctx, w.user, coffer.KindCard, "", 1)
			if err != nil || len(page.Bills) != 1 || page.Bills[0].Method != coffer.MethodMaturity || page.Bills[0].Amount != balance {
				t.Errorf("newest card bill %+v, %v; want a maturity of %d", page.Bills, err, balance)
			}
			storetest.AssertLedger(t, w.store)
		})
	}
}

func TestCloseDaysRefusesTheFuture(t *testing.T) {
	w := newAccrualWorld(t, teststores.SQLite)
	w.buy(t, "demand", 100_00)
	tomorrow := w.clock.Now().In(w.bank.Config().Zone).AddDate(0, 0, 1).Format(time.DateOnly)
	if _, err := w.bank.CloseDays(context.Background(), tomorrow); !coffer.IsCode(err, coffer.ErrInvalidField) {
		t.Errorf("closing %s: %v, want INVALID_FIELD", tomorrow, err)
	}
	today := w.bank.Day(w.clock.Now())
	r, err := w.bank.CloseDays(context.Background(), today)
	if err != nil || len(r.Days) != 1 || r.Days[0] != today {
		t.Errorf("closing today early: %+v, %v", r, err)
	}
}
