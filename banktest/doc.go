// Package banktest holds Coffer's tests of money safety under faults, run
// against the real binary as a child process, in the tradition of Jepsen's
// bank test:
//
//   - TestBank: users with funds, many concurrent clients making random
//     transfers over HTTP with idempotency keys and retrying them after
//     timeouts, lost connections and 503s, readers watching balances, and
//     the server killed with SIGKILL at random moments and restarted on the
//     same database, the database refusing writes for moments, and on
//     PostgreSQL backends terminated mid-transaction. At the end the total is what was deposited, no balance was ever
//     negative, every acknowledged transfer is in both statements exactly
//     once, nothing was applied twice, and `coffer check` passes.
//   - TestFailingWrites*: a database that refuses writes (SQLite files made
//     immutable or a full disk, PostgreSQL read-only or gone) answers
//     payments 503 UNAVAILABLE, writes nothing partial, serves the reads it
//     can, and the same server process pays again once the fault clears.
//
// The package has no code of its own: only tests. Under `go test ./...`
// the bank test runs briefly (20 s per store, 5 s with -short); for a long
// run:
//
//	go test ./banktest -run TestBank -v -timeout 60m -bank.duration=10m
//
// Flags (after the package): -bank.duration, -bank.users, -bank.clients,
// -bank.readers, -bank.kill-every (mean time between SIGKILLs),
// -bank.fault-every (between spells of refused writes),
// -bank.terminate-every (between terminations of PostgreSQL backends),
// -bank.stores (sqlite,postgres) and -bank.seed. The tests need Linux, and
// root for the failing-writes faults (they are skipped otherwise, and fail
// when CI is set). docs/faults.md has more, and the figures of a long run.
package banktest
