package postgres_test

import (
	"testing"

	"coffer/internal/pgtest"
	"coffer/storetest"
)

// The store benchmarks on the PostgreSQL that the tests start (fsync and
// synchronous_commit on), each in a fresh database.

// BenchmarkPostTransfer: see storetest.BenchPostTransfer.
func BenchmarkPostTransfer(b *testing.B) { storetest.BenchPostTransfer(b, pgtest.Open(b)) }

// BenchmarkPayTransfer: see storetest.BenchPayTransfer.
func BenchmarkPayTransfer(b *testing.B) { storetest.BenchPayTransfer(b, pgtest.Open(b)) }

// BenchmarkViewUser: see storetest.BenchViewUser.
func BenchmarkViewUser(b *testing.B) { storetest.BenchViewUser(b, pgtest.Open(b)) }
