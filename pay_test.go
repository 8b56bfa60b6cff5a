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
