// Package teststores lists the stores that the store-independent tests
// run against: SQLite always, and PostgreSQL where the tests can start one.
//
// PostgreSQL comes from pgtest, which starts one real server per test
// binary; a package that calls All must therefore stop it when its tests
// end, from its TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Without PostgreSQL binaries on the machine, the PostgreSQL cases are
// skipped with the reason, or fail when the environment variable CI is set.
package teststores

import (
	"context"
	"path/filepath"
	"testing"

	"coffer"
	"coffer/internal/pgtest"
	"coffer/sqlite"
	"coffer/storetest"
)

// Named is a store implementation under test.
type Named struct {
	Name string
	Open storetest.Opener
}

// SQLite opens a fresh SQLite store in the test's temporary directory.
func SQLite(t testing.TB) coffer.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "coffer.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// PostgreSQL opens a PostgreSQL store on a fresh database of the test's
// own; the test is skipped (failed under CI) when PostgreSQL cannot start.
func PostgreSQL(t testing.TB) coffer.Store {
	t.Helper()
	return pgtest.Open(t)
}

// All returns every store the tests run against. PostgreSQL is always
// listed; its opener decides, per test, whether the server could start.
func All(t testing.TB) []Named {
	return []Named{{"sqlite", SQLite}, {"postgres", PostgreSQL}}
}
