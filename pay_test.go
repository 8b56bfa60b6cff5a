package coffer_test

import (
	"context"
	"testing"

	"coffer"
	"coffer/internal/teststores"
	"coffer/storetest"
)

// Regression: Bank.Pay left non-positive amounts to the HTTP decoder; a
// zero or negative transfer reached the ledger as an internal error after
// lowering the day's spend total.
func TestPayRefusesNonPositiveQuantitiesItself(t *testing.T) {
	w := newAccrualWorld(t, teststores.SQLite)
	before := storetest.CountRows(t, w.store)
	for _, req := range []coffer.PayRequest{
		{Mode: coffer.ModeTransfer, Money: 0, Payee: "13900139000", Password: "246810", PasswordSent: true},
		{Mode: coffer.ModeTransfer, Money: -500, Payee: "13900139000", Password: "246810", PasswordSent: true},
		{Mode: coffer.ModeRedeem, Kind: "demand", Money: -1},
		{Mode: coffer.ModeMoneyManagement, Kind: "demand", Money: coffer.MaxAmount + 1},
		{Mode: coffer.ModeGold, Weight: 0, Price: 560_00},
		{Mode: coffer.ModeGoldSell, Weight: 1000, Price: -1},
		{Mode: coffer.ModeFundRedeem, Code: "000001", Shares: -1},
	} {
		if _, err := w.bank.Pay(context.Background(), w.user, req); !coffer.IsCode(err, coffer.ErrInvalidField) {
			t.Errorf("%s %+v: %v, want INVALID_FIELD", req.Mode, req, err)
		}
	}
	after := storetest.CountRows(t, w.store)
	for table, n := range before {
		if after[table] != n {
			t.Errorf("table %s: %d rows before, %d after refused payments", table, n, after[table])
		}
	}
}

// Regression: Post checked only each account's net change, so legs that
// took a user account below zero and back within one transaction were
// accepted and left an entry showing a negative balance.
func TestPostRefusesAUserAccountBelowZeroWithinATransaction(t *testing.T) {
	w := newAccrualWorld(t, teststores.SQLite)
	ctx := context.Background()
	empty := coffer.AccountKey{User: w.user, Kind: coffer.KindWealth, Asset: coffer.AssetCNY, Product: "demand"}
	err := w.store.Update(ctx, func(tx coffer.Tx) error {
		_, err := tx.Post(ctx, &coffer.Transaction{Kind: "test", CreatedAt: w.clock.Now(), Legs: []coffer.Leg{
			{From: empty, To: coffer.SystemAccount(coffer.KindCash, coffer.AssetCNY), Amount: 100, FromMethod: "x", ToMethod: "x"},
			{From: coffer.CardAccount(w.user), To: empty, Amount: 100, FromMethod: "x", ToMethod: "x"},
		}})
		return err
	})
	if !coffer.IsCode(err, coffer.ErrInsufficientFunds) {
		t.Errorf("post through an empty account: %v, want INSUFFICIENT_FUNDS", err)
	}
	storetest.AssertLedger(t, w.store)
}

// Regression: wrong login passwords at /api/paypassword were not counted,
// so a stolen session could guess the login password without end.
func TestSetPayPasswordCountsWrongLoginPasswords(t *testing.T) {
	w := newAccrualWorld(t, teststores.SQLite)
	ctx := context.Background()
	limit := w.bank.Config().LoginUserFailures
	for i := 0; i < limit; i++ {
		if err := w.bank.SetPayPassword(ctx, w.user, "not the password", "111111"); !coffer.IsCode(err, coffer.ErrBadPassword) {
			t.Fatalf("wrong login password %d: %v, want BAD_PASSWORD", i+1, err)
		}
	}
	if err := w.bank.SetPayPassword(ctx, w.user, "long enough", "111111"); !coffer.IsCode(err, coffer.ErrTooManyAttempts) {
		t.Errorf("right password after %d wrong: %v, want TOO_MANY_ATTEMPTS", limit, err)
	}
	if _, _, err := w.bank.Login(ctx, "saver", "long enough", "127.0.0.1"); !coffer.IsCode(err, coffer.ErrTooManyAttempts) {
		t.Errorf("login after %d wrong passwords at paypassword: %v, want TOO_MANY_ATTEMPTS", limit, err)
	}
	w.clock.Advance(w.bank.Config().LoginLockFor)
	if err := w.bank.SetPayPassword(ctx, w.user, "long enough", "111111"); err != nil {
		t.Errorf("after the lock: %v", err)
	}
}

// Regression: a locked user's invalid transfer (to themselves) answered
// 400 instead of 423; the lock comes before every other rule.
func TestPayLockComesFirst(t *testing.T) {
	w := newAccrualWorld(t, teststores.SQLite)
	ctx := context.Background()
	self := coffer.PayRequest{Mode: coffer.ModeTransfer, Money: 1_00, Payee: "13700137000", Password: "000000", PasswordSent: true}
	if _, err := w.bank.Pay(ctx, w.user, self); !coffer.IsCode(err, coffer.ErrSamePayee) {
		t.Fatalf("transfer to self: %v", err)
	}
	wrong := coffer.PayRequest{Mode: coffer.ModeMobilePay, Money: 10_00, Mobile: "13700137000", Password: "000000", PasswordSent: true}
	for i := 0; i < 5; i++ {
		w.bank.Pay(ctx, w.user, wrong)
	}
	if _, err := w.bank.Pay(ctx, w.user, self); !coffer.IsCode(err, coffer.ErrPayLocked) {
		t.Errorf("locked user's transfer to self: %v, want PAY_LOCKED", err)
	}
}
