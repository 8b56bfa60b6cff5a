package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"coffer/sqlstore"
)

// migrations are applied in order, each once; the versions applied are
// recorded in schema_migrations. Append only: a server of an older build
// runs on a schema newer than it knows, so that servers can be upgraded
// one at a time behind a load balancer, which is why every migration must
// keep the previous build working: add; never rename or drop, in the same
// release, a column or table the previous build uses. Dropping an index or
// a constraint it does not rely on (migrations 2 and 5) keeps it working.
var migrations = []string{
	1: sqlstore.SchemaFor("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "BYTEA"),
	2: sqlstore.DropAccountIndex,
	3: sqlstore.LimitCheck.PostgreSQL,
	4: sqlstore.RefuseIf,
	5: appendOnlyLedger,
}

// appendOnlyLedger is the fifth migration: the ledger's foreign keys give
// way to a refusal to delete.
//
// The foreign keys of entries (to their account and their transaction)
// and of idempotency records (to their user) were checked on every
// payment, five lookups for a transfer that each lock the row they find:
// 4-10% of the transfers PostgreSQL could do (BENCHMARKS.md, eighth
// round). None could fail: an entry takes its account's id from the
// statement that changes the account, and its transaction's id from the
// same transaction. What they did prevent, deleting an account or a
// transaction that entries name, the ledger now refuses outright, since
// its rows are never deleted (a mistake is corrected by a new
// transaction): DELETE and TRUNCATE of accounts, transactions and entries
// fail, whatever they would match, until an operator disables the trigger
// on purpose. `coffer check` reports an entry whose account or
// transaction is missing. A server of the previous build deletes none of
// them, and runs unchanged.
//
// Dropping a foreign key locks both of its tables exclusively, five
// tables in all, while the previous build's payments lock them in their
// own order (the payer's row in users first): the migration takes all five
// first, in one statement and in the payments' order, so that it waits
// for the payments in flight instead of deadlocking with one of them.
const appendOnlyLedger = `LOCK TABLE users, transactions, accounts, entries, idempotency IN ACCESS EXCLUSIVE MODE;
ALTER TABLE entries DROP CONSTRAINT IF EXISTS entries_account_id_fkey, DROP CONSTRAINT IF EXISTS entries_tx_id_fkey;
ALTER TABLE idempotency DROP CONSTRAINT IF EXISTS idempotency_user_id_fkey;
CREATE OR REPLACE FUNCTION coffer_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'rows of % are never deleted: a mistake is corrected by a new transaction', TG_TABLE_NAME
		USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER accounts_append_only BEFORE DELETE OR TRUNCATE ON accounts FOR EACH STATEMENT EXECUTE FUNCTION coffer_refuse_delete();
CREATE TRIGGER transactions_append_only BEFORE DELETE OR TRUNCATE ON transactions FOR EACH STATEMENT EXECUTE FUNCTION coffer_refuse_delete();
CREATE TRIGGER entries_append_only BEFORE DELETE OR TRUNCATE ON entries FOR EACH STATEMENT EXECUTE FUNCTION coffer_refuse_delete();`

// migrationLockTimeout bounds how long a migration waits for a table's
// lock (after schema_migrations' own, which a concurrent start holds
// while it migrates). A variable for the tests.
var migrationLockTimeout = "10s"

// createTableTries bounds the retries of creating schema_migrations when
// servers starting together race on it.
const createTableTries = 5

// migrate brings the database to the latest schema. Servers starting at
// the same moment are safe: the table of versions is created tolerating
// the race of two concurrent creations, then every check and migration
// runs in one transaction that holds schema_migrations exclusively, so
// that one server applies and the others, waiting on the lock, find the
// work done. A plain table lock rather than an advisory lock, because
// distributed engines (Citus, YugabyteDB) support the one and not the
// other.
//
// A migration that PostgreSQL aborts as a deadlock's victim (a transaction
// locking the same tables in another order) runs again, up to
// migrationTries times in all.
func migrate(ctx context.Context, db *sql.DB) error {
	if done, err := upToDate(ctx, db); err == nil && done {
		// The common start: nothing to do and no lock taken, which also
		// lets a server start while the database refuses writes.
		return nil
	}
	if err := createMigrationsTable(ctx, db); err != nil {
		return err
	}
	for try := 1; ; try++ {
		err := migrateLocked(ctx, db)
		if sqlState(err) != "40P01" || try >= migrationTries {
			return err
		}
		if err := sleep(ctx, backoff(try)); err != nil {
			return err
		}
	}
}

// migrationTries bounds how often a start runs the migrations again after
// losing a deadlock.
const migrationTries = 5

// migrateLocked applies the migrations not yet applied, in one transaction
// holding schema_migrations exclusively.
func migrateLocked(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("lock schema_migrations: %w", err)
	}
	// A migration that alters a table in use waits for the transactions
	// using it, and every payment after it would queue behind the wait:
	// give up instead, and let the server's start fail and be retried.
	if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '`+migrationLockTimeout+`'`); err != nil {
		return fmt.Errorf("set lock_timeout: %w", err)
	}
	have, err := appliedVersions(ctx, tx)
	if err != nil {
		return err
	}
	for v := 1; v < len(migrations); v++ {
		if have[v] {
			continue
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at_ms) VALUES ($1, $2)`, v, time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("record migration %d: %w", v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migrations: %w", err)
	}
	return nil
}

// upToDate reports whether every migration is applied, without locking;
// an error (no table yet) sends the caller down the locking path.
func upToDate(ctx context.Context, db *sql.DB) (bool, error) {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	have, err := appliedVersions(ctx, tx)
	if err != nil {
		return false, err
	}
	for v := 1; v < len(migrations); v++ {
		if !have[v] {
			return false, nil
		}
	}
	return true, nil
}

func appliedVersions(ctx context.Context, tx *sql.Tx) (map[int]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	have := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		have[v] = true
	}
	return have, rows.Err()
}

// createMigrationsTable creates schema_migrations if it is missing.
// CREATE TABLE IF NOT EXISTS is not atomic in PostgreSQL: two sessions can
// both find the table missing, and the loser fails with duplicate_table
// (42P07), duplicate_object for the table's row type (42710) or a unique
// violation in the catalog (23505) once the winner commits. Trying again
// then finds the table.
func createMigrationsTable(ctx context.Context, db *sql.DB) error {
	for try := 1; ; try++ {
		_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at_ms BIGINT NOT NULL)`)
		if err == nil {
			return nil
		}
		if state := sqlState(err); (state != "42P07" && state != "42710" && state != "23505") || try >= createTableTries {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		if err := sleep(ctx, backoff(try)); err != nil {
			return err
		}
	}
}
