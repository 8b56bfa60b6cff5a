package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"coffer"
	"coffer/internal/pgtest"
	"coffer/postgres"
	"coffer/sqlstore"
	"coffer/storetest"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var ctx = context.Background()

// luhn completes a 15-digit prefix into a 16-digit card number that
// passes the Luhn check.
func luhn(prefix string) string {
	sum := 0
	for i := len(prefix) - 1; i >= 0; i-- {
		d := int(prefix[i] - '0')
		if (len(prefix)-i)%2 == 1 { // doubled: every second digit from the check digit
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return prefix + string(rune('0'+(10-sum%10)%10))
}

// newUser returns a valid user numbered n, not yet stored.
func newUser(n int) *coffer.User {
	return &coffer.User{
		Username:     fmt.Sprintf("user%d", n),
		Email:        fmt.Sprintf("user%d@example.com", n),
		Mobile:       fmt.Sprintf("138%08d", n),
		CardNum:      luhn(fmt.Sprintf("622202%09d", n)),
		PasswordHash: "not-a-real-hash",
		CreatedAt:    storetest.Start,
	}
}

func createUser(t *testing.T, s coffer.Store, u *coffer.User) {
	t.Helper()
	if err := s.Update(ctx, func(tx coffer.Tx) error { return tx.CreateUser(ctx, u) }); err != nil {
		t.Fatalf("create user %s: %v", u.Username, err)
	}
}

func balance(t *testing.T, s coffer.Store, k coffer.AccountKey) int64 {
	t.Helper()
	var bal int64
	if err := s.View(ctx, func(tx coffer.ReadTx) error {
		var err error
		bal, err = tx.Balance(ctx, k)
		return err
	}); err != nil {
		t.Fatalf("balance of %s: %v", k, err)
	}
	return bal
}

func migrationsApplied(t *testing.T, db *sql.DB) []int {
	t.Helper()
	rows, err := db.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// allVersions lists every version of the schema, each once, in order.
func allVersions() []int {
	versions := make([]int, postgres.SchemaVersion())
	for i := range versions {
		versions[i] = i + 1
	}
	return versions
}

func open(t *testing.T, dsn string, opts postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(ctx, dsn, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestMigrateTwice(t *testing.T) {
	dsn := pgtest.DSN(t)
	first := open(t, dsn, postgres.Options{})
	createUser(t, first, newUser(1))
	first.Close()
	second := open(t, dsn, postgres.Options{})
	if got, want := migrationsApplied(t, second.DB()), allVersions(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("migrations recorded: %v, want %v", got, want)
	}
	if n := storetest.CountRows(t, second)["users"]; n != 1 {
		t.Errorf("reopening lost or duplicated data: %d users", n)
	}
}

// TestMigratesVersionTwoDatabase opens a database of schema version 2,
// as the previous build left it, with a day's spend in it: the day's
// limit moves into the row and is checked there, and the previous build's
// spend, run beside this one with the same limit, still works.
func TestMigratesVersionTwoDatabase(t *testing.T) {
	dsn, old := versionTwoDatabase(t)
	s := open(t, dsn, postgres.Options{})
	if got, want := migrationsApplied(t, s.DB()), allVersions(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("migrations recorded: %v, want %v", got, want)
	}
	storetest.AssertMigratedSpendHeldToLimit(t, s)
	var foreignKeys int
	if err := s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_constraint WHERE contype = 'f' AND conrelid IN ('entries'::regclass, 'idempotency'::regclass)`).Scan(&foreignKeys); err != nil || foreignKeys != 0 {
		t.Errorf("foreign keys of entries and idempotency after migration 5: %d, %v; want none", foreignKeys, err)
	}
	const limit = coffer.Amount(200_00)
	// The previous build's statement: refused by changing no row, never
	// by the CHECK, while its limit is the one in the row.
	previous := func(amount int64) (spent int64, err error) {
		err = old.QueryRowContext(ctx, `INSERT INTO spend_days (user_id, day, spent) VALUES ($1, $2, $3)
			ON CONFLICT (user_id, day) DO UPDATE SET spent = spend_days.spent + excluded.spent
			WHERE spend_days.spent + excluded.spent <= $4 RETURNING spent`, 1, "2026-11-24", amount, int64(limit)).Scan(&spent)
		return spent, err
	}
	if err := s.Update(ctx, func(tx coffer.Tx) error { return tx.AddDailySpend(ctx, 1, "2026-11-24", 150_00, limit) }); err != nil {
		t.Fatal(err)
	}
	if spent, err := previous(50_00); err != nil || spent != 200_00 {
		t.Errorf("previous build's spend up to the limit: %d, %v", spent, err)
	}
	if _, err := previous(1); !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("previous build's spend past the limit: %v, want no row", err)
	}
}

// versionTwoDatabase makes a database of schema version 2, as the
// previous build left it, with a day's spend in it, and returns its URL
// and a connection pool to it.
func versionTwoDatabase(t *testing.T) (string, *sql.DB) {
	t.Helper()
	dsn := pgtest.DSN(t)
	old, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { old.Close() })
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at_ms BIGINT NOT NULL)`,
		sqlstore.SchemaFor("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "BYTEA"),
		sqlstore.DropAccountIndex,
		`INSERT INTO schema_migrations VALUES (1, 0), (2, 0)`,
		`INSERT INTO spend_days (user_id, day, spent) VALUES (1, '2026-11-23', 15000)`,
	} {
		if _, err := old.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.40s: %v", q, err)
		}
	}
	return dsn, old
}

// TestMigrationBesidePayments: migration 5 locks five tables, which the
// previous build's payments lock in an order of their own (the payer's row
// first). A server starting while such payments run migrates, waiting for
// them instead of deadlocking with one, and every payment goes through.
func TestMigrationBesidePayments(t *testing.T) {
	dsn := pgtest.DSN(t)
	restore := postgres.SetSchemaVersion(4)
	previous := open(t, dsn, postgres.Options{})
	restore()
	users := make([]*coffer.User, 8)
	for i := range users {
		users[i] = newUser(i)
		createUser(t, previous, users[i])
		storetest.Deposit(t, previous, users[i].ID, 1000_00)
	}
	pay := func(payer, payee *coffer.User, key string) error {
		return previous.Update(ctx, func(tx coffer.Tx) error {
			now := time.Now()
			if err := tx.LockPayable(ctx, payer.ID, now); err != nil {
				return err
			}
			if _, err := tx.PostLater(ctx, &coffer.Transaction{User: payer.ID, Kind: coffer.ModeTransfer, CreatedAt: now, Legs: []coffer.Leg{{
				From: coffer.CardAccount(payer.ID), To: coffer.CardAccount(payee.ID), Amount: 1}}}); err != nil {
				return err
			}
			return tx.PutIdempotent(ctx, coffer.IdempotentRecord{User: payer.ID, Key: key, RequestHash: []byte{1}, Status: 200, BodyBalanceOf: coffer.CardAccount(payer.ID), CreatedAt: now})
		})
	}
	stop := make(chan struct{})
	var paid atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := pay(users[(w+i)%len(users)], users[(w+i+1)%len(users)], fmt.Sprint(w, "-", i)); err != nil {
					errs <- err
					return
				}
				paid.Add(1)
			}
		})
	}
	for paid.Load() < 100 { // payments in flight
		time.Sleep(time.Millisecond)
	}
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a payment beside the migration: %v", err)
	}
	if err != nil {
		t.Fatalf("a start beside payments: %v", err)
	}
	defer s.Close()
	if got, want := migrationsApplied(t, s.DB()), allVersions(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("migrations recorded: %v, want %v", got, want)
	}
	storetest.AssertLedger(t, s)
}

// TestMigrationGivesUpOnABusyTable: a migration that must alter a table
// held by a long transaction gives up after the lock timeout (the start
// fails, and nothing of the migration is applied) instead of making
// every payment queue behind its wait; once the table is free, a start
// migrates.
func TestMigrationGivesUpOnABusyTable(t *testing.T) {
	postgres.SetMigrationLockTimeout(t, "200ms")
	dsn, old := versionTwoDatabase(t)
	busy, err := old.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := busy.ExecContext(ctx, `UPDATE spend_days SET spent = spent WHERE user_id = 1`); err != nil {
		t.Fatal(err)
	}
	waitAtMost, cancel := context.WithTimeout(ctx, 10*time.Second) // a start that waited would fail the test, not hang it
	defer cancel()
	if s, err := postgres.Open(waitAtMost, dsn, postgres.Options{}); err == nil {
		s.Close()
		t.Fatal("opened while a migration's table was held")
	} else {
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "55P03" {
			t.Errorf("open while a migration's table was held: %v, want lock_not_available (55P03)", err)
		}
	}
	if got := migrationsApplied(t, old); fmt.Sprint(got) != "[1 2]" {
		t.Errorf("migrations recorded after the failed start: %v, want [1 2]", got)
	}
	busy.Rollback()
	s := open(t, dsn, postgres.Options{})
	if got, want := migrationsApplied(t, s.DB()), allVersions(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("migrations recorded: %v, want %v", got, want)
	}
}

// TestMigrateConcurrently starts several servers on one empty database at
// once: every Open succeeds, and the schema is applied exactly once (a
// second application would fail on the existing tables, and would record
// the version twice).
func TestMigrateConcurrently(t *testing.T) {
	const servers = 4
	dsn := pgtest.DSN(t)
	stores := make([]*postgres.Store, servers)
	errs := make([]error, servers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range servers {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = postgres.Open(ctx, dsn, postgres.Options{MaxConns: 2})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("server %d: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	if got, want := migrationsApplied(t, stores[0].DB()), allVersions(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("migrations recorded: %v, want %v", got, want)
	}
	for i, s := range stores {
		createUser(t, s, newUser(i))
	}
}

func TestPostConditionalBalances(t *testing.T) {
	s := pgtest.Open(t)
	u := newUser(1)
	createUser(t, s, u)
	card := coffer.CardAccount(u.ID)
	cash := coffer.SystemAccount(coffer.KindCash, coffer.AssetCNY)
	carrier := coffer.SystemAccount(coffer.KindCarrier, coffer.AssetCNY)
	post := func(from, to coffer.AccountKey, amount int64) error {
		return s.Update(ctx, func(tx coffer.Tx) error {
			_, err := tx.Post(ctx, &coffer.Transaction{Kind: "test", CreatedAt: storetest.Start, Legs: []coffer.Leg{{
				From: from, To: to, Amount: amount, FromMethod: coffer.MethodMobilePay, ToMethod: coffer.MethodMobilePay,
			}}})
			return err
		})
	}
	if err := post(cash, card, 100_00); err != nil {
		t.Fatal(err)
	}
	before := storetest.CountRows(t, s)
	if err := post(card, carrier, 100_01); !coffer.IsCode(err, coffer.ErrInsufficientFunds) {
		t.Fatalf("overdraft: %v, want %s", err, coffer.ErrInsufficientFunds)
	}
	if got := storetest.CountRows(t, s); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("a refused posting wrote rows: %v, before %v", got, before)
	}
	if err := post(card, carrier, 100_00); err != nil {
		t.Fatalf("spending the whole balance: %v", err)
	}
	if bal := balance(t, s, card); bal != 0 {
		t.Errorf("card balance %d, want 0", bal)
	}
	if bal := balance(t, s, carrier); bal != 100_00 {
		t.Errorf("carrier balance %d, want 10000", bal)
	}
	storetest.AssertLedger(t, s)
}

// withTwoUsers returns a store of its own with two users in it.
// oneLeg is a transaction of one leg, from an account to another.
func oneLeg(from, to coffer.AccountKey, amount int64) *coffer.Transaction {
	return &coffer.Transaction{Kind: "test", CreatedAt: storetest.Start, Legs: []coffer.Leg{{From: from, To: to, Amount: amount}}}
}

// holding begins a transaction of the test's own on s's database, runs
// stmt in it (taking the rows it locks) and leaves it open; it is rolled
// back when the test ends, unless ended before.
func holding(t *testing.T, s *postgres.Store, stmt string, args ...any) *sql.Tx {
	t.Helper()
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	if _, err := tx.Exec(stmt, args...); err != nil {
		t.Fatal(err)
	}
	return tx
}

func withTwoUsers(t *testing.T) (*postgres.Store, *coffer.User, *coffer.User) {
	s := pgtest.OpenOptions(t, postgres.Options{})
	a, b := newUser(1), newUser(2)
	createUser(t, s, a)
	createUser(t, s, b)
	return s, a, b
}

// TestPostLaterRefusesACardNotThere: PostLater changes a user's card
// without a branch to create it, since registration does; a card that is
// not there must fail the whole transaction in the database, and not leave
// a statement without its row while COMMIT, sent with it, commits the rest.
func TestPostLaterRefusesACardNotThere(t *testing.T) {
	s, payer, payee := withTwoUsers(t)
	storetest.Deposit(t, s, payer.ID, 100_00)
	// The ledger refuses deletes (migration 5): the card is taken away as
	// only an operator who lifted that guard on purpose could.
	if _, err := s.DB().ExecContext(ctx, `ALTER TABLE accounts DISABLE TRIGGER accounts_append_only`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `DELETE FROM accounts WHERE user_id = $1`, payee.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `ALTER TABLE accounts ENABLE TRIGGER accounts_append_only`); err != nil {
		t.Fatal(err)
	}
	before := storetest.CountRows(t, s)
	var posted *coffer.Posted
	err := s.Update(ctx, func(tx coffer.Tx) error {
		var err error
		posted, err = tx.PostLater(ctx, &coffer.Transaction{User: payer.ID, Kind: "test", CreatedAt: storetest.Start, Legs: []coffer.Leg{{
			From: coffer.CardAccount(payer.ID), To: coffer.CardAccount(payee.ID), Amount: 30_00}}})
		return err
	})
	if !coffer.IsCode(err, coffer.ErrInternal) {
		t.Errorf("a transfer to a card not there: %v (posted %+v), want an internal error", err, posted)
	}
	if got := storetest.CountRows(t, s); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("a refused posting wrote rows: %v, before %v", got, before)
	}
	if bal := balance(t, s, coffer.CardAccount(payer.ID)); bal != 100_00 {
		t.Errorf("payer at %d after a refused transfer, want 10000", bal)
	}
}

// TestLedgerRowsAreNeverDeleted: in place of the foreign keys that
// migration 5 dropped, the ledger's tables refuse DELETE and TRUNCATE,
// even of rows that no entry names, and keep every row.
func TestLedgerRowsAreNeverDeleted(t *testing.T) {
	s, a, _ := withTwoUsers(t)
	storetest.Deposit(t, s, a.ID, 5_00)
	before := storetest.CountRows(t, s)
	for _, table := range []string{"accounts", "transactions", "entries"} {
		for _, q := range []string{"DELETE FROM " + table, "DELETE FROM " + table + " WHERE id < 0", "TRUNCATE " + table} {
			_, err := s.DB().ExecContext(ctx, q)
			if pe := (*pgconn.PgError)(nil); !errors.As(err, &pe) || pe.Code != "23001" || !strings.Contains(pe.Message, "never deleted") {
				t.Errorf("%s: %v, want restrict_violation (23001)", q, err)
			}
		}
	}
	if got := storetest.CountRows(t, s); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("rows after the refused deletes: %v, before %v", got, before)
	}
	storetest.AssertLedger(t, s)
}

// TestCheckFindsEntriesNamingNothing: no foreign key holds an entry to its
// account and its transaction since migration 5, so the ledger's check
// looks for entries that name either one missing.
func TestCheckFindsEntriesNamingNothing(t *testing.T) {
	s, a, _ := withTwoUsers(t)
	storetest.Deposit(t, s, a.ID, 5_00)
	for _, q := range []string{
		`INSERT INTO entries (tx_id, account_id, user_id, account_kind, amount, balance_after, group_balance_after, method, details, created_at_ms)
			SELECT tx_id, -1, user_id, account_kind, 0, balance_after, group_balance_after, method, details, created_at_ms FROM entries WHERE user_id = 0`,
		`INSERT INTO entries (tx_id, account_id, user_id, account_kind, amount, balance_after, group_balance_after, method, details, created_at_ms)
			SELECT -2, account_id, user_id, account_kind, 0, balance_after, group_balance_after, method, details, created_at_ms FROM entries WHERE user_id = 0 AND account_id <> -1`,
	} {
		if _, err := s.DB().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.View(ctx, func(tx coffer.ReadTx) error {
		r, err := tx.CheckLedger(ctx)
		problems := strings.Join(r.Problems, "\n")
		if err == nil && (!strings.Contains(problems, "names account -1, which is not there") || !strings.Contains(problems, "names transaction -2, which is not there")) {
			t.Errorf("ledger check of entries naming no account and no transaction: %q", r.Problems)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestPostLaterTwiceInOneTransaction: each posting's entries name its own
// transaction (PostLater's entries take the id of the transaction row that
// the session inserted last), with Post between them too; an answer stored
// after them holds the last balance; and a shortfall held back comes out
// of the next statement that waits for an answer.
func TestPostLaterTwiceInOneTransaction(t *testing.T) {
	s, a, b := withTwoUsers(t)
	cash := coffer.SystemAccount(coffer.KindCash, coffer.AssetCNY)
	cardA, cardB := coffer.CardAccount(a.ID), coffer.CardAccount(b.ID)
	var first, third *coffer.Posted
	var second coffer.Posted
	if err := s.Update(ctx, func(tx coffer.Tx) error {
		var err error
		if first, err = tx.PostLater(ctx, oneLeg(cash, cardA, 100_00)); err != nil {
			return err
		}
		if second, err = tx.Post(ctx, oneLeg(cardA, cardB, 40_00)); err != nil {
			return err
		}
		if third, err = tx.PostLater(ctx, oneLeg(cardB, cardA, 15_00)); err != nil {
			return err
		}
		// The card's balance after the last posting, not after Post's.
		return tx.PutIdempotent(ctx, coffer.IdempotentRecord{User: a.ID, Key: "k", RequestHash: []byte{1}, Status: 200, BodyBalanceOf: cardA, CreatedAt: storetest.Start})
	}); err != nil {
		t.Fatal(err)
	}
	if body := storetest.StoredBody(t, s, a.ID, "k"); body != "75.00" {
		t.Errorf("stored answer %q, want 75.00", body)
	}
	if first.Balances[cardA] != 100_00 || second.Balances[cardA] != 60_00 || third.Balances[cardA] != 75_00 || third.Balances[cardB] != 25_00 {
		t.Errorf("balances reported %v, %v, %v", first.Balances, second.Balances, third.Balances)
	}
	rows, err := s.DB().QueryContext(ctx, `SELECT tx_id, COUNT(*), SUM(amount) FROM entries GROUP BY tx_id ORDER BY tx_id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id, n, sum int64
		if err := rows.Scan(&id, &n, &sum); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(id, ":", n, ":", sum))
	}
	rows.Close()
	want := []string{fmt.Sprint(first.ID, ":2:0"), fmt.Sprint(second.ID, ":2:0"), fmt.Sprint(third.ID, ":2:0")}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("entries by transaction %v, want %v", got, want)
	}
	storetest.AssertLedger(t, s)

	before := storetest.CountRows(t, s)
	err = s.Update(ctx, func(tx coffer.Tx) error {
		if _, err := tx.PostLater(ctx, oneLeg(cardB, cardA, 25_01)); err != nil {
			return err
		}
		_, err := tx.Balance(ctx, cardA)
		if !coffer.IsCode(err, coffer.ErrInsufficientFunds) && !errors.Is(err, postgres.ErrNeedsConn) {
			t.Errorf("the read after an overdraft held back: %v, want %s", err, coffer.ErrInsufficientFunds)
		}
		return err
	})
	if !coffer.IsCode(err, coffer.ErrInsufficientFunds) {
		t.Errorf("overdraft: %v, want %s", err, coffer.ErrInsufficientFunds)
	}
	if got := storetest.CountRows(t, s); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("a refused posting wrote rows: %v, before %v", got, before)
	}

	// The ledger's check finds a transaction without entries, which a
	// posting whose entries named another transaction would leave.
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO transactions (user_id, kind, created_at_ms) VALUES (0, 'empty', 0)`); err != nil {
		t.Fatal(err)
	}
	if err := s.View(ctx, func(tx coffer.ReadTx) error {
		r, err := tx.CheckLedger(ctx)
		if err == nil && (len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "(empty) has no entries")) {
			t.Errorf("ledger check of a transaction without entries: %q", r.Problems)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func TestUniqueViolations(t *testing.T) {
	s := pgtest.Open(t)
	u := newUser(1)
	createUser(t, s, u)
	for _, c := range []struct {
		name string
		edit func(*coffer.User)
		want coffer.Code
	}{
		{"username", func(v *coffer.User) { v.Username = strings.ToUpper(u.Username) }, coffer.ErrUsernameTaken},
		{"email", func(v *coffer.User) { v.Email = strings.ToUpper(u.Email) }, coffer.ErrEmailTaken},
		{"mobile", func(v *coffer.User) { v.Mobile = u.Mobile }, coffer.ErrMobileTaken},
		{"cardnum", func(v *coffer.User) { v.CardNum = u.CardNum }, coffer.ErrCardTaken},
	} {
		v := newUser(2)
		c.edit(v)
		err := s.Update(ctx, func(tx coffer.Tx) error { return tx.CreateUser(ctx, v) })
		if !coffer.IsCode(err, c.want) {
			t.Errorf("duplicate %s: %v, want %s", c.name, err, c.want)
		}
	}
	if n := storetest.CountRows(t, s)["users"]; n != 1 {
		t.Errorf("%d users after refused duplicates, want 1", n)
	}
	rec := coffer.IdempotentRecord{User: u.ID, Key: "k1", RequestHash: []byte{1}, Status: 200, Body: []byte("1.00"), CreatedAt: storetest.Start}
	put := func() error { return s.Update(ctx, func(tx coffer.Tx) error { return tx.PutIdempotent(ctx, rec) }) }
	if err := put(); err != nil {
		t.Fatal(err)
	}
	if err := put(); !coffer.IsCode(err, coffer.ErrIdempotencyReuse) {
		t.Errorf("reused idempotency key: %v, want %s", err, coffer.ErrIdempotencyReuse)
	}
}

func TestRetryOnSerializationFailure(t *testing.T) {
	// Counts the runs of a transaction of its own, not of a batch's first try.
	s := pgtest.OpenOptions(t, postgres.Options{NoBatching: true})
	var calls int
	err := s.Update(ctx, func(tx coffer.Tx) error {
		calls++
		if err := tx.CreateUser(ctx, newUser(1)); err != nil {
			return err
		}
		if calls < 3 {
			return fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "40001", Message: "could not serialize access"})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 3 {
		t.Errorf("fn ran %d times, want 3", calls)
	}
	if st := s.Stats(); st.ConflictRetries != 2 {
		t.Errorf("stats %+v, want 2 conflict retries", st)
	}
	if n := storetest.CountRows(t, s)["users"]; n != 1 {
		t.Errorf("%d users: the aborted tries were not rolled back", n)
	}
}

func TestRetriesAreBounded(t *testing.T) {
	s := pgtest.OpenOptions(t, postgres.Options{MaxTries: 3})
	var calls int
	err := s.Update(ctx, func(tx coffer.Tx) error {
		calls++
		return &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}
	})
	if !coffer.IsCode(err, coffer.ErrOverloaded) {
		t.Errorf("endless conflicts: %v, want %s", err, coffer.ErrOverloaded)
	}
	if calls != 3 {
		t.Errorf("fn ran %d times, want 3", calls)
	}
	if st := s.Stats(); st.GaveUp != 1 || st.ConflictRetries != 2 {
		t.Errorf("stats %+v, want 2 retries and 1 give-up", st)
	}
}

func TestDomainErrorsPassThrough(t *testing.T) {
	s := pgtest.Open(t)
	want := &coffer.Error{Code: coffer.ErrInsufficientFunds, Detail: "x"}
	var calls int
	err := s.Update(ctx, func(tx coffer.Tx) error { calls++; return want })
	if err != want || calls != 1 {
		t.Errorf("Update returned %v after %d calls, want the same *coffer.Error after 1", err, calls)
	}
	if err := s.View(ctx, func(tx coffer.ReadTx) error { return want }); err != want {
		t.Errorf("View returned %v, want the same *coffer.Error", err)
	}
}

// TestRetryOnDeadlock makes two transactions lock two users in opposite
// orders: PostgreSQL aborts one with deadlock_detected, and Update runs it
// again, so both succeed.
func TestRetryOnDeadlock(t *testing.T) {
	// Counts the runs of a transaction of its own, not of a batch's first try.
	s := pgtest.OpenOptions(t, postgres.Options{NoBatching: true})
	a, b := newUser(1), newUser(2)
	createUser(t, s, a)
	createUser(t, s, b)
	var calls atomic.Int32
	var firstLocks sync.WaitGroup
	firstLocks.Add(2)
	lockBoth := func(first, second coffer.UserID) func(coffer.Tx) error {
		var tries int
		return func(tx coffer.Tx) error {
			calls.Add(1)
			tries++
			if err := tx.SetPayFailures(ctx, first, 1, time.Time{}); err != nil {
				return err
			}
			if tries == 1 {
				firstLocks.Done()
				firstLocks.Wait() // both hold their first lock: each now waits for the other's
			}
			return tx.SetPayFailures(ctx, second, 1, time.Time{})
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = s.Update(ctx, lockBoth(a.ID, b.ID)) })
	wg.Go(func() { errs[1] = s.Update(ctx, lockBoth(b.ID, a.ID)) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("transaction %d: %v", i, err)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("functions ran %d times in all, want 3 (one deadlock victim retried)", n)
	}
	if st := s.Stats(); st.ConflictRetries != 1 {
		t.Errorf("stats %+v, want 1 conflict retry", st)
	}
}

// TestReadOnlyDatabaseIsUnavailable: a database that refuses writes (as a
// standby or a demoted primary does) answers Update with ErrUnavailable,
// still serves View, and still lets a server start on an up-to-date schema.
func TestReadOnlyDatabaseIsUnavailable(t *testing.T) {
	dsn := pgtest.DSN(t)
	first := open(t, dsn, postgres.Options{})
	var name string
	if err := first.DB().QueryRowContext(ctx, `SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if _, err := first.DB().ExecContext(ctx, `ALTER DATABASE "`+name+`" SET default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	first.Close()
	s := open(t, dsn, postgres.Options{})
	err := s.Update(ctx, func(tx coffer.Tx) error { return tx.CreateUser(ctx, newUser(1)) })
	if !coffer.IsCode(err, coffer.ErrUnavailable) {
		t.Errorf("write to a read-only database: %v, want %s", err, coffer.ErrUnavailable)
	}
	if n := storetest.CountRows(t, s)["users"]; n != 0 {
		t.Errorf("%d users written to a read-only database", n)
	}
}

func TestUnreachableIsUnavailable(t *testing.T) {
	// Port 1 of localhost: nothing listens there, the connection is refused.
	_, err := postgres.Open(ctx, "postgres://coffer@127.0.0.1:1/coffer?sslmode=disable&connect_timeout=5", postgres.Options{})
	if !coffer.IsCode(err, coffer.ErrUnavailable) {
		t.Errorf("open of an unreachable database: %v, want %s", err, coffer.ErrUnavailable)
	}
}

// TestServerClosedConnections: after PostgreSQL ends every connection of
// the store (a restart, a failover, an idle timeout), the next Update
// still succeeds on a fresh connection.
func TestServerClosedConnections(t *testing.T) {
	dsn := pgtest.DSN(t)
	s := open(t, dsn, postgres.Options{MaxConns: 2})
	createUser(t, s, newUser(1))
	killer, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close()
	terminateOthers(t, killer)
	if err := s.Update(ctx, func(tx coffer.Tx) error { return tx.CreateUser(ctx, newUser(2)) }); err != nil {
		t.Errorf("update after the server closed the connections: %v", err)
	}
	// Either the pool's liveness check found the dead connection or
	// Update retried on a fresh one; which depends on timing.
	t.Logf("stats: %+v", s.Stats())
	if n := storetest.CountRows(t, s)["users"]; n != 2 {
		t.Errorf("%d users, want 2", n)
	}
}

// TestServerClosedConnectionsBeforeAPayment: a payment's whole write
// transaction goes in one pipeline with its COMMIT (PostLater), so the
// connection's loss is found only as COMMIT's pipeline is answered. The
// server's FATAL before any other answer says that nothing of it ran, and
// Update runs it again on a fresh connection instead of answering that the
// outcome is unknown. (The look at each connection taken from the pool
// finds a FATAL waiting first, so it is turned off here: the FATAL can
// still come between the look and the pipeline.)
func TestServerClosedConnectionsBeforeAPayment(t *testing.T) {
	postgres.SkipConnLook(t)
	s, u, killer := storeWithKiller(t)
	cash := coffer.SystemAccount(coffer.KindCash, coffer.AssetCNY)
	deposit := func() error {
		return s.Update(ctx, func(tx coffer.Tx) error {
			_, err := tx.PostLater(ctx, oneLeg(cash, coffer.CardAccount(u.ID), 1_00))
			return err
		})
	}
	const rounds = 5
	for i := range rounds {
		// The pool pings a connection that lay idle over a second, or was
		// never handed out since it was made: hand it out now.
		balance(t, s, coffer.CardAccount(u.ID))
		terminateOthers(t, killer)
		if err := deposit(); err != nil {
			t.Errorf("payment %d after the server closed the connection: %v", i, err)
		}
	}
	t.Logf("stats: %+v", s.Stats())
	if got := balance(t, s, coffer.CardAccount(u.ID)); got != rounds*1_00 {
		t.Errorf("card at %d after %d payments of 1.00, want %d", got, rounds, rounds*1_00)
	}
	if s.Stats().ConnRetries == 0 { // the pool's ping found every dead connection first
		t.Errorf("no payment met a closed connection (stats %+v): the test tested nothing", s.Stats())
	}
	storetest.AssertLedger(t, s)
}

// TestReadsAfterTheServerClosedConnections: a read that follows
// PostgreSQL's end of the store's idle connection (pg_terminate_backend, a
// shutdown, an idle timeout) does not meet the FATAL waiting on it. A
// payment that meets one runs again; a read would answer it as a 503.
func TestReadsAfterTheServerClosedConnections(t *testing.T) {
	s, u, killer := storeWithKiller(t)
	const rounds = 5
	unfit := s.Stats().UnfitConns
	for i := range rounds {
		// Handed out now, the connection is not pinged when next taken.
		balance(t, s, coffer.CardAccount(u.ID))
		terminateOthers(t, killer)
		if err := s.View(ctx, func(tx coffer.ReadTx) error {
			_, err := tx.Balance(ctx, coffer.CardAccount(u.ID))
			return err
		}); err != nil {
			t.Errorf("read %d after the server closed the connection: %v", i, err)
		}
	}
	if n := s.Stats().UnfitConns - unfit; n < rounds {
		t.Errorf("%d connections dropped as taken, want %d: the reads did not meet the closed connections", n, rounds)
	}
}

// storeWithKiller opens a store of one connection on a new database with
// one user, and a pool of its own on the same database to end the store's
// connections with.
func storeWithKiller(t *testing.T) (*postgres.Store, *coffer.User, *sql.DB) {
	t.Helper()
	dsn := pgtest.DSN(t)
	s := open(t, dsn, postgres.Options{MaxConns: 1})
	u := newUser(1)
	createUser(t, s, u)
	killer, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killer.Close() })
	return s, u, killer
}

// terminateOthers ends every other connection to killer's database, and
// returns once their backends have exited: their FATAL sent, and their
// sockets closed.
func terminateOthers(t *testing.T, killer *sql.DB) {
	t.Helper()
	// pg_terminate_backend waits up to 5 s for each backend to exit; it
	// answers false also for one that exited before the signal, so what
	// counts is that none is left.
	const others = `FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`
	if _, err := killer.ExecContext(ctx, `SELECT pg_terminate_backend(pid, 5000) `+others); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := killer.QueryRowContext(ctx, `SELECT COUNT(*) `+others).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d backends left after pg_terminate_backend", left)
	}
}

func TestViewIsReadOnly(t *testing.T) {
	s := pgtest.Open(t)
	err := s.View(ctx, func(tx coffer.ReadTx) error {
		w, ok := tx.(coffer.Tx)
		if !ok {
			return nil // the type system already forbids it
		}
		return w.CreateUser(ctx, newUser(1))
	})
	if n := storetest.CountRows(t, s)["users"]; n != 0 {
		t.Errorf("a write inside View committed %d users (err %v)", n, err)
	}
	if err == nil {
		t.Error("a write inside View succeeded")
	}
}

func TestPoolSizeFromDSN(t *testing.T) {
	dsn := pgtest.DSN(t)
	s := open(t, dsn+"&pool_max_conns=3&pool_max_conn_lifetime=1h", postgres.Options{})
	if got := s.DB().Stats().MaxOpenConnections; got != 3 {
		t.Errorf("max open connections %d, want 3", got)
	}
	s2 := open(t, dsn+"&pool_max_conns=3", postgres.Options{MaxConns: 5})
	if got := s2.DB().Stats().MaxOpenConnections; got != 5 {
		t.Errorf("max open connections %d, want the option's 5 over the DSN's 3", got)
	}
	if _, err := postgres.Open(ctx, dsn+"&pool_max_conns=lots", postgres.Options{}); err == nil || !strings.Contains(err.Error(), "pool_max_conns") {
		t.Errorf("bad pool_max_conns: %v", err)
	}
}

// TestDefaultPoolSize: 8 connections a core the process may use, at
// most 64.
func TestDefaultPoolSize(t *testing.T) {
	dsn := pgtest.DSN(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, c := range []struct{ procs, want int }{{2, 16}, {8, 64}, {32, 64}} {
		runtime.GOMAXPROCS(c.procs)
		s := open(t, dsn, postgres.Options{})
		if got := s.DB().Stats().MaxOpenConnections; got != c.want {
			t.Errorf("GOMAXPROCS %d: max open connections %d, want %d", c.procs, got, c.want)
		}
		s.Close()
	}
}

func TestContextCanceled(t *testing.T) {
	s := pgtest.Open(t)
	c, cancel := context.WithCancel(ctx)
	cancel()
	err := s.Update(c, func(tx coffer.Tx) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("update with a canceled context: %v, want context.Canceled", err)
	}
}

// TestLotNumberRace: two purchases of one fixed-term product by one user
// pick the same next lot number under READ COMMITTED; the loser's unique
// violation is a conflict that Update runs again, and both lots exist.
func TestLotNumberRace(t *testing.T) {
	s := pgtest.Open(t).(*postgres.Store)
	u := newUser(1)
	createUser(t, s, u)
	firstCreated, secondStarted := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	lots := make([]int64, 2)
	wg.Go(func() {
		var once sync.Once
		errs[0] = s.Update(ctx, func(tx coffer.Tx) error {
			k, err := tx.CreateLot(ctx, u.ID, "fixed90", "2027-02-21")
			lots[0] = k.Lot
			if err != nil {
				return err
			}
			once.Do(func() {
				close(firstCreated)
				<-secondStarted
				time.Sleep(200 * time.Millisecond) // let the second one reach the insert and wait on ours
			})
			return nil
		})
	})
	wg.Go(func() {
		<-firstCreated
		var once sync.Once
		errs[1] = s.Update(ctx, func(tx coffer.Tx) error {
			once.Do(func() { close(secondStarted) })
			k, err := tx.CreateLot(ctx, u.ID, "fixed90", "2027-02-21")
			lots[1] = k.Lot
			return err
		})
	})
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("concurrent purchases: %v, %v", errs[0], errs[1])
	}
	if lots[0] == lots[1] {
		t.Errorf("both purchases got lot %d", lots[0])
	}
	if st := s.Stats(); st.ConflictRetries != 1 {
		t.Errorf("stats %+v, want the second purchase retried once", st)
	}
}
