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
		posted, err := tx.Post(ctx, CashDeposit(u.ID, amount, b.now()))
		if err != nil {
			return err
		}
		bal = Amount(posted.Balances[CardAccount(u.ID)])
		return nil
	})
	return bal, err
}

// CashDeposit is the posting of amount paid in cash at the counter to
// user's card.
func CashDeposit(user UserID, amount Amount, at time.Time) *Transaction {
	details := "柜台现金存入"
	return &Transaction{Kind: "deposit", CreatedAt: at, Legs: []Leg{{
		From: SystemAccount(KindCash, AssetCNY), To: CardAccount(user), Amount: int64(amount),
		FromMethod: MethodDeposit, ToMethod: MethodDeposit, FromDetails: details, ToDetails: details,
	}}}
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

// Catalog limits.
const (
	maxYieldBP   = 100_00 // 100% a year
	maxTermDays  = 3650
	maxNameBytes = 100
	maxCodeBytes = 32
)

// validCatalogKey reports whether s can name a product or fund: 1-32 ASCII
// letters, digits, _ or -.
func validCatalogKey(s string) bool {
	if s == "" || len(s) > maxCodeBytes {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Validate checks a wealth product's fields.
func (p WealthProduct) Validate() error {
	switch {
	case !validCatalogKey(p.Kind):
		return FieldError(ErrInvalidField, "kind")
	case p.Name == "" || len(p.Name) > maxNameBytes:
		return FieldError(ErrInvalidField, "name")
	case p.AnnualYieldBP < 0 || p.AnnualYieldBP > maxYieldBP:
		return FieldError(ErrInvalidField, "yield")
	case p.MinAmount <= 0 || p.MinAmount > MaxAmount:
		return FieldError(ErrInvalidField, "min")
	case p.TermDays < 0 || p.TermDays > maxTermDays:
		return FieldError(ErrInvalidField, "term-days")
	}
	return nil
}

// PutWealthProduct adds a wealth product (create true) or changes its
// name, yield, minimum or retirement (create false); its term never
// changes. Holdings of a changed product accrue at the new yield from the
// next day closed.
func (b *Bank) PutWealthProduct(ctx context.Context, p WealthProduct, create bool) error {
	if err := p.Validate(); err != nil {
		return err
	}
	return b.store.Update(ctx, func(tx Tx) error {
		old, err := tx.WealthProduct(ctx, p.Kind)
		switch {
		case create && err == nil:
			return Errorf(ErrInvalidField, "wealth product %q exists already", p.Kind)
		case create && IsCode(err, ErrProductNotFound):
		case err != nil:
			return err
		case old.TermDays != p.TermDays:
			// Holdings are demand or lots by the product's term: changing it
			// would strand them. Retire the product and add another.
			return &Error{Code: ErrInvalidField, Field: "term-days", Detail: "a product's term cannot change; retire it and add a new kind"}
		}
		return tx.PutWealthProduct(ctx, p)
	})
}

// WealthProduct returns one wealth product of the catalog.
func (b *Bank) WealthProduct(ctx context.Context, kind string) (WealthProduct, error) {
	var p WealthProduct
	err := b.store.View(ctx, func(tx ReadTx) error {
		var err error
		p, err = tx.WealthProduct(ctx, kind)
		return err
	})
	return p, err
}

// Validate checks a fund's fields.
func (f Fund) Validate() error {
	switch {
	case !validCatalogKey(f.Code):
		return FieldError(ErrInvalidField, "code")
	case f.Name == "" || len(f.Name) > maxNameBytes:
		return FieldError(ErrInvalidField, "name")
	case f.NAV <= 0 || f.NAV > 1_000_000_0000:
		return FieldError(ErrInvalidField, "nav")
	}
	if _, err := time.Parse(time.DateOnly, f.NAVDate); err != nil {
		return FieldError(ErrInvalidField, "date")
	}
	return nil
}

// PutFund adds a fund (create true) or changes its name or retirement.
func (b *Bank) PutFund(ctx context.Context, f Fund, create bool) error {
	if err := f.Validate(); err != nil {
		return err
	}
	return b.store.Update(ctx, func(tx Tx) error {
		_, err := tx.Fund(ctx, f.Code)
		switch {
		case create && err == nil:
			return Errorf(ErrInvalidField, "fund %q exists already", f.Code)
		case create && IsCode(err, ErrProductNotFound):
		case err != nil:
			return err
		}
		return tx.PutFund(ctx, f)
	})
}

// Fund returns one fund of the catalog.
func (b *Bank) Fund(ctx context.Context, code string) (Fund, error) {
	var f Fund
	err := b.store.View(ctx, func(tx ReadTx) error {
		var err error
		f, err = tx.Fund(ctx, code)
		return err
	})
	return f, err
}

// SetFundNAV records a fund's NAV for a date (history is kept); info and
// purchases use the NAV of the latest date.
func (b *Bank) SetFundNAV(ctx context.Context, code, date string, nav NAV) error {
	if _, err := time.Parse(time.DateOnly, date); err != nil {
		return FieldError(ErrInvalidField, "date")
	}
	if nav <= 0 || nav > 1_000_000_0000 {
		return FieldError(ErrInvalidField, "nav")
	}
	return b.store.Update(ctx, func(tx Tx) error { return tx.SetFundNAV(ctx, code, date, nav) })
}
