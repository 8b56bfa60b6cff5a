package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"coffer"
)

// The store benchmarks below run on every Store, so that the ledger's cost
// on SQLite and on PostgreSQL can be told apart from the HTTP server's.

// benchUsers is how many users the store benchmarks move money between.
const benchUsers = 1000

// benchParallelism multiplies GOMAXPROCS into the goroutines that post at
// once, as an HTTP server's request goroutines would.
const benchParallelism = 32

// benchDepositFen is every user's starting balance: far more than a run
// moves, so that no transfer fails for want of funds.
const benchDepositFen = 100_000_000_00

// benchUsersIn creates benchUsers funded users in store and returns them.
func benchUsersIn(b *testing.B, store coffer.Store) []coffer.User {
	b.Helper()
	ctx := context.Background()
	users := make([]coffer.User, benchUsers)
	now := time.Now()
	err := store.Update(ctx, func(tx coffer.Tx) error {
		for i := range users {
			u := &coffer.User{
				Username: fmt.Sprintf("bench%d", i), Email: fmt.Sprintf("bench%d@example.com", i),
				Mobile: MobileNumber(i), CardNum: fmt.Sprintf("62220000%011d", i),
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
	return users
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

// transferWrite is the write of one transfer inside a Store.Update.
type transferWrite func(ctx context.Context, tx coffer.Tx, payer, payee coffer.User, amountFen int64, key string) error

// runTransfers posts b.N transfers from many goroutines, each through its
// own Store.Update with write, reports durable transfers per second (each
// Update returns once its commit is on disk) and checks the ledger after.
func runTransfers(b *testing.B, store coffer.Store, write transferWrite) {
	users := benchUsersIn(b, store)
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
			if err := store.Update(ctx, func(tx coffer.Tx) error { return write(ctx, tx, payer, payee, amountFen, key) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "transfers/s")
	AssertLedger(b, store)
}

// BenchPostTransfer measures the ledger alone: one Post of a transfer
// between two random users per Store.Update.
func BenchPostTransfer(b *testing.B, store coffer.Store) {
	runTransfers(b, store, func(ctx context.Context, tx coffer.Tx, payer, payee coffer.User, amountFen int64, key string) error {
		_, err := tx.Post(ctx, &coffer.Transaction{User: payer.ID, Kind: coffer.ModeTransfer, CreatedAt: time.Now(), Legs: []coffer.Leg{transferLeg(payer, payee, amountFen)}})
		return err
	})
}

// BenchPayTransfer measures the whole write transaction of a transfer
// with the right password as Bank.Pay runs it (the payee was read before
// it): the payer's row and lock, the end of any row of wrong passwords,
// the daily limit, the posting and the idempotency record.
func BenchPayTransfer(b *testing.B, store coffer.Store) {
	limitDaily := coffer.DefaultConfig().LimitDaily
	runTransfers(b, store, func(ctx context.Context, tx coffer.Tx, payer, payee coffer.User, amountFen int64, key string) error {
		now := time.Now()
		if err := tx.LockPayable(ctx, payer.ID, now); err != nil {
			return err
		}
		if err := tx.ClearPayFailures(ctx, payer.ID); err != nil {
			return err
		}
		if err := tx.AddDailySpend(ctx, payer.ID, now.Format(time.DateOnly), coffer.Amount(amountFen), limitDaily); err != nil {
			return err
		}
		if _, err := tx.PostLater(ctx, &coffer.Transaction{User: payer.ID, Kind: coffer.ModeTransfer, CreatedAt: now, Legs: []coffer.Leg{transferLeg(payer, payee, amountFen)}}); err != nil {
			return err
		}
		card := coffer.CardAccount(payer.ID)
		return tx.PutIdempotent(ctx, coffer.IdempotentRecord{User: payer.ID, Key: key, RequestHash: []byte("fingerprint"), Status: 200, BodyBalanceOf: card, CreatedAt: now})
	})
}

// BenchViewUser measures one read transaction that looks a user up by
// id, as every authenticated request does at least once.
func BenchViewUser(b *testing.B, store coffer.Store) {
	users := benchUsersIn(b, store)
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
