package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"coffer"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestClassify(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: code}) }
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: "x"}}
	for _, c := range []struct {
		name string
		err  error
		want coffer.Code
	}{
		{"admin shutdown", pg("57P01"), coffer.ErrUnavailable},
		{"crash shutdown", pg("57P02"), coffer.ErrUnavailable},
		{"starting up", pg("57P03"), coffer.ErrUnavailable},
		{"connection failure", pg("08006"), coffer.ErrUnavailable},
		{"disk full", pg("53100"), coffer.ErrUnavailable},
		{"too many connections", pg("53300"), coffer.ErrUnavailable},
		{"read-only transaction", pg("25006"), coffer.ErrUnavailable},
		{"network", refused, coffer.ErrUnavailable},
		{"refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), coffer.ErrUnavailable},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), coffer.ErrUnavailable},
		{"cut short", io.ErrUnexpectedEOF, coffer.ErrUnavailable},
		{"syntax error", pg("42601"), coffer.ErrInternal},
		{"unique violation", pg("23505"), coffer.ErrInternal},
		{"check violation", pg("23514"), coffer.ErrInternal},
		{"plain", errors.New("boom"), coffer.ErrInternal},
	} {
		got := classify(context.Background(), c.err)
		if code := coffer.ErrorCode(got); code != c.want {
			t.Errorf("%s: classified as %s, want %s", c.name, code, c.want)
		}
	}
	domain := &coffer.Error{Code: coffer.ErrInsufficientFunds}
	if got := classify(context.Background(), domain); got != domain {
		t.Errorf("a domain error changed into %v", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := classify(ctx, io.ErrUnexpectedEOF); got != io.ErrUnexpectedEOF {
		t.Errorf("the error of a canceled caller changed into %v", got)
	}
	if classify(context.Background(), nil) != nil {
		t.Error("nil classified as an error")
	}
}

func TestConflict(t *testing.T) {
	for code, want := range map[string]bool{"40001": true, "40P01": true, "23505": true, "23514": false, "57P01": false} {
		if got := conflict(&pgconn.PgError{Code: code}); got != want {
			t.Errorf("conflict(%s) = %v, want %v", code, got, want)
		}
	}
	if conflict(&coffer.Error{Code: coffer.ErrUsernameTaken}) {
		t.Error("a domain error counted as a conflict")
	}
}

func TestBackoff(t *testing.T) {
	for try := 1; try < 100; try++ {
		d := backoff(try)
		upper := min(backoffBase<<min(try-1, 16), backoffMax)
		if d < upper/2 || d > upper {
			t.Errorf("backoff(%d) = %v, want within [%v, %v]", try, d, upper/2, upper)
		}
	}
}

func TestPoolParams(t *testing.T) {
	params := map[string]string{"pool_max_conns": "7", "pool_max_conn_lifetime": "90m", "batching": "off", "search_path": "x"}
	var opts Options
	if err := poolParams(params, &opts); err != nil {
		t.Fatal(err)
	}
	if opts.MaxConns != 7 || opts.ConnMaxLifetime != 90*time.Minute || !opts.NoBatching {
		t.Errorf("options %+v", opts)
	}
	if len(params) != 1 || params["search_path"] != "x" {
		t.Errorf("runtime parameters left: %v, want only search_path", params)
	}
	for _, bad := range []map[string]string{{"pool_max_conns": "0"}, {"pool_max_conns": "x"}, {"pool_max_conn_lifetime": "soon"}, {"batching": "no"}} {
		if err := poolParams(bad, &Options{}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
