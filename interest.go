package coffer

import (
	"context"
	"fmt"
	"time"
)

// InterestScale is the precision of interest: ten-thousandths of a fen.
const InterestScale = 10_000

// daysPerYear is the day count of actual/365.
const daysPerYear = 365

// DailyInterest is one day's interest on a closing balance of closingFen at
// an annual yield of yieldBP basis points (1/100 of a percent), actual/365,
// in ten-thousandths of a fen, rounded down:
//
//	closingFen x yieldBP/10000 / 365 fen = closingFen x yieldBP / 365 x 10^-4 fen.
//
// Rounding down at 10^-4 fen never invents interest; what it drops is below
// 1/365 of 10^-4 fen a day.
func DailyInterest(closingFen, yieldBP int64) int64 {
	if closingFen <= 0 || yieldBP <= 0 {
		return 0
	}
	return closingFen * yieldBP / daysPerYear
}

// AccrueDay adds one day's interest to carry (both in 10^-4 fen) and splits
// the sum into whole fen to post and the remainder carried to the next day.
func AccrueDay(closingFen, yieldBP, carry int64) (postFen, newCarry int64) {
	total := carry + DailyInterest(closingFen, yieldBP)
	return total / InterestScale, total % InterestScale
}

// AccrualReport says what closing business days did.
type AccrualReport struct {
	Days          []string // the days closed, in order
	InterestFen   Amount   // interest posted
	Postings      int      // interest postings
	LotsMatured   int
	MaturedFen    Amount // principal and interest returned to cards
	AlreadyClosed bool   // true when there was nothing to close
}

// maxCatchUpDays bounds one call of CloseDays.
const maxCatchUpDays = 3660

// CloseDays closes every business day not yet closed, in order, up to and
// including through (YYYY-MM-DD in the configured zone), starting from the
// first day any wealth was held. Each day is closed in its own transaction
// and exactly once, even with several servers closing at the same time.
// Today can be closed early; a future day cannot.
func (b *Bank) CloseDays(ctx context.Context, through string) (AccrualReport, error) {
	var report AccrualReport
	end, err := time.ParseInLocation(time.DateOnly, through, b.cfg.Zone)
	if err != nil {
		return report, FieldError(ErrInvalidField, "date")
	}
	if through > b.Day(b.now()) {
		return report, &Error{Code: ErrInvalidField, Field: "date", Detail: "a future day cannot be closed"}
	}
	var next string
	err = b.store.View(ctx, func(tx ReadTx) error {
		last, err := tx.LastClosedDay(ctx)
		if err != nil {
			return err
		}
		if last != "" {
			t, err := time.ParseInLocation(time.DateOnly, last, b.cfg.Zone)
			if err != nil {
				return Errorf(ErrInternal, "stored business day %q: %v", last, err)
			}
			next = t.AddDate(0, 0, 1).Format(time.DateOnly)
			return nil
		}
		first, ok, err := tx.FirstEntryAt(ctx, KindWealth)
		if ok {
			next = b.Day(first)
		}
		return err
	})
	if err != nil || next == "" {
		report.AlreadyClosed = err == nil
		return report, err
	}
	day, _ := time.ParseInLocation(time.DateOnly, next, b.cfg.Zone)
	for n := 0; !day.After(end); n++ {
		if n >= maxCatchUpDays {
			return report, Errorf(ErrInvalidField, "more than %d days to close at once", maxCatchUpDays)
		}
		d := day.Format(time.DateOnly)
		var closed dayReport
		err := b.store.Update(ctx, func(tx Tx) error {
			var err error
			closed, err = b.closeDay(ctx, tx, day)
			return err
		})
		if IsCode(err, ErrDayClosed) {
			day = day.AddDate(0, 0, 1)
			continue // another server closed it
		}
		if err != nil {
			return report, fmt.Errorf("close %s: %w", d, err)
		}
		report.Days = append(report.Days, d)
		report.InterestFen += closed.interest
		report.Postings += closed.postings
		report.LotsMatured += closed.lots
		report.MaturedFen += closed.matured
		day = day.AddDate(0, 0, 1)
	}
	report.AlreadyClosed = len(report.Days) == 0
	return report, nil
}

// closeDay pays one day's interest to every wealth holding and returns
// matured fixed-term lots to their cards. The closing balance counts what
// took value before the earlier of the day's end and now; the interest and
// maturities take value just before that instant, so that they count in the
// next day's closing balance.
func (b *Bank) closeDay(ctx context.Context, tx Tx, day time.Time) (dayReport, error) {
	var r dayReport
	d := day.Format(time.DateOnly)
	now := b.now()
	cutoff := day.AddDate(0, 0, 1) // midnight that ends the day
	if now.Before(cutoff) {
		cutoff = now.Add(time.Millisecond) // closing early: what has happened so far
	}
	valueAt := cutoff.Add(-time.Millisecond)
	if err := tx.CloseDay(ctx, d, now); err != nil {
		return r, err
	}
	products, err := tx.WealthProducts(ctx)
	if err != nil {
		return r, err
	}
	yield := make(map[string]WealthProduct, len(products))
	for _, p := range products {
		yield[p.Kind] = p
	}
	holdings, err := tx.WealthHoldings(ctx)
	if err != nil {
		return r, err
	}
	for _, h := range holdings {
		p := yield[h.Key.Product]
		lot := h.MaturesOn != ""
		if lot && h.MaturesOn < d {
			continue // returned when its maturity day was closed
		}
		closing, err := tx.BalanceBefore(ctx, h.Key, cutoff)
		if err != nil {
			return r, err
		}
		post, carry := AccrueDay(closing, p.AnnualYieldBP, h.Carry)
		if post > 0 {
			details := fmt.Sprintf("%s %s 收益", p.Name, d)
			if _, err := tx.Post(ctx, &Transaction{Kind: "interest", CreatedAt: valueAt, Legs: []Leg{{
				From: SystemAccount(KindInterest, AssetCNY), To: h.Key, Amount: post,
				FromMethod: MethodInterest, ToMethod: MethodInterest, FromDetails: details, ToDetails: details,
			}}}); err != nil {
				return r, err
			}
			r.interest += Amount(post)
			r.postings++
		}
		if carry != h.Carry {
			if err := tx.SetInterestCarry(ctx, h.Key, carry); err != nil {
				return r, err
			}
		}
		if !lot || h.MaturesOn != d {
			continue
		}
		// The lot is held at the end of its maturity day, so it earns that
		// day's interest; then principal and interest go back to the card.
		// Its carry below one fen stays with the bank.
		if balance := h.Balance + post; balance > 0 {
			details := fmt.Sprintf("%s 到期, 本息转入银行卡", p.Name)
			if _, err := tx.Post(ctx, &Transaction{Kind: "maturity", CreatedAt: valueAt, Legs: []Leg{{
				From: h.Key, To: CardAccount(h.Key.User), Amount: balance,
				FromMethod: MethodMaturity, ToMethod: MethodMaturity, FromDetails: details, ToDetails: details,
			}}}); err != nil {
				return r, err
			}
			r.matured += Amount(balance)
			r.lots++
		}
	}
	return r, nil
}

// dayReport is what closing one day did.
type dayReport struct {
	interest, matured Amount
	postings, lots    int
}

// Yesterday is the day before now's in the configured zone.
func (b *Bank) Yesterday() string {
	t := b.now().In(b.cfg.Zone)
	return time.Date(t.Year(), t.Month(), t.Day()-1, 0, 0, 0, 0, b.cfg.Zone).Format(time.DateOnly)
}
