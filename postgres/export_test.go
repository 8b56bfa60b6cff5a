package postgres

import (
	"context"
	"database/sql"
	"errors"

	"coffer"
	"coffer/sqlstore"

	"github.com/jackc/pgx/v5"
)

// TxConn is txConn, for the package's external tests.
type TxConn = txConn

// InUpdateTx runs fn as Update runs its function, on a txConn.
func (s *Store) InUpdateTx(ctx context.Context, fn func(*TxConn) error) error {
	return s.inTx(ctx, beginUpdate, fn)
}

// Commit is commit.
func (t *txConn) Commit(ctx context.Context) error { return t.commit(ctx) }

// InNoTx runs fn as ViewEach runs its function, on a txConn.
func (s *Store) InNoTx(ctx context.Context, fn func(*TxConn) error) error {
	return s.inTx(ctx, "", fn)
}

// Began reports whether BEGIN was sent.
func (t *txConn) Began() bool { return t.began }

// TxStatus is the connection's transaction status: 'I' when idle.
func (t *txConn) TxStatus() byte { return t.conn.PgConn().TxStatus() }

// SchemaVersion is the version the migrations bring a database to.
func SchemaVersion() int { return len(migrations) - 1 }

// SetMigrationLockTimeout sets how long a migration waits for a table's
// lock, until the test ends.
func SetMigrationLockTimeout(t interface{ Cleanup(func()) }, timeout string) {
	old := migrationLockTimeout
	migrationLockTimeout = timeout
	t.Cleanup(func() { migrationLockTimeout = old })
}

// SetSchemaVersion makes Open migrate no further than version, as a build
// of that version would, until restore is called.
func SetSchemaVersion(version int) (restore func()) {
	old := migrations
	migrations = migrations[:version+1]
	return func() { migrations = old }
}

// ErrNeedsConn is what a statement that waits for its answer returns in
// the first run of an Update's function, which has no connection (see
// batch.go): the function then runs again in a transaction of its own.
var ErrNeedsConn = errNeedsConn

// InOneBatch runs each function as Update's first try does, on a txConn
// without a connection, and posts those that held every statement back in
// one batch, in order, at once; it returns each function's error, or the
// batch's answer to it.
func (s *Store) InOneBatch(ctx context.Context, fns ...func(*TxConn) error) []error {
	errs, _ := s.InOneBatchCommitting(ctx, fns...)
	return errs
}

// InOneBatchCommitting is InOneBatch, and reports for each function
// whether its error leaves the outcome unknown (updateOnce's committing).
func (s *Store) InOneBatchCommitting(ctx context.Context, fns ...func(*TxConn) error) ([]error, []bool) {
	errs := make([]error, len(fns))
	var items []*batchItem
	var places []int
	for i, fn := range fns {
		t := &txConn{begin: beginUpdate}
		errs[i] = fn(t)
		if t.neededConn && errs[i] == nil {
			errs[i] = errNeedsConn
		}
		if errs[i] == nil {
			items = append(items, newBatchItem(ctx, t))
			places = append(places, i)
		}
	}
	s.batch.runBatch(items)
	committing := make([]bool, len(fns))
	for k, it := range items {
		r := <-it.result
		errs[places[k]], committing[places[k]] = r.err, r.committing
	}
	return errs, committing
}

// Tx is the coffer.Tx that Update hands its function, over t.
func (s *Store) Tx(t *TxConn) coffer.Tx { return sqlstore.NewTx(t, s.dialect) }

// RanNothing reports whether err says that nothing of an Update ran
// (unstartedError), so that Update runs it again.
func RanNothing(err error) bool { return errors.As(err, new(*unstartedError)) }

// Conflict is conflict: an error after which Update runs its function again.
func Conflict(err error) bool { return conflict(err) }

// SkipConnLook turns the look at each connection off until the
// test ends, so that a connection lost before it is met by a transaction.
func SkipConnLook(t interface{ Cleanup(func()) }) {
	skipLook.Store(true)
	t.Cleanup(func() { skipLook.Store(false) })
}

// RawConn is rawConn.
func RawConn(c *sql.Conn, fn func(*pgx.Conn) error) error { return rawConn(c, fn) }
