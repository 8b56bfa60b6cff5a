package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"coffer"
	"coffer/sqlite"
)

// benchUsers is how many users the store benchmarks move money between.
const benchUsers = 1000

// benchParallelism multiplies GOMAXPROCS into the goroutines that post at
// once, as an HTTP server's request goroutines would.
const benchParallelism = 32

// benchDepositFen is every user's starting balance: far more than a run
// moves, so that no transfer fails for want of funds.
const benchDepositFen = 100_000_000_00

// openBenchStore opens a fresh store with benchUsers funded users and
// returns it with the users' ids and mobiles.
func openBenchStore(b *testing.B) (*sqlite.Store, []coffer.User) {
	b.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	users := make([]coffer.User, benchUsers)
	now := time.Now()
	err = store.Update(ctx, func(tx coffer.Tx) error {
		for i := range users {
			u := &coffer.User{
				Username: fmt.Sprintf("bench%d", i), Email: fmt.Sprintf("bench%d@example.com", i),
				Mobile: fmt.Sprintf("139%08d", i), CardNum: fmt.Sprintf("62220000%011d", i),
				PasswordHash: "x", CreatedAt: now,
			}
			if err := tx.CreateUser(ctx, u); err != nil {
				return err
			}
			users[i] = *u
			_, err := tx.Post(ctx, &coffer.Transaction{Kind: "deposit", CreatedAt: now, Legs: []coffer.Leg{{
				From: coffer.SystemAccount(coffer.KindCash, coffer.AssetCNY), To: coffer.CardAccount(u.ID), Amount: benchDepositFen,
				FromMethod: coffer.MethodDeposit, ToMethod: coffer.MethodDeposit, FromDetails: "bench", ToDetails: "bench",
			}}})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return store, users
}

// transferLeg is a transfer of amountFen from payer to payee as Bank.Pay
// plans it.
func transferLeg(payer, payee coffer.User, amountFen int64) coffer.Leg {
	return coffer.Leg{
		From: coffer.CardAccount(payer.ID), To: coffer.CardAccount(payee.ID), Amount: amountFen,
		FromMethod: coffer.MethodTransferOut, ToMethod: coffer.MethodTransferIn,
		FromDetails: "转账给 " + payee.Username, ToDetails: "来自 " + payer.Username + " 的转账",
	}
}

// randomPair picks two distinct users.
func randomPair(r *rand.Rand, users []coffer.User) (coffer.User, coffer.User) {
	i := r.IntN(len(users))
	j := r.IntN(len(users) - 1)
	if j >= i {
		j++
	}
	return users[i], users[j]
}

// runTransfers posts b.N transfers from many goroutines, each through its
// own Store.Update with fn, and reports durable transfers per second
// (synchronous=FULL: each group commit is fsynced before Update returns).
func runTransfers(b *testing.B, fn func(ctx context.Context, tx coffer.Tx, payer, payee coffer.User, amountFen int64, key string) error) {
	store, users := openBenchStore(b)
	ctx := context.Background()
	var seq atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(uint64(seq.Add(1)), 7))
		for pb.Next() {
			payer, payee := randomPair(r, users)
			key := "k" + strconv.FormatInt(seq.Add(1), 10)
			amountFen := int64(1 + r.IntN(100))
			if err := store.Update(ctx, func(tx coffer.Tx) error { return fn(ctx, tx, payer, payee, amountFen, key) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "transfers/s")
	var report coffer.LedgerReport
	if err := store.View(ctx, func(tx coffer.ReadTx) error {
		var err error
		report, err = tx.CheckLedger(ctx)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	if !report.OK() {
		b.Fatalf("ledger broken after the benchmark: %v", report.Problems)
	}
}

// BenchmarkPostTransfer measures the ledger alone: one Post of a transfer
// between two random users per Store.Update.
func BenchmarkPostTransfer(b *testing.B) {
	runTransfers(b, func(ctx context.Context, tx coffer.Tx, payer, payee coffer.User, amountFen int64, key string) error {
		_, err := tx.Post(ctx, &coffer.Transaction{User: payer.ID, Kind: coffer.ModeTransfer, CreatedAt: time.Now(), Legs: []coffer.Leg{transferLeg(payer, payee, amountFen)}})
		return err
	})
}

// BenchmarkPayTransfer measures the whole write transaction of a transfer
// as Bank.Pay runs it (the payee was read before it): the payer's lock,
// the daily limit, the posting and the idempotency record.
func BenchmarkPayTransfer(b *testing.B) {
	limitDaily := coffer.DefaultConfig().LimitDaily
	runTransfers(b, func(ctx context.Context, tx coffer.Tx, payer, payee coffer.User, amountFen int64, key string) error {
		now := time.Now()
		if _, err := tx.LockUser(ctx, payer.ID); err != nil {
			return err
		}
		if err := tx.AddDailySpend(ctx, payer.ID, now.Format(time.DateOnly), coffer.Amount(amountFen), limitDaily); err != nil {
			return err
		}
		posted, err := tx.Post(ctx, &coffer.Transaction{User: payer.ID, Kind: coffer.ModeTransfer, CreatedAt: now, Legs: []coffer.Leg{transferLeg(payer, payee, amountFen)}})
		if err != nil {
			return err
		}
		body := []byte(coffer.Amount(posted.Balances[coffer.CardAccount(payer.ID)]).String())
		return tx.PutIdempotent(ctx, coffer.IdempotentRecord{User: payer.ID, Key: key, RequestHash: []byte("fingerprint"), Status: 200, Body: body, CreatedAt: now})
	})
}

// BenchmarkViewUser measures one read transaction that looks a user up by
// id, as every authenticated request does at least once.
func BenchmarkViewUser(b *testing.B) {
	store, users := openBenchStore(b)
	ctx, cancel := context.WithCancel(context.Background()) // cancellable, as a request's is
	defer cancel()
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(uint64(seq.Add(1)), 9))
		for pb.Next() {
			id := users[r.IntN(len(users))].ID
			if err := store.View(ctx, func(tx coffer.ReadTx) error {
				_, err := tx.UserByID(ctx, id)
				return err
			}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
