package postgres_test

import (
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"coffer"
	"coffer/postgres"
	"coffer/storetest"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestBatchConnectionLostBeforeCommitRunsAgain: the backend of a batch
// sent whole is terminated while an item in the middle runs. Its FATAL
// error comes in place of that item's answer, before COMMIT's: the
// transaction never committed, and every item must say so, as "nothing
// ran, run again" (which Update runs again), not as an unknown outcome;
// and nothing of the batch is written.
func TestBatchConnectionLostBeforeCommitRunsAgain(t *testing.T) {
	s, a, b := withTwoUsers(t)
	storetest.Deposit(t, s, a.ID, 10_00)
	pay := cardToCard(s, a, b, 1_00)
	sleep := func(t *postgres.TxConn) error {
		t.ExecLater(nil, "SELECT pg_sleep(5)")
		return nil
	}
	before := storetest.CountRows(t, s)
	errs, committing := inOneBatchTerminated(t, s, "PgSleep", pay, sleep, pay)
	for i, err := range errs {
		if committing[i] || !postgres.RanNothing(err) {
			t.Errorf("item %d: %v (outcome unknown: %v), want nothing ran, to run again", i, err, committing[i])
		}
		if !isFatalError(err) {
			t.Errorf("item %d: %v, want the backend's FATAL error", i, err)
		}
	}
	if got := [2]int64{balance(t, s, coffer.CardAccount(a.ID)), balance(t, s, coffer.CardAccount(b.ID))}; got != [2]int64{10_00, 0} {
		t.Errorf("cards %v after a batch that never committed, want [1000 0]", got)
	}
	if got := storetest.CountRows(t, s); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("rows %v after a batch that never committed, want %v", got, before)
	}
	if st := s.Stats(); st.SplitBatches != 0 {
		t.Errorf("stats %+v: a batch that lost its connection ran again in sections", st)
	}
}

// TestBatchConnectionLostAtCommitLeavesTheOutcomeUnknown: the backend of
// a batch is terminated during its COMMIT (a deferred constraint trigger
// that sleeps there), sent whole or, after a failure, in sections. COMMIT
// may have run for all the client knows: every item that reached it must
// say that its outcome is unknown, never "nothing ran" (Update would run
// again a payment that may be posted); the item that failed in its
// section keeps its known failure.
func TestBatchConnectionLostAtCommitLeavesTheOutcomeUnknown(t *testing.T) {
	s, a, b := withTwoUsers(t)
	storetest.Deposit(t, s, a.ID, 10_00)
	execAll(t, s,
		`CREATE TABLE commit_marks (id INT)`,
		`CREATE FUNCTION sleep_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(5); RETURN NULL; END $$`,
		`CREATE CONSTRAINT TRIGGER sleep_at_commit AFTER INSERT ON commit_marks
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sleep_at_commit()`)
	pay := cardToCard(s, a, b, 1_00)
	mark := func(t *postgres.TxConn) error {
		t.ExecLater(nil, "INSERT INTO commit_marks VALUES (1)")
		return nil
	}
	for _, c := range []struct {
		name  string
		items []func(*postgres.TxConn) error
		known int // the item that fails for certain, or -1
		split int64
	}{
		{"whole", []func(*postgres.TxConn) error{pay, mark, pay}, -1, 0},
		{"in sections", []func(*postgres.TxConn) error{pay, mark, divideByZero}, 2, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			splitBefore := s.Stats().SplitBatches
			errs, committing := inOneBatchTerminated(t, s, "PgSleep", c.items...)
			for i, err := range errs {
				switch {
				case i == c.known:
					if pgCode(err) != "22012" || committing[i] {
						t.Errorf("item %d: %v (outcome unknown: %v), want division_by_zero, outcome known", i, err, committing[i])
					}
				case err == nil || !committing[i] || postgres.RanNothing(err):
					t.Errorf("item %d: %v (outcome unknown: %v), want the lost connection, outcome unknown", i, err, committing[i])
				}
			}
			if n := s.Stats().SplitBatches - splitBefore; n != c.split {
				t.Errorf("%d batches run again in sections, want %d", n, c.split)
			}
		})
	}
}

// inOneBatchTerminated posts fns in one batch, as InOneBatchCommitting
// does, and terminates the batch's backend as soon as it waits on event
// (pg_stat_activity's wait_event); it returns the batch's answers.
func inOneBatchTerminated(t *testing.T, s *postgres.Store, event string, fns ...func(*postgres.TxConn) error) (errs []error, committing []bool) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		errs, committing = s.InOneBatchCommitting(ctx, fns...)
	}()
	for deadline := time.Now().Add(10 * time.Second); ; {
		var killed bool
		if err := s.DB().QueryRow(`SELECT COALESCE(bool_or(pg_terminate_backend(pid)), false) FROM pg_stat_activity
			WHERE wait_event = $1 AND datname = current_database() AND pid <> pg_backend_pid()`, event).Scan(&killed); err != nil {
			t.Fatal(err)
		}
		if killed {
			<-done
			return errs, committing
		}
		if time.Now().After(deadline) {
			t.Fatalf("no backend waited on %s in 10 s", event)
		}
		time.Sleep(time.Millisecond)
	}
}

// execAll runs queries on s's pool, one after another.
func execAll(t *testing.T, s *postgres.Store, queries ...string) {
	t.Helper()
	for _, q := range queries {
		if _, err := s.DB().Exec(q); err != nil {
			t.Fatalf("%.40s: %v", q, err)
		}
	}
}

// divideByZero is a batch's item whose statement fails in the database.
func divideByZero(t *postgres.TxConn) error {
	t.ExecLater(nil, "SELECT 1 / 0")
	return nil
}

// TestBatchCommitFailingFailsEveryItemOnce: COMMIT of a batch sent whole
// fails (a deferred constraint trigger, fired at COMMIT by an item's row),
// after every item's statements succeeded. The transaction rolled back:
// every item fails with COMMIT's error, a known outcome, and none runs
// again in sections, where COMMIT would fail the same way.
func TestBatchCommitFailingFailsEveryItemOnce(t *testing.T) {
	s, a, b := withTwoUsers(t)
	storetest.Deposit(t, s, a.ID, 10_00)
	execAll(t, s,
		`CREATE TABLE commit_refused (id INT)`,
		`CREATE FUNCTION refuse_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$`,
		`CREATE CONSTRAINT TRIGGER refuse_commit AFTER INSERT ON commit_refused
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_commit()`)
	runs := runCounter(t, s)
	pay := cardToCard(s, a, b, 1_00)
	refused := func(t *postgres.TxConn) error {
		runs.count(t)
		t.ExecLater(nil, "INSERT INTO commit_refused VALUES (1)")
		return nil
	}
	before := storetest.CountRows(t, s)
	errs, committing := s.InOneBatchCommitting(ctx, pay, refused, pay)
	for i, err := range errs {
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Message != "refused at commit" {
			t.Errorf("item %d: %v, want COMMIT's error", i, err)
		}
		if committing[i] {
			t.Errorf("item %d: outcome unknown (%v), want known: COMMIT failed", i, err)
		}
	}
	if n := runs.n(t); n != 1 {
		t.Errorf("the item failing COMMIT ran %d times, want once", n)
	}
	if got := [2]int64{balance(t, s, coffer.CardAccount(a.ID)), balance(t, s, coffer.CardAccount(b.ID))}; got != [2]int64{10_00, 0} {
		t.Errorf("cards %v after a batch whose COMMIT failed, want [1000 0]", got)
	}
	if got := storetest.CountRows(t, s); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("rows %v after a batch whose COMMIT failed, want %v", got, before)
	}
	var marks int
	if err := s.DB().QueryRow("SELECT COUNT(*) FROM commit_refused").Scan(&marks); err != nil {
		t.Fatal(err)
	}
	if marks != 0 {
		t.Errorf("%d rows of the item failing COMMIT stayed", marks)
	}
	if st := s.Stats(); st.SplitBatches != 0 {
		t.Errorf("stats %+v: a batch whose COMMIT failed ran again in sections", st)
	}
	storetest.AssertLedger(t, s)
}

// TestBatchMissingRowCommitsOnceAfterASplit: an item whose row did not
// come (breaking Deferrer.QueryRowLater's rule) ran whole in a batch sent
// whole, which a later item's failure then rolled back. The item runs
// again in its section and commits there, once: it reports the missing
// row with an unknown outcome (its statements commit with the batch), and
// the payment before it is posted once.
func TestBatchMissingRowCommitsOnceAfterASplit(t *testing.T) {
	s, a, b := withTwoUsers(t)
	storetest.Deposit(t, s, a.ID, 10_00)
	pay := cardToCard(s, a, b, 1_00)
	missingRow := func(t *postgres.TxConn) error {
		t.ExecLater(nil, "UPDATE users SET pay_failures = pay_failures + 1 WHERE id = $1", a.ID)
		var one int
		t.QueryRowLater(nil, []any{&one}, nil, "SELECT 1 WHERE false")
		return nil
	}
	before := storetest.CountRows(t, s)
	errs, committing := s.InOneBatchCommitting(ctx, pay, missingRow, divideByZero)
	if errs[0] != nil || committing[0] {
		t.Errorf("the payment: %v (outcome unknown: %v)", errs[0], committing[0])
	}
	if !errors.Is(errs[1], sql.ErrNoRows) || !committing[1] {
		t.Errorf("the missing row: %v (outcome unknown: %v), want sql.ErrNoRows, outcome unknown", errs[1], committing[1])
	}
	if pgCode(errs[2]) != "22012" || committing[2] {
		t.Errorf("the division by zero: %v (outcome unknown: %v), want division_by_zero, outcome known", errs[2], committing[2])
	}
	if n := payFailures(t, s, a.ID); n != 1 {
		t.Errorf("the item whose row was missing committed %d times, want once", n)
	}
	if got := balance(t, s, coffer.CardAccount(b.ID)); got != 1_00 {
		t.Errorf("payee's card %d, want 100", got)
	}
	if got := storetest.CountRows(t, s)["transactions"] - before["transactions"]; got != 1 {
		t.Errorf("%d transactions more, want the payment's one", got)
	}
	if st := s.Stats(); st.SplitBatches != 1 {
		t.Errorf("stats %+v: want the batch run again in sections once", st)
	}
	storetest.AssertLedger(t, s)
}

// TestBatchFirstItemSentFailingRunsOnce: the first item of a batch fails
// before the pipeline (an argument that cannot be encoded), so the second
// is the first item sent whole; when that one fails in the database, no
// other item's statement ran before it: its failure stands, it runs once,
// and only the payment after it runs again, in sections.
func TestBatchFirstItemSentFailingRunsOnce(t *testing.T) {
	s, a, b := withTwoUsers(t)
	storetest.Deposit(t, s, a.ID, 10_00)
	runs := runCounter(t, s)
	unencodable := func(t *postgres.TxConn) error {
		t.ExecLater(nil, "UPDATE users SET pay_failures = $1 WHERE id = $2", make(chan int), a.ID) // pgx cannot encode a channel
		return nil
	}
	fail := func(t *postgres.TxConn) error {
		runs.count(t)
		return divideByZero(t)
	}
	pay := cardToCard(s, a, b, 1_00)
	errs, committing := s.InOneBatchCommitting(ctx, unencodable, fail, pay)
	if errs[0] == nil || committing[0] {
		t.Errorf("the argument that cannot be encoded: %v (outcome unknown: %v), want a failure, outcome known", errs[0], committing[0])
	}
	if pgCode(errs[1]) != "22012" || committing[1] {
		t.Errorf("the division by zero: %v (outcome unknown: %v), want division_by_zero, outcome known", errs[1], committing[1])
	}
	if errs[2] != nil || committing[2] {
		t.Errorf("the payment: %v (outcome unknown: %v)", errs[2], committing[2])
	}
	if n := runs.n(t); n != 1 {
		t.Errorf("the first item sent, failing, ran %d times, want once", n)
	}
	if n := payFailures(t, s, a.ID); n != 0 {
		t.Errorf("pay_failures %d: the item that could not be encoded ran", n)
	}
	if got := balance(t, s, coffer.CardAccount(b.ID)); got != 1_00 {
		t.Errorf("payee's card %d, want 100", got)
	}
	if st := s.Stats(); st.SplitBatches != 1 {
		t.Errorf("stats %+v: want the payment run again in sections", st)
	}
	storetest.AssertLedger(t, s)
}

// isFatalError reports whether err carries PostgreSQL's FATAL error, the
// last answer of a backend that ends its connection.
func isFatalError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Severity == "FATAL"
}

// pgCode is the SQLSTATE of the PostgreSQL error in err's chain, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// payFailures is the user's pay_failures, which the tests' items change.
func payFailures(t *testing.T, s *postgres.Store, user coffer.UserID) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRow("SELECT pay_failures FROM users WHERE id = $1", user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
