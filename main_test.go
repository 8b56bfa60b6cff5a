package coffer_test

import (
	"testing"

	"coffer/internal/pgtest"
)

// TestMain stops the PostgreSQL server that the tests over
// teststores.All may have started.
func TestMain(m *testing.M) { pgtest.Main(m) }
