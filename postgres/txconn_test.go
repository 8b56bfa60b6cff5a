package postgres_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"coffer"
	"coffer/internal/pgtest"
	"coffer/postgres"
	"coffer/storetest"
)

// closedDays returns the days recorded in business_days.
func closedDays(t *testing.T, s *postgres.Store) string {
	t.Helper()
	var days string
	if err := s.DB().QueryRow(`SELECT COALESCE(string_agg(day, ' ' ORDER BY day), '') FROM business_days`).Scan(&days); err != nil {
		t.Fatal(err)
	}
	return days
}

const closeDay = `INSERT INTO business_days (day, closed_at_ms) VALUES ($1, 1)`

// TestExecLaterGoesWithTheNextStatement: a held-back statement runs before
// the statement that carries it (which sees its row) and is committed.
func TestExecLaterGoesWithTheNextStatement(t *testing.T) {
	s := pgtest.OpenOptions(t, postgres.Options{})
	err := s.InUpdateTx(ctx, func(tx *postgres.TxConn) error {
		tx.ExecLater(nil, closeDay, "2026-01-01") // the transaction's first statement, with BEGIN
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM business_days`).Scan(&n); err != nil || n != 1 {
			t.Errorf("the carrying statement saw %d rows, err %v; want 1", n, err)
		}
		tx.ExecLater(nil, closeDay, "2026-01-02") // goes with COMMIT
		return tx.Commit(ctx)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := closedDays(t, s); got != "2026-01-01 2026-01-02" {
		t.Errorf("committed days %q", got)
	}
}

// TestFailedExecLaterCommitsNothing: a held-back statement that fails
// fails the statement that carried it, and the transaction commits
// nothing even when its function goes on to COMMIT.
func TestFailedExecLaterCommitsNothing(t *testing.T) {
	s := pgtest.OpenOptions(t, postgres.Options{})
	var carried, committed error
	err := s.InUpdateTx(ctx, func(tx *postgres.TxConn) error {
		if err := tx.Exec(ctx, closeDay, "2026-01-01"); err != nil {
			return err
		}
		tx.ExecLater(nil, closeDay, "2026-01-01") // a duplicate: unique violation
		carried = tx.Exec(ctx, closeDay, "2026-01-02")
		committed = tx.Commit(ctx)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if carried == nil || !strings.Contains(carried.Error(), "sent before") {
		t.Errorf("the carrying statement's error: %v", carried)
	}
	if committed == nil {
		t.Error("COMMIT of a failed transaction succeeded")
	}
	if got := closedDays(t, s); got != "" {
		t.Errorf("committed days %q, want none", got)
	}
}

// TestFailedExecLaterAtCommit: a held-back statement that fails at COMMIT
// fails the commit.
func TestFailedExecLaterAtCommit(t *testing.T) {
	s := pgtest.OpenOptions(t, postgres.Options{})
	err := s.InUpdateTx(ctx, func(tx *postgres.TxConn) error {
		if err := tx.Exec(ctx, closeDay, "2026-01-01"); err != nil {
			return err
		}
		tx.ExecLater(nil, closeDay, "2026-01-01")
		return tx.Commit(ctx)
	})
	if err == nil {
		t.Fatal("commit carrying a failing statement succeeded")
	}
	if got := closedDays(t, s); got != "" {
		t.Errorf("committed days %q, want none", got)
	}
	// The connection went back to the pool out of any transaction.
	if err := s.InUpdateTx(ctx, func(tx *postgres.TxConn) error {
		if err := tx.Exec(ctx, closeDay, "2026-01-03"); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}); err != nil {
		t.Fatal(err)
	}
	if got := closedDays(t, s); got != "2026-01-03" {
		t.Errorf("committed days %q", got)
	}
}

// TestUnreadFirstStatementDoesNotPoisonThePool: a transaction whose first
// statement's row is never read leaves its connection busy; the
// connection must not go back to the pool as it is.
func TestUnreadFirstStatementDoesNotPoisonThePool(t *testing.T) {
	s := pgtest.OpenOptions(t, postgres.Options{MaxConns: 1})
	unread := errors.New("gave up before reading")
	err := s.InUpdateTx(ctx, func(tx *postgres.TxConn) error {
		tx.QueryRow(ctx, `SELECT COUNT(*) FROM business_days`) // not scanned
		return unread
	})
	if !errors.Is(err, unread) {
		t.Fatalf("err %v", err)
	}
	if err := s.View(ctx, func(tx coffer.ReadTx) error {
		_, err := tx.LastClosedDay(ctx)
		return err
	}); err != nil {
		t.Fatalf("the next transaction on the pool's only connection: %v", err)
	}
}

// TestDeadlockBehindAMissingAccountIsRetried: Post pipelines its balance
// updates; when one of them dies in a deadlock after an earlier one found
// no account (a first movement of the carrier's), the deadlock is what
// Post reports, so that the store runs the payment again, not the
// "transaction aborted" of the statement that would create the account.
func TestDeadlockBehindAMissingAccountIsRetried(t *testing.T) {
	s := pgtest.OpenOptions(t, postgres.Options{})
	u := newUser(1)
	createUser(t, s, u)
	// Another transaction holds the user's card, and will ask for the
	// user's row once the payment holds it and waits for the card.
	other := holding(t, s, `UPDATE accounts SET balance = balance WHERE user_id = $1 AND kind = 'card'`, u.ID)
	holdsUser := make(chan struct{})
	var signal sync.Once
	paid := make(chan error, 1)
	go func() {
		paid <- s.Update(ctx, func(tx coffer.Tx) error {
			if _, err := tx.LockUser(ctx, u.ID); err != nil {
				return err
			}
			// The first run may hold the lock back (a batch's try, see
			// batch.go) and run again at once, with a connection.
			signal.Do(func() { close(holdsUser) })
			_, err := tx.Post(ctx, &coffer.Transaction{Kind: "test", CreatedAt: storetest.Start, Legs: []coffer.Leg{{
				From: coffer.SystemAccount(coffer.KindCarrier, coffer.AssetCNY), To: coffer.CardAccount(u.ID), Amount: 1,
				FromMethod: coffer.MethodMobilePay, ToMethod: coffer.MethodMobilePay, FromDetails: "t", ToDetails: "t",
			}}})
			return err
		})
	}()
	<-holdsUser
	time.Sleep(100 * time.Millisecond) // the payment's pipeline reaches the card and waits
	_, lockErr := other.Exec(`SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, u.ID)
	other.Rollback()
	if err := <-paid; err != nil {
		t.Fatalf("payment: %v (the other transaction: %v)", err, lockErr)
	}
	if lockErr == nil && s.Stats().ConflictRetries == 0 {
		t.Errorf("no deadlock seen by either transaction")
	}
	if got := balance(t, s, coffer.CardAccount(u.ID)); got != 1 {
		t.Errorf("card %d after the payment, want 1", got)
	}
}

// TestNoTransactionSendsNoBegin: ViewEach's txConn sends a statement
// alone, or several as one pipeline, without BEGIN, and leaves the
// connection idle, with no ROLLBACK to send after.
func TestNoTransactionSendsNoBegin(t *testing.T) {
	s := pgtest.OpenOptions(t, postgres.Options{})
	err := s.InNoTx(ctx, func(tx *postgres.TxConn) error {
		var one, two, three int
		if err := tx.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
			return err
		}
		errs := tx.QueryRows(ctx, []string{`SELECT 2`, `SELECT 3`}, [][]any{nil, nil}, [][]any{{&two}, {&three}})
		if err := errors.Join(errs...); err != nil {
			return err
		}
		if one != 1 || two != 2 || three != 3 {
			t.Errorf("read %d %d %d, want 1 2 3", one, two, three)
		}
		if tx.Began() || tx.TxStatus() != 'I' {
			t.Errorf("began %v, transaction status %q; want false, 'I'", tx.Began(), tx.TxStatus())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestNoTransactionRefusesHeldBackStatements: without a transaction no
// COMMIT carries a held-back statement, so commit refuses it, and it is
// never run.
func TestNoTransactionRefusesHeldBackStatements(t *testing.T) {
	s := pgtest.OpenOptions(t, postgres.Options{})
	err := s.InNoTx(ctx, func(tx *postgres.TxConn) error {
		tx.ExecLater(nil, closeDay, "2026-01-01")
		return tx.Commit(ctx)
	})
	if err == nil {
		t.Fatal("commit without a transaction took a held-back statement")
	}
	if got := closedDays(t, s); got != "" {
		t.Errorf("committed days %q, want none", got)
	}
}
