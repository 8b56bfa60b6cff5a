//go:build linux

package banktest

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"coffer/internal/pgtest"

	_ "github.com/mattn/go-sqlite3" // the "sqlite3" driver, to read beside the server
	"golang.org/x/sys/unix"
)

// Limits of the failing-writes tests.
const (
	recoverTimeout = 20 * time.Second // from clearing a fault to a payment going through
	faultTries     = 3                // payments tried under each fault
	requestTimeout = 10 * time.Second
)

// direct is a connection to the server's database beside the server: the
// test reads what a payment would have written, and ages sessions.
type direct struct {
	driver, dsn string
}

// sqliteDirect opens the SQLite file at path directly.
func sqliteDirect(path string) direct {
	return direct{"sqlite3", "file:" + path + "?_busy_timeout=5000"}
}

// pgDirect opens the PostgreSQL database of dsn directly.
func pgDirect(dsn string) direct { return direct{"pgx", dsn} }

// open opens the database for the test.
func (d direct) open(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open(d.driver, d.dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// rowCounts are the rows a payment or a registration writes, and the
// money on user accounts.
type rowCounts struct {
	Users, Transactions, Entries, Idempotency, Spent, UserMoney int64
}

const countsQuery = `SELECT
	(SELECT COUNT(*) FROM users),
	(SELECT COUNT(*) FROM transactions),
	(SELECT COUNT(*) FROM entries),
	(SELECT COUNT(*) FROM idempotency),
	(SELECT COALESCE(SUM(spent), 0) FROM spend_days),
	(SELECT COALESCE(SUM(balance), 0) FROM accounts WHERE user_id <> 0)`

func countRows(t *testing.T, db *sql.DB) rowCounts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	var c rowCounts
	if err := db.QueryRowContext(ctx, countsQuery).Scan(&c.Users, &c.Transactions, &c.Entries, &c.Idempotency, &c.Spent, &c.UserMoney); err != nil {
		t.Fatalf("count rows: %v", err)
	}
	return c
}

// fault is one way for the database to refuse writes, injected and
// cleared under a running server.
type fault struct {
	name   string
	inject func() error
	clear  func() error
	// readable: reads can still be served while the fault lasts.
	readable bool
}

// faultRig is a server with two users, alice (who has money) and bob.
type faultRig struct {
	srv        *server
	alice, bob user
	ca         *client
	db         *sql.DB // beside the server
}

func newFaultRig(t *testing.T, dsn string, d direct, env ...string) *faultRig {
	t.Helper()
	r := &faultRig{srv: newServer(t, dsn, env...), alice: newUser("alice", 1), bob: newUser("bob", 2)}
	if err := r.srv.start(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, u := range []*user{&r.alice, &r.bob} {
		if err := register(ctx, r.srv.base(), u); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := r.srv.command("deposit", "--mobile", r.alice.mobile, "--amount", "100.00"); err != nil {
		t.Fatalf("deposit: %v: %s", err, out)
	}
	r.ca = newClient(r.srv.base(), r.alice.token)
	r.db = d.open(t)
	return r
}

func (r *faultRig) count(t *testing.T) rowCounts { return countRows(t, r.db) }

// ageSessions makes every session look idle for two minutes, so that the
// next request wants to refresh it: a write.
func (r *faultRig) ageSessions(t *testing.T) {
	t.Helper()
	if _, err := r.db.Exec(`UPDATE sessions SET last_seen_at_ms = last_seen_at_ms - 120000`); err != nil {
		t.Fatalf("age sessions: %v", err)
	}
}

// transfer is alice's payment of money to bob under key.
func (r *faultRig) transfer(t *testing.T, key, money string) reply {
	t.Helper()
	rep, err := r.ca.call(context.Background(), requestTimeout, "POST", "/api/pay", map[string]any{
		"mode": "transfer", "money": money, "payee": r.bob.mobile, "password": payPassword, "detail": "fault test " + key,
	}, map[string]string{"Idempotency-Key": key})
	if err != nil {
		t.Fatalf("pay %s: %v", key, err)
	}
	return rep
}

func (r *faultRig) balance(t *testing.T) int64 {
	t.Helper()
	bal, rep, err := info(context.Background(), r.ca, requestTimeout)
	if err != nil || rep.status != http.StatusOK {
		t.Fatalf("info: %d %s %v", rep.status, rep.env.Code, err)
	}
	return bal
}

// wantUnavailable checks an answer is 503 UNAVAILABLE with a message that
// says to retry.
func wantUnavailable(t *testing.T, what string, rep reply) {
	t.Helper()
	if rep.status != http.StatusServiceUnavailable || rep.env.Code != "UNAVAILABLE" || rep.env.Success ||
		!strings.Contains(rep.env.Error, "retry") {
		t.Errorf("%s under the fault: %d %s %q; want 503 UNAVAILABLE with a message to retry", what, rep.status, rep.env.Code, rep.env.Error)
	}
}

// failingWrites runs the scenario every fault must pass: payments answer
// 503 UNAVAILABLE and write nothing while it lasts, reads are served where
// they can be, and the same server process pays again once it clears, the
// failed attempt's idempotency key included.
func (r *faultRig) failingWrites(t *testing.T, f fault) {
	if rep := r.transfer(t, "before-fault", "1.00"); rep.status != http.StatusOK {
		t.Fatalf("payment before the fault: %d %s %s", rep.status, rep.env.Code, rep.env.Error)
	}
	pid := r.srv.pid()
	balance := r.balance(t)
	bills, err := statement(context.Background(), r.ca)
	if err != nil {
		t.Fatal(err)
	}
	before := r.count(t)
	// Reads by a session due for a refresh are served too: the refresh
	// is a write that waits for better days.
	r.ageSessions(t)

	if err := f.inject(); err != nil {
		t.Fatalf("inject %s: %v", f.name, err)
	}
	for i := 0; i < faultTries; i++ {
		rep := r.transfer(t, "during-fault", "2.00")
		wantUnavailable(t, "transfer", rep)
		if i == 0 {
			t.Logf("%s: a transfer answers %d %s %q %s", f.name, rep.status, rep.env.Code, rep.env.Error, rep.env.Data)
		}
		var data struct {
			Balance string `json:"balance"`
		}
		if f.readable {
			if json.Unmarshal(rep.env.Data, &data) != nil || data.Balance != yuan(balance) {
				t.Errorf("the failed payment's data %s; want the current balance %s", rep.env.Data, yuan(balance))
			}
		}
	}
	rep, err := r.ca.call(context.Background(), requestTimeout, "POST", "/api/pay", map[string]any{
		"mode": "mobilepay", "mobile": r.alice.mobile, "money": "5.00", "passwrd": payPassword,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantUnavailable(t, "mobilepay without a key", rep)
	if rep, err := newClient(r.srv.base(), "").call(context.Background(), requestTimeout, "POST", "/api/user", map[string]any{
		"username": "carol", "password": userPassword, "email": "carol@example.com", "mobile": "13900000003", "cardnum": cardNumber("13900000003"),
	}, nil); err != nil {
		t.Fatal(err)
	} else {
		wantUnavailable(t, "registration", rep)
	}

	if f.readable {
		if got := r.balance(t); got != balance {
			t.Errorf("balance under the fault %s, before %s", yuan(got), yuan(balance))
		}
		now, err := statement(context.Background(), r.ca)
		if err != nil {
			t.Errorf("statement under the fault: %v", err)
		} else if len(now) != len(bills) {
			t.Errorf("the statement has %d bills under the fault, %d before", len(now), len(bills))
		}
	} else {
		_, rep, err := info(context.Background(), r.ca, requestTimeout)
		if err != nil {
			t.Fatal(err)
		}
		wantUnavailable(t, "info", rep)
	}
	if after := r.count(t); after != before {
		t.Errorf("the failed payments wrote something: rows %+v before, %+v after", before, after)
	}

	if err := f.clear(); err != nil {
		t.Fatalf("clear %s: %v", f.name, err)
	}
	// The same process recovers by itself: the key of the failed attempt
	// was not stored, so its retry pays, once.
	deadline := time.Now().Add(recoverTimeout)
	var statuses []string
	for {
		rep = r.transfer(t, "during-fault", "2.00")
		if rep.status == http.StatusOK || time.Now().After(deadline) {
			break
		}
		if rep.status != http.StatusServiceUnavailable {
			t.Fatalf("transfer after the fault cleared: %d %s %q", rep.status, rep.env.Code, rep.env.Error)
		}
		statuses = append(statuses, rep.env.Code)
		time.Sleep(100 * time.Millisecond)
	}
	if rep.status != http.StatusOK {
		t.Fatalf("no payment went through %s after the fault cleared: %d %s %q", recoverTimeout, rep.status, rep.env.Code, rep.env.Error)
	}
	if len(statuses) > 0 {
		t.Logf("%d answers 503 after the fault cleared before a payment went through: %v", len(statuses), statuses)
	}
	if rep.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("the first success after the fault is a replay: a failed attempt was stored")
	}
	if got := r.srv.pid(); got != pid || pid == 0 {
		t.Errorf("server pid %d before the fault, %d after: it did not recover in place", pid, got)
	}
	if rep := r.transfer(t, "during-fault", "2.00"); rep.status != http.StatusOK || rep.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry of the paid key: %d replayed=%q", rep.status, rep.header.Get("Idempotent-Replayed"))
	}
	if got := r.balance(t); got != balance-2_00 {
		t.Errorf("balance after recovery %s, want %s", yuan(got), yuan(balance-2_00))
	}
	after := r.count(t)
	if after.Transactions != before.Transactions+1 || after.Idempotency != before.Idempotency+1 || after.UserMoney != before.UserMoney || after.Users != before.Users {
		t.Errorf("rows %+v before the fault, %+v after recovery: want exactly one more payment", before, after)
	}
	if out, err := r.srv.command("check"); err != nil {
		t.Errorf("coffer check after the fault: %v\n%s", err, out)
	}
}

// requireFaultInjection skips a test whose fault cannot be injected on
// this machine, or fails it when CI is set: CI must exercise it.
func requireFaultInjection(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("cannot %s, and CI is set: %v", what, err)
	}
	t.Skipf("cannot %s here (root on Linux needed): %v", what, err)
}

// immutableFlag is FS_IMMUTABLE_FL (chattr +i): no process, root
// included, may write the file, through descriptors already open too.
const immutableFlag = 0x10

func setImmutable(path string, on bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return fmt.Errorf("get flags of %s: %w", path, err)
	}
	if on {
		flags |= immutableFlag
	} else {
		flags &^= immutableFlag
	}
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags)); err != nil {
		return fmt.Errorf("set flags of %s: %w", path, err)
	}
	return nil
}

// sqliteReadOnly makes the database file and its WAL immutable, as a file
// system remounted read-only would: writes fail with an I/O error, even
// through descriptors already open, reads go on. (The -shm file stays
// writable: it is mapped into memory, where a write to an immutable file
// would be a SIGBUS, not an error.) The files must exist; it fails when
// the file system or the process's privileges do not allow the flag, and
// clears the flag when the test ends.
func sqliteReadOnly(t testing.TB, db string) (fault, error) {
	files := []string{db, db + "-wal"}
	set := func(on bool) error {
		for _, f := range files {
			if err := setImmutable(f, on); err != nil {
				return err
			}
		}
		return nil
	}
	if err := set(false); err != nil {
		return fault{}, err
	}
	t.Cleanup(func() { set(false) }) // TempDir's removal needs them writable
	return fault{
		name:     "SQLite read-only",
		readable: true,
		inject:   func() error { return set(true) },
		clear:    func() error { return set(false) },
	}, nil
}

// TestFailingWritesSQLiteReadOnly makes the database read-only under the
// running server.
func TestFailingWritesSQLiteReadOnly(t *testing.T) {
	db := filepath.Join(t.TempDir(), "coffer.db")
	r := newFaultRig(t, db, sqliteDirect(db))
	f, err := sqliteReadOnly(t, db)
	requireFaultInjection(t, "make the database immutable", err)
	r.failingWrites(t, f)
}

// diskSize is the size of the small file system the disk-full test fills.
const diskSize = 16 << 20

// TestFailingWritesSQLiteDiskFull puts the database on a small tmpfs and
// fills it under the running server.
func TestFailingWritesSQLiteDiskFull(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	requireFaultInjection(t, "mount a tmpfs", syscall.Mount("coffer-banktest", mnt, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0755", diskSize)))
	t.Cleanup(func() { // after the server's kill: cleanups run last first
		if err := syscall.Unmount(mnt, 0); err != nil {
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	db := filepath.Join(mnt, "coffer.db")
	r := newFaultRig(t, db, sqliteDirect(db))
	filler := filepath.Join(mnt, "filler")
	r.failingWrites(t, fault{
		name:     "SQLite disk full",
		readable: true,
		inject:   func() error { return fill(filler) },
		clear:    func() error { return os.Remove(filler) },
	})
}

// fill writes path until the file system has no room left.
func fill(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for size := len(chunk); size >= 512; size /= 2 {
		for i := 0; i < diskSize/size+1; i++ {
			if _, err := f.Write(chunk[:size]); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					return err
				}
				break
			}
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		return err
	}
	if free := st.Bavail * uint64(st.Bsize); free >= 4096 {
		return fmt.Errorf("%d bytes still free after filling", free)
	}
	return nil
}

// pgSecret is COFFER_SECRET for the PostgreSQL servers of these tests.
func pgSecret() string { return "COFFER_SECRET=" + randomHex(32) }

// pgReadOnly turns the PostgreSQL server read-only as a managed service
// does when its storage is nearly full: default_transaction_read_only in
// the server's configuration, reloaded, so that sessions already open
// take it at their next statement. Writes fail with SQLSTATE 25006, reads
// go on. The cluster is this test binary's own; the setting is reset when
// the test ends, so that databases can be dropped and later tests write.
func pgReadOnly(t testing.TB, dsn string) (fault, error) {
	// The setting is the cluster's: set it from its maintenance database,
	// out of reach of the bank test's terminations of the test database's
	// backends.
	u, err := url.Parse(dsn)
	if err != nil {
		return fault{}, err
	}
	u.Path = "/postgres"
	admin, err := sql.Open("pgx", u.String())
	if err != nil {
		return fault{}, err
	}
	t.Cleanup(func() { admin.Close() })
	ctx := context.Background()
	conn, err := admin.Conn(ctx)
	if err != nil {
		return fault{}, err
	}
	admin.SetMaxIdleConns(0) // the checks below need new sessions
	t.Cleanup(func() { conn.Close() })
	// This session stays read-write whatever the server's default.
	if _, err := conn.ExecContext(ctx, `SET default_transaction_read_only = off`); err != nil {
		return fault{}, err
	}
	var mu sync.Mutex
	set := func(on bool) error {
		mu.Lock()
		defer mu.Unlock()
		stmt := `ALTER SYSTEM RESET default_transaction_read_only`
		if on {
			stmt = `ALTER SYSTEM SET default_transaction_read_only = on`
		}
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return err
		}
		if _, err := conn.ExecContext(ctx, `SELECT pg_reload_conf()`); err != nil {
			return err
		}
		// Once a new session sees the setting, the postmaster has reloaded
		// and signalled every backend, which applies it before its next
		// statement.
		want := map[bool]string{true: "on", false: "off"}[on]
		for i := 0; i < 200; i++ {
			var got string
			if err := admin.QueryRowContext(ctx, `SELECT current_setting('default_transaction_read_only')`).Scan(&got); err != nil {
				return err
			}
			if got == want {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		return fmt.Errorf("default_transaction_read_only did not become %s", want)
	}
	t.Cleanup(func() {
		if err := set(false); err != nil {
			t.Errorf("reset default_transaction_read_only: %v", err)
		}
	})
	return fault{
		name:     "PostgreSQL read-only",
		readable: true,
		inject:   func() error { return set(true) },
		clear:    func() error { return set(false) },
	}, nil
}

// TestFailingWritesPostgresReadOnly makes PostgreSQL read-only under the
// running server.
func TestFailingWritesPostgresReadOnly(t *testing.T) {
	dsn := pgtest.DSN(t)
	f, err := pgReadOnly(t, dsn)
	if err != nil {
		t.Fatal(err)
	}
	r := newFaultRig(t, dsn, pgDirect(dsn), pgSecret())
	r.failingWrites(t, f)
}

// TestFailingWritesPostgresGone puts a TCP proxy between the server and
// PostgreSQL and takes it down, as when PostgreSQL stops or the network
// fails: connections break and new ones are refused.
func TestFailingWritesPostgresGone(t *testing.T) {
	dsn, proxied, p := pgtest.DSNThroughProxy(t)
	r := newFaultRig(t, proxied, pgDirect(dsn), pgSecret())
	r.failingWrites(t, fault{
		name:     "PostgreSQL gone",
		readable: false,
		inject:   func() error { p.Down(); return nil },
		clear:    p.Up,
	})
}
