package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"net"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// liveConns takes connections from a pool, after dropping those that
// are not fit for a new transaction (see take).
type liveConns struct {
	db *sql.DB
	// maxUnfit bounds the connections take drops before it hands out the
	// next one whatever its state: twice what the pool holds, so that
	// after a cut every dead idle connection is dropped and the caller
	// gets a live one, fresh from PostgreSQL.
	maxUnfit int
	unfit    atomic.Int64 // connections dropped since Open (and the rare one lost before the look)
}

func newLiveConns(db *sql.DB, maxConns int) *liveConns {
	return &liveConns{db: db, maxUnfit: 2 * max(maxConns, 1)}
}

// skipLook turns take's look off, for the tests of what happens when a
// connection is lost after it. It is one switch for the whole package,
// which is safe while no test of the package runs in parallel.
var skipLook atomic.Bool

// take takes a connection from the pool, after dropping those that are
// not fit for a new transaction: closed by the other end, or with
// something PostgreSQL sent unasked waiting to be read.
//
// A restart, a failover or a network cut ends every connection of the
// pool at once, and the pool (pgx's driver) pings a connection before
// handing it out only when it was last handed out over a second ago. A
// statement sent on a connection closed by the other end gets "unexpected
// EOF" once written: for a payment's pipeline that carries COMMIT, an
// outcome unknown, a 503 for a payment that did not run. One look at the
// socket, which neither waits nor consumes a byte, finds that end of
// stream first (not a path that went silent: only PostgreSQL's answer, or
// its absence, shows that).
func (l *liveConns) take(ctx context.Context) (*sql.Conn, error) {
	for range l.maxUnfit {
		c, err := l.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		fit := true
		err = rawConn(c, func(conn *pgx.Conn) error {
			if !skipLook.Load() && !quiet(netConn(conn.PgConn().Conn())) {
				fit = false
				conn.Close(ctx) // and rawConn has the pool drop it
			}
			return nil
		})
		if err == nil && fit {
			return c, nil
		}
		l.unfit.Add(1)
		c.Close()
	}
	return l.db.Conn(ctx)
}

// rawConn runs fn on the pgx connection under c, and returns fn's error.
// When fn leaves the connection closed, the pool drops it at once: given
// back, it would be handed to a caller waiting for a connection, whose
// take would fail with "bad connection" after two more such (pgx's driver
// cannot tell the pool that a connection is closed until it is taken).
func rawConn(c *sql.Conn, fn func(*pgx.Conn) error) error {
	ran := false
	var fnErr error
	err := c.Raw(func(driverConn any) error {
		ran = true
		conn := driverConn.(*stdlib.Conn).Conn()
		fnErr = fn(conn)
		if conn.IsClosed() {
			return driver.ErrBadConn
		}
		return nil
	})
	if !ran {
		return err
	}
	return fnErr
}

// netConn is the connection under TLS, if any, whose socket quiet looks
// at.
func netConn(c net.Conn) net.Conn {
	if u, ok := c.(interface{ NetConn() net.Conn }); ok {
		return u.NetConn()
	}
	return c
}
