// Package teststores lists the stores that the store-independent tests
// run against: SQLite always, and PostgreSQL where the tests can start one.
package teststores

import (
	"context"
	"path/filepath"
	"testing"

	"coffer"
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

// All returns every store the tests run against.
func All(t testing.TB) []Named {
	return []Named{{"sqlite", SQLite}}
}
