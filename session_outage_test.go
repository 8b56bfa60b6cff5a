package coffer_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"coffer"
	"coffer/password"
	"coffer/sqlite"
)

// refusingWrites is a store whose database refuses writes: Update fails
// with ErrUnavailable, View works.
type refusingWrites struct{ coffer.Store }

func (refusingWrites) Update(context.Context, func(coffer.Tx) error) error {
	return &coffer.Error{Code: coffer.ErrUnavailable, Detail: "read-only for the test"}
}

// TestSessionDueForRefreshServesReadsWhileWritesFail: a request refreshes
// its session's idle clock at most once a minute, a write. When the
// database refuses writes, the session must still authenticate, so that
// reads are served (docs/faults.md); the refresh waits for a later request.
func TestSessionDueForRefreshServesReadsWhileWritesFail(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "coffer.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keyer, err := password.NewPayKeyer([]byte("session-outage-test-secret-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	hasher := password.NewHasher(password.Params{TimeCost: 1, MemoryKiB: 64, Parallelism: 1})
	now := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	bank := coffer.NewBank(store, hasher, keyer, coffer.DefaultConfig(), clock)
	if err := bank.Register(ctx, coffer.Registration{Username: "alice", Password: "correct horse", Email: "alice@example.com",
		Mobile: "13800138000", CardNum: "6222020200112233446"}); err != nil {
		t.Fatal(err)
	}
	token, user, err := bank.Login(ctx, "alice", "correct horse", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}

	now = now.Add(2 * time.Minute) // the session is due for a refresh
	down := coffer.NewBank(refusingWrites{store}, hasher, keyer, coffer.DefaultConfig(), clock)
	id, err := down.Authenticate(ctx, token)
	if err != nil || id != user.ID {
		t.Fatalf("authenticate while writes fail: %v, %v; want user %v", id, err, user.ID)
	}
	if _, err := down.Info(ctx, id); err != nil {
		t.Errorf("info while writes fail: %v", err)
	}
	// Other failures of the refresh are not swallowed.
	if _, err := coffer.NewBank(failingStore{store}, hasher, keyer, coffer.DefaultConfig(), clock).Authenticate(ctx, token); coffer.ErrorCode(err) != coffer.ErrInternal {
		t.Errorf("a refresh failing with an internal error: %v", err)
	}
	// Once writes work again, the refresh happens.
	if _, err := bank.Authenticate(ctx, token); err != nil {
		t.Fatal(err)
	}
	now = now.Add(29 * time.Minute) // idle 29 minutes since the refresh
	if _, err := bank.Authenticate(ctx, token); err != nil {
		t.Errorf("the refresh after the outage did not happen: %v", err)
	}
}

// failingStore is a store whose writes fail with an unexpected error.
type failingStore struct{ coffer.Store }

func (failingStore) Update(context.Context, func(coffer.Tx) error) error {
	return coffer.Errorf(coffer.ErrInternal, "broken")
}
