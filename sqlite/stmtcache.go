package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"coffer/sqlstore"
)

// maxCachedStatements bounds the statements one connection keeps
// prepared. sqlstore's queries are a fixed set of a few dozen texts; past
// the bound a query simply runs unprepared.
const maxCachedStatements = 256

// stmtCache is a sqlstore.Querier on one connection that prepares each
// query text once and reuses the statement: parsing and planning SQL costs
// more than running these short statements.
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
	stmts map[string]*sql.Stmt // nil value: a query that is not prepared
}

func newStmtCache(conn *sql.Conn) *stmtCache {
	return &stmtCache{conn: conn, stmts: make(map[string]*sql.Stmt)}
}

// prepared returns the statement of query, preparing it on first use, or
// nil when the query runs unprepared: a text holding more than one
// statement (a prepared statement would run only the first), a query
// that fails to prepare (running it reports the error), or a full cache.
func (c *stmtCache) prepared(query string) *sql.Stmt {
	if st, ok := c.stmts[query]; ok {
		return st
	}
	if len(c.stmts) >= maxCachedStatements {
		return nil
	}
	if strings.Contains(query, ";") {
		c.stmts[query] = nil
		return nil
	}
	st, err := c.conn.PrepareContext(context.Background(), query)
	if err != nil {
		return nil
	}
	c.stmts[query] = st
	return st
}

// Exec implements sqlstore.Querier.
func (c *stmtCache) Exec(_ context.Context, query string, args ...any) error {
	var err error
	if st := c.prepared(query); st != nil {
		_, err = st.ExecContext(context.Background(), args...)
	} else {
		_, err = c.conn.ExecContext(context.Background(), query, args...)
	}
	return err
}

// Query implements sqlstore.Querier.
func (c *stmtCache) Query(_ context.Context, query string, args ...any) (sqlstore.Rows, error) {
	var rows *sql.Rows
	var err error
	if st := c.prepared(query); st != nil {
		rows, err = st.QueryContext(context.Background(), args...)
	} else {
		rows, err = c.conn.QueryContext(context.Background(), query, args...)
	}
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// QueryRow implements sqlstore.Querier.
func (c *stmtCache) QueryRow(_ context.Context, query string, args ...any) sqlstore.Row {
	if st := c.prepared(query); st != nil {
		return st.QueryRowContext(context.Background(), args...)
	}
	return c.conn.QueryRowContext(context.Background(), query, args...)
}

// close finalizes every statement and returns the connection to its pool.
func (c *stmtCache) close() error {
	var errs []error
	for _, st := range c.stmts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	c.stmts = nil
	errs = append(errs, c.conn.Close())
	return errors.Join(errs...)
}
