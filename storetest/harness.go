// Package storetest is the conformance suite every coffer.Store must pass,
// and the harness the other packages' tests build a Bank with.
package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"coffer"
	"coffer/password"
)

// Opener opens a fresh, empty, migrated store for one test and closes it
// when the test ends.
type Opener func(t testing.TB) coffer.Store

// Clock is a settable clock for tests.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// TestParams are argon2id parameters cheap enough for tests that register
// and log in hundreds of users; one test uses password.DefaultParams.
var TestParams = password.Params{TimeCost: 1, MemoryKiB: 64, Parallelism: 1}

// TestSecret is the server secret of test banks.
var TestSecret = []byte("coffer-test-secret-0123456789abcdef")

// Start is the test clock's default start: 10:00 on 2026-11-23 in Shanghai.
var Start = time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)

// NewBank returns a Bank on store with the default config, a test clock
// at Start, cheap password hashing and the default catalog seeded.
func NewBank(t testing.TB, store coffer.Store) (*coffer.Bank, *Clock) {
	t.Helper()
	clock := NewClock(Start)
	keyer, err := password.NewPayKeyer(TestSecret)
	if err != nil {
		t.Fatal(err)
	}
	cfg := coffer.DefaultConfig()
	ctx := context.Background()
	if err := store.Update(ctx, func(tx coffer.Tx) error { return coffer.SeedCatalog(ctx, tx, clock.Now(), cfg.Zone) }); err != nil {
		t.Fatalf("seed catalog: %v", err)
	}
	return coffer.NewBank(store, password.NewHasher(TestParams), keyer, cfg, clock.Now), clock
}

// AssertMigratedSpendHeldToLimit checks a store migrated from a database
// in which user 1 had spent 150.00 on 2026-11-23, before each day's row
// kept its limit: 50.00 more reaches a limit of 200.00, one fen more is
// refused with ErrLimitDaily.
func AssertMigratedSpendHeldToLimit(t testing.TB, store coffer.Store) {
	t.Helper()
	ctx := context.Background()
	spend := func(amount coffer.Amount) error {
		return store.Update(ctx, func(tx coffer.Tx) error { return tx.AddDailySpend(ctx, 1, "2026-11-23", amount, 200_00) })
	}
	if err := spend(50_00); err != nil {
		t.Errorf("up to the limit over the old row: %v", err)
	}
	if err := spend(1); !coffer.IsCode(err, coffer.ErrLimitDaily) {
		t.Errorf("past the limit over the old row: %v, want %s", err, coffer.ErrLimitDaily)
	}
}

// StoredBody returns the body of the answer stored under user's key,
// failing the test if it cannot be read or is not there.
func StoredBody(t testing.TB, store coffer.Store, user coffer.UserID, key string) string {
	t.Helper()
	var rec coffer.IdempotentRecord
	var found bool
	if err := store.View(context.Background(), func(tx coffer.ReadTx) error {
		var err error
		rec, found, err = tx.Idempotent(context.Background(), user, key)
		return err
	}); err != nil || !found {
		t.Fatalf("stored answer of user %d under %q: found %v, %v", user, key, found, err)
	}
	return string(rec.Body)
}

// AssertLedger fails the test unless every ledger invariant holds.
func AssertLedger(t testing.TB, store coffer.Store) {
	t.Helper()
	var r coffer.LedgerReport
	err := store.View(context.Background(), func(tx coffer.ReadTx) error {
		var err error
		r, err = tx.CheckLedger(context.Background())
		return err
	})
	if err != nil {
		t.Fatalf("check ledger: %v", err)
	}
	for _, p := range r.Problems {
		t.Errorf("ledger invariant broken: %s", p)
	}
}

// CountRows returns the row count of every table.
func CountRows(t testing.TB, store coffer.Store) map[string]int64 {
	t.Helper()
	var counts map[string]int64
	err := store.View(context.Background(), func(tx coffer.ReadTx) error {
		var err error
		counts, err = tx.CountRows(context.Background())
		return err
	})
	if err != nil {
		t.Fatalf("count rows: %v", err)
	}
	return counts
}
