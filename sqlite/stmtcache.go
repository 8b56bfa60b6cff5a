package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"

	"coffer/sqlstore"

	"github.com/mattn/go-sqlite3"
)

// maxCachedStatements bounds the statements one connection keeps
// prepared. sqlstore's queries are a fixed set of a few dozen texts; past
// the bound a query simply runs unprepared.
const maxCachedStatements = 256

// stmtCache is a sqlstore.Querier on one connection that prepares each
// query text once and reuses the statement: parsing and planning SQL costs
// more than running these short statements.
//
// Its statements run on the driver's connection directly, below
// database/sql, inside within. database/sql's layers (a lock, a
// dependency record and a column list fetched through cgo for every query,
// a conversion by reflection for every value scanned) cost about as much
// CPU as SQLite's own work on these short statements (BENCHMARKS.md).
//
// Statements run to completion: they are not interrupted by their
// context. Every statement sqlstore runs is short and bounded (keyset
// pages, lookups by key), and the go-sqlite3 driver watches a cancellable
// context with a goroutine per statement and per row, which would cost
// more than the statements themselves. The writer checks a job's context
// before running it, and View checks it before beginning.
//
// A stmtCache belongs to one goroutine at a time: the writer, or the View
// that took its reader from the pool.
type stmtCache struct {
	conn  *sql.Conn
	dc    *sqlite3.SQLiteConn // the driver's connection, inside within only
	stmts map[string]*cachedStmt
}

// cachedStmt is a prepared statement and the number of columns it
// returns; nil in the cache: a query that is not prepared.
type cachedStmt struct {
	st      *sqlite3.SQLiteStmt
	inputs  int // placeholders: database/sql checks the arguments against them, and so must we
	columns int // -1 until a query has counted them
}

func newStmtCache(conn *sql.Conn) *stmtCache {
	return &stmtCache{conn: conn, stmts: make(map[string]*cachedStmt)}
}

// errOutsideWithin is a statement run outside within: a bug.
var errOutsideWithin = errors.New("sqlite: statement outside the connection's transaction")

// within runs fn with the driver's connection at hand for the cache's
// statements, as database/sql allows: inside Conn.Raw. fn's error is
// returned as it is; a panic in fn goes on after Raw has returned, so that
// database/sql does not close the connection for it (fn's caller rolls
// back, and the connection stays good).
func (c *stmtCache) within(fn func() error) error {
	var fnErr error
	var panicked any
	rawErr := c.conn.Raw(func(dc any) error {
		conn, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return fmt.Errorf("sqlite: driver connection is a %T", dc)
		}
		c.dc = conn
		defer func() {
			c.dc = nil
			panicked = recover()
		}()
		fnErr = fn()
		return nil
	})
	if panicked != nil {
		panic(panicked)
	}
	if rawErr != nil {
		return rawErr
	}
	return fnErr
}

// prepared returns the statement of query, preparing it on first use, or
// nil when the query runs unprepared: a text holding more than one
// statement (a prepared statement would run only the first), a query
// that fails to prepare (running it reports the error), or a full cache.
func (c *stmtCache) prepared(query string) *cachedStmt {
	if cs, ok := c.stmts[query]; ok {
		return cs
	}
	if len(c.stmts) >= maxCachedStatements {
		return nil
	}
	if strings.Contains(query, ";") {
		c.stmts[query] = nil
		return nil
	}
	st, err := c.dc.Prepare(query)
	if err != nil {
		return nil
	}
	cs := &cachedStmt{st: st.(*sqlite3.SQLiteStmt), inputs: st.NumInput(), columns: -1}
	c.stmts[query] = cs
	return cs
}

// checkArgs refuses a call whose arguments do not match the statement's
// placeholders, as database/sql does: SQLite keeps a statement's bindings
// from one run to the next, so a missing argument would silently take the
// previous call's value.
func (cs *cachedStmt) checkArgs(args []any) error {
	if cs.inputs >= 0 && len(args) != cs.inputs {
		return fmt.Errorf("sqlite: %d arguments for %d placeholders", len(args), cs.inputs)
	}
	return nil
}

// namedValues converts args as database/sql would for this driver (which
// checks no values of its own): with driver.DefaultParameterConverter,
// after a fast path for the types sqlstore passes most.
func namedValues(args []any) ([]driver.NamedValue, error) {
	out := make([]driver.NamedValue, len(args))
	for i, a := range args {
		out[i].Ordinal = i + 1
		switch v := a.(type) {
		case int64, string, []byte, nil:
			out[i].Value = v
		case int:
			out[i].Value = int64(v)
		default:
			dv, err := driver.DefaultParameterConverter.ConvertValue(a)
			if err != nil {
				return nil, fmt.Errorf("sqlite: argument %d: %w", i+1, err)
			}
			out[i].Value = dv
		}
	}
	return out, nil
}

// Exec implements sqlstore.Querier.
func (c *stmtCache) Exec(_ context.Context, query string, args ...any) error {
	if c.dc == nil {
		return errOutsideWithin
	}
	named, err := namedValues(args)
	if err != nil {
		return err
	}
	if cs := c.prepared(query); cs != nil {
		if err := cs.checkArgs(args); err != nil {
			return err
		}
		_, err = cs.st.ExecContext(context.Background(), named)
	} else {
		_, err = c.dc.ExecContext(context.Background(), query, named)
	}
	return err
}

// Query implements sqlstore.Querier.
func (c *stmtCache) Query(_ context.Context, query string, args ...any) (sqlstore.Rows, error) {
	if c.dc == nil {
		return nil, errOutsideWithin
	}
	named, err := namedValues(args)
	if err != nil {
		return nil, err
	}
	cs := c.prepared(query)
	var rows driver.Rows
	if cs != nil {
		if err := cs.checkArgs(args); err != nil {
			return nil, err
		}
		rows, err = cs.st.QueryContext(context.Background(), named)
	} else {
		rows, err = c.dc.QueryContext(context.Background(), query, named)
	}
	if err != nil {
		return nil, err
	}
	columns := -1
	if cs != nil {
		columns = cs.columns
	}
	if columns < 0 {
		// Fetched through cgo, one call a column: once per statement.
		columns = len(rows.Columns())
		if cs != nil {
			cs.columns = columns
		}
	}
	return &driverRows{rows: rows, values: make([]driver.Value, columns)}, nil
}

// QueryRow implements sqlstore.Querier.
func (c *stmtCache) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	rows, err := c.Query(ctx, query, args...)
	return &driverRow{rows: rows, err: err}
}

// close finalizes every statement and returns the connection to its pool.
func (c *stmtCache) close() error {
	var errs []error
	errs = append(errs, c.within(func() error {
		for _, cs := range c.stmts {
			if cs != nil {
				errs = append(errs, cs.st.Close())
			}
		}
		return nil
	}))
	c.stmts = nil
	errs = append(errs, c.conn.Close())
	return errors.Join(errs...)
}

// driverRows is a sqlstore.Rows over the driver's rows.
type driverRows struct {
	rows   driver.Rows
	values []driver.Value // the current row
	err    error
	closed bool
}

// Next implements sqlstore.Rows.
func (r *driverRows) Next() bool {
	if r.closed {
		return false
	}
	if err := r.rows.Next(r.values); err != nil {
		if !errors.Is(err, io.EOF) {
			r.err = err
		}
		r.Close()
		return false
	}
	return true
}

// Scan implements sqlstore.Rows: dest must have one value per column.
func (r *driverRows) Scan(dest ...any) error {
	if r.closed {
		return errors.New("sqlite: Scan after the rows were closed")
	}
	if len(dest) != len(r.values) {
		return fmt.Errorf("sqlite: %d destinations for %d columns", len(dest), len(r.values))
	}
	for i, d := range dest {
		if err := assign(d, r.values[i]); err != nil {
			return fmt.Errorf("sqlite: column %d: %w", i, err)
		}
	}
	return nil
}

// Err implements sqlstore.Rows.
func (r *driverRows) Err() error { return r.err }

// Close implements sqlstore.Rows.
func (r *driverRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.rows.Close()
	if r.err == nil {
		r.err = err
	}
	return err
}

// driverRow is a sqlstore.Row: the first row of a query, as *sql.Row is.
type driverRow struct {
	rows sqlstore.Rows
	err  error
}

// Scan implements sqlstore.Row.
func (r *driverRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	return r.rows.Close()
}
