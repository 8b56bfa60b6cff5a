package postgres

import "context"

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
