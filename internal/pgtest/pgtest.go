// Package pgtest runs the tests of PostgreSQL stores against a real
// PostgreSQL that it starts itself from the machine's PostgreSQL binaries:
// initdb into a temporary folder, the server listening on a free port of
// 127.0.0.1 only (and on a unix socket in that folder), fsync on, as in
// production. One server serves a whole test binary; it starts on first
// use and every test gets a database of its own.
//
// A package whose tests use it must stop the server when they end:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// When PostgreSQL cannot start (no binaries, no postgres user to run them
// as root), the tests that need it are skipped, with the reason; when the
// environment variable CI is set they fail instead, so that a continuous
// integration run never passes without having tested PostgreSQL.
//
// The binaries are found through COFFER_PG_BINDIR (a folder holding
// initdb and postgres), else the PATH, else pg_config --bindir, else the
// usual install folders of Linux distributions (the newest version).
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"coffer"
	"coffer/internal/pgbin"
	"coffer/postgres"
)

// EnvBinDir names the environment variable that points at the folder of
// initdb and postgres, for machines where they are not found by
// themselves.
const EnvBinDir = pgbin.EnvDir

// EnvCI is the environment variable that turns "PostgreSQL cannot start"
// from a skip into a failure.
const EnvCI = "CI"

// createTimeout bounds the creation of one test database.
const createTimeout = 60 * time.Second

var (
	mainCalled atomic.Bool
	startOnce  sync.Once
	shared     *server
	startErr   error
	dbSeq      atomic.Int64
)

// Main runs the tests of a package and then stops the PostgreSQL server
// they started, if any, and removes its folder. Call it from TestMain.
func Main(m *testing.M) {
	mainCalled.Store(true)
	code := m.Run()
	stop()
	os.Exit(code)
}

// stop shuts the shared server down; tests are over.
func stop() {
	if shared != nil {
		shared.stop()
	}
}

// running returns the shared server, starting it on first use, or ends
// the test: skipped when PostgreSQL cannot start, failed when CI is set.
func running(t testing.TB) *server {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("pgtest: the package's TestMain must call pgtest.Main(m), which stops PostgreSQL after the tests")
	}
	startOnce.Do(func() { shared, startErr = start() })
	if startErr != nil {
		if os.Getenv(EnvCI) != "" {
			t.Fatalf("PostgreSQL cannot start, and %s is set, so this fails the run: %v", EnvCI, startErr)
		}
		t.Skipf("PostgreSQL cannot start (set %s to make this a failure): %v", EnvCI, startErr)
	}
	return shared
}

// DSN creates an empty database for the test (from template0, UTF-8, C
// collation) and returns its connection URL. The database is dropped when
// the test ends; whatever the test opened on it must be closed by then
// (cleanups registered later run earlier).
func DSN(t testing.TB) string {
	t.Helper()
	s := running(t)
	name := databaseName(dbSeq.Add(1), t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), createTimeout)
	defer cancel()
	if _, err := s.admin.ExecContext(ctx, `CREATE DATABASE `+quoteIdent(name)+` TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), createTimeout)
		defer cancel()
		// FORCE: a test that failed half-way may have left connections.
		if _, err := s.admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+quoteIdent(name)+` WITH (FORCE)`); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.url(name)
}

// Open returns a PostgreSQL store on a fresh, migrated database of the
// test's own, closed when the test ends. Its signature is that of
// storetest.Opener.
func Open(t testing.TB) coffer.Store {
	t.Helper()
	return OpenOptions(t, postgres.Options{})
}

// OpenOptions is Open with the store's options.
func OpenOptions(t testing.TB, opts postgres.Options) *postgres.Store {
	t.Helper()
	dsn := DSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), createTimeout)
	defer cancel()
	s, err := postgres.Open(ctx, dsn, opts)
	if err != nil {
		t.Fatalf("pgtest: open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// databaseName makes a valid, unique database name that still tells which
// test it belongs to when one is left behind.
func databaseName(seq int64, testName string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "t%d_", seq)
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 63 { // PostgreSQL's identifier limit (NAMEDATALEN - 1)
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// openAdmin opens the server's maintenance pool, which creates and drops
// the tests' databases.
func openAdmin(url string) *sql.DB {
	db, err := sql.Open("pgx", url)
	if err != nil {
		panic(err) // sql.Open fails only for an unregistered driver
	}
	db.SetMaxOpenConns(4)
	return db
}
