package postgres

import (
	"context"
	"errors"

	"coffer/sqlstore"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
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

// txConn is a sqlstore.Querier (and Pipeliner) running one transaction on one pgx
// connection, below database/sql. Its BEGIN is not a round trip of its
// own: it goes in one pipeline with the transaction's first statement,
// which saves a round trip a transaction (a payment is two transactions:
// its reads and its write). A transaction that ran no statement sends
// neither BEGIN nor COMMIT.
type txConn struct {
	conn  *pgx.Conn
	begin string
	began bool // BEGIN was sent: the transaction must be ended
}

// inTx runs fn on a txConn over a connection of db's pool, with begin as
// its BEGIN statement, and leaves no transaction open on the connection
// when it returns: one that fn did not commit is rolled back, and a
// connection whose state is in doubt is closed (the pool then drops it).
func (s *Store) inTx(ctx context.Context, begin string, fn func(t *txConn) error) error {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Raw(func(driverConn any) error {
		t := &txConn{conn: driverConn.(*stdlib.Conn).Conn(), begin: begin}
		err := fn(t)
		t.end(ctx)
		return err
	})
}

// first sends BEGIN and the transaction's first statement in one
// pipeline and reads BEGIN's answer; the statement's answer is next.
func (t *txConn) first(ctx context.Context, query string, args []any) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	b.Queue(t.begin)
	b.Queue(query, args...)
	t.began = true
	br := t.conn.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return nil, err
	}
	return br, nil
}

// Exec implements sqlstore.Querier.
func (t *txConn) Exec(ctx context.Context, query string, args ...any) error {
	if t.began {
		_, err := t.conn.Exec(ctx, query, args...)
		return err
	}
	br, err := t.first(ctx, query, args)
	if err != nil {
		return err
	}
	_, err = br.Exec()
	return closeBatch(br, err)
}

// Query implements sqlstore.Querier.
func (t *txConn) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	if t.began {
		rows, err := t.conn.Query(ctx, query, args...)
		if err != nil {
			return nil, err
		}
		return &txRows{Rows: rows}, nil
	}
	br, err := t.first(ctx, query, args)
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
	if t.began {
		return t.conn.QueryRow(ctx, query, args...)
	}
	br, err := t.first(ctx, query, args)
	if err != nil {
		return errRow{err}
	}
	return batchRow{br.QueryRow(), br}
}

// QueryRows implements sqlstore.Pipeliner: the statements (and BEGIN, if
// they are the transaction's first) go in one pipeline. After a statement
// that failed, PostgreSQL skips the rest, which then fail too.
func (t *txConn) QueryRows(ctx context.Context, queries []string, args, dests [][]any) []error {
	errs := make([]error, len(queries))
	b := &pgx.Batch{}
	begin := !t.began
	if begin {
		b.Queue(t.begin)
	}
	for i, q := range queries {
		b.Queue(q, args[i]...)
	}
	t.began = true
	br := t.conn.SendBatch(ctx, b)
	var err error
	if begin {
		_, err = br.Exec()
	}
	for i := range queries {
		if err != nil {
			errs[i] = err
			continue
		}
		errs[i] = br.QueryRow().Scan(dests[i]...)
	}
	if cerr := br.Close(); cerr != nil && len(errs) > 0 && errs[len(errs)-1] == nil {
		errs[len(errs)-1] = cerr
	}
	return errs
}

// commit ends the transaction with COMMIT.
func (t *txConn) commit(ctx context.Context) error {
	if !t.began {
		return nil
	}
	tag, err := t.conn.Exec(ctx, "COMMIT")
	if err != nil {
		return err
	}
	t.began = false
	if tag.String() == "ROLLBACK" {
		return errCommitRolledBack
	}
	return nil
}

// end rolls back a transaction left open and closes the connection if it
// is still in one (the rollback failed, or the context ended).
func (t *txConn) end(ctx context.Context) {
	if t.began {
		t.conn.Exec(ctx, "ROLLBACK")
	}
	if t.conn.PgConn().TxStatus() != 'I' && !t.conn.IsClosed() {
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
