package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"coffer"
	"coffer/sqlite"
	"coffer/sqlstore"
	"coffer/storetest"
)

var bg = context.Background()

func openPath(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(bg, path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openTemp(t testing.TB) *sqlite.Store {
	t.Helper()
	return openPath(t, filepath.Join(t.TempDir(), "coffer.db"))
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t testing.TB) coffer.Store { return openTemp(t) })
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// await waits for done or fails the test after a deadline: a stuck writer
// fails instead of hanging the run.
func await(t testing.TB, what string, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not finish: stuck", what)
	}
}

// holdWriter queues a job that blocks the writer until release is called,
// and returns once the writer is running it.
func holdWriter(t testing.TB, s *sqlite.Store) (release func(), result <-chan error) {
	t.Helper()
	started, block, res := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		res <- s.Update(bg, func(coffer.Tx) error {
			close(started)
			<-block
			return nil
		})
	}()
	<-started
	var once sync.Once
	release = func() { once.Do(func() { close(block) }) }
	t.Cleanup(release)
	return release, res
}

// user returns an unsaved user unique to n.
func user(n int) *coffer.User {
	return &coffer.User{Username: fmt.Sprintf("u%d", n), Email: fmt.Sprintf("u%d@example.com", n), Mobile: storetest.MobileNumber(n),
		CardNum: storetest.CardNumber(n), PasswordHash: "x", CreatedAt: storetest.Start}
}

var cash = coffer.SystemAccount(coffer.KindCash, coffer.AssetCNY)

// createAndDeposit creates user n and credits amount to their card.
func createAndDeposit(ctx context.Context, tx coffer.Tx, n int, amount int64) error {
	u := user(n)
	if err := tx.CreateUser(ctx, u); err != nil {
		return err
	}
	_, err := tx.Post(ctx, &coffer.Transaction{Kind: "deposit", CreatedAt: storetest.Start, Legs: []coffer.Leg{
		{From: cash, To: coffer.CardAccount(u.ID), Amount: amount, FromMethod: coffer.MethodDeposit, ToMethod: coffer.MethodDeposit}}})
	return err
}

// cardOf returns the card balance of user n, or false when n does not exist.
func cardOf(t testing.TB, s coffer.Store, n int) (int64, bool) {
	t.Helper()
	var bal int64
	var found bool
	err := s.View(bg, func(tx coffer.ReadTx) error {
		u, err := tx.UserByMobile(bg, storetest.MobileNumber(n))
		if coffer.IsCode(err, coffer.ErrUserNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		bal, err = tx.Balance(bg, coffer.CardAccount(u.ID))
		return err
	})
	if err != nil {
		t.Fatalf("read user %d: %v", n, err)
	}
	return bal, found
}

func balanceOf(t testing.TB, s coffer.Store, k coffer.AccountKey) int64 {
	t.Helper()
	var bal int64
	if err := s.View(bg, func(tx coffer.ReadTx) error {
		var err error
		bal, err = tx.Balance(bg, k)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return bal
}

// batch queues jobs while the writer is held, so that they are committed
// as one group, and returns each job's error.
func batch(t *testing.T, s *sqlite.Store, jobs []func(coffer.Tx) error) []error {
	t.Helper()
	release, held := holdWriter(t, s)
	results := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, fn := range jobs {
		wg.Go(func() { results[i] = s.Update(bg, fn) })
	}
	waitFor(t, "every job to be queued", func() bool { return sqlite.QueueLength(s) == len(jobs) })
	release()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	await(t, "the batch", done)
	if err := <-held; err != nil {
		t.Fatalf("the job holding the writer: %v", err)
	}
	return results
}

// TestGroupCommitFailingJobRollsBackAlone commits one group in which some
// jobs fail after writing (by returning an error, or on a unique
// constraint): only they are rolled back.
func TestGroupCommitFailingJobRollsBackAlone(t *testing.T) {
	s := openTemp(t)
	update := func(fn func(coffer.Tx) error) {
		if err := s.Update(bg, fn); err != nil {
			t.Fatal(err)
		}
	}
	update(func(tx coffer.Tx) error { return tx.CreateUser(bg, user(1000)) })
	const n = 60
	boom := errors.New("fails after writing")
	jobs := make([]func(coffer.Tx) error, n)
	want := map[int]error{}
	for i := range jobs {
		amount := int64(100 + i)
		switch i % 4 {
		case 1:
			want[i] = boom
			jobs[i] = func(tx coffer.Tx) error {
				if err := createAndDeposit(bg, tx, i, amount); err != nil {
					return err
				}
				return boom
			}
		case 2: // writes a deposit, then fails on a unique constraint
			jobs[i] = func(tx coffer.Tx) error {
				if err := createAndDeposit(bg, tx, i, amount); err != nil {
					return err
				}
				dup := user(2000 + i)
				dup.Mobile = storetest.MobileNumber(1000)
				return tx.CreateUser(bg, dup)
			}
		default:
			jobs[i] = func(tx coffer.Tx) error { return createAndDeposit(bg, tx, i, amount) }
		}
	}
	results := batch(t, s, jobs)
	var sum int64
	for i, err := range results {
		bal, found := cardOf(t, s, i)
		switch i % 4 {
		case 1:
			if !errors.Is(err, boom) {
				t.Errorf("job %d returned %v, want its own error", i, err)
			}
		case 2:
			if !coffer.IsCode(err, coffer.ErrMobileTaken) {
				t.Errorf("job %d returned %v, want %s", i, err, coffer.ErrMobileTaken)
			}
		default:
			if err != nil {
				t.Errorf("job %d failed: %v", i, err)
			}
			if !found || bal != int64(100+i) {
				t.Errorf("job %d committed: found %v balance %d", i, found, bal)
			}
			sum += int64(100 + i)
			continue
		}
		if found {
			t.Errorf("failed job %d left its user behind", i)
		}
	}
	if got := balanceOf(t, s, cash); got != -sum {
		t.Errorf("cash account %d, want -%d", got, sum)
	}
	if got := storetest.CountRows(t, s)["users"]; got != 1+n/2 {
		t.Errorf("%d users, want %d", got, 1+n/2)
	}
	storetest.AssertLedger(t, s)
}

// TestGroupCommitForgetsARolledBackJobsBalances: a job of a batch that
// posted and then failed is rolled back to its savepoint, and the next job
// of the same batch stores an answer with the card's balance as it really
// is, not as the failed job's Post left it. (Regression: the batch's jobs
// shared one Tx, whose memo of balances outlived the rollback.)
func TestGroupCommitForgetsARolledBackJobsBalances(t *testing.T) {
	s := openTemp(t)
	u := user(1)
	if err := s.Update(bg, func(tx coffer.Tx) error { return tx.CreateUser(bg, u) }); err != nil {
		t.Fatal(err)
	}
	card := coffer.CardAccount(u.ID)
	boom := errors.New("fails after posting")
	release, held := holdWriter(t, s)
	failed, recorded := make(chan error, 1), make(chan error, 1)
	go func() {
		failed <- s.Update(bg, func(tx coffer.Tx) error {
			if _, err := tx.Post(bg, &coffer.Transaction{Kind: "deposit", CreatedAt: storetest.Start, Legs: []coffer.Leg{{From: cash, To: card, Amount: 100_00}}}); err != nil {
				return err
			}
			return boom
		})
	}()
	waitFor(t, "the failing job to be queued", func() bool { return sqlite.QueueLength(s) == 1 })
	go func() {
		recorded <- s.Update(bg, func(tx coffer.Tx) error {
			return tx.PutIdempotent(bg, coffer.IdempotentRecord{User: u.ID, Key: "k", RequestHash: []byte{1}, Status: 200, BodyBalanceOf: card, CreatedAt: storetest.Start})
		})
	}()
	waitFor(t, "the recording job to be queued", func() bool { return sqlite.QueueLength(s) == 2 })
	release()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := <-failed; !errors.Is(err, boom) {
		t.Errorf("the failing job: %v, want its own error", err)
	}
	if err := <-recorded; err != nil {
		t.Fatalf("the recording job: %v", err)
	}
	if body := storetest.StoredBody(t, s, u.ID, "k"); body != "0.00" {
		t.Errorf("stored answer %q after the deposit was rolled back, want 0.00", body)
	}
}

// readModes are a store's two ways to read, by name.
func readModes(s *sqlite.Store) map[string]func(context.Context, func(coffer.ReadTx) error) error {
	return map[string]func(context.Context, func(coffer.ReadTx) error) error{"View": s.View, "ViewEach": s.ViewEach}
}

// TestViewPanicKeepsItsReader: a View whose function panics passes the
// panic on, ends its read transaction, and leaves its connection good for
// the next View; more panics than there are readers, then reads that
// work.
func TestViewPanicKeepsItsReader(t *testing.T) {
	s := openTemp(t)
	if err := s.Update(bg, func(tx coffer.Tx) error { return createAndDeposit(bg, tx, 1, 5_00) }); err != nil {
		t.Fatal(err)
	}
	reads := readModes(s)
	for i := range 3 * runtime.GOMAXPROCS(0) * 2 {
		for name, read := range reads {
			func() {
				defer func() {
					if r := recover(); r != "a bug in a read" {
						t.Fatalf("%s %d: recovered %v, want the function's panic", name, i, r)
					}
				}()
				read(bg, func(tx coffer.ReadTx) error {
					for range 2 { // ViewEach begins its transaction at the second
						if _, err := tx.UserByMobile(bg, storetest.MobileNumber(1)); err != nil {
							return err
						}
					}
					panic("a bug in a read")
				})
			}()
		}
	}
	for range 8 {
		if got, found := cardOf(t, s, 1); !found || got != 5_00 {
			t.Fatalf("balance %d (found %v) after panicking Views, want 500", got, found)
		}
	}
}

// TestGroupCommitPanicFailsAlone: a job whose function panics after
// writing fails with an error; the rest of its group commits and the
// writer goes on.
func TestGroupCommitPanicFailsAlone(t *testing.T) {
	s := openTemp(t)
	jobs := make([]func(coffer.Tx) error, 10)
	for i := range jobs {
		jobs[i] = func(tx coffer.Tx) error {
			if err := createAndDeposit(bg, tx, i, 1_00); err != nil {
				return err
			}
			if i == 4 {
				panic("a bug in a job")
			}
			return nil
		}
	}
	results := batch(t, s, jobs)
	for i, err := range results {
		_, found := cardOf(t, s, i)
		if i == 4 {
			if err == nil || found {
				t.Errorf("panicking job: error %v, user kept %v", err, found)
			}
			continue
		}
		if err != nil || !found {
			t.Errorf("job %d beside a panic: %v, found %v", i, err, found)
		}
	}
	if err := s.Update(bg, func(tx coffer.Tx) error { return createAndDeposit(bg, tx, 99, 1_00) }); err != nil {
		t.Fatalf("writer after a panic: %v", err)
	}
	if got := balanceOf(t, s, cash); got != -10_00 {
		t.Errorf("cash account %d, want -1000", got)
	}
	storetest.AssertLedger(t, s)
}

// TestGroupCommitSurvivesCancelledJobContext: a job whose caller gives up
// while it runs must not take its group down with it (SQLite rolls back a
// whole transaction when a write statement is interrupted, and the driver
// interrupts statements whose context ends). The job keeps writing many
// rows with a context cancelled under it; the others commit, and the
// cancelled one is all or nothing.
func TestGroupCommitSurvivesCancelledJobContext(t *testing.T) {
	s := openTemp(t)
	const busy = 3
	jobs := make([]func(coffer.Tx) error, 8)
	for i := range jobs {
		jobs[i] = func(tx coffer.Tx) error { return createAndDeposit(bg, tx, i, 1_00) }
	}
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	jobs[busy] = func(tx coffer.Tx) error {
		time.AfterFunc(2*time.Millisecond, cancel)
		for k := range 400 {
			if err := createAndDeposit(ctx, tx, 1000+k, 1); err != nil {
				return err
			}
		}
		return nil
	}
	results := batch(t, s, jobs)
	for i, err := range results {
		if i == busy {
			continue
		}
		if _, found := cardOf(t, s, i); err != nil || !found {
			t.Errorf("job %d beside a cancelled one: %v, found %v", i, err, found)
		}
	}
	// The cancelled job's own outcome may go either way, but it must be
	// all or nothing and match its answer.
	users := storetest.CountRows(t, s)["users"]
	if results[busy] == nil && users != 7+400 || results[busy] != nil && users != 7 {
		t.Errorf("cancelled job answered %v and left %d users", results[busy], users)
	}
	storetest.AssertLedger(t, s)
}

// TestCloseAnswersEveryQueuedJob closes the store while jobs wait for the
// writer: each is answered and, answered with success, committed.
func TestCloseAnswersEveryQueuedJob(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coffer.db")
	s, err := sqlite.Open(bg, path)
	if err != nil {
		t.Fatal(err)
	}
	release, held := holdWriter(t, s)
	const n = 40
	results := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i] = s.Update(bg, func(tx coffer.Tx) error { return createAndDeposit(bg, tx, i, 1_00) })
		})
	}
	waitFor(t, "every job to be queued", func() bool { return sqlite.QueueLength(s) == n })
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	waitFor(t, "Close to begin", func() bool { return sqlite.Closing(s) })
	release()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	await(t, "the queued jobs", done)
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return")
	}
	if err := <-held; err != nil {
		t.Errorf("held job: %v", err)
	}
	for i, err := range results {
		if err != nil {
			t.Errorf("queued job %d: %v", i, err)
		}
	}
	// Calls after Close fail at once instead of waiting forever.
	for i := range 200 {
		done := make(chan error, 1)
		go func() { done <- s.Update(bg, func(coffer.Tx) error { return nil }) }()
		select {
		case err := <-done:
			if !coffer.IsCode(err, coffer.ErrUnavailable) {
				t.Fatalf("Update %d after Close: %v, want %s", i, err, coffer.ErrUnavailable)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Update %d after Close never returned", i)
		}
	}
	if err := s.View(bg, func(coffer.ReadTx) error { return nil }); err == nil {
		t.Error("View after Close succeeded")
	}
	r := openPath(t, path)
	for i := range n {
		if bal, found := cardOf(t, r, i); !found || bal != 1_00 {
			t.Errorf("job %d after reopening: found %v balance %d", i, found, bal)
		}
	}
	storetest.AssertLedger(t, r)
}

// TestCloseDuringUpdates closes the store while goroutines keep writing:
// every Update returns, and every one answered with success is on disk.
func TestCloseDuringUpdates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coffer.db")
	s, err := sqlite.Open(bg, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(bg, func(tx coffer.Tx) error { return createAndDeposit(bg, tx, 1, 1) }); err != nil {
		t.Fatal(err)
	}
	const workers = 16
	acked := make([]int64, workers)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for range 100_000 {
				err := s.Update(bg, func(tx coffer.Tx) error {
					_, err := tx.Post(bg, &coffer.Transaction{Kind: "deposit", CreatedAt: storetest.Start, Legs: []coffer.Leg{
						{From: cash, To: coffer.AccountKey{User: coffer.UserID(1), Kind: coffer.KindCard, Asset: coffer.AssetCNY}, Amount: 1}}})
					return err
				})
				if err != nil {
					if !coffer.IsCode(err, coffer.ErrUnavailable) {
						t.Errorf("worker %d: %v", g, err)
					}
					return
				}
				acked[g]++
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	await(t, "the writers racing Close", done)
	var total int64 = 1
	t.Logf("acknowledged per worker: %v", acked)
	for _, n := range acked {
		total += n
	}
	r := openPath(t, path)
	if bal, _ := cardOf(t, r, 1); bal != total {
		t.Errorf("balance on disk %d, acknowledged %d", bal, total)
	}
	storetest.AssertLedger(t, r)
}

// TestReopenMigratesHarmlessly opens one file again and again: migrations
// are applied once, data stays.
func TestReopenMigratesHarmlessly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coffer.db")
	migrations := func() string {
		db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n, max int
		if err := db.QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &max); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d migrations up to %d", n, max)
	}
	s, err := sqlite.Open(bg, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(bg, func(tx coffer.Tx) error { return createAndDeposit(bg, tx, 7, 12_34) }); err != nil {
		t.Fatal(err)
	}
	counts := storetest.CountRows(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	first := migrations()
	for i := range 3 {
		s, err := sqlite.Open(bg, path)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		if got := storetest.CountRows(t, s); fmt.Sprint(got) != fmt.Sprint(counts) {
			t.Errorf("reopen %d: rows %v, want %v", i, got, counts)
		}
		if bal, found := cardOf(t, s, 7); !found || bal != 12_34 {
			t.Errorf("reopen %d: user 7 found %v balance %d", i, found, bal)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if got := migrations(); got != first {
			t.Errorf("reopen %d: %s, first open %s", i, got, first)
		}
	}
	if !strings.HasPrefix(first, "1 ") && !strings.Contains(first, "migrations up to") {
		t.Errorf("schema_migrations: %s", first)
	}
}

// TestUsersAccountsNeedNoSort: a user's accounts in id order, as
// Holdings and SessionHoldings read them, come from an index in that
// order: SQLite's plan has no temporary B-tree for the ORDER BY.
func TestUsersAccountsNeedNoSort(t *testing.T) {
	s := openTemp(t)
	db, err := sql.Open("sqlite3", "file:"+s.Path()+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`SELECT kind, balance FROM accounts WHERE user_id = 1 ORDER BY id`,
		`SELECT s.user_id, a.kind, a.balance FROM sessions s JOIN users u ON u.id = s.user_id
			LEFT JOIN accounts a ON a.user_id = s.user_id WHERE s.token_hash = X'00' ORDER BY a.id`,
	} {
		rows, err := db.Query(`EXPLAIN QUERY PLAN ` + q)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%s\nsorts: %s", q, p)
		}
	}
}

// TestMigratesVersionOneDatabase opens a file of schema version 1, as an
// older build made it (with the index of entries by account, and no limit
// in a day's spend): the index is dropped, the store then posts and
// checks its ledger, and a day's spend from before is held to the limit.
func TestMigratesVersionOneDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coffer.db")
	old, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL)`,
		sqlstore.SchemaFor("INTEGER PRIMARY KEY", "BLOB"),
		`INSERT INTO schema_migrations VALUES (1, 0)`,
		`INSERT INTO spend_days (user_id, day, spent) VALUES (1, '2026-11-23', 15000)`,
	} {
		if _, err := old.Exec(q); err != nil {
			t.Fatalf("%.40s: %v", q, err)
		}
	}
	indexes := func(db *sql.DB) string {
		var names []string
		rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries' ORDER BY name`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
		}
		return strings.Join(names, " ")
	}
	if got := indexes(old); got != "entries_account entries_owner entries_tx" {
		t.Fatalf("version 1 indexes: %s", got)
	}
	old.Close()

	s := openPath(t, path)
	if err := s.Update(bg, func(tx coffer.Tx) error { return createAndDeposit(bg, tx, 7, 12_34) }); err != nil {
		t.Fatal(err)
	}
	if bal, found := cardOf(t, s, 7); !found || bal != 12_34 {
		t.Errorf("user 7 found %v balance %d", found, bal)
	}
	storetest.AssertLedger(t, s)
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := indexes(db); got != "entries_owner entries_tx" {
		t.Errorf("indexes after migrating: %s", got)
	}
	// The day's spend from before: the limit, now kept in the row, is
	// checked there.
	storetest.AssertMigratedSpendHeldToLimit(t, s)
}

// TestOpenSameFreshFileTwiceAtOnce migrates one new file from two stores
// at the same moment: one migrates, the other finds it done.
func TestOpenSameFreshFileTwiceAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coffer.db")
	stores := make([]*sqlite.Store, 4)
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = sqlite.Open(bg, path) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	for i, s := range stores {
		if err := s.Update(bg, func(tx coffer.Tx) error { return createAndDeposit(bg, tx, i, 1_00) }); err != nil {
			t.Errorf("store %d: %v", i, err)
		}
	}
	if got := storetest.CountRows(t, stores[0])["users"]; got != int64(len(stores)) {
		t.Errorf("%d users, want %d", got, len(stores))
	}
}

// TestTwoStoresOnOneFile runs two stores on one file, as an operator
// command beside a running server: both write at once, waiting on the
// file's lock, and each sees the other's writes.
func TestTwoStoresOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coffer.db")
	server, operator := openPath(t, path), openPath(t, path)
	serverBank, _ := storetest.NewBank(t, server)
	operatorBank, _ := storetest.NewBank(t, operator)
	users := make([]coffer.User, 4)
	for i := range users {
		r := storetest.Registration(i + 1)
		if err := serverBank.Register(bg, r); err != nil {
			t.Fatal(err)
		}
		if err := operator.View(bg, func(tx coffer.ReadTx) error {
			var err error
			users[i], err = tx.UserByMobile(bg, r.Mobile)
			return err
		}); err != nil {
			t.Fatalf("the operator's store does not see the server's user: %v", err)
		}
	}
	const workers, perWorker = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers*perWorker)
	for g := range workers {
		wg.Go(func() { // the operator deposits
			for range perWorker {
				if _, err := operatorBank.Deposit(bg, users[g%len(users)].Mobile, 10_00); err != nil {
					errs <- fmt.Errorf("deposit: %w", err)
				}
			}
		})
		wg.Go(func() { // the server's customers pay
			payer, payee := users[g%len(users)], users[(g+1)%len(users)]
			for range perWorker {
				_, err := serverBank.Pay(bg, payer.ID, coffer.PayRequest{Mode: coffer.ModeTransfer, Money: 1_00, Payee: payee.Mobile,
					Password: storetest.TestPayPassword, PasswordSent: true})
				if err != nil && !coffer.IsCode(err, coffer.ErrInsufficientFunds) {
					errs <- fmt.Errorf("transfer: %w", err)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	await(t, "two stores writing at once", done)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var sum int64
	for _, u := range users {
		a, b := balanceOf(t, server, coffer.CardAccount(u.ID)), balanceOf(t, operator, coffer.CardAccount(u.ID))
		if a != b {
			t.Errorf("user %s: server sees %d, operator %d", u.Username, a, b)
		}
		sum += a
	}
	if want := int64(workers * perWorker * 10_00); sum != want {
		t.Errorf("cards sum to %d, deposits to %d", sum, want)
	}
	storetest.AssertLedger(t, server)
	storetest.AssertLedger(t, operator)
}

// TestCheckLedgerDetectsCorruption breaks the file behind the store's back
// in each way the check looks for, and expects it reported.
func TestCheckLedgerDetectsCorruption(t *testing.T) {
	for _, c := range []struct {
		name, sql, want string
	}{
		{"balance off its entries", `UPDATE accounts SET balance = balance + 1 WHERE kind = 'card'`, "differs from its entries"},
		{"asset not summing to zero", `UPDATE accounts SET balance = balance + 1 WHERE kind = 'card'`, "sums to"},
		{"negative user account", `UPDATE accounts SET balance = -5 WHERE kind = 'card'`, "is negative"},
		{"unbalanced transaction", `UPDATE entries SET amount = amount + 1 WHERE id = (SELECT MIN(id) FROM entries)`, "does not balance"},
		{"last balance_after wrong", `UPDATE entries SET balance_after = balance_after + 1 WHERE id = (SELECT MAX(id) FROM entries)`, "balance_after"},
		{"entry naming no account", `UPDATE entries SET account_id = 999999 WHERE id = (SELECT MIN(id) FROM entries)`, "names account 999999, which is not there"},
		{"entry naming no transaction", `UPDATE entries SET tx_id = 999999 WHERE id = (SELECT MIN(id) FROM entries)`, "names transaction 999999, which is not there"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "coffer.db")
			s := openPath(t, path)
			if err := s.Update(bg, func(tx coffer.Tx) error { return createAndDeposit(bg, tx, 1, 5_00) }); err != nil {
				t.Fatal(err)
			}
			storetest.AssertLedger(t, s)
			db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`PRAGMA ignore_check_constraints = ON`); err != nil {
				t.Fatal(err)
			}
			db.SetMaxOpenConns(1)
			if _, err := db.Exec(c.sql); err != nil {
				t.Fatal(err)
			}
			var r coffer.LedgerReport
			if err := s.View(bg, func(tx coffer.ReadTx) error {
				var err error
				r, err = tx.CheckLedger(bg)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if r.OK() || !strings.Contains(strings.Join(r.Problems, "\n"), c.want) {
				t.Errorf("check after %q: %v, want a problem mentioning %q", c.sql, r.Problems, c.want)
			}
		})
	}
}

// TestReaderLeftInATransactionIsRolledBack: a reader left inside a read
// transaction (by a ROLLBACK that failed) would serve its old snapshot,
// silently, to a read of one statement, which ViewEach runs without
// BEGIN: a logged-out session would still pass. Every read first ends
// such a transaction.
func TestReaderLeftInATransactionIsRolledBack(t *testing.T) {
	s := openTemp(t)
	if err := s.Update(bg, func(tx coffer.Tx) error { return createAndDeposit(bg, tx, 1, 5_00) }); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.LeaveReadersInTransactions(s); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(bg, func(tx coffer.Tx) error { return createAndDeposit(bg, tx, 2, 5_00) }); err != nil {
		t.Fatal(err)
	}
	reads := readModes(s)
	for range 3 * runtime.GOMAXPROCS(0) * 2 {
		for name, read := range reads {
			var n int
			err := read(bg, func(tx coffer.ReadTx) (err error) {
				n, err = tx.CountUsers(bg)
				return err
			})
			if err != nil || n != 2 {
				t.Fatalf("%s: %d users, %v; want 2", name, n, err)
			}
		}
	}
}

// TestSessionHoldingsOfAUserWithoutAccounts: the one row the LEFT JOIN
// gives a user with no account carries the session and the profile, and
// no holding. The store gives every user a card, so it is deleted here by
// hand.
func TestSessionHoldingsOfAUserWithoutAccounts(t *testing.T) {
	s := openTemp(t)
	u := user(1)
	hash := coffer.HashToken("token")
	if err := s.Update(bg, func(tx coffer.Tx) error {
		if err := tx.CreateUser(bg, u); err != nil {
			return err
		}
		return tx.CreateSession(bg, coffer.Session{TokenHash: hash, User: u.ID, CreatedAt: storetest.Start, LastSeenAt: storetest.Start})
	}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if res, err := db.Exec(`DELETE FROM accounts WHERE user_id = ?`, u.ID); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("deleted %d accounts, want the card alone", n)
	}
	err = s.ViewEach(bg, func(tx coffer.ReadTx) error {
		session, profile, holdings, err := tx.SessionHoldings(bg, hash)
		if err != nil {
			return err
		}
		if session.User != u.ID || profile.ID != u.ID || profile.Mobile != u.Mobile || len(holdings) != 0 {
			t.Errorf("session %+v, profile %+v, holdings %+v", session, profile, holdings)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
