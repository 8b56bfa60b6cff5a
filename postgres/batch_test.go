package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"coffer"
	"coffer/internal/pgtest"
	"coffer/postgres"
	"coffer/storetest"

	"github.com/jackc/pgx/v5"
)

// TestBatchItemsSucceedOrFailAlone posts, in one batch, payments that
// succeed and payments that fail at their first statement, at a later
// one, or after all of theirs; each must come out as it would alone:
// those that failed wrote nothing, those after them all they wrote.
func TestBatchItemsSucceedOrFailAlone(t *testing.T) {
	s, a, b := withTwoUsers(t)
	storetest.Deposit(t, s, a.ID, 100_00)
	storetest.Deposit(t, s, b.ID, 50_00)
	cash := coffer.SystemAccount(coffer.KindCash, coffer.AssetCNY)
	cardA, cardB := coffer.CardAccount(a.ID), coffer.CardAccount(b.ID)
	pay := func(from, to coffer.AccountKey, amount int64, key string) func(*postgres.TxConn) error {
		return func(t *postgres.TxConn) error {
			tx := s.Tx(t)
			if _, err := tx.PostLater(ctx, oneLeg(from, to, amount)); err != nil {
				return err
			}
			if key == "" {
				return nil
			}
			return tx.PutIdempotent(ctx, coffer.IdempotentRecord{User: from.User, Key: key, RequestHash: []byte(key), Status: 200, BodyBalanceOf: from, CreatedAt: storetest.Start})
		}
	}
	before := storetest.CountRows(t, s)
	errs := s.InOneBatch(ctx,
		pay(cardA, cardB, 10_00, "k1"),    // a 90, b 60
		pay(cardB, cardA, 1_000_00, "k2"), // overdraft: its second statement fails
		pay(cardA, cardB, 5_00, "k3"),     // a 85, b 65: after a failed one
		pay(cardB, cardA, 1_00, "k1"),     // b's key k1 is new: b 64, a 86
		pay(cardA, cardB, 2_00, "k1"),     // a's k1 is taken: fails after its posting
		pay(cash, cardA, 3_00, ""),        // a 89
		pay(cardA, cardB, 89_01, ""),      // one fen short
		pay(cardA, cardB, 89_00, "last"),  // a 0, b 153
	)
	wantCodes := []coffer.Code{"", coffer.ErrInsufficientFunds, "", "", coffer.ErrIdempotencyReuse, "", coffer.ErrInsufficientFunds, ""}
	for i, err := range errs {
		if wantCodes[i] == "" && err != nil || wantCodes[i] != "" && !coffer.IsCode(err, wantCodes[i]) {
			t.Errorf("payment %d: %v, want %q", i, err, wantCodes[i])
		}
	}
	if got, want := [2]int64{balance(t, s, cardA), balance(t, s, cardB)}, [2]int64{0, 153_00}; got != want {
		t.Errorf("cards %v, want %v", got, want)
	}
	after := storetest.CountRows(t, s)
	if got := after["transactions"] - before["transactions"]; got != 5 {
		t.Errorf("%d transactions more, want the 5 that succeeded", got)
	}
	if got := after["idempotency"] - before["idempotency"]; got != 4 {
		t.Errorf("%d answers stored, want 4 (k1 twice, k3, last)", got)
	}
	if body := storetest.StoredBody(t, s, a.ID, "last"); body != "0.00" {
		t.Errorf("answer stored under the last key %q, want 0.00", body)
	}
	// Sent whole first, the batch failed at the overdraft, undoing the
	// first payment, and ran again in sections: the first payment's
	// balances above were posted once.
	if st := s.Stats(); st.SplitBatches != 1 {
		t.Errorf("stats %+v: want the batch run again in sections once", st)
	}
	storetest.AssertLedger(t, s)
}

// TestBatchItemFailingBeforeItsAnswer: an item whose statement cannot be
// prepared or whose argument cannot be encoded fails before the pipeline,
// alone; one whose row does not come fails, its earlier statement undone;
// the others are posted.
func TestBatchItemFailingBeforeItsAnswer(t *testing.T) {
	s, a, b := withTwoUsers(t)
	storetest.Deposit(t, s, a.ID, 10_00)
	setFailures := "UPDATE users SET pay_failures = $1 WHERE id = $2"
	errs, committing := s.InOneBatchCommitting(ctx,
		func(t *postgres.TxConn) error {
			t.ExecLater(nil, setFailures, 1, a.ID)
			t.ExecLater(nil, "UPDATE users SET pay_failures = $1 WHERE", 2) // not SQL
			return nil
		},
		func(t *postgres.TxConn) error {
			t.ExecLater(nil, setFailures, make(chan int), a.ID) // pgx cannot encode a channel
			return nil
		},
		func(t *postgres.TxConn) error {
			t.ExecLater(nil, setFailures, 3, a.ID)
			t.ExecLater(nil, "SELECT 1 / (pay_failures - 3) FROM users WHERE id = $1", a.ID) // fails after the first
			return nil
		},
		func(t *postgres.TxConn) error {
			// Breaks Deferrer.QueryRowLater's rule: reported, but it
			// commits with the batch, as it would with its own COMMIT.
			var one int
			t.QueryRowLater(nil, []any{&one}, nil, "SELECT 1 WHERE false")
			return nil
		},
		cardToCard(s, a, b, 1_00),
	)
	for i, err := range errs[:3] {
		if err == nil {
			t.Errorf("item %d posted", i)
		}
	}
	if !errors.Is(errs[3], sql.ErrNoRows) || !committing[3] {
		t.Errorf("the missing row: %v (outcome unknown: %v), want sql.ErrNoRows, outcome unknown", errs[3], committing[3])
	}
	for i, c := range committing {
		if c && i != 3 {
			t.Errorf("item %d: outcome unknown (%v), want known", i, errs[i])
		}
	}
	if errs[4] != nil {
		t.Errorf("the payment: %v", errs[4])
	}
	if failures := payFailures(t, s, a.ID); failures != 0 {
		t.Errorf("pay_failures %d: a failed item's statement stayed", failures)
	}
	if got := balance(t, s, coffer.CardAccount(b.ID)); got != 1_00 {
		t.Errorf("payee's card %d, want 100", got)
	}
	storetest.AssertLedger(t, s)
}

// TestPaymentsAreBatched: payers at once share batches, and every payment
// is posted once.
func TestPaymentsAreBatched(t *testing.T) {
	s := pgtest.OpenOptions(t, postgres.Options{})
	const payers, paymentsEach = 16, 10
	users := make([]*coffer.User, payers)
	for i := range users {
		users[i] = newUser(i + 1)
		createUser(t, s, users[i])
		storetest.Deposit(t, s, users[i].ID, 1_000_00)
	}
	var wg sync.WaitGroup
	errs := make(chan error, payers*paymentsEach)
	for i := range payers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from, to := coffer.CardAccount(users[i].ID), coffer.CardAccount(users[(i+1)%payers].ID)
			for j := range paymentsEach {
				errs <- s.Update(ctx, func(tx coffer.Tx) error {
					if _, err := tx.PostLater(ctx, oneLeg(from, to, int64(j+1))); err != nil {
						return err
					}
					return tx.PutIdempotent(ctx, coffer.IdempotentRecord{User: users[i].ID, Key: fmt.Sprint(j), RequestHash: []byte{1}, Status: 200, BodyBalanceOf: from, CreatedAt: storetest.Start})
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("payment: %v", err)
		}
	}
	if got := storetest.CountRows(t, s)["idempotency"]; got != payers*paymentsEach {
		t.Errorf("%d answers stored, want %d", got, payers*paymentsEach)
	}
	for _, u := range users { // each paid 1+...+10 fen and was paid as much
		if got := balance(t, s, coffer.CardAccount(u.ID)); got != 1_000_00 {
			t.Errorf("user %d: card %d, want 100000", u.ID, got)
		}
	}
	st := s.Stats()
	if st.Batched != payers*paymentsEach {
		t.Errorf("%d payments went in batches, want all %d", st.Batched, payers*paymentsEach)
	}
	if st.Batches >= st.Batched {
		t.Errorf("%d batches for %d payments: none shared a batch", st.Batches, st.Batched)
	}
	if st.SplitBatches != 0 {
		t.Errorf("%d batches of payments that all succeed ran again in sections", st.SplitBatches)
	}
	t.Logf("stats %+v", st)
	storetest.AssertLedger(t, s)
}

// TestBatchesOfTwoServersDoNotDeadlock: two servers on one database post
// transfers among a few users, in batches that each lock many of the same
// rows. Each batch takes its rows first, in one order, so that no batch
// waits on another in a cycle: no deadlock (which PostgreSQL would break
// only after deadlock_timeout, a second by default), no retry.
func TestBatchesOfTwoServersDoNotDeadlock(t *testing.T) {
	dsn := pgtest.DSN(t)
	servers := []*postgres.Store{open(t, dsn, postgres.Options{}), open(t, dsn, postgres.Options{})}
	const users, payersEach, paymentsEach = 12, 16, 25
	us := make([]*coffer.User, users)
	for i := range us {
		us[i] = newUser(i + 1)
		createUser(t, servers[0], us[i])
		storetest.Deposit(t, servers[0], us[i].ID, 1_000_00)
	}
	var wg sync.WaitGroup
	for si, s := range servers {
		for p := range payersEach {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(si), uint64(p)))
				for range paymentsEach {
					a := rng.IntN(users)
					b := (a + 1 + rng.IntN(users-1)) % users
					from, to := coffer.CardAccount(us[a].ID), coffer.CardAccount(us[b].ID)
					err := s.Update(ctx, func(tx coffer.Tx) error {
						if err := tx.LockPayable(ctx, us[a].ID, storetest.Start); err != nil {
							return err
						}
						_, err := tx.PostLater(ctx, oneLeg(from, to, 1))
						return err
					})
					if err != nil {
						t.Errorf("transfer: %v", err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	for i, s := range servers {
		st := s.Stats()
		t.Logf("server %d: %+v", i, st)
		if st.ConflictRetries != 0 || st.GaveUp != 0 {
			t.Errorf("server %d ran payments again after conflicts: %+v", i, st)
		}
		if st.Batches >= st.Batched {
			t.Errorf("server %d: %d batches for %d payments: none shared a batch", i, st.Batches, st.Batched)
		}
	}
	if n := storetest.CountRows(t, servers[0])["transactions"]; n != users+2*payersEach*paymentsEach {
		t.Errorf("%d transactions, want %d", n, users+2*payersEach*paymentsEach)
	}
	storetest.AssertLedger(t, servers[0])
}

// TestBatchWaitsForARowNoLongerThanItsLockTimeout: a batch whose rows
// another transaction holds gives up after its lock_timeout, rather than
// holding up every payment of the server behind it; its payments fail as
// conflicts (run again by Update), with nothing written.
func TestBatchWaitsForARowNoLongerThanItsLockTimeout(t *testing.T) {
	s, a, b := withTwoUsers(t)
	storetest.Deposit(t, s, a.ID, 10_00)
	holding(t, s, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, a.ID)
	pay := func(t *postgres.TxConn) error {
		tx := s.Tx(t)
		if err := tx.LockPayable(ctx, a.ID, storetest.Start); err != nil {
			return err
		}
		_, err := tx.PostLater(ctx, oneLeg(coffer.CardAccount(a.ID), coffer.CardAccount(b.ID), 1_00))
		return err
	}
	before := storetest.CountRows(t, s)
	start := time.Now()
	errs := s.InOneBatch(ctx, pay, pay)
	waited := time.Since(start)
	for i, err := range errs {
		if !postgres.Conflict(err) {
			t.Errorf("payment %d: %v, want a conflict (lock_timeout)", i, err)
		}
	}
	if waited > 10*time.Second {
		t.Errorf("the batch waited %v for the row", waited)
	}
	if got := storetest.CountRows(t, s); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("rows %v after the batch, want %v", got, before)
	}
}

// TestBatchItemTimingOutOnARowWaitsOnce: an item of a batch sent whole
// times out on a row that another transaction holds (one that the batch
// did not take first). The batch rolls back and runs again in sections,
// without that item: it reports the conflict, for Update to run it alone,
// instead of making the sections wait for the same row again.
func TestBatchItemTimingOutOnARowWaitsOnce(t *testing.T) {
	s, a, b := withTwoUsers(t)
	c := newUser(3)
	createUser(t, s, c)
	storetest.Deposit(t, s, a.ID, 10_00)
	holding(t, s, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, c.ID)
	runs := runCounter(t, s)
	pay := cardToCard(s, a, b, 1_00)
	touchHeld := func(t *postgres.TxConn) error {
		runs.count(t)
		t.ExecLater(nil, "UPDATE users SET pay_failures = pay_failures + 1 WHERE id = $1", c.ID)
		return nil
	}
	errs := s.InOneBatch(ctx, pay, touchHeld, pay)
	if !postgres.Conflict(errs[1]) {
		t.Errorf("the item on the held row: %v, want a conflict (lock_timeout)", errs[1])
	}
	for _, i := range []int{0, 2} {
		if errs[i] != nil {
			t.Errorf("payment %d: %v", i, errs[i])
		}
	}
	if n := runs.n(t); n != 1 {
		t.Errorf("the item on the held row ran %d times, waiting each time: want once", n)
	}
	if got := balance(t, s, coffer.CardAccount(b.ID)); got != 2_00 {
		t.Errorf("payee's card %d, want 200", got)
	}
	if st := s.Stats(); st.SplitBatches != 1 {
		t.Errorf("stats %+v: want the batch run again in sections once", st)
	}
	storetest.AssertLedger(t, s)
}

// TestBatchFirstItemFailingRunsOnce: when the first item of a batch sent
// whole fails, no other item's statement ran before it: its failure
// stands, and only the others run again, in sections.
func TestBatchFirstItemFailingRunsOnce(t *testing.T) {
	s, a, b := withTwoUsers(t)
	storetest.Deposit(t, s, a.ID, 10_00)
	runs := runCounter(t, s)
	fail := func(t *postgres.TxConn) error {
		runs.count(t)
		return divideByZero(t)
	}
	pay := cardToCard(s, a, b, 1_00)
	errs := s.InOneBatch(ctx, fail, pay, pay)
	if errs[0] == nil {
		t.Error("the division by zero posted")
	}
	for _, i := range []int{1, 2} {
		if errs[i] != nil {
			t.Errorf("payment %d: %v", i, errs[i])
		}
	}
	if n := runs.n(t); n != 1 {
		t.Errorf("the failing item ran %d times, want once", n)
	}
	if got := balance(t, s, coffer.CardAccount(b.ID)); got != 2_00 {
		t.Errorf("payee's card %d, want 200", got)
	}
	if st := s.Stats(); st.SplitBatches != 1 {
		t.Errorf("stats %+v: want the two payments run again in sections", st)
	}
	if errs := s.InOneBatch(ctx, fail); errs[0] == nil {
		t.Error("the division by zero alone posted")
	}
	if n := runs.n(t); n != 2 {
		t.Errorf("the failing item alone: %d runs in all, want 2", n)
	}
	if st := s.Stats(); st.SplitBatches != 1 {
		t.Errorf("stats %+v: a batch of one failing item has nothing to run again", st)
	}
	storetest.AssertLedger(t, s)
}

// cardToCard is a batch's item that pays amount fen from a's card to b's.
func cardToCard(s *postgres.Store, a, b *coffer.User, amount int64) func(*postgres.TxConn) error {
	return func(t *postgres.TxConn) error {
		_, err := s.Tx(t).PostLater(ctx, oneLeg(coffer.CardAccount(a.ID), coffer.CardAccount(b.ID), amount))
		return err
	}
}

// runs counts the runs of a batch's item in a sequence, which no
// rollback undoes.
type runs struct{ s *postgres.Store }

func runCounter(t *testing.T, s *postgres.Store) runs {
	t.Helper()
	if _, err := s.DB().Exec("CREATE SEQUENCE item_runs"); err != nil {
		t.Fatal(err)
	}
	return runs{s}
}

// count makes the item run on t count once each time it runs.
func (r runs) count(t *postgres.TxConn) { t.ExecLater(nil, "SELECT nextval('item_runs')") }

// n is how many times the item ran.
func (r runs) n(t *testing.T) int64 {
	t.Helper()
	var n int64
	var called bool
	if err := r.s.DB().QueryRow("SELECT last_value, is_called FROM item_runs").Scan(&n, &called); err != nil {
		t.Fatal(err)
	}
	if !called {
		return 0
	}
	return n
}

// TestUpdateAfterCloseEnds: an Update that would join a batch, called
// after Close, fails at once instead of waiting for a batch that will
// never run.
func TestUpdateAfterCloseEnds(t *testing.T) {
	s, a, b := withTwoUsers(t)
	storetest.Deposit(t, s, a.ID, 10_00)
	s.Close()
	for range 20 {
		done := make(chan error, 1)
		go func() {
			done <- s.Update(ctx, func(tx coffer.Tx) error {
				_, err := tx.PostLater(ctx, oneLeg(coffer.CardAccount(a.ID), coffer.CardAccount(b.ID), 1_00))
				return err
			})
		}()
		select {
		case err := <-done:
			if !coffer.IsCode(err, coffer.ErrUnavailable) {
				t.Fatalf("update after close: %v, want %s", err, coffer.ErrUnavailable)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("update after close still waiting after 5 s")
		}
	}
}

// TestBatchTakesAccountsInTheOrderOfATransactionOfItsOwn: a transaction
// of its own holds the lower of two cards and then asks for the higher,
// as a payment of its own takes them (AccountKey.Less), while a batch of
// payments between the two waits. The batch must wait for the lower card
// without holding the higher: no deadlock, which PostgreSQL would break
// only after deadlock_timeout by failing one of the two.
func TestBatchTakesAccountsInTheOrderOfATransactionOfItsOwn(t *testing.T) {
	s, a, b := withTwoUsers(t) // a's card is the lower key: its user id is lower
	storetest.Deposit(t, s, a.ID, 10_00)
	storetest.Deposit(t, s, b.ID, 10_00)
	const lockCard = `SELECT 1 FROM accounts WHERE user_id = $1 AND kind = 'card' FOR UPDATE`
	other := holding(t, s, lockCard, a.ID)
	pay := func(from, to *coffer.User) func(*postgres.TxConn) error {
		return func(t *postgres.TxConn) error {
			_, err := s.Tx(t).PostLater(ctx, oneLeg(coffer.CardAccount(from.ID), coffer.CardAccount(to.ID), 1_00))
			return err
		}
	}
	batch := make(chan []error, 1)
	go func() { batch <- s.InOneBatch(ctx, pay(a, b), pay(b, a)) }()
	time.Sleep(200 * time.Millisecond) // the batch reaches the lower card and waits
	if _, err := other.Exec(lockCard, b.ID); err != nil {
		t.Errorf("the transaction of its own, taking the higher card: %v", err)
	}
	if err := other.Commit(); err != nil {
		t.Fatal(err)
	}
	for i, err := range <-batch {
		if err != nil {
			t.Errorf("batched payment %d: %v", i, err)
		}
	}
	if got := [2]int64{balance(t, s, coffer.CardAccount(a.ID)), balance(t, s, coffer.CardAccount(b.ID))}; got != [2]int64{10_00, 10_00} {
		t.Errorf("cards %v after a payment each way, want 1000 each", got)
	}
}

// TestARowHeldElsewhereHoldsUpOnlyItsPayments: while another transaction
// holds a payer's row, a batch with that payer's payment times out on it
// once; the payment then waits alone (in a transaction of its own), and
// the payments of other users go on in batches meanwhile, instead of
// timing out with it batch after batch.
func TestARowHeldElsewhereHoldsUpOnlyItsPayments(t *testing.T) {
	s := pgtest.OpenOptions(t, postgres.Options{})
	users := make([]*coffer.User, 6)
	for i := range users {
		users[i] = newUser(i + 1)
		createUser(t, s, users[i])
		storetest.Deposit(t, s, users[i].ID, 1_000_00)
	}
	held := users[0]
	pay := func(from, to *coffer.User) error {
		return s.Update(ctx, func(tx coffer.Tx) error {
			if err := tx.LockPayable(ctx, from.ID, storetest.Start); err != nil {
				return err
			}
			_, err := tx.PostLater(ctx, oneLeg(coffer.CardAccount(from.ID), coffer.CardAccount(to.ID), 1))
			return err
		})
	}
	other := holding(t, s, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, held.ID)
	heldPaid := make(chan error, 1)
	go func() { heldPaid <- pay(held, users[1]) }()
	const payers, paymentsEach = 4, 15
	var wg sync.WaitGroup
	var others atomic.Int64
	for p := range payers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range paymentsEach {
				if err := pay(users[2+p], users[2+(p+1)%payers]); err != nil {
					t.Errorf("payment between other users: %v", err)
					return
				}
				others.Add(1)
			}
		}()
	}
	time.Sleep(3 * time.Second) // the row stays held
	done := others.Load()
	if err := other.Commit(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := <-heldPaid; err != nil {
		t.Errorf("the held payer's payment, once the row was free: %v", err)
	}
	if done != payers*paymentsEach {
		t.Errorf("%d of %d payments between other users done in the 3 s the row was held", done, payers*paymentsEach)
	}
	t.Logf("stats %+v", s.Stats())
	storetest.AssertLedger(t, s)
}

// TestRequestsAfterANetworkCut: every connection of the pool is cut while
// idle, without a word from PostgreSQL (a network failure, a load
// balancer), just after payments used them. Neither a payment nor a read
// that comes first after the cut may be sent on a dead connection, whose
// answer would be "unexpected EOF" once written: for a payment, an outcome
// unknown, a 503 for a payment that did not run. Each runs once, on a live
// connection.
func TestRequestsAfterANetworkCut(t *testing.T) {
	for _, first := range []string{"payment", "read"} {
		t.Run(first+" first", func(t *testing.T) {
			_, dsn, network := pgtest.DSNThroughProxy(t)
			s := open(t, dsn, postgres.Options{})
			payer, payee := newUser(1), newUser(2)
			createUser(t, s, payer)
			createUser(t, s, payee)
			storetest.Deposit(t, s, payer.ID, 1_000_00)
			from, to := coffer.CardAccount(payer.ID), coffer.CardAccount(payee.ID)
			pay := func() error {
				return s.Update(ctx, func(tx coffer.Tx) error {
					_, err := tx.PostLater(ctx, oneLeg(from, to, 1_00))
					return err
				})
			}
			read := func() error {
				return s.View(ctx, func(tx coffer.ReadTx) error {
					_, err := tx.Balance(ctx, from)
					return err
				})
			}
			// Several connections in the pool, the payments' the most
			// recent; each handed out twice within the last second, so
			// that the pool does not ping them.
			useConns(t, s, 4)
			useConns(t, s, 4)
			for range 2 {
				if err := pay(); err != nil {
					t.Fatalf("payment before the cut: %v", err)
				}
			}
			if idle := s.DB().Stats().Idle; idle < 2 {
				t.Fatalf("%d connections idle in the pool: the test proves nothing", idle)
			}

			cut(t, network)
			retriesBefore, unfitBefore := s.Stats().ConnRetries, s.Stats().UnfitConns
			steps := []func() error{pay, read}
			if first == "read" {
				steps = []func() error{read, pay}
			}
			for _, step := range steps {
				if err := step(); err != nil {
					t.Errorf("after the cut: %v", err)
				}
			}
			if s.Stats().UnfitConns == unfitBefore {
				t.Error("no connection dropped as taken: the pool found them dead first")
			}
			if n := s.Stats().ConnRetries - retriesBefore; n != 0 {
				t.Errorf("the payment after the cut ran %d more times: it met a dead connection", n)
			}
			if got := balance(t, s, to); got != 3*1_00 {
				t.Errorf("payee's card %d, want %d", got, 3*1_00)
			}
			storetest.AssertLedger(t, s)
		})
	}
}

// TestWaitersAfterANetworkCut: after a cut of a full pool, with four
// callers a connection, each caller, the first ones and those that wait
// for a connection, gets a live one: every read succeeds.
func TestWaitersAfterANetworkCut(t *testing.T) {
	_, dsn, network := pgtest.DSNThroughProxy(t)
	const conns = 16
	s := open(t, dsn, postgres.Options{MaxConns: conns})
	useConns(t, s, conns)
	useConns(t, s, conns)
	if idle := s.DB().Stats().Idle; idle != conns {
		t.Fatalf("%d connections idle in the pool, want %d", idle, conns)
	}
	cut(t, network)
	const callers = 4 * conns
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range callers {
		wg.Go(func() {
			if err := s.View(ctx, func(tx coffer.ReadTx) error {
				_, err := tx.Balance(ctx, coffer.CardAccount(1))
				time.Sleep(5 * time.Millisecond) // holding its connection while others wait
				return err
			}); err != nil {
				failed.Add(1)
				t.Log(err)
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d reads of %d failed after the cut", n, callers)
	}
	if n := s.Stats().UnfitConns; n < conns {
		t.Errorf("%d connections dropped as taken, want %d: the pool found them dead first", n, conns)
	}
}

// TestClosedConnectionNotGivenBack: a connection closed while in use
// (lost, or in doubt) is dropped by the pool at once. Given back, it would
// be handed to a caller waiting for a connection, whose take fails after
// two more such.
func TestClosedConnectionNotGivenBack(t *testing.T) {
	s := open(t, pgtest.DSN(t), postgres.Options{MaxConns: 2})
	c, err := s.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	opened := s.DB().Stats().OpenConnections
	errClosing := errors.New("closing")
	err = postgres.RawConn(c, func(conn *pgx.Conn) error {
		conn.Close(ctx)
		return errClosing
	})
	if err != errClosing {
		t.Errorf("RawConn returned %v, want fn's error", err)
	}
	c.Close()
	if n := s.DB().Stats().OpenConnections; n != opened-1 {
		t.Errorf("%d connections open after one was closed, want %d: the pool kept it", n, opened-1)
	}
}

// TestTransactionClosedInDoubtNotGivenBack: a transaction whose context
// ends while PostgreSQL still runs its statement leaves its connection
// closed (pgx closes it), and the pool drops it at once.
func TestTransactionClosedInDoubtNotGivenBack(t *testing.T) {
	s := open(t, pgtest.DSN(t), postgres.Options{MaxConns: 2})
	balance(t, s, coffer.CardAccount(1)) // a connection in the pool
	opened := s.DB().Stats().OpenConnections
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err := s.InUpdateTx(short, func(tx *postgres.TxConn) error {
		return tx.Exec(short, "SELECT pg_sleep(5)")
	})
	if err == nil {
		t.Fatal("a statement of 5 s ran within 100 ms")
	}
	if n := s.DB().Stats().OpenConnections; n != opened-1 {
		t.Errorf("%d connections open after the transaction's was closed, want %d: the pool kept it", n, opened-1)
	}
}

// useConns runs n reads at once, each holding its connection until all n
// have one, so that n connections of the pool are handed out now (n at
// most the pool's size).
func useConns(t *testing.T, s *postgres.Store, n int) {
	t.Helper()
	var wg sync.WaitGroup
	var holding atomic.Int64
	all := make(chan struct{})
	for range n {
		wg.Go(func() {
			if err := s.View(ctx, func(tx coffer.ReadTx) error {
				_, err := tx.Balance(ctx, coffer.CardAccount(1))
				if holding.Add(1) == int64(n) {
					close(all)
				}
				select {
				case <-all:
				case <-time.After(10 * time.Second):
					return errors.New("the other reads did not get a connection within 10 s")
				}
				return err
			}); err != nil {
				t.Errorf("read: %v", err)
			}
		})
	}
	wg.Wait()
}

// cut cuts every connection through p and lets it accept new ones.
func cut(t *testing.T, p *pgtest.Proxy) {
	t.Helper()
	p.Down()
	if err := p.Up(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the cut reaches the store's sockets
}
