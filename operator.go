package coffer

import (
	"context"
	"time"
)

// Deposit credits the card of the user with mobile from the cash account
// (cash paid in at the counter) and returns the new balance.
func (b *Bank) Deposit(ctx context.Context, mobile string, amount Amount) (Amount, error) {
	m, ok := NormalizeMobile(mobile)
	if !ok {
		return 0, FieldError(ErrInvalidField, "mobile")
	}
	if amount <= 0 || amount > MaxAmount {
		return 0, FieldError(ErrInvalidField, "amount")
	}
	var bal Amount
	err := b.store.Update(ctx, func(tx Tx) error {
		u, err := tx.UserByMobile(ctx, m)
		if err != nil {
			return err
		}
		card := CardAccount(u.ID)
		details := "柜台现金存入"
		posted, err := tx.Post(ctx, &Transaction{Kind: "deposit", CreatedAt: b.now(), Legs: []Leg{{
			From: SystemAccount(KindCash, AssetCNY), To: card, Amount: int64(amount),
			FromMethod: MethodDeposit, ToMethod: MethodDeposit, FromDetails: details, ToDetails: details,
		}}})
		if err != nil {
			return err
		}
		bal = Amount(posted.Balances[card])
		return nil
	})
	return bal, err
}

// SetGoldPrice sets the gold quote in fen per gram.
func (b *Bank) SetGoldPrice(ctx context.Context, price Amount) error {
	if price <= 0 || price > MaxAmount {
		return FieldError(ErrInvalidField, "price")
	}
	return b.store.Update(ctx, func(tx Tx) error {
		return tx.SetGoldQuote(ctx, GoldQuote{Price: price, UpdatedAt: b.now()})
	})
}

// Check verifies the ledger's invariants.
func (b *Bank) Check(ctx context.Context) (LedgerReport, error) {
	var r LedgerReport
	err := b.store.View(ctx, func(tx ReadTx) error {
		var err error
		r, err = tx.CheckLedger(ctx)
		return err
	})
	return r, err
}

// SeedCatalog writes the default catalog into an empty store. It is a no-op
// when any wealth product exists already.
func SeedCatalog(ctx context.Context, tx Tx, now time.Time, zone *time.Location) error {
	existing, err := tx.WealthProducts(ctx)
	if err != nil || len(existing) > 0 {
		return err
	}
	wealth, funds, gold := DefaultCatalog(now.In(zone).Format(time.DateOnly))
	for _, p := range wealth {
		if err := tx.PutWealthProduct(ctx, p); err != nil {
			return err
		}
	}
	for _, f := range funds {
		if err := tx.PutFund(ctx, f); err != nil {
			return err
		}
	}
	return tx.SetGoldQuote(ctx, GoldQuote{Price: gold, UpdatedAt: now})
}
