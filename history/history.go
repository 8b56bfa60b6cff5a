// Package history writes a large synthetic ledger history quickly, so that
// the bank's reads can be measured against a database of millions of bills
// as well as a fresh one.
//
// The history is made of ordinary ledger postings (Tx.Post): a deposit per
// user, then transfers between random pairs of them, two bills each. It is
// therefore as consistent as any other history: `coffer check` holds on it,
// balances chain, and nothing tells it from real traffic but the memo.
// Postings are grouped many to a store transaction, which is what makes it
// fast: the per-payment costs of the API (sessions, idempotency records,
// daily limits, one commit each) are skipped.
package history

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"coffer"
)

// PerUpdate is how many transfers go into one store transaction. Larger
// is not faster on SQLite: a job runs in a savepoint whose journal grows
// with it, and each statement's cost grows with the journal (2,000 a job
// wrote 6,000 bills/s, 200 a job 15,800).
const PerUpdate = 200

// maxTransferFen bounds one synthetic transfer (0.01 to 9.99 yuan).
const maxTransferFen = 999

// Memo marks the synthetic transactions.
const Memo = "synthetic history"

// Plan says what to write.
type Plan struct {
	// Users are the accounts holders among whom the history is spread
	// (at least two).
	Users []coffer.User
	// Bills is how many bills to write in all; each transfer writes two,
	// so an odd count is rounded up.
	Bills int64
	// Span is how far back the history reaches: the first transfer is
	// Span before Now, the last one at Now.
	Span time.Duration
	// Now is the time of the last synthetic transfer.
	Now time.Time
	// Seed makes the pairs and amounts repeatable.
	Seed uint64
	// Progress, when set, receives a line now and then.
	Progress io.Writer
}

// Result says what was written.
type Result struct {
	// Transfers is how many transfers were posted.
	Transfers int64
	// Bills is how many bills they made: two a transfer.
	Bills int64
	// Took is the time the writing took, deposits included.
	Took time.Duration
}

// Write posts plan's deposits and transfers to store and returns what it
// wrote. A failure leaves the history written so far, every store
// transaction of it whole.
func Write(ctx context.Context, store coffer.Store, plan Plan) (Result, error) {
	start := time.Now()
	n := len(plan.Users)
	if n < 2 {
		return Result{}, errors.New("history: needs at least two users")
	}
	if plan.Bills <= 0 {
		return Result{}, errors.New("history: the bill count must be positive")
	}
	transfers := (plan.Bills + 1) / 2
	// Each user pays at most maxTransferFen per transfer it is the payer of;
	// about transfers/n of them on average, four times that is ample.
	perUser := (4*transfers/int64(n) + 10) * maxTransferFen
	if perUser > int64(coffer.MaxAmount) {
		return Result{}, fmt.Errorf("history: %d bills among %d users would need more than the largest amount each; use more users", plan.Bills, n)
	}
	span := plan.Span
	if span <= 0 {
		span = 365 * 24 * time.Hour
	}
	first := plan.Now.Add(-span)
	step := span / time.Duration(transfers) // the last transfer at Now, the others step apart before it

	err := store.Update(ctx, func(tx coffer.Tx) error {
		for _, u := range plan.Users {
			deposit := coffer.CashDeposit(u.ID, coffer.Amount(perUser), first)
			deposit.Memo = Memo
			if _, err := tx.Post(ctx, deposit); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("history: deposits: %w", err)
	}

	rng := rand.New(rand.NewPCG(plan.Seed, 0x636f66666572))
	var done int64
	lastReport := time.Now()
	type draw struct {
		payer, payee int
		amountFen    int64
	}
	draws := make([]draw, 0, PerUpdate)
	for done < transfers {
		count := min(PerUpdate, transfers-done)
		// Drawn before the store transaction, which may run more than once:
		// the same Seed writes the same history.
		draws = draws[:0]
		for range count {
			i, j := rng.IntN(n), rng.IntN(n-1)
			if j >= i {
				j++
			}
			draws = append(draws, draw{i, j, 1 + rng.Int64N(maxTransferFen)})
		}
		err := store.Update(ctx, func(tx coffer.Tx) error {
			for k, d := range draws {
				payer, payee := plan.Users[d.payer], plan.Users[d.payee]
				at := plan.Now.Add(-step * time.Duration(transfers-1-(done+int64(k))))
				_, err := tx.Post(ctx, &coffer.Transaction{User: payer.ID, Kind: string(coffer.ModeTransfer), Memo: Memo, CreatedAt: at,
					Legs: []coffer.Leg{coffer.TransferLeg(payer, payee, coffer.Amount(d.amountFen), "")}})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return Result{Transfers: done, Bills: 2 * done, Took: time.Since(start)}, fmt.Errorf("history: transfers: %w", err)
		}
		done += count
		if plan.Progress != nil && (time.Since(lastReport) > 5*time.Second || done == transfers) {
			lastReport = time.Now()
			el := time.Since(start).Seconds()
			fmt.Fprintf(plan.Progress, "history: %d of %d bills in %.0f s (%.0f bills/s)\n", 2*done, 2*transfers, el, float64(2*done)/el)
		}
	}
	return Result{Transfers: done, Bills: 2 * done, Took: time.Since(start)}, nil
}
