package postgres

import (
	"context"
	"errors"
	"fmt"

	"coffer"
	"coffer/sqlstore"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The BEGIN statements of Update and View.
const (
	beginUpdate = "BEGIN ISOLATION LEVEL READ COMMITTED"
	beginView   = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
)

// errCommitRolledBack is COMMIT's answer when a statement of the
// transaction had failed and the function went on regardless: PostgreSQL
// rolled it back.
var errCommitRolledBack = errors.New("postgres: commit rolled back: a statement of the transaction failed")

// errHeldBackWithoutTx is commit's answer when statements were held back
// outside a transaction: there is no COMMIT to carry them.
var errHeldBackWithoutTx = errors.New("postgres: a statement held back outside a transaction")

// txConn is a sqlstore.Querier (and Pipeliner and Deferrer) running one
// transaction on one pgx connection, below database/sql, or none (for
// ViewEach: each statement, or pipeline, in one of its own). What needs no
// answer of its own does not cost a round trip of its own: BEGIN, and the
// statements queued by ExecLater and QueryRowLater, go in one pipeline (a
// pgx.Batch) with the next statement or with COMMIT. A transaction that
// ran no statement sends neither BEGIN nor COMMIT.
type txConn struct {
	conn  *pgx.Conn
	begin string   // "": no transaction, each pipeline in one of its own
	began bool     // BEGIN was sent: the transaction must be ended
	later []queued // statements to send before the next one
	// Without a connection (recording: Update's first try, see batch.go)
	// statements are only held back; one that needs its answer sets
	// neededConn and fails with errNeedsConn. What the held-back
	// statements lock is kept for the batch (see sqlstore.LockPlanner).
	neededConn   bool
	lockUsers    []coffer.UserID
	lockAccounts []coffer.AccountKey
}

// recording reports whether t has no connection.
func (t *txConn) recording() bool { return t.conn == nil }

// WillLock implements sqlstore.LockPlanner: a transaction of its own
// locks its rows in its statements' order, a batch takes them first.
func (t *txConn) WillLock(users []coffer.UserID, accounts []coffer.AccountKey) {
	if t.recording() {
		t.lockUsers = append(t.lockUsers, users...)
		t.lockAccounts = append(t.lockAccounts, accounts...)
	}
}

// queued is a statement of ExecLater or QueryRowLater.
type queued struct {
	onError func(error) error // nil: the error as it is
	query   string
	args    []any
	dests   []any  // QueryRowLater's: the row is scanned into them
	done    func() // QueryRowLater's: runs after the scan, when not nil
}

// inTx runs fn on a txConn over a connection of db's pool, with begin as
// its BEGIN statement (none when it is ""), and leaves no transaction open
// on the connection when it returns: one that fn did not commit is rolled
// back, and a connection whose state is in doubt is closed (the pool then
// drops it).
func (s *Store) inTx(ctx context.Context, begin string, fn func(t *txConn) error) error {
	c, err := s.conns.take(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return rawConn(c, func(conn *pgx.Conn) error {
		t := &txConn{conn: conn, begin: begin}
		err := fn(t)
		t.end(ctx)
		return err
	})
}

// direct reports whether the next statement can go alone: BEGIN was sent,
// or none is needed, and nothing is queued.
func (t *txConn) direct() bool { return (t.began || t.begin == "") && len(t.later) == 0 }

// send sends BEGIN if not sent yet, the queued statements and then the
// given ones in one pipeline, and reads the answers of all but the given
// ones. A queued statement's failure is the error of the statement that
// carried it (PostgreSQL skips the rest of the pipeline).
func (t *txConn) send(ctx context.Context, queries []string, args [][]any) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	began := !t.began && t.begin != ""
	if began {
		b.Queue(t.begin)
	}
	for _, q := range t.later {
		b.Queue(q.query, q.args...)
	}
	for i, q := range queries {
		b.Queue(q, args[i]...)
	}
	later := t.later
	t.began, t.later = t.begin != "", nil
	br := t.conn.SendBatch(ctx, b)
	if began {
		if _, err := br.Exec(); err != nil {
			br.Close()
			err = fmt.Errorf("postgres: %s: %w", t.begin, err)
			if nothingRan(err) {
				return nil, &unstartedError{err}
			}
			return nil, err
		}
	}
	for _, q := range later {
		if err := q.read(br); err != nil {
			br.Close()
			if q.onError != nil {
				return nil, q.onError(err)
			}
			return nil, fmt.Errorf("postgres: a statement sent before this one: %w", err)
		}
	}
	return br, nil
}

// read reads the queued statement's answer from br.
func (q *queued) read(br pgx.BatchResults) error {
	if q.dests == nil {
		_, err := br.Exec()
		return err
	}
	if err := br.QueryRow().Scan(q.dests...); err != nil {
		return err
	}
	if q.done != nil {
		q.done()
	}
	return nil
}

// unstartedError is the failure of a transaction's first pipeline before
// anything of it ran, which may then run again on another connection even
// when the pipeline carried COMMIT (see nothingRan).
type unstartedError struct{ err error }

func (e *unstartedError) Error() string { return e.err.Error() }
func (e *unstartedError) Unwrap() error { return e.err }

// nothingRan reports whether err, the failure of the answer to BEGIN (a
// pipeline's first statement), means that the server ran nothing of the
// pipeline: nothing was sent (pgconn.SafeToRetry: the connection was
// closed or busy, the context done, a write failed before its first
// byte), or the first answer is a FATAL error. A backend ends its
// connection with a FATAL error (pg_terminate_backend, a shutdown, an
// idle session's timeout) after the answers of all it ran, which it sends
// first; so a FATAL before BEGIN's answer was sent before BEGIN ran,
// typically to a connection that lay idle in the pool.
func nothingRan(err error) bool {
	var pe *pgconn.PgError
	return pgconn.SafeToRetry(err) || errors.As(err, &pe) && pe.Severity == "FATAL"
}

// Exec implements sqlstore.Querier.
func (t *txConn) Exec(ctx context.Context, query string, args ...any) error {
	if t.recording() {
		t.neededConn = true
		return errNeedsConn
	}
	if t.direct() {
		_, err := t.conn.Exec(ctx, query, args...)
		return err
	}
	br, err := t.send(ctx, []string{query}, [][]any{args})
	if err != nil {
		return err
	}
	_, err = br.Exec()
	return closeBatch(br, err)
}

// ExecLater implements sqlstore.Deferrer: the statement goes with the
// next one, or with COMMIT.
func (t *txConn) ExecLater(onError func(error) error, query string, args ...any) {
	t.later = append(t.later, queued{onError: onError, query: query, args: args})
}

// QueryRowLater implements sqlstore.Deferrer: the statement goes with
// the next one, or with COMMIT, and its row is scanned when its answer is
// read.
func (t *txConn) QueryRowLater(onError func(error) error, dests []any, done func(), query string, args ...any) {
	t.later = append(t.later, queued{onError: onError, query: query, args: args, dests: dests, done: done})
}

// Query implements sqlstore.Querier.
func (t *txConn) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	if t.recording() {
		t.neededConn = true
		return nil, errNeedsConn
	}
	if t.direct() {
		rows, err := t.conn.Query(ctx, query, args...)
		if err != nil {
			return nil, err
		}
		return &txRows{Rows: rows}, nil
	}
	br, err := t.send(ctx, []string{query}, [][]any{args})
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, closeBatch(br, err)
	}
	return &txRows{Rows: rows, batch: br}, nil
}

// QueryRow implements sqlstore.Querier.
func (t *txConn) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	if t.recording() {
		t.neededConn = true
		return errRow{errNeedsConn}
	}
	if t.direct() {
		return t.conn.QueryRow(ctx, query, args...)
	}
	br, err := t.send(ctx, []string{query}, [][]any{args})
	if err != nil {
		return errRow{err}
	}
	return batchRow{br.QueryRow(), br}
}

// QueryRows implements sqlstore.Pipeliner: the statements go in one
// pipeline. After a statement that failed, PostgreSQL skips the rest,
// which then fail too.
func (t *txConn) QueryRows(ctx context.Context, queries []string, args, dests [][]any) []error {
	errs := make([]error, len(queries))
	if t.recording() {
		t.neededConn = true
		for i := range errs {
			errs[i] = errNeedsConn
		}
		return errs
	}
	br, err := t.send(ctx, queries, args)
	for i := range queries {
		if err != nil {
			errs[i] = err
			continue
		}
		errs[i] = br.QueryRow().Scan(dests[i]...)
	}
	if br == nil {
		return errs
	}
	if cerr := br.Close(); cerr != nil && len(errs) > 0 && errs[len(errs)-1] == nil {
		errs[len(errs)-1] = cerr
	}
	return errs
}

// commit ends the transaction with COMMIT, sent with the statements still
// queued.
func (t *txConn) commit(ctx context.Context) error {
	if t.begin == "" { // no transaction: nothing to commit, and no COMMIT to carry what was held back
		if len(t.later) > 0 {
			return errHeldBackWithoutTx
		}
		return nil
	}
	if !t.began && len(t.later) == 0 {
		return nil // none begun
	}
	var tag pgconn.CommandTag
	var err error
	if t.direct() {
		tag, err = t.conn.Exec(ctx, "COMMIT")
	} else {
		var br pgx.BatchResults
		if br, err = t.send(ctx, []string{"COMMIT"}, [][]any{nil}); err == nil {
			tag, err = br.Exec()
			err = closeBatch(br, err)
		}
	}
	if err != nil {
		return err
	}
	t.began = false
	if tag.String() == "ROLLBACK" {
		return errCommitRolledBack
	}
	return nil
}

// end rolls back a transaction left open, and closes the connection when
// its state is in doubt: the rollback failed (the context ended, or a
// pipeline was left unread, which leaves the connection busy and its
// transaction status not yet updated), or it is still in a transaction.
func (t *txConn) end(ctx context.Context) {
	t.later = nil
	doubt := false
	if t.began {
		_, err := t.conn.Exec(ctx, "ROLLBACK")
		doubt = err != nil
	}
	pc := t.conn.PgConn()
	if (doubt || pc.IsBusy() || pc.TxStatus() != 'I') && !t.conn.IsClosed() {
		t.conn.Close(context.WithoutCancel(ctx))
	}
}

// closeBatch closes br and returns err, or else Close's error.
func closeBatch(br pgx.BatchResults, err error) error {
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// txRows adapts pgx's rows to sqlstore.Rows; the rows of a transaction's
// first statement close its pipeline with them.
type txRows struct {
	pgx.Rows
	batch pgx.BatchResults
}

func (r *txRows) Close() error {
	r.Rows.Close()
	err := r.Rows.Err()
	if r.batch != nil {
		err = closeBatch(r.batch, err)
		r.batch = nil
	}
	return err
}

// batchRow is the row of a transaction's first statement: scanning it
// closes the pipeline.
type batchRow struct {
	row   pgx.Row
	batch pgx.BatchResults
}

func (r batchRow) Scan(dest ...any) error {
	return closeBatch(r.batch, r.row.Scan(dest...))
}

// errRow is a row that could not be read.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
