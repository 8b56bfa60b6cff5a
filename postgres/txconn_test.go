package postgres_test

import (
	"strings"
	"testing"

	"coffer/internal/pgtest"
	"coffer/postgres"
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
		tx.ExecLater(closeDay, "2026-01-01") // the transaction's first statement, with BEGIN
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM business_days`).Scan(&n); err != nil || n != 1 {
			t.Errorf("the carrying statement saw %d rows, err %v; want 1", n, err)
		}
		tx.ExecLater(closeDay, "2026-01-02") // goes with COMMIT
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
		tx.ExecLater(closeDay, "2026-01-01") // a duplicate: unique violation
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
		tx.ExecLater(closeDay, "2026-01-01")
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
