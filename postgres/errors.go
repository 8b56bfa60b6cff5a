package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"coffer"

	"github.com/jackc/pgx/v5/pgconn"
)

// sqlState returns the SQLSTATE of a PostgreSQL error in err's chain, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// conflict reports whether PostgreSQL aborted the transaction for a
// conflict with another one, so that running it again may succeed:
// serialization_failure (40001), deadlock_detected (40P01), a lock not
// taken in time (55P03: a batch's lock_timeout, see batch.go), and a unique
// violation (23505) that the function did not turn into a domain error,
// which is a race on a derived key (two purchases of one product picking
// the same next lot number): run again, the function reads the new state.
func conflict(err error) bool {
	if coffer.ErrorCode(err) != coffer.ErrInternal {
		return false
	}
	switch sqlState(err) {
	case "40001", "40P01", "23505", "55P03": // 55P03: lock_timeout, as a batch sets it
		return true
	}
	return false
}

// connLost reports whether err means the connection to PostgreSQL failed
// or was closed by the server: nothing uncommitted survives that, so a
// transaction that had not sent COMMIT yet was rolled back.
func connLost(err error) bool {
	if coffer.ErrorCode(err) != coffer.ErrInternal {
		return false
	}
	state := sqlState(err)
	switch {
	case strings.HasPrefix(state, "08"): // connection_exception
		return true
	case state == "57P01", state == "57P02", state == "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
		return true
	case state != "":
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		pgconn.SafeToRetry(err)
}

// unavailable reports whether err means the database refuses writes or is
// gone for now, which the caller hears as ErrUnavailable (503, retry
// later) rather than as an internal error: a lost connection, a server
// shutting down or starting up, insufficient resources (53xxx: disk full,
// out of memory, too many connections), a read-only transaction forced on
// us (25006: a standby or a primary demoted during failover), an I/O error.
func unavailable(err error) bool {
	if connLost(err) || errors.Is(err, errStoreClosed) {
		return true
	}
	state := sqlState(err)
	switch {
	case strings.HasPrefix(state, "53"):
		return true
	case state == "25006", state == "58030", state == "57P04": // read_only_sql_transaction, io_error, database_dropped
		return true
	}
	return false
}

// classify turns a driver error into the domain's error for the caller.
// Domain errors pass through unchanged, and so does the error of a caller
// that gave up (its context ended): that is the caller's doing, not the
// database's.
func classify(ctx context.Context, err error) error {
	if err == nil || coffer.ErrorCode(err) != coffer.ErrInternal || ctx.Err() != nil {
		return err
	}
	if unavailable(err) {
		return &coffer.Error{Code: coffer.ErrUnavailable, Detail: err.Error()}
	}
	return err
}
