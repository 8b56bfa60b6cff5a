package postgres

import (
	"context"
	"database/sql"
	"net"

	"github.com/jackc/pgx/v5/stdlib"
)

// maxClosedConns bounds the connections takeConn drops, closed under the
// pool, before it hands out the next one whatever its state: more than a
// pool holds by default, so that after a cut every dead idle connection is
// dropped and the caller gets a live one, fresh from PostgreSQL.
const maxClosedConns = 2 * defaultMaxConnsCap

// takeConn takes a connection from db's pool, after dropping those whose
// socket the other end already closed.
//
// A restart, a failover or a network cut ends every connection of the
// pool at once, and the pool (pgx's driver) checks a connection before
// handing it out only after a second idle. A statement sent on one closed
// by the other end gets "unexpected EOF" once written: for a payment's
// pipeline that carries COMMIT, an outcome unknown, a 503 for a payment
// that did not run. One look at the socket, which neither waits nor
// consumes anything, finds that end of stream first (not a path that went
// silent: only PostgreSQL's answer, or its absence, shows that).
func takeConn(ctx context.Context, db *sql.DB) (*sql.Conn, error) {
	for range maxClosedConns {
		c, err := db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		closed := false
		err = c.Raw(func(driverConn any) error {
			conn := driverConn.(*stdlib.Conn).Conn()
			if !conn.IsClosed() && peerClosed(netConn(conn.PgConn().Conn())) {
				// Closed, it goes back to the pool, which drops it only when
				// a later taker's ResetSession finds it closed (pgx's driver
				// has no IsValid).
				conn.Close(ctx)
				closed = true
			}
			return nil
		})
		if err == nil && !closed {
			return c, nil
		}
		c.Close()
	}
	return db.Conn(ctx)
}

// netConn is the connection under TLS, if any, whose socket peerClosed
// looks at.
func netConn(c net.Conn) net.Conn {
	if u, ok := c.(interface{ NetConn() net.Conn }); ok {
		return u.NetConn()
	}
	return c
}
