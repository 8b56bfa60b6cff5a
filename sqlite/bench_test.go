package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"coffer"
	"coffer/sqlite"
	"coffer/storetest"
)

// openBenchStore opens a fresh store in the benchmark's folder.
func openBenchStore(b *testing.B) coffer.Store {
	b.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	return store
}

// BenchmarkPostTransfer: see storetest.BenchPostTransfer.
func BenchmarkPostTransfer(b *testing.B) { storetest.BenchPostTransfer(b, openBenchStore(b)) }

// BenchmarkPayTransfer: see storetest.BenchPayTransfer.
func BenchmarkPayTransfer(b *testing.B) { storetest.BenchPayTransfer(b, openBenchStore(b)) }

// BenchmarkViewUser: see storetest.BenchViewUser.
func BenchmarkViewUser(b *testing.B) { storetest.BenchViewUser(b, openBenchStore(b)) }
