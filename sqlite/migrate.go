package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"coffer/sqlstore"
)

// migrations are applied in order, each once, each in its own transaction;
// the version applied is recorded in schema_migrations. Append only.
var migrations = []string{
	1: sqlstore.SchemaFor("INTEGER PRIMARY KEY", "BLOB"),
	2: sqlstore.DropAccountIndex,
	3: sqlstore.LimitCheck.SQLite,
	4: accountsByUser,
}

// accountsByUser is the fourth migration: an index of accounts by user,
// whose entries follow the id (the rowid) within a user, so that a user's
// holdings are read in id order without a sort (a temporary B-tree in
// every info request, 3% of its CPU). A balance update changes no
// indexed column, so SQLite leaves the index alone; only a payment that
// opens an account (a wealth lot, a first fund or gold purchase) pays an
// index entry. PostgreSQL has no such index: it sorts a user's few
// accounts in memory, and building the index on a live table without
// blocking its writes (CREATE INDEX CONCURRENTLY) cannot run inside the
// migrations' transaction.
const accountsByUser = `CREATE INDEX IF NOT EXISTS accounts_user ON accounts (user_id, id);`

func migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlite: create schema_migrations: %w", err)
	}
	for v := 1; v < len(migrations); v++ {
		if err := applyMigration(ctx, db, v); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, v int) error {
	tx, err := db.BeginTx(ctx, nil) // _txlock=immediate: one process migrates at a time
	if err != nil {
		return fmt.Errorf("sqlite: begin migration %d: %w", v, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, v).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
		return fmt.Errorf("sqlite: migration %d: %w", v, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?, ?)`, v, time.Now().UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}
