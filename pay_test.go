package coffer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"coffer"
	"coffer/internal/teststores"
	"coffer/password"
	"coffer/storetest"
)

// Regression: Bank.Pay left non-positive amounts to the HTTP decoder; a
// zero or negative transfer reached the ledger as an internal error after
// lowering the day's spend total.
func TestPayRefusesNonPositiveQuantitiesItself(t *testing.T) {
	w := newAccrualWorld(t, teststores.SQLite)
	before := storetest.CountRows(t, w.store)
	for _, req := range []coffer.PayRequest{
		{Mode: coffer.ModeTransfer, Money: 0, Payee: "13900139000", Password: "246810", PasswordSent: true},
		{Mode: coffer.ModeTransfer, Money: -500, Payee: "13900139000", Password: "246810", PasswordSent: true},
		{Mode: coffer.ModeRedeem, Kind: "demand", Money: -1},
		{Mode: coffer.ModeMoneyManagement, Kind: "demand", Money: coffer.MaxAmount + 1},
		{Mode: coffer.ModeGold, Weight: 0, Price: 560_00},
		{Mode: coffer.ModeGoldSell, Weight: 1000, Price: -1},
		{Mode: coffer.ModeFundRedeem, Code: "000001", Shares: -1},
	} {
		if _, err := w.bank.Pay(context.Background(), w.user, req); !coffer.IsCode(err, coffer.ErrInvalidField) {
			t.Errorf("%s %+v: %v, want INVALID_FIELD", req.Mode, req, err)
		}
	}
	after := storetest.CountRows(t, w.store)
	for table, n := range before {
		if after[table] != n {
			t.Errorf("table %s: %d rows before, %d after refused payments", table, n, after[table])
		}
	}
}

// Regression: Post checked only each account's net change, so legs that
// took a user account below zero and back within one transaction were
// accepted and left an entry showing a negative balance.
func TestPostRefusesAUserAccountBelowZeroWithinATransaction(t *testing.T) {
	w := newAccrualWorld(t, teststores.SQLite)
	ctx := context.Background()
	empty := coffer.AccountKey{User: w.user, Kind: coffer.KindWealth, Asset: coffer.AssetCNY, Product: "demand"}
	err := w.store.Update(ctx, func(tx coffer.Tx) error {
		_, err := tx.Post(ctx, &coffer.Transaction{Kind: "test", CreatedAt: w.clock.Now(), Legs: []coffer.Leg{
			{From: empty, To: coffer.SystemAccount(coffer.KindCash, coffer.AssetCNY), Amount: 100, FromMethod: "x", ToMethod: "x"},
			{From: coffer.CardAccount(w.user), To: empty, Amount: 100, FromMethod: "x", ToMethod: "x"},
		}})
		return err
	})
	if !coffer.IsCode(err, coffer.ErrInsufficientFunds) {
		t.Errorf("post through an empty account: %v, want INSUFFICIENT_FUNDS", err)
	}
	storetest.AssertLedger(t, w.store)
}

// Regression: wrong login passwords at /api/paypassword were not counted,
// so a stolen session could guess the login password without end.
func TestSetPayPasswordCountsWrongLoginPasswords(t *testing.T) {
	w := newAccrualWorld(t, teststores.SQLite)
	ctx := context.Background()
	limit := w.bank.Config().LoginUserFailures
	for i := 0; i < limit; i++ {
		if err := w.bank.SetPayPassword(ctx, w.user, "not the password", "111111"); !coffer.IsCode(err, coffer.ErrBadPassword) {
			t.Fatalf("wrong login password %d: %v, want BAD_PASSWORD", i+1, err)
		}
	}
	if err := w.bank.SetPayPassword(ctx, w.user, "long enough", "111111"); !coffer.IsCode(err, coffer.ErrTooManyAttempts) {
		t.Errorf("right password after %d wrong: %v, want TOO_MANY_ATTEMPTS", limit, err)
	}
	if _, _, err := w.bank.Login(ctx, "saver", "long enough", "127.0.0.1"); !coffer.IsCode(err, coffer.ErrTooManyAttempts) {
		t.Errorf("login after %d wrong passwords at paypassword: %v, want TOO_MANY_ATTEMPTS", limit, err)
	}
	w.clock.Advance(w.bank.Config().LoginLockFor)
	if err := w.bank.SetPayPassword(ctx, w.user, "long enough", "111111"); err != nil {
		t.Errorf("after the lock: %v", err)
	}
}

// Regression: a locked user's invalid transfer (to themselves) answered
// 400 instead of 423; the lock comes before every other rule.
func TestPayLockComesFirst(t *testing.T) {
	w := newAccrualWorld(t, teststores.SQLite)
	ctx := context.Background()
	self := coffer.PayRequest{Mode: coffer.ModeTransfer, Money: 1_00, Payee: "13700137000", Password: "000000", PasswordSent: true}
	if _, err := w.bank.Pay(ctx, w.user, self); !coffer.IsCode(err, coffer.ErrSamePayee) {
		t.Fatalf("transfer to self: %v", err)
	}
	wrong := coffer.PayRequest{Mode: coffer.ModeMobilePay, Money: 10_00, Mobile: "13700137000", Password: "000000", PasswordSent: true}
	for i := 0; i < 5; i++ {
		w.bank.Pay(ctx, w.user, wrong)
	}
	if _, err := w.bank.Pay(ctx, w.user, self); !coffer.IsCode(err, coffer.ErrPayLocked) {
		t.Errorf("locked user's transfer to self: %v, want PAY_LOCKED", err)
	}
}

// Regression: the payment lock was checked against the user as read
// before the guess and counted afterwards, so guesses sent together were
// all checked: 60 at once got 48 "wrong" answers, and a right one among
// them paid after the lock. Decided under the user's row lock, exactly
// four are answered "wrong" and the rest "locked".
func TestConcurrentPaymentGuessesMeetTheLock(t *testing.T) {
	for _, s := range teststores.All(t) {
		t.Run(s.Name, func(t *testing.T) {
			w := newAccrualWorld(t, s.Open)
			const guesses = 40
			count := codesAtOnce(guesses, func(int) error {
				_, err := w.bank.Pay(context.Background(), w.user, coffer.PayRequest{Mode: coffer.ModeMobilePay, Money: 10_00, Mobile: "13700137000", Password: "000000", PasswordSent: true})
				return err
			})
			if count[coffer.ErrBadPayPassword] != 4 || count[coffer.ErrPayLocked] != guesses-4 {
				t.Errorf("%d guesses at once: %v; want 4 %s and the rest %s", guesses, count, coffer.ErrBadPayPassword, coffer.ErrPayLocked)
			}
			if _, err := w.bank.Pay(context.Background(), w.user, coffer.PayRequest{Mode: coffer.ModeMobilePay, Money: 10_00, Mobile: "13700137000", Password: "246810", PasswordSent: true}); !coffer.IsCode(err, coffer.ErrPayLocked) {
				t.Errorf("the right password after the lock: %v", err)
			}
			storetest.AssertLedger(t, w.store)
		})
	}
}

// codesAtOnce runs call(0) to call(n-1) at once and counts the error
// codes they return ("" for success).
func codesAtOnce(n int, call func(i int) error) map[coffer.Code]int {
	codes := make(chan coffer.Code, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { codes <- coffer.ErrorCode(call(i)) })
	}
	wg.Wait()
	close(codes)
	count := map[coffer.Code]int{}
	for c := range codes {
		count[c]++
	}
	return count
}

// Regression: concurrent wrong logins were all checked (24 of 40 where
// five are allowed): attempts are now counted before the password is.
func TestConcurrentLoginGuessesMeetTheThrottle(t *testing.T) {
	for _, s := range teststores.All(t) {
		t.Run(s.Name, func(t *testing.T) {
			w := newAccrualWorld(t, s.Open)
			const guesses = 40
			count := codesAtOnce(guesses, func(i int) error {
				_, _, err := w.bank.Login(context.Background(), "saver", "wrong password", fmt.Sprintf("192.0.2.%d", i))
				return err
			})
			limit := w.bank.Config().LoginUserFailures
			if count[coffer.ErrBadCredentials] != limit || count[coffer.ErrTooManyAttempts] != guesses-limit {
				t.Errorf("%d wrong logins at once: %v; want %d checked and the rest refused", guesses, count, limit)
			}
		})
	}
}

// Regression: transfers told registered mobiles (422 insufficient funds)
// from unregistered ones (404) without limit. Misses now spend the same
// per-user budget as /api/mobile lookups, and a spent budget refuses every
// transfer, known payee or not; a new login does not renew it.
func TestPayeeProbesSpendTheLookupBudget(t *testing.T) {
	w := newAccrualWorld(t, teststores.SQLite)
	ctx := context.Background()
	budget := w.bank.Config().LookupsPerMinute
	probe := func(mobile string) error {
		_, err := w.bank.Pay(ctx, w.user, coffer.PayRequest{Mode: coffer.ModeTransfer, Money: 1_00, Payee: mobile, Password: "246810", PasswordSent: true})
		return err
	}
	for i := 0; i < budget; i++ {
		if err := probe(fmt.Sprintf("139%08d", i)); !coffer.IsCode(err, coffer.ErrPayeeNotFound) {
			t.Fatalf("probe %d: %v, want PAYEE_NOT_FOUND", i, err)
		}
	}
	if err := probe("13999999999"); !coffer.IsCode(err, coffer.ErrRateLimited) {
		t.Errorf("probe past the budget: %v, want RATE_LIMITED", err)
	}
	if _, err := w.bank.LookupMobile(ctx, w.user, "13700137000"); !coffer.IsCode(err, coffer.ErrRateLimited) {
		t.Errorf("lookup after the budget was spent on transfers: %v, want RATE_LIMITED", err)
	}
	w.clock.Advance(time.Minute)
	if err := probe("13999999999"); !coffer.IsCode(err, coffer.ErrPayeeNotFound) {
		t.Errorf("a minute later: %v, want PAYEE_NOT_FOUND", err)
	}
}

// overloadedHasher answers ErrOverloaded to the first fail verifications;
// while held is set, verifications wait for release to close; the rest go
// to the real hasher.
type overloadedHasher struct {
	coffer.PasswordHasher
	fail    atomic.Int64
	held    atomic.Bool
	waiting sync.WaitGroup
	release chan struct{}
	one     sync.Mutex // one verification at a time: the real hasher's queue is short
	busy    atomic.Bool
}

func (h *overloadedHasher) Busy() bool { return h.busy.Load() }

func (h *overloadedHasher) Verify(ctx context.Context, encoded, pw string) (bool, error) {
	if h.fail.Add(-1) >= 0 {
		return false, coffer.Errorf(coffer.ErrOverloaded, "password hashing queue full")
	}
	if h.held.Load() {
		h.waiting.Done()
		<-h.release
	}
	h.one.Lock()
	defer h.one.Unlock()
	return h.PasswordHasher.Verify(ctx, encoded, pw)
}

// Regression: a login answered 503 because the hashing queue was full
// spent one of the username's (and the address's) attempts without a
// password being checked; five busy answers locked the user out, and a
// busy address stayed refused. Attempts refused with 429 counted too, so
// an address that sent more logins at once than its limit was refused for
// the whole window. Neither counts now.
func TestUncheckedLoginsSpendNoAttempts(t *testing.T) {
	for _, s := range teststores.All(t) {
		t.Run(s.Name, func(t *testing.T) {
			w := newAccrualWorld(t, s.Open)
			ctx := context.Background()
			cfg := w.bank.Config()
			hasher := &overloadedHasher{PasswordHasher: password.NewHasher(storetest.TestParams)}
			keyer, err := password.NewPayKeyer(storetest.TestSecret)
			if err != nil {
				t.Fatal(err)
			}
			bank := coffer.NewBank(w.store, hasher, keyer, cfg, w.clock.Now)

			busy := 3 * cfg.LoginUserFailures
			hasher.fail.Store(int64(busy))
			for i := range busy {
				if _, _, err := bank.Login(ctx, "saver", "long enough", "192.0.2.1"); !coffer.IsCode(err, coffer.ErrOverloaded) {
					t.Fatalf("login %d with the queue full: %v, want OVERLOADED", i, err)
				}
			}
			if _, _, err := bank.Login(ctx, "saver", "long enough", "192.0.2.1"); err != nil {
				t.Fatalf("login once the queue had room: %v", err)
			}

			// A full queue known before the login starts refuses it
			// without a write.
			attempts := func() []coffer.Attempt {
				var out []coffer.Attempt
				err := w.store.View(ctx, func(tx coffer.ReadTx) error {
					for _, key := range []string{"login:user:saver", "login:addr:192.0.2.1"} {
						a, err := tx.Attempt(ctx, key)
						if err != nil {
							return err
						}
						out = append(out, a)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			bank.Login(ctx, "saver", "wrong password", "192.0.2.1") // a counter to watch
			hasher.busy.Store(true)
			before, rows := attempts(), storetest.CountRows(t, w.store)
			if _, _, err := bank.Login(ctx, "saver", "wrong password", "192.0.2.1"); !coffer.IsCode(err, coffer.ErrOverloaded) {
				t.Errorf("login while the hasher is busy: %v, want OVERLOADED", err)
			}
			if after := attempts(); !slices.Equal(after, before) {
				t.Errorf("a login refused as busy counted: %+v -> %+v", before, after)
			}
			if after := storetest.CountRows(t, w.store); !maps.Equal(after, rows) {
				t.Errorf("a login refused as busy wrote: %v -> %v", rows, after)
			}
			hasher.busy.Store(false)

			// An address with its whole limit of logins in flight refuses
			// the ones past it; once those in flight succeed, it takes
			// logins again (the refusals counted nothing).
			users := make([]string, cfg.LoginAddrFailures)
			for i := range users {
				users[i] = fmt.Sprintf("busy%d", i)
				r := storetest.Registration(100 + i)
				r.Username = users[i]
				if err := bank.Register(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			hasher.release = make(chan struct{})
			hasher.held.Store(true)
			hasher.waiting.Add(len(users))
			var inFlight sync.WaitGroup
			for _, u := range users {
				inFlight.Go(func() {
					if _, _, err := bank.Login(ctx, u, storetest.Registration(0).Password, "192.0.2.2"); err != nil {
						t.Errorf("login of %s in flight: %v", u, err)
					}
				})
			}
			hasher.waiting.Wait() // every one of them has reserved its attempt
			for range 2 * cfg.LoginAddrFailures {
				if _, _, err := bank.Login(ctx, "saver", "long enough", "192.0.2.2"); !coffer.IsCode(err, coffer.ErrTooManyAttempts) {
					t.Fatalf("login past the address's limit: %v, want TOO_MANY_ATTEMPTS", err)
				}
			}
			hasher.held.Store(false)
			close(hasher.release)
			inFlight.Wait()
			if _, _, err := bank.Login(ctx, "saver", "long enough", "192.0.2.2"); err != nil {
				t.Errorf("login from the address once those in flight were done: %v", err)
			}
		})
	}
}

// FuzzFingerprintIsFmts checks that Fingerprint hashes the bytes that
// fmt's %q and %d wrote before it was written by hand: the request hashes
// stored with idempotency records must keep matching their replays.
func FuzzFingerprintIsFmts(f *testing.F) {
	f.Add("transfer", int64(2050), "午饭 \"AA\"\n", "13900139000", "", int64(0), "\xff\x00", int64(-1))
	f.Add("gold", int64(0), "", "", "demand", int64(15000), "000001", int64(1<<62))
	f.Fuzz(func(t *testing.T, mode string, money int64, detail, payee, kind string, weight int64, code string, shares int64) {
		r := coffer.PayRequest{Mode: mode, Money: coffer.Amount(money), Detail: detail, Payee: payee, Mobile: detail + payee, Kind: kind,
			ClientTime: code + kind, Weight: coffer.Weight(weight), Price: coffer.Amount(-money), Code: code, Shares: coffer.Shares(shares)}
		h := sha256.New()
		fmt.Fprintf(h, "%q|%d|%q|%q|%q|%q|%q|%d|%d|%q|%d", r.Mode, r.Money, r.Detail, r.Payee, r.Mobile, r.Kind, r.ClientTime, r.Weight, r.Price, r.Code, r.Shares)
		if got, want := r.Fingerprint(), h.Sum(nil); !bytes.Equal(got, want) {
			t.Fatalf("Fingerprint(%+v) = %x, fmt's = %x", r, got, want)
		}
	})
}
