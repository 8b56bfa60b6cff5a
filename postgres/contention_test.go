package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"coffer"
	"coffer/internal/pgtest"
	"coffer/postgres"
	"coffer/storetest"
)

// TestConformance runs the suite every store must pass.
func TestConformance(t *testing.T) {
	storetest.Run(t, pgtest.Open)
}

// TestConformanceSimpleProtocol runs the suite with pgx's simple protocol
// (arguments quoted by the client, no prepared statements), as behind a
// transaction pooler that does not track prepared statements: the
// pipelines that carry BEGIN, held-back statements and COMMIT then go as
// one query string, and must mean the same.
func TestConformanceSimpleProtocol(t *testing.T) {
	storetest.Run(t, func(t testing.TB) coffer.Store {
		dsn := pgtest.DSN(t)
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		s, err := postgres.Open(context.Background(), dsn+sep+"default_query_exec_mode=simple_protocol", postgres.Options{})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// contentionDeadline bounds the contention test: a deadlock that
// PostgreSQL did not break, or a retry loop that never ends, fails it
// instead of hanging the run.
const contentionDeadline = 3 * time.Minute

// TestContention runs two servers (two stores, two banks) on one database,
// as behind a load balancer, and has many goroutines at once transfer in
// opposite directions between the same two users, while many payers top
// up phones, all crediting the one carrier account. Every payment must
// either succeed or fail cleanly with insufficient funds; at the end money
// is conserved, nobody is negative, and the ledger checks out.
func TestContention(t *testing.T) {
	const (
		transferrers       = 16
		transfersEach      = 20
		payers             = 8
		topUpsEach         = 15
		startBalance       = 2_000_00
		payerStartBalance  = 500_00
		maxTransferFen     = 150_00
		maxTopUpFen        = 20_00
		minTopUpFen        = 1_00
		payPassword        = "135790"
		firstMobileOfPayer = 100
	)
	dsn := pgtest.DSN(t)
	var stores [2]*postgres.Store
	var banks [2]*coffer.Bank
	for i := range stores {
		stores[i] = open(t, dsn, postgres.Options{})
		banks[i], _ = storetest.NewBank(t, stores[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), contentionDeadline)
	defer cancel()

	register := func(n int, deposit coffer.Amount) coffer.User {
		t.Helper()
		u := newUser(n)
		r := coffer.Registration{Username: u.Username, Password: "correct horse battery", Email: u.Email, Mobile: u.Mobile, CardNum: u.CardNum, PayPassword: payPassword}
		if err := banks[n%2].Register(ctx, r); err != nil {
			t.Fatalf("register %s: %v", u.Username, err)
		}
		if _, err := banks[0].Deposit(ctx, u.Mobile, deposit); err != nil {
			t.Fatalf("deposit: %v", err)
		}
		var got coffer.User
		if err := stores[0].View(ctx, func(tx coffer.ReadTx) error {
			var err error
			got, err = tx.UserByMobile(ctx, u.Mobile)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	alice, bob := register(1, startBalance), register(2, startBalance)
	payerUsers := make([]coffer.User, payers)
	for i := range payerUsers {
		payerUsers[i] = register(firstMobileOfPayer+i, payerStartBalance)
	}

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		failures  []string
		moved     [2]atomic.Int64 // fen moved alice->bob, bob->alice
		refused   atomic.Int64
		toppedUp  = make([]int64, payers) // each written by its own goroutine only
		succeeded atomic.Int64
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	for g := range transferrers {
		from, to, dir := alice, bob, 0
		if g%2 == 1 {
			from, to, dir = bob, alice, 1
		}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range transfersEach {
				amount := coffer.Amount(1 + rng.Int64N(maxTransferFen))
				bank := banks[(g+i)%2]
				_, err := bank.Pay(ctx, from.ID, coffer.PayRequest{
					Mode: coffer.ModeTransfer, Money: amount, Payee: to.Mobile, Payer: from.Mobile,
					Password: payPassword, PasswordSent: true, Detail: "contention",
				})
				switch {
				case err == nil:
					moved[dir].Add(int64(amount))
					succeeded.Add(1)
				case coffer.IsCode(err, coffer.ErrInsufficientFunds):
					refused.Add(1)
				default:
					fail("transfer %d of goroutine %d: %v", i, g, err)
				}
			}
		})
	}
	for p := range payers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(p), 2))
			u := payerUsers[p]
			for i := range topUpsEach {
				amount := coffer.Amount(minTopUpFen + rng.Int64N(maxTopUpFen-minTopUpFen+1))
				_, err := banks[(p+i)%2].Pay(ctx, u.ID, coffer.PayRequest{
					Mode: coffer.ModeMobilePay, Money: amount, Mobile: "13912345678",
					Password: payPassword, PasswordSent: true,
				})
				switch {
				case err == nil:
					toppedUp[p] += int64(amount)
					succeeded.Add(1)
				case coffer.IsCode(err, coffer.ErrInsufficientFunds):
					refused.Add(1)
				default:
					fail("top-up %d of payer %d: %v", i, p, err)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	began := time.Now()
	select {
	case <-done:
	case <-time.After(contentionDeadline):
		t.Fatalf("payments still running after %v: deadlocked or retrying forever", contentionDeadline)
	}
	t.Logf("%d payments succeeded, %d refused for funds, in %v; server stats %+v and %+v", succeeded.Load(), refused.Load(),
		time.Since(began).Round(time.Millisecond), stores[0].Stats(), stores[1].Stats())
	for _, f := range failures {
		t.Error(f)
	}

	s := stores[1]
	a, b := balance(t, s, coffer.CardAccount(alice.ID)), balance(t, s, coffer.CardAccount(bob.ID))
	if a+b != 2*startBalance {
		t.Errorf("alice %d + bob %d = %d, want %d: money was created or lost", a, b, a+b, 2*startBalance)
	}
	if want := startBalance - moved[0].Load() + moved[1].Load(); a != want {
		t.Errorf("alice has %d, want %d from the successful transfers", a, want)
	}
	var total int64
	for p, u := range payerUsers {
		bal := balance(t, s, coffer.CardAccount(u.ID))
		if want := payerStartBalance - toppedUp[p]; bal != want {
			t.Errorf("payer %d has %d, want %d", p, bal, want)
		}
		total += toppedUp[p]
	}
	if got := balance(t, s, coffer.SystemAccount(coffer.KindCarrier, coffer.AssetCNY)); got != total {
		t.Errorf("carrier account holds %d, want the %d topped up", got, total)
	}
	if a < 0 || b < 0 {
		t.Errorf("negative balance: alice %d, bob %d", a, b)
	}
	storetest.AssertLedger(t, s)
}

// TestAccrualWhilePaying closes business days on two servers at once while
// users of both buy and redeem wealth products: interest accrual holds
// many wealth accounts in one transaction and meets the payments' locks in
// another order, which PostgreSQL may break as a deadlock; the retry must
// make every payment and every day close all the same, each day exactly
// once.
func TestAccrualWhilePaying(t *testing.T) {
	const (
		users       = 6
		opsEach     = 8
		payPassword = "246810"
	)
	// Each round pays while closing the day; lots of a one-day product
	// bought in a round mature in the next one's close, during payments.
	const rounds = 4
	oneDay := coffer.WealthProduct{Kind: "fixed1", Name: "一日通", AnnualYieldBP: 365, MinAmount: 100_00, TermDays: 1}
	dsn := pgtest.DSN(t)
	var stores [2]*postgres.Store
	var banks [2]*coffer.Bank
	var clocks [2]*storetest.Clock
	for i := range stores {
		stores[i] = open(t, dsn, postgres.Options{})
		banks[i], clocks[i] = storetest.NewBank(t, stores[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), contentionDeadline)
	defer cancel()
	if err := stores[0].Update(ctx, func(tx coffer.Tx) error { return tx.PutWealthProduct(ctx, oneDay) }); err != nil {
		t.Fatal(err)
	}
	ids := make([]coffer.UserID, users)
	for i := range ids {
		u := newUser(i + 1)
		r := coffer.Registration{Username: u.Username, Password: "correct horse battery", Email: u.Email, Mobile: u.Mobile, CardNum: u.CardNum, PayPassword: payPassword}
		if err := banks[i%2].Register(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, err := banks[0].Deposit(ctx, u.Mobile, 100_000_00); err != nil {
			t.Fatal(err)
		}
		if err := stores[0].View(ctx, func(tx coffer.ReadTx) error {
			got, err := tx.UserByMobile(ctx, u.Mobile)
			ids[i] = got.ID
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{"demand", oneDay.Kind} {
			if _, err := banks[0].Pay(ctx, ids[i], coffer.PayRequest{Mode: coffer.ModeMoneyManagement, Kind: kind, Money: 1_000_00}); err != nil {
				t.Fatalf("buy %s: %v", kind, err)
			}
		}
	}
	var mu sync.Mutex
	var failures []string
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	closedBy := map[string]int{}
	for day := range rounds {
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Go(func() {
				for op := range opsEach {
					req := coffer.PayRequest{Mode: coffer.ModeMoneyManagement, Kind: "demand", Money: 10_00}
					switch op % 4 {
					case 1:
						req = coffer.PayRequest{Mode: coffer.ModeRedeem, Kind: "demand", Money: 5_00}
					case 2:
						req = coffer.PayRequest{Mode: coffer.ModeMoneyManagement, Kind: oneDay.Kind, Money: 100_00}
					}
					if _, err := banks[(i+op)%2].Pay(ctx, id, req); err != nil {
						fail("day %d user %d op %d (%s): %v", day, i, op, req.Mode, err)
					}
				}
			})
		}
		for b := range banks {
			wg.Go(func() {
				r, err := banks[b].CloseDays(ctx, banks[b].Day(clocks[b].Now()))
				if err != nil {
					fail("day %d: server %d closing: %v", day, b, err)
					return
				}
				mu.Lock()
				for _, d := range r.Days {
					closedBy[d]++
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		for _, c := range clocks {
			c.Advance(24 * time.Hour)
		}
	}
	for _, f := range failures {
		t.Error(f)
	}
	days := rounds
	if len(closedBy) != days {
		t.Errorf("%d days closed, want %d", len(closedBy), days)
	}
	for d, n := range closedBy {
		if n != 1 {
			t.Errorf("day %s closed %d times", d, n)
		}
	}
	var rows int
	if err := stores[0].DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM business_days`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != days {
		t.Errorf("%d business days recorded, want %d", rows, days)
	}
	// Every statement chains: each bill's balance is the one before plus
	// its amount, on the card and on the wealth holdings taken together.
	for i, id := range ids {
		for _, kind := range []coffer.AccountKind{coffer.KindCard, coffer.KindWealth} {
			var bills []coffer.Bill
			if err := stores[1].View(ctx, func(tx coffer.ReadTx) error {
				var err error
				bills, err = tx.Bills(ctx, id, kind, 0, 1000)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			for j := len(bills) - 2; j >= 0; j-- { // newest first
				if prev, b := bills[j+1], bills[j]; b.BalanceAfter != prev.BalanceAfter+b.Amount {
					t.Errorf("user %d %s bill %d (%s %d) after %d shows %d, want %d", i, kind, b.ID, b.Method, b.Amount, prev.BalanceAfter, b.BalanceAfter, prev.BalanceAfter+b.Amount)
				}
			}
		}
	}
	var matured int
	if err := stores[0].DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM transactions WHERE kind = 'maturity'`).Scan(&matured); err != nil {
		t.Fatal(err)
	}
	if matured == 0 {
		t.Error("no fixed-term lot matured: the test did not test what it says")
	}
	t.Logf("%d days closed, %d lots matured; server stats %+v and %+v", days, matured, stores[0].Stats(), stores[1].Stats())
	storetest.AssertLedger(t, stores[0])
}

// TestTwoServersShareState: what a client relies on between requests lives
// in the database, so that any server behind a load balancer can answer
// the next one: a session opened on one server is valid on the other and
// ends on both; login failures count towards one lock across servers; and
// one idempotency key sent to both servers at once moves money once.
func TestTwoServersShareState(t *testing.T) {
	const payPassword = "192837"
	dsn := pgtest.DSN(t)
	var banks [2]*coffer.Bank
	var store *postgres.Store
	for i := range banks {
		store = open(t, dsn, postgres.Options{})
		banks[i], _ = storetest.NewBank(t, store)
	}
	ctx, cancel := context.WithTimeout(context.Background(), contentionDeadline)
	defer cancel()
	var users [2]coffer.User
	for i := range users {
		u := newUser(i + 1)
		r := coffer.Registration{Username: u.Username, Password: "correct horse battery", Email: u.Email, Mobile: u.Mobile, CardNum: u.CardNum, PayPassword: payPassword}
		if err := banks[i].Register(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, err := banks[1-i].Deposit(ctx, u.Mobile, 1_000_00); err != nil {
			t.Fatal(err)
		}
		users[i] = *u
	}

	token, u, err := banks[0].Login(ctx, users[0].Username, "correct horse battery", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if id, err := banks[1].Authenticate(ctx, token); err != nil || id != u.ID {
		t.Fatalf("session of server 0 on server 1: %v, %v", id, err)
	}
	if err := banks[1].Logout(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, err := banks[0].Authenticate(ctx, token); !coffer.IsCode(err, coffer.ErrUnauthorized) {
		t.Errorf("session ended on server 1 still valid on server 0: %v", err)
	}

	limit := banks[0].Config().LoginUserFailures
	for i := range limit {
		if _, _, err := banks[i%2].Login(ctx, users[1].Username, "wrong password!", fmt.Sprintf("198.51.100.%d", i)); !coffer.IsCode(err, coffer.ErrBadCredentials) {
			t.Fatalf("wrong login %d: %v", i, err)
		}
	}
	for i, b := range banks {
		if _, _, err := b.Login(ctx, users[1].Username, "correct horse battery", "203.0.113.9"); !coffer.IsCode(err, coffer.ErrTooManyAttempts) {
			t.Errorf("login on server %d after %d failures spread over both: %v, want %s", i, limit, err, coffer.ErrTooManyAttempts)
		}
	}

	const senders = 8
	var wg sync.WaitGroup
	var moved, replayed, pending atomic.Int32
	for g := range senders {
		wg.Go(func() {
			res, err := banks[g%2].Pay(ctx, u.ID, coffer.PayRequest{
				Mode: coffer.ModeTransfer, Money: 10_00, Payee: users[1].Mobile,
				Password: payPassword, PasswordSent: true, IdempotencyKey: "same-key",
			})
			switch {
			case err == nil && res.Replayed:
				replayed.Add(1)
			case err == nil:
				moved.Add(1)
			case coffer.IsCode(err, coffer.ErrIdempotencyPending):
				pending.Add(1)
			default:
				t.Errorf("sender %d: %v", g, err)
			}
		})
	}
	wg.Wait()
	if moved.Load() != 1 {
		t.Errorf("%d payments moved money under one key (%d replayed, %d in flight), want exactly 1", moved.Load(), replayed.Load(), pending.Load())
	}
	if got := balance(t, store, coffer.CardAccount(u.ID)); got != 990_00 {
		t.Errorf("payer has %d after one transfer of 1000 under one key, want 99000", got)
	}
	storetest.AssertLedger(t, store)
}
