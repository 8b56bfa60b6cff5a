package coffer

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
)

// Info is a user's personal information and assets.
type Info struct {
	User           User   // from InfoAs, only what a profile shows (ReadTx.SessionHoldings)
	Balance        Amount // card
	MoneyManagment Amount // wealth principal plus interest
	Funds          Amount // fund shares at the latest NAV
	Gold           Amount // gold at the current quote
	GoldWeight     Weight
	TotalAssets    Amount
}

// Info returns the user's information with every holding valued. It
// needs no snapshot (the store's ViewEach): every balance it adds up comes
// from one statement (Holdings), and a price read a moment later is
// still a price of the moment.
func (b *Bank) Info(ctx context.Context, id UserID) (Info, error) {
	var info Info
	err := b.store.ViewEach(ctx, func(tx ReadTx) error {
		u, err := tx.UserByID(ctx, id)
		if err != nil {
			return err
		}
		info, err = infoIn(ctx, tx, u)
		return err
	})
	return info, err
}

// InfoAs is Info for the user of the session token, the session checked
// (as Authenticate does) in the same call of the store, and read in one
// statement with the user's profile and holdings (ReadTx.SessionHoldings).
// It returns the user too, 0 when the session is refused or could not be
// read.
func (b *Bank) InfoAs(ctx context.Context, token string) (UserID, Info, error) {
	var info Info
	var holdings []Holding
	withHoldings := func(tx ReadTx, ctx context.Context, tokenHash []byte) (s Session, u User, err error) {
		s, u, holdings, err = tx.SessionHoldings(ctx, tokenHash) // one statement for the session and the balances
		return s, u, err
	}
	id, err := b.viewAs(ctx, token, b.store.ViewEach, withHoldings, func(tx ReadTx, u User) (err error) {
		info, err = value(ctx, tx, u, holdings)
		return err
	})
	return id, info, err
}

// infoIn values the holdings of user u in tx.
func infoIn(ctx context.Context, tx ReadTx, u User) (Info, error) {
	holdings, err := tx.Holdings(ctx, u.ID)
	if err != nil {
		return Info{User: u}, err
	}
	return value(ctx, tx, u, holdings)
}

// value values holdings, those of user u, at the prices read in tx.
func value(ctx context.Context, tx ReadTx, u User, holdings []Holding) (Info, error) {
	info := Info{User: u}
	err := func() error {
		var err error
		var quote GoldQuote
		navs := map[string]NAV{}
		for _, h := range holdings {
			switch h.Key.Kind {
			case KindCard:
				info.Balance += Amount(h.Balance)
			case KindWealth:
				info.MoneyManagment += Amount(h.Balance)
			case KindGold:
				if quote.Price == 0 {
					if quote, err = tx.GoldQuote(ctx); err != nil {
						return err
					}
				}
				info.GoldWeight += Weight(h.Balance)
			case KindFund:
				nav, ok := navs[h.Key.Product]
				if !ok {
					f, err := tx.Fund(ctx, h.Key.Product)
					if err != nil {
						return err
					}
					nav, navs[h.Key.Product] = f.NAV, f.NAV
				}
				v, ok := MulRoundHalfUp(h.Balance, int64(nav), 1_000_000)
				if !ok {
					return Errorf(ErrInternal, "fund value overflows")
				}
				info.Funds += Amount(v)
			}
		}
		if info.GoldWeight > 0 {
			v, ok := MulRoundHalfUp(int64(info.GoldWeight), int64(quote.Price), 1000)
			if !ok {
				return Errorf(ErrInternal, "gold value overflows")
			}
			info.Gold = Amount(v)
		}
		info.TotalAssets = info.Balance + info.MoneyManagment + info.Funds + info.Gold
		return nil
	}()
	return info, err
}

// Paging limits of the wallet.
const (
	WalletDefaultLimit = 20
	WalletMaxLimit     = 100
)

// WalletPage is one page of a statement.
type WalletPage struct {
	Bills      []Bill
	NextCursor string // "" when there are no more
}

// Wallet returns a page of the user's card statement (kind KindCard) or of
// their wealth holdings (KindWealth), newest first. The page is one
// statement, each bill with the balance after it, so it needs no snapshot
// (the store's ViewEach).
func (b *Bank) Wallet(ctx context.Context, id UserID, kind AccountKind, cursor string, limit int) (WalletPage, error) {
	before, err := DecodeCursor(cursor)
	if err != nil {
		return WalletPage{}, err
	}
	var page WalletPage
	err = b.store.ViewEach(ctx, func(tx ReadTx) (err error) {
		page, err = walletIn(ctx, tx, id, kind, before, limit)
		return err
	})
	return page, err
}

// WalletAs is Wallet for the user of the session token, the session
// checked (as Authenticate does) in the same call of the store. It returns
// the user too, 0 when the session is refused or could not be read.
func (b *Bank) WalletAs(ctx context.Context, token string, kind AccountKind, cursor string, limit int) (UserID, WalletPage, error) {
	var page WalletPage
	id, err := b.viewAs(ctx, token, b.store.ViewEach, ReadTx.SessionProfile, func(tx ReadTx, u User) error {
		before, err := DecodeCursor(cursor) // after the session: a stranger learns nothing
		if err != nil {
			return err
		}
		page, err = walletIn(ctx, tx, u.ID, kind, before, limit)
		return err
	})
	return id, page, err
}

// walletIn reads a page of limit bills before the id before (0: the
// newest) in tx.
func walletIn(ctx context.Context, tx ReadTx, id UserID, kind AccountKind, before int64, limit int) (WalletPage, error) {
	var page WalletPage
	bills, err := tx.Bills(ctx, id, kind, before, limit+1)
	if err != nil {
		return page, err
	}
	if len(bills) > limit {
		bills = bills[:limit]
		page.NextCursor = EncodeCursor(bills[limit-1].ID)
	}
	page.Bills = bills
	return page, nil
}

const cursorPrefix = "b1."

// EncodeCursor makes the opaque, URL-safe cursor that continues before id.
func EncodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(id, 10)))
}

// DecodeCursor reverses EncodeCursor; "" is the first page.
func DecodeCursor(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(raw), cursorPrefix) {
		return 0, FieldError(ErrInvalidField, "cursor")
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(string(raw), cursorPrefix), 10, 64)
	if err != nil || id <= 0 {
		return 0, FieldError(ErrInvalidField, "cursor")
	}
	return id, nil
}

// Catalog is what GET /api/products shows.
type Catalog struct {
	Wealth []WealthProduct
	Funds  []Fund
	Gold   GoldQuote
}

// Products returns the current catalog, without retired products.
func (b *Bank) Products(ctx context.Context) (Catalog, error) {
	var c Catalog
	err := b.store.View(ctx, func(tx ReadTx) error {
		wealth, err := tx.WealthProducts(ctx)
		if err != nil {
			return err
		}
		for _, p := range wealth {
			if !p.Retired {
				c.Wealth = append(c.Wealth, p)
			}
		}
		funds, err := tx.Funds(ctx)
		if err != nil {
			return err
		}
		for _, f := range funds {
			if !f.Retired {
				c.Funds = append(c.Funds, f)
			}
		}
		c.Gold, err = tx.GoldQuote(ctx)
		return err
	})
	return c, err
}

// CardBalance returns the user's card balance.
func (b *Bank) CardBalance(ctx context.Context, id UserID) (Amount, error) {
	var bal int64
	err := b.store.View(ctx, func(tx ReadTx) error {
		var err error
		bal, err = tx.Balance(ctx, CardAccount(id))
		return err
	})
	return Amount(bal), err
}
