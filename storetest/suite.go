package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"coffer"
)

// Run is the conformance suite: every subtest opens a fresh store with
// open. It covers each primitive of coffer.Tx and coffer.ReadTx, then the
// Bank on top of the store: concurrent payments and random sequences of
// payments checked against a model.
func Run(t *testing.T, open Opener) {
	primitives := []struct {
		name string
		test func(*testing.T, coffer.Store)
	}{
		{"CreateUser", testCreateUser},
		{"CreateUserConflicts", testCreateUserConflicts},
		{"UserNotFound", testUserNotFound},
		{"PayPasswordAndFailures", testPayPasswordAndFailures},
		{"Sessions", testSessions},
		{"Attempts", testAttempts},
		{"Idempotency", testIdempotency},
		{"PaymentLookup", testPaymentLookup},
		{"SessionPayment", testSessionPayment},
		{"ViewSnapshot", testViewSnapshot},
		{"DeleteExpired", testDeleteExpired},
		{"PostBalancesAndEntries", func(t *testing.T, s coffer.Store) { testPostBalancesAndEntries(t, s, byPost) }},
		{"PostLaterBalancesAndEntries", func(t *testing.T, s coffer.Store) { testPostBalancesAndEntries(t, s, byPostLater) }},
		{"PostShortfallWritesNothing", func(t *testing.T, s coffer.Store) { testPostShortfall(t, s, byPost) }},
		{"PostLaterShortfallWritesNothing", func(t *testing.T, s coffer.Store) { testPostShortfall(t, s, byPostLater) }},
		{"PostLaterWithItsAnswer", testPostLaterWithItsAnswer},
		{"IdempotencyBodyBalance", testIdempotencyBodyBalance},
		{"PostInvalidWritesNothing", testPostInvalid},
		{"UpdateRollsBackOnError", testUpdateRollback},
		{"CreateLotNumbering", testCreateLot},
		{"AddDailySpend", testAddDailySpend},
		{"LockPayable", testLockPayable},
		{"LockPayableHoldsTheRow", testLockPayableHoldsTheRow},
		{"LockPayableMeetsALockSetMeanwhile", testLockPayableMeetsALockSetMeanwhile},
		{"ClearPayFailures", testClearPayFailures},
		{"BillsKeysetPaging", testBillsPaging},
		{"WealthBillsTotalAllHoldings", testWealthBills},
		{"Holdings", testHoldings},
		{"Catalog", testCatalog},
		{"CountRows", testCountRows},
		{"CheckLedgerBusy", testCheckLedgerBusy},
		{"BusinessDays", testBusinessDays},
		{"FirstEntryAt", testFirstEntryAt},
		{"WealthHoldingsAndCarry", testWealthHoldingsAndCarry},
		{"BalanceBefore", testBalanceBefore},
		{"SetFundNAV", testSetFundNAV},
		{"BankRegisterAndDeposit", testBankRegisterAndDeposit},
		{"BankWalletCursorWalk", testBankWalletCursorWalk},
		{"BankPayLock", testBankPayLock},
		{"BankConcurrentTransfers", testBankConcurrentTransfers},
		{"BankOppositeTransfers", testBankOppositeTransfers},
		{"BankConcurrentSystemAccounts", testBankConcurrentSystemAccounts},
	}
	for _, p := range primitives {
		t.Run(p.name, func(t *testing.T) { p.test(t, open(t)) })
	}
	t.Run("BankPaymentSequences", func(t *testing.T) { testBankPaymentSequences(t, open) })
}

var bg = context.Background()

// update runs fn in one Update and fails the test on an error.
func update(t testing.TB, s coffer.Store, fn func(coffer.Tx) error) {
	t.Helper()
	if err := s.Update(bg, fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

// view runs fn in one View and fails the test on an error.
func view(t testing.TB, s coffer.Store, fn func(coffer.ReadTx) error) {
	t.Helper()
	if err := s.View(bg, fn); err != nil {
		t.Fatalf("view: %v", err)
	}
}

// wantCode fails the test unless err carries code.
func wantCode(t testing.TB, what string, err error, code coffer.Code) {
	t.Helper()
	if got := coffer.ErrorCode(err); got != code {
		t.Errorf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

// sameCounts fails the test unless the row counts are equal.
func sameCounts(t testing.TB, what string, before, after map[string]int64) {
	t.Helper()
	if !maps.Equal(before, after) {
		t.Errorf("%s wrote rows: before %v, after %v", what, before, after)
	}
}

// countDelta fails the test unless after differs from before exactly by
// delta (tables not named must not change).
func countDelta(t testing.TB, what string, before, after map[string]int64, delta map[string]int64) {
	t.Helper()
	for table := range after {
		if want := before[table] + delta[table]; after[table] != want {
			t.Errorf("%s: table %s has %d rows, want %d", what, table, after[table], want)
		}
	}
	for table := range delta {
		if _, ok := after[table]; !ok {
			t.Errorf("CountRows has no table %q", table)
		}
	}
}

// Fixtures.

// TestPassword is the login password of the users Registration makes.
const TestPassword = "correct-horse-battery"

// TestPayPassword is the payment password of the users Registration makes.
const TestPayPassword = "123456"

// MobileNumber returns a valid mainland mobile number unique to n (n < 10^8).
func MobileNumber(n int) string { return fmt.Sprintf("139%08d", n) }

// CardNumber returns a 16-digit card number unique to n (n < 10^9) that
// passes the Luhn check.
func CardNumber(n int) string {
	body := fmt.Sprintf("622202%09d", n)
	sum := 0
	for i := 0; i < len(body); i++ {
		d := int(body[len(body)-1-i] - '0')
		if i%2 == 0 { // doubled: every second digit counting left from the check digit
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return body + strconv.Itoa((10-sum%10)%10)
}

// Registration returns a valid registration unique to n, with the login
// password TestPassword and the payment password TestPayPassword.
func Registration(n int) coffer.Registration {
	return coffer.Registration{
		Username:    fmt.Sprintf("user%d", n),
		Password:    TestPassword,
		Email:       fmt.Sprintf("user%d@example.com", n),
		Mobile:      MobileNumber(n),
		CardNum:     CardNumber(n),
		PayPassword: TestPayPassword,
	}
}

// testUser returns an unsaved user unique to n.
func testUser(n int) *coffer.User {
	return &coffer.User{
		Username:     fmt.Sprintf("user%d", n),
		Email:        fmt.Sprintf("user%d@example.com", n),
		Mobile:       MobileNumber(n),
		CardNum:      CardNumber(n),
		PasswordHash: "$argon2id$fake-hash-" + strconv.Itoa(n),
		CreatedAt:    Start,
	}
}

// createUsers saves n fresh users numbered from first.
func createUsers(t testing.TB, s coffer.Store, first, n int) []coffer.User {
	t.Helper()
	out := make([]coffer.User, n)
	update(t, s, func(tx coffer.Tx) error {
		for i := range out {
			u := testUser(first + i)
			if err := tx.CreateUser(bg, u); err != nil {
				return err
			}
			out[i] = *u
		}
		return nil
	})
	return out
}

// post posts legs in one Update and returns what the store reported.
func post(t testing.TB, s coffer.Store, at time.Time, legs ...coffer.Leg) coffer.Posted {
	t.Helper()
	return postBy(t, s, byPost, at, legs...)
}

// poster posts a transaction in tx: by Post or by PostLater, which every
// store must do alike. Its Posted is complete once Update has returned.
type poster func(tx coffer.Tx, tr *coffer.Transaction) (*coffer.Posted, error)

func byPost(tx coffer.Tx, tr *coffer.Transaction) (*coffer.Posted, error) {
	p, err := tx.Post(bg, tr)
	return &p, err
}

func byPostLater(tx coffer.Tx, tr *coffer.Transaction) (*coffer.Posted, error) {
	return tx.PostLater(bg, tr)
}

// postBy posts legs with by in one Update and returns what the store
// reported.
func postBy(t testing.TB, s coffer.Store, by poster, at time.Time, legs ...coffer.Leg) coffer.Posted {
	t.Helper()
	var p *coffer.Posted
	update(t, s, func(tx coffer.Tx) error {
		var err error
		p, err = by(tx, &coffer.Transaction{Kind: "test", Legs: legs, CreatedAt: at})
		return err
	})
	return *p
}

// Deposit credits user's card from the cash account, for the stores' own
// tests too.
func Deposit(t testing.TB, s coffer.Store, user coffer.UserID, amount int64) coffer.Posted {
	t.Helper()
	return post(t, s, Start, coffer.Leg{From: cash, To: coffer.CardAccount(user), Amount: amount, FromMethod: coffer.MethodDeposit, ToMethod: coffer.MethodDeposit, FromDetails: "cash in", ToDetails: "cash in"})
}

// balance reads one account's balance.
func balance(t testing.TB, s coffer.Store, k coffer.AccountKey) int64 {
	t.Helper()
	var b int64
	view(t, s, func(tx coffer.ReadTx) error {
		var err error
		b, err = tx.Balance(bg, k)
		return err
	})
	return b
}

// bills reads one page of a user's statement.
func bills(t testing.TB, s coffer.Store, user coffer.UserID, kind coffer.AccountKind, before int64, limit int) []coffer.Bill {
	t.Helper()
	var out []coffer.Bill
	view(t, s, func(tx coffer.ReadTx) error {
		var err error
		out, err = tx.Bills(bg, user, kind, before, limit)
		return err
	})
	return out
}

// allBills walks a user's whole statement, newest first, in pages of limit.
func allBills(t testing.TB, s coffer.Store, user coffer.UserID, kind coffer.AccountKind, limit int) []coffer.Bill {
	t.Helper()
	var out []coffer.Bill
	var before int64
	for page := 0; ; page++ {
		if page > 100_000 {
			t.Fatalf("statement of user %d never ends", user)
		}
		b := bills(t, s, user, kind, before, limit)
		if len(b) > limit {
			t.Fatalf("page of %d bills, limit %d", len(b), limit)
		}
		out = append(out, b...)
		if len(b) < limit {
			return out
		}
		before = b[len(b)-1].ID
	}
}

// checkChain fails the test unless bills (newest first) have strictly
// decreasing ids and chain: each balance minus its amount is the next
// (older) bill's balance, and the oldest starts from zero.
func checkChain(t testing.TB, what string, bills []coffer.Bill) {
	t.Helper()
	for i, b := range bills {
		prev := int64(0)
		if i+1 < len(bills) {
			prev = bills[i+1].BalanceAfter
			if bills[i+1].ID >= b.ID {
				t.Errorf("%s: bill %d id %d not below bill %d id %d", what, i+1, bills[i+1].ID, i, b.ID)
			}
		}
		if b.BalanceAfter-b.Amount != prev {
			t.Errorf("%s: bill %d (id %d) balance %d - amount %d != previous balance %d", what, i, b.ID, b.BalanceAfter, b.Amount, prev)
		}
	}
}

var (
	cash     = coffer.SystemAccount(coffer.KindCash, coffer.AssetCNY)
	carrier  = coffer.SystemAccount(coffer.KindCarrier, coffer.AssetCNY)
	goldDesk = coffer.SystemAccount(coffer.KindGoldDesk, coffer.AssetGold)
)

func wealthAccount(user coffer.UserID, product string, lot int64) coffer.AccountKey {
	return coffer.AccountKey{User: user, Kind: coffer.KindWealth, Asset: coffer.AssetCNY, Product: product, Lot: lot}
}

func goldAccount(user coffer.UserID) coffer.AccountKey {
	return coffer.AccountKey{User: user, Kind: coffer.KindGold, Asset: coffer.AssetGold}
}

func fundAccount(user coffer.UserID, code string) coffer.AccountKey {
	return coffer.AccountKey{User: user, Kind: coffer.KindFund, Asset: coffer.FundAsset(code), Product: code}
}

// Users.

func sameUser(t testing.TB, what string, got, want coffer.User) {
	t.Helper()
	if got.ID != want.ID || got.Username != want.Username || got.Email != want.Email || got.Mobile != want.Mobile ||
		got.CardNum != want.CardNum || got.PasswordHash != want.PasswordHash || !bytes.Equal(got.PayPasswordMAC, want.PayPasswordMAC) ||
		got.PayFailures != want.PayFailures || !got.PayLockedUntil.Equal(want.PayLockedUntil) || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func testCreateUser(t *testing.T, s coffer.Store) {
	before := CountRows(t, s)
	u := testUser(1)
	u.Username, u.Email = "Alice", "Alice@Example.com"
	u.PayPasswordMAC = []byte{1, 2, 3, 4}
	update(t, s, func(tx coffer.Tx) error { return tx.CreateUser(bg, u) })
	if u.ID == 0 {
		t.Fatal("CreateUser left the id 0")
	}
	countDelta(t, "CreateUser", before, CountRows(t, s), map[string]int64{"users": 1, "accounts": 1})
	view(t, s, func(tx coffer.ReadTx) error {
		for _, lookup := range []struct {
			name string
			get  func() (coffer.User, error)
		}{
			{"UserByID", func() (coffer.User, error) { return tx.UserByID(bg, u.ID) }},
			{"UserByMobile", func() (coffer.User, error) { return tx.UserByMobile(bg, u.Mobile) }},
			{"UserByUsername same case", func() (coffer.User, error) { return tx.UserByUsername(bg, "Alice") }},
			{"UserByUsername lower case", func() (coffer.User, error) { return tx.UserByUsername(bg, "alice") }},
			{"UserByUsername upper case", func() (coffer.User, error) { return tx.UserByUsername(bg, "ALICE") }},
		} {
			got, err := lookup.get()
			if err != nil {
				t.Errorf("%s: %v", lookup.name, err)
				continue
			}
			sameUser(t, lookup.name, got, *u)
		}
		holdings, err := tx.Holdings(bg, u.ID)
		if err != nil {
			return err
		}
		if len(holdings) != 1 || holdings[0].Key != coffer.CardAccount(u.ID) || holdings[0].Balance != 0 {
			t.Errorf("holdings of a new user = %+v, want one card account at 0", holdings)
		}
		if b, err := tx.Balance(bg, coffer.CardAccount(u.ID)); err != nil || b != 0 {
			t.Errorf("card balance = %d, %v; want 0", b, err)
		}
		if n, err := tx.CountUsers(bg); err != nil || n != 1 {
			t.Errorf("CountUsers = %d, %v; want 1", n, err)
		}
		return nil
	})
	v := testUser(2)
	update(t, s, func(tx coffer.Tx) error { return tx.CreateUser(bg, v) })
	if v.ID == 0 || v.ID == u.ID {
		t.Errorf("second user id %d, first %d", v.ID, u.ID)
	}
	view(t, s, func(tx coffer.ReadTx) error {
		if n, err := tx.CountUsers(bg); err != nil || n != 2 {
			t.Errorf("CountUsers = %d, %v; want 2", n, err)
		}
		got, err := tx.UserByID(bg, v.ID)
		if err != nil {
			return err
		}
		if len(got.PayPasswordMAC) != 0 {
			t.Errorf("user without a payment password has MAC %x", got.PayPasswordMAC)
		}
		sameUser(t, "second user", got, *v)
		return nil
	})
}

func testCreateUserConflicts(t *testing.T, s coffer.Store) {
	first := testUser(1)
	first.Username, first.Email = "Zoë", "Zoe.Q@Example.com"
	update(t, s, func(tx coffer.Tx) error { return tx.CreateUser(bg, first) })
	cases := []struct {
		name   string
		mutate func(*coffer.User)
		code   coffer.Code
	}{
		{"same username", func(u *coffer.User) { u.Username = "Zoë" }, coffer.ErrUsernameTaken},
		{"username in another case", func(u *coffer.User) { u.Username = "ZOË" }, coffer.ErrUsernameTaken},
		{"email in another case", func(u *coffer.User) { u.Email = "zoe.q@EXAMPLE.COM" }, coffer.ErrEmailTaken},
		{"same mobile", func(u *coffer.User) { u.Mobile = first.Mobile }, coffer.ErrMobileTaken},
		{"same card", func(u *coffer.User) { u.CardNum = first.CardNum }, coffer.ErrCardTaken},
	}
	for i, c := range cases {
		before := CountRows(t, s)
		u := testUser(100 + i)
		c.mutate(u)
		err := s.Update(bg, func(tx coffer.Tx) error { return tx.CreateUser(bg, u) })
		wantCode(t, c.name, err, c.code)
		sameCounts(t, c.name, before, CountRows(t, s))
	}
	// A conflict in the middle of a transaction that wrote before it
	// leaves nothing either, once fn returns the error.
	before := CountRows(t, s)
	err := s.Update(bg, func(tx coffer.Tx) error {
		if err := tx.CreateUser(bg, testUser(200)); err != nil {
			return err
		}
		dup := testUser(201)
		dup.Mobile = first.Mobile
		return tx.CreateUser(bg, dup)
	})
	wantCode(t, "second user of a transaction taking a mobile", err, coffer.ErrMobileTaken)
	sameCounts(t, "failed two-user transaction", before, CountRows(t, s))
	view(t, s, func(tx coffer.ReadTx) error {
		_, err := tx.UserByMobile(bg, MobileNumber(200))
		wantCode(t, "user of a rolled-back transaction", err, coffer.ErrUserNotFound)
		return nil
	})
}

func testUserNotFound(t *testing.T, s coffer.Store) {
	u := createUsers(t, s, 1, 1)[0]
	view(t, s, func(tx coffer.ReadTx) error {
		_, err := tx.UserByID(bg, u.ID+1000)
		wantCode(t, "UserByID", err, coffer.ErrUserNotFound)
		_, err = tx.UserByMobile(bg, MobileNumber(2))
		wantCode(t, "UserByMobile", err, coffer.ErrUserNotFound)
		_, err = tx.UserByUsername(bg, "nobody")
		wantCode(t, "UserByUsername", err, coffer.ErrUserNotFound)
		_, err = tx.UserByUsername(bg, u.Email)
		wantCode(t, "UserByUsername with an email", err, coffer.ErrUserNotFound)
		return nil
	})
}

func testPayPasswordAndFailures(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 2)
	u, other := users[0], users[1]
	mac := []byte("0123456789abcdef0123456789abcdef0123456789abcdef")
	update(t, s, func(tx coffer.Tx) error { return tx.SetPayPassword(bg, u.ID, mac) })
	for want := 1; want <= 3; want++ {
		var n int
		update(t, s, func(tx coffer.Tx) error {
			var err error
			n, err = tx.AddPayFailure(bg, u.ID)
			return err
		})
		if n != want {
			t.Errorf("AddPayFailure returned %d, want %d", n, want)
		}
	}
	locked := Start.Add(15 * time.Minute)
	view(t, s, func(tx coffer.ReadTx) error {
		got, err := tx.UserByID(bg, u.ID)
		if err != nil {
			return err
		}
		if !bytes.Equal(got.PayPasswordMAC, mac) || got.PayFailures != 3 {
			t.Errorf("after SetPayPassword and 3 failures: mac %x failures %d", got.PayPasswordMAC, got.PayFailures)
		}
		o, err := tx.UserByID(bg, other.ID)
		if err != nil {
			return err
		}
		if o.PayFailures != 0 || len(o.PayPasswordMAC) != 0 {
			t.Errorf("another user changed: %+v", o)
		}
		return nil
	})
	update(t, s, func(tx coffer.Tx) error { return tx.SetPayFailures(bg, u.ID, 0, locked) })
	view(t, s, func(tx coffer.ReadTx) error {
		got, err := tx.UserByID(bg, u.ID)
		if err != nil {
			return err
		}
		if got.PayFailures != 0 || !got.PayLockedUntil.Equal(locked) {
			t.Errorf("after SetPayFailures(0, %v): failures %d locked until %v", locked, got.PayFailures, got.PayLockedUntil)
		}
		return nil
	})
	update(t, s, func(tx coffer.Tx) error { return tx.SetPayFailures(bg, u.ID, 2, time.Time{}) })
	view(t, s, func(tx coffer.ReadTx) error {
		got, err := tx.UserByID(bg, u.ID)
		if err != nil {
			return err
		}
		if got.PayFailures != 2 || !got.PayLockedUntil.IsZero() {
			t.Errorf("after SetPayFailures(2, zero): failures %d locked until %v", got.PayFailures, got.PayLockedUntil)
		}
		return nil
	})
}

func testSessions(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 2)
	h1, h2, h3 := coffer.HashToken("token-one"), coffer.HashToken("token-two"), coffer.HashToken("token-three")
	update(t, s, func(tx coffer.Tx) error {
		if err := tx.CreateSession(bg, coffer.Session{TokenHash: h1, User: users[0].ID, CreatedAt: Start, LastSeenAt: Start}); err != nil {
			return err
		}
		return tx.CreateSession(bg, coffer.Session{TokenHash: h2, User: users[1].ID, CreatedAt: Start, LastSeenAt: Start.Add(time.Second)})
	})
	check := func(what string, hash []byte, user coffer.UserID, created, seen time.Time) {
		t.Helper()
		view(t, s, func(tx coffer.ReadTx) error {
			got, err := tx.Session(bg, hash)
			if err != nil {
				t.Errorf("%s: %v", what, err)
				return nil
			}
			if !bytes.Equal(got.TokenHash, hash) || got.User != user || !got.CreatedAt.Equal(created) || !got.LastSeenAt.Equal(seen) {
				t.Errorf("%s: session %+v, want user %d created %v seen %v", what, got, user, created, seen)
			}
			want := users[0]
			if user == users[1].ID {
				want = users[1]
			}
			profiled, p, err := tx.SessionProfile(bg, hash)
			if err != nil {
				t.Errorf("%s: SessionProfile: %v", what, err)
				return nil
			}
			shown := coffer.User{ID: want.ID, Username: want.Username, Email: want.Email, Mobile: want.Mobile, CardNum: want.CardNum}
			if !reflect.DeepEqual(profiled, got) || !reflect.DeepEqual(p, shown) {
				t.Errorf("%s: SessionProfile %+v, %+v; want %+v, %+v", what, profiled, p, got, shown)
			}
			return nil
		})
	}
	check("new session", h1, users[0].ID, Start, Start)
	check("second session", h2, users[1].ID, Start, Start.Add(time.Second))
	touched := Start.Add(5 * time.Minute)
	update(t, s, func(tx coffer.Tx) error { return tx.TouchSession(bg, h1, touched) })
	check("touched session", h1, users[0].ID, Start, touched)
	check("untouched session", h2, users[1].ID, Start, Start.Add(time.Second))
	view(t, s, func(tx coffer.ReadTx) error {
		_, err := tx.Session(bg, h3)
		wantCode(t, "unknown session", err, coffer.ErrUnauthorized)
		_, _, err = tx.SessionProfile(bg, h3)
		wantCode(t, "unknown session's profile", err, coffer.ErrUnauthorized)
		return nil
	})
	update(t, s, func(tx coffer.Tx) error { return tx.DeleteSession(bg, h1) })
	update(t, s, func(tx coffer.Tx) error { return tx.DeleteSession(bg, h3) }) // unknown: no error
	view(t, s, func(tx coffer.ReadTx) error {
		_, err := tx.Session(bg, h1)
		wantCode(t, "deleted session", err, coffer.ErrUnauthorized)
		return nil
	})
	check("other session after a delete", h2, users[1].ID, Start, Start.Add(time.Second))
}

func testAttempts(t *testing.T, s coffer.Store) {
	view(t, s, func(tx coffer.ReadTx) error {
		a, err := tx.Attempt(bg, "login:user:nobody")
		if err != nil || a != (coffer.Attempt{}) {
			t.Errorf("unknown attempt = %+v, %v; want the zero Attempt", a, err)
		}
		return nil
	})
	a := coffer.Attempt{Key: "login:user:alice", Failures: 3, WindowStart: Start, LockedUntil: Start.Add(time.Hour)}
	b := coffer.Attempt{Key: "login:addr:10.0.0.1", Failures: 1, WindowStart: Start.Add(time.Minute)}
	update(t, s, func(tx coffer.Tx) error {
		if err := tx.PutAttempt(bg, a); err != nil {
			return err
		}
		return tx.PutAttempt(bg, b)
	})
	check := func(what string, want coffer.Attempt) {
		t.Helper()
		view(t, s, func(tx coffer.ReadTx) error {
			got, err := tx.Attempt(bg, want.Key)
			if err != nil {
				return err
			}
			if got.Key != want.Key || got.Failures != want.Failures || !got.WindowStart.Equal(want.WindowStart) || !got.LockedUntil.Equal(want.LockedUntil) {
				t.Errorf("%s: %+v, want %+v", what, got, want)
			}
			return nil
		})
	}
	check("stored attempt", a)
	check("second attempt", b)
	a.Failures, a.LockedUntil, a.WindowStart = 4, time.Time{}, Start.Add(2*time.Minute)
	update(t, s, func(tx coffer.Tx) error { return tx.PutAttempt(bg, a) })
	check("overwritten attempt", a)
	update(t, s, func(tx coffer.Tx) error { return tx.DeleteAttempt(bg, a.Key) })
	view(t, s, func(tx coffer.ReadTx) error {
		got, err := tx.Attempt(bg, a.Key)
		if err != nil || got != (coffer.Attempt{}) {
			t.Errorf("deleted attempt = %+v, %v", got, err)
		}
		return nil
	})
	check("other attempt after a delete", b)

	// Counting and giving back: an attempt given back once its window has
	// ended frees nothing in the next window.
	const window = time.Minute
	var first, second coffer.Attempt
	update(t, s, func(tx coffer.Tx) (err error) {
		first, err = tx.CountAttempt(bg, "login:user:carol", Start, window)
		return err
	})
	update(t, s, func(tx coffer.Tx) error { return tx.UncountAttempt(bg, "login:user:carol", first.WindowStart) })
	check("an attempt given back in its window", coffer.Attempt{Key: "login:user:carol", Failures: 0, WindowStart: Start})
	update(t, s, func(tx coffer.Tx) (err error) {
		first, err = tx.CountAttempt(bg, "login:user:carol", Start.Add(time.Second), window)
		return err
	})
	update(t, s, func(tx coffer.Tx) (err error) {
		second, err = tx.CountAttempt(bg, "login:user:carol", Start.Add(2*window), window)
		return err
	})
	if second.Failures != 1 || !second.WindowStart.Equal(Start.Add(2*window)) {
		t.Errorf("count in a new window: %+v, want 1 failure from %s", second, Start.Add(2*window))
	}
	update(t, s, func(tx coffer.Tx) error { return tx.UncountAttempt(bg, "login:user:carol", first.WindowStart) })
	check("an attempt of the old window given back", coffer.Attempt{Key: "login:user:carol", Failures: 1, WindowStart: Start.Add(2 * window)})
}

func testIdempotency(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 2)
	rec := coffer.IdempotentRecord{User: users[0].ID, Key: "key-1", RequestHash: []byte{9, 8, 7}, Status: 200, Body: []byte("12.50"), CreatedAt: Start}
	view(t, s, func(tx coffer.ReadTx) error {
		_, found, err := tx.Idempotent(bg, rec.User, rec.Key)
		if err != nil || found {
			t.Errorf("unknown key: found %v, %v", found, err)
		}
		return nil
	})
	update(t, s, func(tx coffer.Tx) error { return tx.PutIdempotent(bg, rec) })
	other := rec
	other.User, other.Body, other.RequestHash = users[1].ID, []byte("1.00"), []byte{1}
	update(t, s, func(tx coffer.Tx) error { return tx.PutIdempotent(bg, other) }) // keys are scoped to the user
	for _, want := range []coffer.IdempotentRecord{rec, other} {
		view(t, s, func(tx coffer.ReadTx) error {
			got, found, err := tx.Idempotent(bg, want.User, want.Key)
			if err != nil || !found {
				t.Errorf("stored key of user %d: found %v, %v", want.User, found, err)
				return nil
			}
			if got.User != want.User || got.Key != want.Key || !bytes.Equal(got.RequestHash, want.RequestHash) ||
				got.Status != want.Status || !bytes.Equal(got.Body, want.Body) || !got.CreatedAt.Equal(want.CreatedAt) {
				t.Errorf("stored record %+v, want %+v", got, want)
			}
			return nil
		})
	}
	before := CountRows(t, s)
	dup := rec
	dup.RequestHash, dup.Body = []byte{0}, []byte("99.00")
	err := s.Update(bg, func(tx coffer.Tx) error { return tx.PutIdempotent(bg, dup) })
	wantCode(t, "duplicate key", err, coffer.ErrIdempotencyReuse)
	sameCounts(t, "duplicate key", before, CountRows(t, s))
	view(t, s, func(tx coffer.ReadTx) error {
		got, _, err := tx.Idempotent(bg, rec.User, rec.Key)
		if err != nil || string(got.Body) != "12.50" {
			t.Errorf("after a duplicate: body %q, %v; want the first answer", got.Body, err)
		}
		return nil
	})
}

// testIdempotencyBodyBalance stores records whose body is a card's
// balance, written by the store: it must read as Amount.String writes it.
func testIdempotencyBodyBalance(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 1)
	card := coffer.CardAccount(users[0].ID)
	var total int64
	for i, add := range []int64{0, 5, 5, 89, 1, 1, 999_899, 123_456_789, 99_876_543_211, 1, 99} {
		if add > 0 {
			Deposit(t, s, users[0].ID, add)
		}
		total += add
		rec := coffer.IdempotentRecord{User: users[0].ID, Key: fmt.Sprintf("balance-%d", i), RequestHash: []byte{1}, Status: 200, BodyBalanceOf: card, CreatedAt: Start}
		update(t, s, func(tx coffer.Tx) error { return tx.PutIdempotent(bg, rec) })
		view(t, s, func(tx coffer.ReadTx) error {
			got, found, err := tx.Idempotent(bg, rec.User, rec.Key)
			if want := coffer.Amount(total).String(); err != nil || !found || string(got.Body) != want {
				t.Errorf("record of balance %d: body %q (found %v, %v), want %q", total, got.Body, found, err, want)
			}
			return nil
		})
	}
	// An account not there, or not a user's: refused, nothing written.
	before := CountRows(t, s)
	for _, k := range []coffer.AccountKey{goldAccount(users[0].ID), cash} {
		err := s.Update(bg, func(tx coffer.Tx) error {
			return tx.PutIdempotent(bg, coffer.IdempotentRecord{User: users[0].ID, Key: "missing", RequestHash: []byte{1}, Status: 200, BodyBalanceOf: k, CreatedAt: Start})
		})
		if err == nil {
			t.Errorf("a record with the balance of %s, which is not there or not a user's: no error", k)
		}
	}
	sameCounts(t, "records of missing balances", before, CountRows(t, s))
}

// testPostLaterWithItsAnswer posts a transfer by PostLater with the record
// of its answer after it, as a payment does: the record holds the balance
// after the posting, and the Posted is complete once Update returned.
func testPostLaterWithItsAnswer(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 2)
	a, b := coffer.CardAccount(users[0].ID), coffer.CardAccount(users[1].ID)
	Deposit(t, s, users[0].ID, 100_00)
	before := CountRows(t, s)
	var p *coffer.Posted
	update(t, s, func(tx coffer.Tx) error {
		var err error
		if p, err = tx.PostLater(bg, &coffer.Transaction{User: users[0].ID, Kind: "test", CreatedAt: Start, Legs: []coffer.Leg{{From: a, To: b, Amount: 30_01}}}); err != nil {
			return err
		}
		return tx.PutIdempotent(bg, coffer.IdempotentRecord{User: users[0].ID, Key: "k", RequestHash: []byte{1}, Status: 200, BodyBalanceOf: a, CreatedAt: Start})
	})
	if p.ID == 0 || p.Balances[a] != 69_99 || p.Balances[b] != 30_01 || len(p.Balances) != 2 {
		t.Errorf("PostLater reported %+v once Update returned", p)
	}
	countDelta(t, "a transfer with its answer", before, CountRows(t, s), map[string]int64{"transactions": 1, "entries": 2, "idempotency": 1})
	view(t, s, func(tx coffer.ReadTx) error {
		got, _, err := tx.Idempotent(bg, users[0].ID, "k")
		if err != nil || string(got.Body) != "69.99" {
			t.Errorf("stored answer %q, %v; want the balance after the transfer, 69.99", got.Body, err)
		}
		return nil
	})
	// A failure after the posting leaves nothing of it.
	before = CountRows(t, s)
	err := s.Update(bg, func(tx coffer.Tx) error {
		if _, err := tx.PostLater(bg, &coffer.Transaction{User: users[0].ID, Kind: "test", CreatedAt: Start, Legs: []coffer.Leg{{From: a, To: b, Amount: 1_00}}}); err != nil {
			return err
		}
		return tx.PutIdempotent(bg, coffer.IdempotentRecord{User: users[0].ID, Key: "k", RequestHash: []byte{2}, Status: 200, BodyBalanceOf: a, CreatedAt: Start})
	})
	wantCode(t, "a key taken after the posting", err, coffer.ErrIdempotencyReuse)
	sameCounts(t, "a key taken after the posting", before, CountRows(t, s))
	if got := balance(t, s, a); got != 69_99 {
		t.Errorf("payer at %d after a failed payment, want 6999", got)
	}
	checkChain(t, "payer", bills(t, s, users[0].ID, coffer.KindCard, 0, 10))
	checkChain(t, "payee", bills(t, s, users[1].ID, coffer.KindCard, 0, 10))
	AssertLedger(t, s)
}

func testDeleteExpired(t *testing.T, s coffer.Store) {
	u := createUsers(t, s, 1, 1)[0]
	old, now := Start, Start.Add(30*24*time.Hour)
	oldSession, freshSession := coffer.HashToken("old"), coffer.HashToken("fresh")
	update(t, s, func(tx coffer.Tx) error {
		for _, err := range []error{
			tx.CreateSession(bg, coffer.Session{TokenHash: oldSession, User: u.ID, CreatedAt: old, LastSeenAt: old}),
			tx.CreateSession(bg, coffer.Session{TokenHash: freshSession, User: u.ID, CreatedAt: now, LastSeenAt: now}),
			tx.PutAttempt(bg, coffer.Attempt{Key: "old", Failures: 2, WindowStart: old}),
			tx.PutAttempt(bg, coffer.Attempt{Key: "fresh", Failures: 2, WindowStart: now}),
			tx.PutAttempt(bg, coffer.Attempt{Key: "locked", Failures: 0, WindowStart: old, LockedUntil: now.Add(time.Hour)}),
			tx.PutIdempotent(bg, coffer.IdempotentRecord{User: u.ID, Key: "old", RequestHash: []byte{1}, Status: 200, Body: []byte("1.00"), CreatedAt: old}),
			tx.PutIdempotent(bg, coffer.IdempotentRecord{User: u.ID, Key: "fresh", RequestHash: []byte{1}, Status: 200, Body: []byte("1.00"), CreatedAt: now}),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	update(t, s, func(tx coffer.Tx) error { return tx.DeleteExpired(bg, now) })
	view(t, s, func(tx coffer.ReadTx) error {
		_, err := tx.Session(bg, oldSession)
		wantCode(t, "session idle for 30 days", err, coffer.ErrUnauthorized)
		if _, err := tx.Session(bg, freshSession); err != nil {
			t.Errorf("fresh session deleted: %v", err)
		}
		for key, kept := range map[string]bool{"old": false, "fresh": true, "locked": true} {
			a, err := tx.Attempt(bg, key)
			if err != nil {
				return err
			}
			if (a.Key != "") != kept {
				t.Errorf("attempt %q kept = %v, want %v", key, a.Key != "", kept)
			}
		}
		for key, kept := range map[string]bool{"old": false, "fresh": true} {
			_, found, err := tx.Idempotent(bg, u.ID, key)
			if err != nil {
				return err
			}
			if found != kept {
				t.Errorf("idempotency key %q kept = %v, want %v", key, found, kept)
			}
		}
		return nil
	})
}

// Ledger.

func testPostBalancesAndEntries(t *testing.T, s coffer.Store, by poster) {
	post := func(t testing.TB, s coffer.Store, at time.Time, legs ...coffer.Leg) coffer.Posted {
		t.Helper()
		return postBy(t, s, by, at, legs...)
	}
	deposit := func(t testing.TB, s coffer.Store, user coffer.UserID, amount int64) coffer.Posted {
		t.Helper()
		return post(t, s, Start, coffer.Leg{From: cash, To: coffer.CardAccount(user), Amount: amount, FromMethod: coffer.MethodDeposit, ToMethod: coffer.MethodDeposit, FromDetails: "cash in", ToDetails: "cash in"})
	}
	users := createUsers(t, s, 1, 2)
	a, b := users[0].ID, users[1].ID
	before := CountRows(t, s)
	p := deposit(t, s, a, 100_00)
	if p.ID == 0 {
		t.Error("Post returned transaction id 0")
	}
	if p.Balances[coffer.CardAccount(a)] != 100_00 || p.Balances[cash] != -100_00 || len(p.Balances) != 2 {
		t.Errorf("deposit reported balances %v", p.Balances)
	}
	countDelta(t, "deposit", before, CountRows(t, s), map[string]int64{"transactions": 1, "entries": 2, "accounts": 1})
	if got := balance(t, s, cash); got != -100_00 {
		t.Errorf("system cash account created on demand at %d, want -10000", got)
	}
	at := Start.Add(time.Minute)
	p2 := post(t, s, at, coffer.Leg{From: coffer.CardAccount(a), To: coffer.CardAccount(b), Amount: 30_00,
		FromMethod: coffer.MethodTransferOut, ToMethod: coffer.MethodTransferIn, FromDetails: "to b", ToDetails: "from a"})
	if p2.ID <= p.ID {
		t.Errorf("second transaction id %d not after first %d", p2.ID, p.ID)
	}
	if p2.Balances[coffer.CardAccount(a)] != 70_00 || p2.Balances[coffer.CardAccount(b)] != 30_00 {
		t.Errorf("transfer reported balances %v", p2.Balances)
	}
	if got := balance(t, s, coffer.CardAccount(a)); got != 70_00 {
		t.Errorf("payer balance %d, want 7000", got)
	}
	if got := balance(t, s, coffer.CardAccount(b)); got != 30_00 {
		t.Errorf("payee balance %d, want 3000", got)
	}
	if got := balance(t, s, coffer.AccountKey{User: a, Kind: coffer.KindGold, Asset: coffer.AssetGold}); got != 0 {
		t.Errorf("account never credited: balance %d", got)
	}
	ba := bills(t, s, a, coffer.KindCard, 0, 10)
	want := []coffer.Bill{
		{Date: at, Amount: -30_00, BalanceAfter: 70_00, Method: coffer.MethodTransferOut, Details: "to b"},
		{Date: Start, Amount: 100_00, BalanceAfter: 100_00, Method: coffer.MethodDeposit, Details: "cash in"},
	}
	sameBills(t, "payer's bills", ba, want)
	sameBills(t, "payee's bills", bills(t, s, b, coffer.KindCard, 0, 10), []coffer.Bill{
		{Date: at, Amount: 30_00, BalanceAfter: 30_00, Method: coffer.MethodTransferIn, Details: "from a"},
	})

	// One transaction touching the same accounts several times: the
	// entries chain through the transaction.
	p3 := post(t, s, at, coffer.Leg{From: coffer.CardAccount(a), To: coffer.CardAccount(b), Amount: 10_00, FromMethod: "x1", ToMethod: "y1"},
		coffer.Leg{From: coffer.CardAccount(b), To: coffer.CardAccount(a), Amount: 4_00, FromMethod: "x2", ToMethod: "y2"},
		coffer.Leg{From: cash, To: coffer.CardAccount(a), Amount: 1_00, FromMethod: "x3", ToMethod: "y3"})
	if p3.Balances[coffer.CardAccount(a)] != 65_00 || p3.Balances[coffer.CardAccount(b)] != 36_00 || p3.Balances[cash] != -101_00 {
		t.Errorf("three-leg transaction reported %v", p3.Balances)
	}
	ba = bills(t, s, a, coffer.KindCard, 0, 10)
	sameBills(t, "bills of a three-leg transaction", ba[:3], []coffer.Bill{
		{Date: at, Amount: 1_00, BalanceAfter: 65_00, Method: "y3"},
		{Date: at, Amount: 4_00, BalanceAfter: 64_00, Method: "y2"},
		{Date: at, Amount: -10_00, BalanceAfter: 60_00, Method: "x1"},
	})
	checkChain(t, "payer", ba)
	checkChain(t, "payee", bills(t, s, b, coffer.KindCard, 0, 10))
	AssertLedger(t, s)
}

// sameBills compares bills without their ids.
func sameBills(t testing.TB, what string, got, want []coffer.Bill) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d bills %+v, want %d", what, len(got), got, len(want))
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Amount != w.Amount || g.BalanceAfter != w.BalanceAfter || g.Method != w.Method || g.Details != w.Details || !g.Date.Equal(w.Date) {
			t.Errorf("%s: bill %d = %+v, want %+v", what, i, g, w)
		}
	}
}

func testPostShortfall(t *testing.T, s coffer.Store, by poster) {
	users := createUsers(t, s, 1, 3)
	a, b := users[0].ID, users[1].ID
	Deposit(t, s, a, 50_00)
	post(t, s, Start, coffer.Leg{From: coffer.CardAccount(a), To: wealthAccount(a, "demand", 0), Amount: 10_00})
	keys := []coffer.AccountKey{coffer.CardAccount(a), coffer.CardAccount(b), cash, carrier, wealthAccount(a, "demand", 0), goldAccount(a), goldDesk}
	snapshot := func() map[coffer.AccountKey]int64 {
		m := map[coffer.AccountKey]int64{}
		for _, k := range keys {
			m[k] = balance(t, s, k)
		}
		return m
	}
	cases := []struct {
		name string
		legs []coffer.Leg
		code coffer.Code
	}{
		{"card overdrawn by one fen", []coffer.Leg{{From: coffer.CardAccount(a), To: coffer.CardAccount(b), Amount: 40_01}}, coffer.ErrInsufficientFunds},
		{"holding over-redeemed", []coffer.Leg{{From: wealthAccount(a, "demand", 0), To: coffer.CardAccount(a), Amount: 10_01, ShortfallCode: coffer.ErrInsufficientHold}}, coffer.ErrInsufficientHold},
		{"account never credited", []coffer.Leg{{From: goldAccount(a), To: goldDesk, Amount: 1, ShortfallCode: coffer.ErrInsufficientHold}}, coffer.ErrInsufficientHold},
		{"second leg short after a first that fits", []coffer.Leg{
			{From: coffer.CardAccount(a), To: carrier, Amount: 5_00},
			{From: coffer.CardAccount(b), To: carrier, Amount: 1},
		}, coffer.ErrInsufficientFunds},
		{"one leg fits, the next overdraws the same account", []coffer.Leg{
			{From: coffer.CardAccount(a), To: coffer.CardAccount(b), Amount: 30_00},
			{From: coffer.CardAccount(a), To: carrier, Amount: 10_01, ShortfallCode: coffer.ErrInsufficientHold},
		}, coffer.ErrInsufficientHold},
		{"gold sale of gold not held", []coffer.Leg{
			{From: goldAccount(a), To: goldDesk, Amount: 1000, ShortfallCode: coffer.ErrInsufficientHold},
			{From: coffer.SystemAccount(coffer.KindGoldDesk, coffer.AssetCNY), To: coffer.CardAccount(a), Amount: 560_00},
		}, coffer.ErrInsufficientHold},
	}
	for _, c := range cases {
		before, balances := CountRows(t, s), snapshot()
		err := s.Update(bg, func(tx coffer.Tx) error {
			_, err := by(tx, &coffer.Transaction{User: a, Kind: "test", Legs: c.legs, CreatedAt: Start})
			return err
		})
		wantCode(t, c.name, err, c.code)
		sameCounts(t, c.name, before, CountRows(t, s))
		if after := snapshot(); !maps.Equal(balances, after) {
			t.Errorf("%s changed balances: %v -> %v", c.name, balances, after)
		}
	}
	// The boundary: exactly the whole balance goes.
	p := postBy(t, s, by, Start, coffer.Leg{From: coffer.CardAccount(a), To: coffer.CardAccount(b), Amount: 40_00})
	if p.Balances[coffer.CardAccount(a)] != 0 {
		t.Errorf("after paying the whole balance: %d", p.Balances[coffer.CardAccount(a)])
	}
	// System accounts go negative freely.
	postBy(t, s, by, Start, coffer.Leg{From: goldDesk, To: goldAccount(users[2].ID), Amount: 1234})
	if got := balance(t, s, goldDesk); got != -1234 {
		t.Errorf("gold desk at %d, want -1234", got)
	}
	AssertLedger(t, s)
}

func testPostInvalid(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 2)
	a, b := coffer.CardAccount(users[0].ID), coffer.CardAccount(users[1].ID)
	Deposit(t, s, users[0].ID, 100_00)
	many := make([]coffer.Leg, coffer.MaxLegs+1)
	for i := range many {
		many[i] = coffer.Leg{From: cash, To: a, Amount: 1}
	}
	cases := map[string][]coffer.Leg{
		"no legs":         nil,
		"zero amount":     {{From: a, To: b, Amount: 0}},
		"negative amount": {{From: a, To: b, Amount: -5_00}},
		"to itself":       {{From: a, To: a, Amount: 1_00}},
		"mixed assets":    {{From: goldAccount(users[0].ID), To: b, Amount: 1}},
		"too many legs":   many,
		"valid then invalid": {
			{From: cash, To: b, Amount: 1_00},
			{From: b, To: a, Amount: -1},
		},
	}
	for name, legs := range cases {
		before := CountRows(t, s)
		err := s.Update(bg, func(tx coffer.Tx) error {
			_, err := tx.Post(bg, &coffer.Transaction{Kind: "test", Legs: legs, CreatedAt: Start})
			return err
		})
		if err == nil {
			t.Errorf("%s: posted", name)
		}
		sameCounts(t, name, before, CountRows(t, s))
	}
	if got := balance(t, s, b); got != 0 {
		t.Errorf("invalid transactions moved money: payee at %d", got)
	}
	AssertLedger(t, s)
}

func testUpdateRollback(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 2)
	Deposit(t, s, users[0].ID, 100_00)
	before := CountRows(t, s)
	boom := errors.New("boom after writing")
	err := s.Update(bg, func(tx coffer.Tx) error {
		if err := tx.CreateUser(bg, testUser(3)); err != nil {
			return err
		}
		if _, err := tx.Post(bg, &coffer.Transaction{Kind: "test", CreatedAt: Start, Legs: []coffer.Leg{
			{From: coffer.CardAccount(users[0].ID), To: coffer.CardAccount(users[1].ID), Amount: 60_00},
			{From: cash, To: carrier, Amount: 1},
		}}); err != nil {
			return err
		}
		if _, err := tx.CreateLot(bg, users[0].ID, "fixed90", "2027-02-21"); err != nil {
			return err
		}
		for _, err := range []error{
			tx.PutAttempt(bg, coffer.Attempt{Key: "k", Failures: 1, WindowStart: Start}),
			tx.CreateSession(bg, coffer.Session{TokenHash: []byte("h"), User: users[0].ID, CreatedAt: Start, LastSeenAt: Start}),
			tx.PutIdempotent(bg, coffer.IdempotentRecord{User: users[0].ID, Key: "k", RequestHash: []byte{1}, Status: 200, Body: []byte("x"), CreatedAt: Start}),
			tx.AddDailySpend(bg, users[0].ID, "2026-11-23", 10, 100),
			tx.SetGoldQuote(bg, coffer.GoldQuote{Price: 1, UpdatedAt: Start}),
			tx.PutFund(bg, coffer.Fund{Code: "X", Name: "x", NAV: 1, NAVDate: "2026-11-23"}),
			tx.PutWealthProduct(bg, coffer.WealthProduct{Kind: "x", Name: "x", MinAmount: 1}),
			tx.SetPayPassword(bg, users[1].ID, []byte("mac")),
		} {
			if err != nil {
				return err
			}
		}
		// The writes are visible inside the transaction.
		if b, err := tx.Balance(bg, coffer.CardAccount(users[1].ID)); err != nil || b != 60_00 {
			t.Errorf("inside the transaction: payee balance %d, %v", b, err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("Update returned %v, want fn's error", err)
	}
	sameCounts(t, "rolled-back Update", before, CountRows(t, s))
	if got := balance(t, s, coffer.CardAccount(users[0].ID)); got != 100_00 {
		t.Errorf("payer at %d after rollback", got)
	}
	view(t, s, func(tx coffer.ReadTx) error {
		u, err := tx.UserByID(bg, users[1].ID)
		if err != nil {
			return err
		}
		if len(u.PayPasswordMAC) != 0 {
			t.Error("rolled-back SetPayPassword kept")
		}
		return nil
	})
	// The store still works after a rollback.
	Deposit(t, s, users[1].ID, 1_00)
	if got := balance(t, s, coffer.CardAccount(users[1].ID)); got != 1_00 {
		t.Errorf("deposit after a rollback: %d", got)
	}
	AssertLedger(t, s)
}

func testCreateLot(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 2)
	a, b := users[0].ID, users[1].ID
	lot := func(user coffer.UserID, product, matures string) coffer.AccountKey {
		t.Helper()
		var k coffer.AccountKey
		update(t, s, func(tx coffer.Tx) error {
			var err error
			k, err = tx.CreateLot(bg, user, product, matures)
			return err
		})
		return k
	}
	got := []coffer.AccountKey{
		lot(a, "fixed90", "2027-02-21"),
		lot(a, "fixed90", "2027-02-22"),
		lot(a, "fixed365", "2027-11-23"),
		lot(b, "fixed90", "2027-02-21"),
	}
	var inOne []coffer.AccountKey
	update(t, s, func(tx coffer.Tx) error {
		for range 2 {
			k, err := tx.CreateLot(bg, a, "fixed90", "2027-03-01")
			if err != nil {
				return err
			}
			inOne = append(inOne, k)
		}
		return nil
	})
	got = append(got, inOne...)
	want := []coffer.AccountKey{
		wealthAccount(a, "fixed90", 1), wealthAccount(a, "fixed90", 2), wealthAccount(a, "fixed365", 1),
		wealthAccount(b, "fixed90", 1), wealthAccount(a, "fixed90", 3), wealthAccount(a, "fixed90", 4),
	}
	if !slices.Equal(got, want) {
		t.Errorf("lots:\n got %v\nwant %v", got, want)
	}
	// A purchase into a lot, and a demand holding of the same product
	// family, keep their numbers apart.
	Deposit(t, s, a, 5000_00)
	post(t, s, Start, coffer.Leg{From: coffer.CardAccount(a), To: want[0], Amount: 1000_00})
	post(t, s, Start, coffer.Leg{From: coffer.CardAccount(a), To: wealthAccount(a, "demand", 0), Amount: 10_00})
	if k := lot(a, "fixed90", "2027-03-02"); k != wealthAccount(a, "fixed90", 5) {
		t.Errorf("lot after purchases = %v", k)
	}
	var holdings []coffer.Holding
	view(t, s, func(tx coffer.ReadTx) error {
		var err error
		holdings, err = tx.Holdings(bg, a)
		return err
	})
	matures := map[coffer.AccountKey]string{}
	for _, h := range holdings {
		matures[h.Key] = h.MaturesOn
	}
	for k, want := range map[coffer.AccountKey]string{want[0]: "2027-02-21", want[1]: "2027-02-22", want[2]: "2027-11-23", wealthAccount(a, "demand", 0): ""} {
		if got, ok := matures[k]; !ok || got != want {
			t.Errorf("holding %v matures %q (present %v), want %q", k, got, ok, want)
		}
	}
	if got := balance(t, s, want[0]); got != 1000_00 {
		t.Errorf("lot 1 balance %d", got)
	}
	AssertLedger(t, s)
}

func testAddDailySpend(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 2)
	a, b := users[0].ID, users[1].ID
	const limit = coffer.Amount(100_00)
	add := func(user coffer.UserID, day string, amount coffer.Amount) error {
		return s.Update(bg, func(tx coffer.Tx) error { return tx.AddDailySpend(bg, user, day, amount, limit) })
	}
	steps := []struct {
		user   coffer.UserID
		day    string
		amount coffer.Amount
		code   coffer.Code
	}{
		{a, "2026-11-23", 60_00, ""},
		{a, "2026-11-23", 50_00, coffer.ErrLimitDaily}, // 110.00 > 100.00: refused, not counted
		{a, "2026-11-23", 40_00, ""},                   // exactly the limit
		{a, "2026-11-23", 1, coffer.ErrLimitDaily},
		{a, "2026-11-24", 100_00, ""}, // a new day
		{b, "2026-11-23", 100_00, ""}, // another user
		{b, "2026-11-25", 100_01, coffer.ErrLimitDaily},
		{b, "2026-11-25", 100_00, ""},
	}
	for i, st := range steps {
		wantCode(t, fmt.Sprintf("step %d: user %d adds %s on %s", i, st.user, st.amount, st.day), add(st.user, st.day, st.amount), st.code)
	}
	// A spend past the limit in a transaction that also posts, before it
	// (as a payment does) or after it: nothing is posted. (Regression: a
	// spend held back to go with the next statement "failed" by changing
	// no row, which PostgreSQL did not see as a failure; carried by
	// COMMIT, it left the posting committed.)
	Deposit(t, s, a, 500_00)
	transfer := &coffer.Transaction{Kind: "test", CreatedAt: Start, Legs: []coffer.Leg{
		{From: coffer.CardAccount(a), To: coffer.CardAccount(b), Amount: 1, FromMethod: coffer.MethodTransferOut, ToMethod: coffer.MethodTransferIn},
	}}
	for _, spendFirst := range []bool{true, false} {
		before := CountRows(t, s)
		err := s.Update(bg, func(tx coffer.Tx) error {
			if !spendFirst {
				if _, err := tx.Post(bg, transfer); err != nil {
					return err
				}
			}
			if err := tx.AddDailySpend(bg, a, "2026-11-23", 1, limit); err != nil || !spendFirst {
				return err
			}
			_, err := tx.Post(bg, transfer)
			return err
		})
		name := fmt.Sprintf("a spend past the limit (spend first: %v)", spendFirst)
		wantCode(t, name, err, coffer.ErrLimitDaily)
		if after := CountRows(t, s); !maps.Equal(before, after) {
			t.Errorf("%s: rows %v after, %v before", name, after, before)
		}
		if got := balance(t, s, coffer.CardAccount(a)); got != 500_00 {
			t.Errorf("%s: payer's card %d, want 50000", name, got)
		}
	}
}

// testLockPayable: LockPayable refuses a payment of a locked user with
// ErrPayLocked, whichever call of the transaction the store reports it
// from, and nothing of the transaction is committed; the lock ends at its
// instant, to the millisecond.
func testLockPayable(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 2)
	a, b := users[0].ID, users[1].ID
	Deposit(t, s, a, 100_00)
	lockedUntil := Start.Add(15 * time.Minute)
	update(t, s, func(tx coffer.Tx) error { return tx.SetPayFailures(bg, a, 0, lockedUntil) })
	pay := func(now time.Time) error {
		return s.Update(bg, func(tx coffer.Tx) error {
			if err := tx.LockPayable(bg, a, now); err != nil {
				return err
			}
			_, err := tx.Post(bg, &coffer.Transaction{Kind: "test", CreatedAt: now, Legs: []coffer.Leg{
				{From: coffer.CardAccount(a), To: coffer.CardAccount(b), Amount: 1, FromMethod: coffer.MethodTransferOut, ToMethod: coffer.MethodTransferIn},
			}})
			return err
		})
	}
	for _, c := range []struct {
		name string
		now  time.Time
		code coffer.Code
	}{
		{"while locked", Start, coffer.ErrPayLocked},
		{"at the lock's last millisecond", lockedUntil.Add(-time.Millisecond), coffer.ErrPayLocked},
		{"a microsecond before the lock ends", lockedUntil.Add(-time.Microsecond), coffer.ErrPayLocked},
		{"as the lock ends", lockedUntil, ""},
	} {
		before := CountRows(t, s)
		err := pay(c.now)
		wantCode(t, c.name, err, c.code)
		if after := CountRows(t, s); c.code != "" && !maps.Equal(before, after) {
			t.Errorf("%s: rows %v after, %v before", c.name, after, before)
		}
	}
	if got := balance(t, s, coffer.CardAccount(a)); got != 100_00-1 {
		t.Errorf("payer's card %d, want 9999: one payment went through", got)
	}
	// Alone in its transaction: the store may carry it with the commit.
	err := s.Update(bg, func(tx coffer.Tx) error { return tx.LockPayable(bg, a, Start) })
	wantCode(t, "LockPayable alone, while locked", err, coffer.ErrPayLocked)
	AssertLedger(t, s)
}

// testLockPayableHoldsTheRow: the row LockPayable takes stays held until
// its transaction ends, as LockUser's does, so that a wrong guess counted
// meanwhile waits for the payment and is decided after it.
func testLockPayableHoldsTheRow(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 1)
	a := users[0].ID
	taken := make(chan struct{})
	var holderDone atomic.Bool
	holder := make(chan error, 1)
	go func() {
		holder <- s.Update(bg, func(tx coffer.Tx) error {
			if err := tx.LockPayable(bg, a, Start); err != nil {
				return err
			}
			if _, err := tx.Balance(bg, coffer.CardAccount(a)); err != nil { // sends what was held back
				return err
			}
			close(taken)
			time.Sleep(200 * time.Millisecond)
			holderDone.Store(true)
			return nil
		})
	}()
	select {
	case <-taken:
	case err := <-holder:
		t.Fatalf("the holding transaction ended early: %v", err)
	}
	update(t, s, func(tx coffer.Tx) error {
		_, err := tx.LockUser(bg, a)
		if err == nil && !holderDone.Load() {
			t.Errorf("LockUser got the row while LockPayable's transaction held it")
		}
		return err
	})
	if err := <-holder; err != nil {
		t.Errorf("holding transaction: %v", err)
	}
}

// testLockPayableMeetsALockSetMeanwhile: a payment whose LockPayable
// waits for the row while a fifth wrong password locks payments is
// decided on the row as the lock left it: refused, nothing written.
func testLockPayableMeetsALockSetMeanwhile(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 2)
	a, b := users[0].ID, users[1].ID
	Deposit(t, s, a, 100_00)
	before := CountRows(t, s) // the lock adds no row
	taken := make(chan struct{})
	locker := make(chan error, 1)
	var lockerDone atomic.Bool
	go func() {
		locker <- s.Update(bg, func(tx coffer.Tx) error {
			if _, err := tx.LockUser(bg, a); err != nil {
				return err
			}
			close(taken)
			time.Sleep(200 * time.Millisecond) // the payment below waits for the row meanwhile
			lockerDone.Store(true)
			return tx.SetPayFailures(bg, a, 0, Start.Add(15*time.Minute))
		})
	}()
	select {
	case <-taken:
	case err := <-locker:
		t.Fatalf("the locking transaction ended early: %v", err)
	}
	if lockerDone.Load() {
		// Not the case this test is for: it would only repeat testLockPayable.
		t.Fatal("the payment could not start while the row was held (the machine stalled for 200 ms)")
	}
	err := s.Update(bg, func(tx coffer.Tx) error {
		if err := tx.LockPayable(bg, a, Start); err != nil {
			return err
		}
		_, err := tx.Post(bg, &coffer.Transaction{Kind: "test", CreatedAt: Start, Legs: []coffer.Leg{
			{From: coffer.CardAccount(a), To: coffer.CardAccount(b), Amount: 1, FromMethod: coffer.MethodTransferOut, ToMethod: coffer.MethodTransferIn},
		}})
		return err
	})
	if lerr := <-locker; lerr != nil {
		t.Fatalf("locking transaction: %v", lerr)
	}
	wantCode(t, "a payment that waited for the row while payments were locked", err, coffer.ErrPayLocked)
	if after := CountRows(t, s); !maps.Equal(before, after) {
		t.Errorf("rows %v after, %v before", after, before)
	}
}

// testClearPayFailures: ClearPayFailures ends a row of wrong passwords and
// its lock, and leaves a user without failures as it was, lock included.
func testClearPayFailures(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 3)
	a, b, c := users[0].ID, users[1].ID, users[2].ID
	lockedUntil := Start.Add(15 * time.Minute)
	update(t, s, func(tx coffer.Tx) error {
		for range 3 {
			if _, err := tx.AddPayFailure(bg, a); err != nil {
				return err
			}
		}
		if err := tx.SetPayFailures(bg, b, 2, lockedUntil); err != nil {
			return err
		}
		return tx.SetPayFailures(bg, c, 0, lockedUntil) // locked, the count reset when it locked
	})
	update(t, s, func(tx coffer.Tx) error {
		for _, u := range []coffer.UserID{a, b, c} {
			if err := tx.ClearPayFailures(bg, u); err != nil {
				return err
			}
		}
		return nil
	})
	for _, want := range []struct {
		user        coffer.UserID
		failures    int
		lockedUntil time.Time
	}{{a, 0, time.Time{}}, {b, 0, time.Time{}}, {c, 0, lockedUntil}} {
		var u coffer.User
		if err := s.View(bg, func(tx coffer.ReadTx) error {
			var err error
			u, err = tx.UserByID(bg, want.user)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if u.PayFailures != want.failures || !u.PayLockedUntil.Equal(want.lockedUntil) {
			t.Errorf("user %d: %d failures, locked until %v; want %d, %v", want.user, u.PayFailures, u.PayLockedUntil, want.failures, want.lockedUntil)
		}
	}
}

func testBillsPaging(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 2)
	a, b := users[0].ID, users[1].ID
	const n = 45
	var amounts []int64
	for i := range n {
		amt := int64(i*137%1000 + 1)
		at := Start.Add(time.Duration(i) * time.Minute)
		post(t, s, at, coffer.Leg{From: cash, To: coffer.CardAccount(a), Amount: amt, ToMethod: coffer.MethodDeposit, ToDetails: "d" + strconv.Itoa(i)})
		amounts = append(amounts, amt)
		if i%3 == 0 { // interleave another user's and another kind's entries
			post(t, s, at, coffer.Leg{From: cash, To: coffer.CardAccount(b), Amount: 1})
			post(t, s, at, coffer.Leg{From: coffer.CardAccount(a), To: wealthAccount(a, "demand", 0), Amount: 1, FromMethod: coffer.MethodMoneyManagement})
			amounts = append(amounts, -1)
		}
	}
	var walked []coffer.Bill
	var before int64
	var sizes []int
	for {
		page := bills(t, s, a, coffer.KindCard, before, 20)
		sizes = append(sizes, len(page))
		walked = append(walked, page...)
		if len(page) < 20 {
			break
		}
		before = page[len(page)-1].ID
		if len(sizes) > 10 {
			t.Fatal("cursor walk does not end")
		}
	}
	total := len(amounts) // 45 deposits + 15 purchases
	if !slices.Equal(sizes, []int{20, 20, 20, 0}) && !slices.Equal(sizes, []int{20, 20, 20}) {
		t.Errorf("page sizes %v for %d bills", sizes, total)
	}
	if len(walked) != total {
		t.Fatalf("walk returned %d bills, want %d", len(walked), total)
	}
	seen := map[int64]bool{}
	var running int64
	for i := range walked {
		w := walked[len(walked)-1-i] // oldest first
		if seen[w.ID] {
			t.Errorf("bill %d returned twice", w.ID)
		}
		seen[w.ID] = true
		running += amounts[i]
		if w.Amount != amounts[i] || w.BalanceAfter != running {
			t.Errorf("bill %d (oldest first) = amount %d balance %d, want %d, %d", i, w.Amount, w.BalanceAfter, amounts[i], running)
		}
	}
	checkChain(t, "card statement", walked)
	if first := walked[len(walked)-1]; first.Details != "d0" || !first.Date.Equal(Start) || first.Method != coffer.MethodDeposit {
		t.Errorf("oldest bill %+v", first)
	}
	// Other users and kinds are not mixed in.
	if got := allBills(t, s, b, coffer.KindCard, 7); len(got) != 15 {
		t.Errorf("other user has %d bills, want 15", len(got))
	}
	w := allBills(t, s, a, coffer.KindWealth, 4)
	if len(w) != 15 {
		t.Errorf("wealth statement has %d bills, want 15", len(w))
	}
	checkChain(t, "wealth statement", w)
	if got := bills(t, s, a, coffer.KindGold, 0, 20); len(got) != 0 {
		t.Errorf("gold statement of a user without gold: %v", got)
	}
	// A page starting in the middle.
	mid := walked[9].ID
	page := bills(t, s, a, coffer.KindCard, mid, 5)
	if len(page) != 5 || page[0].ID != walked[10].ID || page[4].ID != walked[14].ID {
		t.Errorf("page before id %d starts at %v", mid, page)
	}
	AssertLedger(t, s)
}

func testWealthBills(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 2)
	a, b := users[0].ID, users[1].ID
	Deposit(t, s, a, 100_000_00)
	Deposit(t, s, b, 100_000_00)
	var lot90, lot365, lotB coffer.AccountKey
	update(t, s, func(tx coffer.Tx) error {
		var err error
		if lot90, err = tx.CreateLot(bg, a, "fixed90", "2027-02-21"); err != nil {
			return err
		}
		if lot365, err = tx.CreateLot(bg, a, "fixed365", "2027-11-23"); err != nil {
			return err
		}
		lotB, err = tx.CreateLot(bg, b, "fixed90", "2027-02-21")
		return err
	})
	card, demand := coffer.CardAccount(a), wealthAccount(a, "demand", 0)
	type step struct {
		legs    []coffer.Leg
		entries []int64 // the signed changes of a's wealth, in leg order
	}
	leg := func(from, to coffer.AccountKey, amount int64, method coffer.Method) coffer.Leg {
		return coffer.Leg{From: from, To: to, Amount: amount, FromMethod: method, ToMethod: method}
	}
	steps := []step{
		{[]coffer.Leg{leg(card, demand, 100_00, coffer.MethodMoneyManagement)}, []int64{100_00}},
		{[]coffer.Leg{leg(card, lot90, 1000_00, coffer.MethodMoneyManagement)}, []int64{1000_00}},
		{[]coffer.Leg{leg(coffer.CardAccount(b), lotB, 5000_00, coffer.MethodMoneyManagement)}, nil},
		{[]coffer.Leg{leg(card, lot365, 5000_00, coffer.MethodMoneyManagement)}, []int64{5000_00}},
		{[]coffer.Leg{leg(demand, card, 30_00, coffer.MethodRedeem)}, []int64{-30_00}},
		// Two wealth accounts of a in one transaction, and b's beside them.
		{[]coffer.Leg{
			leg(card, demand, 7_00, coffer.MethodMoneyManagement),
			leg(coffer.CardAccount(b), wealthAccount(b, "demand", 0), 3_00, coffer.MethodMoneyManagement),
			leg(lot90, card, 1000_00, coffer.MethodMaturity),
		}, []int64{7_00, -1000_00}},
		{[]coffer.Leg{leg(coffer.SystemAccount(coffer.KindInterest, coffer.AssetCNY), demand, 1, coffer.MethodInterest)}, []int64{1}},
	}
	var want []coffer.Bill // oldest first
	var total int64
	for _, st := range steps {
		post(t, s, Start, st.legs...)
		for _, e := range st.entries {
			total += e
			want = append(want, coffer.Bill{Amount: e, BalanceAfter: total})
		}
	}
	got := allBills(t, s, a, coffer.KindWealth, 3)
	if len(got) != len(want) {
		t.Fatalf("wealth statement has %d bills, want %d: %+v", len(got), len(want), got)
	}
	for i := range got {
		g, w := got[i], want[len(want)-1-i]
		if g.Amount != w.Amount || g.BalanceAfter != w.BalanceAfter {
			t.Errorf("wealth bill %d (newest first) = %d / %d, want %d / %d", i, g.Amount, g.BalanceAfter, w.Amount, w.BalanceAfter)
		}
	}
	checkChain(t, "wealth statement", got)
	wantTotal := balance(t, s, demand) + balance(t, s, lot90) + balance(t, s, lot365)
	if got[0].BalanceAfter != wantTotal || total != wantTotal {
		t.Errorf("newest wealth bill shows %d, holdings sum to %d (model %d)", got[0].BalanceAfter, wantTotal, total)
	}
	gb := allBills(t, s, b, coffer.KindWealth, 10)
	if len(gb) != 2 || gb[0].BalanceAfter != 5003_00 {
		t.Errorf("other user's wealth statement %+v", gb)
	}
	AssertLedger(t, s)
}

func testHoldings(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 2)
	a, b := users[0].ID, users[1].ID
	Deposit(t, s, a, 10_000_00)
	Deposit(t, s, b, 1_00)
	var lot coffer.AccountKey
	update(t, s, func(tx coffer.Tx) error {
		var err error
		lot, err = tx.CreateLot(bg, a, "fixed90", "2027-02-21")
		return err
	})
	fundDesk := coffer.AccountKey{Kind: coffer.KindFundDesk, Asset: coffer.FundAsset("000001"), Product: "000001"}
	post(t, s, Start,
		coffer.Leg{From: coffer.CardAccount(a), To: wealthAccount(a, "demand", 0), Amount: 100_00},
		coffer.Leg{From: coffer.CardAccount(a), To: lot, Amount: 1000_00},
		coffer.Leg{From: coffer.CardAccount(a), To: coffer.SystemAccount(coffer.KindGoldDesk, coffer.AssetCNY), Amount: 560_00},
		coffer.Leg{From: goldDesk, To: goldAccount(a), Amount: 1000},
		coffer.Leg{From: fundDesk, To: fundAccount(a, "000001"), Amount: 8100_0000},
	)
	var got []coffer.Holding
	view(t, s, func(tx coffer.ReadTx) error {
		var err error
		got, err = tx.Holdings(bg, a)
		return err
	})
	want := []coffer.Holding{
		{Key: coffer.CardAccount(a), Balance: 10_000_00 - 100_00 - 1000_00 - 560_00},
		{Key: wealthAccount(a, "demand", 0), Balance: 100_00},
		{Key: lot, Balance: 1000_00, MaturesOn: "2027-02-21"},
		{Key: goldAccount(a), Balance: 1000},
		{Key: fundAccount(a, "000001"), Balance: 8100_0000},
	}
	byKey := func(h []coffer.Holding) map[coffer.AccountKey]coffer.Holding {
		m := map[coffer.AccountKey]coffer.Holding{}
		for _, x := range h {
			if _, dup := m[x.Key]; dup {
				t.Errorf("holding %v listed twice", x.Key)
			}
			m[x.Key] = x
		}
		return m
	}
	if g, w := byKey(got), byKey(want); !maps.Equal(g, w) {
		t.Errorf("holdings:\n got %+v\nwant %+v", got, want)
	}
	view(t, s, func(tx coffer.ReadTx) error {
		hb, err := tx.Holdings(bg, b)
		if err != nil {
			return err
		}
		if len(hb) != 1 || hb[0].Key != coffer.CardAccount(b) || hb[0].Balance != 1_00 {
			t.Errorf("other user's holdings %+v", hb)
		}
		none, err := tx.Holdings(bg, b+1000)
		if err != nil || len(none) != 0 {
			t.Errorf("holdings of an unknown user: %+v, %v", none, err)
		}
		return nil
	})
	// SessionHoldings: SessionProfile and Holdings in one statement, for
	// a user with many holdings, one with a card of 1.00 and one with an
	// untouched card. (A user with no account at all cannot be made
	// through the store: each store's own tests cover that row.)
	c := createUsers(t, s, 3, 1)[0].ID
	sessions := map[coffer.UserID][]byte{a: coffer.HashToken("a"), b: coffer.HashToken("b"), c: coffer.HashToken("c")}
	update(t, s, func(tx coffer.Tx) error {
		for user, hash := range sessions {
			if err := tx.CreateSession(bg, coffer.Session{TokenHash: hash, User: user, CreatedAt: Start, LastSeenAt: Start}); err != nil {
				return err
			}
		}
		return nil
	})
	for _, read := range readModes(s) {
		err := read.fn(bg, func(tx coffer.ReadTx) error {
			for user, hash := range sessions {
				session, profile, err := tx.SessionProfile(bg, hash)
				if err != nil {
					return err
				}
				holdings, err := tx.Holdings(bg, user)
				if err != nil {
					return err
				}
				s2, p2, h2, err := tx.SessionHoldings(bg, hash)
				if err != nil {
					return err
				}
				if !reflect.DeepEqual(s2, session) || !reflect.DeepEqual(p2, profile) || !reflect.DeepEqual(h2, holdings) {
					t.Errorf("%s: user %d: SessionHoldings %+v, %+v, %+v; want %+v, %+v, %+v", read.name, user, s2, p2, h2, session, profile, holdings)
				}
			}
			_, _, _, err := tx.SessionHoldings(bg, coffer.HashToken("none"))
			wantCode(t, read.name+": SessionHoldings of an unknown session", err, coffer.ErrUnauthorized)
			return nil
		})
		if err != nil {
			t.Errorf("%s: %v", read.name, err)
		}
	}
	AssertLedger(t, s)
}

func testCatalog(t *testing.T, s coffer.Store) {
	view(t, s, func(tx coffer.ReadTx) error {
		if ps, err := tx.WealthProducts(bg); err != nil || len(ps) != 0 {
			t.Errorf("fresh store has wealth products %v, %v", ps, err)
		}
		if fs, err := tx.Funds(bg); err != nil || len(fs) != 0 {
			t.Errorf("fresh store has funds %v, %v", fs, err)
		}
		_, err := tx.GoldQuote(bg)
		wantCode(t, "gold quote of a fresh store", err, coffer.ErrProductNotFound)
		_, err = tx.WealthProduct(bg, "demand")
		wantCode(t, "unknown wealth product", err, coffer.ErrProductNotFound)
		_, err = tx.Fund(bg, "000001")
		wantCode(t, "unknown fund", err, coffer.ErrProductNotFound)
		return nil
	})
	demand := coffer.WealthProduct{Kind: "demand", Name: "活期宝", AnnualYieldBP: 185, MinAmount: 1_00}
	fixed := coffer.WealthProduct{Kind: "fixed90", Name: "稳健90天", AnnualYieldBP: 260, MinAmount: 1000_00, TermDays: 90}
	fund := coffer.Fund{Code: "000001", Name: "华夏成长混合", NAV: 1_2345, NAVDate: "2026-11-23"}
	other := coffer.Fund{Code: "110022", Name: "易方达消费行业", NAV: 3_4567, NAVDate: "2026-11-23", Retired: true}
	quote := coffer.GoldQuote{Price: 560_00, UpdatedAt: Start}
	before := CountRows(t, s)
	update(t, s, func(tx coffer.Tx) error {
		for _, err := range []error{tx.PutWealthProduct(bg, fixed), tx.PutWealthProduct(bg, demand), tx.PutFund(bg, fund), tx.PutFund(bg, other), tx.SetGoldQuote(bg, quote)} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	countDelta(t, "catalog", before, CountRows(t, s), map[string]int64{"wealth_products": 2, "funds": 2, "fund_navs": 2, "gold_quote": 1})
	checkCatalog := func(what string, wealth []coffer.WealthProduct, funds []coffer.Fund, q coffer.GoldQuote) {
		t.Helper()
		view(t, s, func(tx coffer.ReadTx) error {
			ps, err := tx.WealthProducts(bg)
			if err != nil {
				return err
			}
			slices.SortFunc(ps, func(x, y coffer.WealthProduct) int { return cmpString(x.Kind, y.Kind) })
			if !slices.Equal(ps, wealth) {
				t.Errorf("%s: wealth products %+v, want %+v", what, ps, wealth)
			}
			for _, p := range wealth {
				if got, err := tx.WealthProduct(bg, p.Kind); err != nil || got != p {
					t.Errorf("%s: WealthProduct(%q) = %+v, %v", what, p.Kind, got, err)
				}
			}
			fs, err := tx.Funds(bg)
			if err != nil {
				return err
			}
			slices.SortFunc(fs, func(x, y coffer.Fund) int { return cmpString(x.Code, y.Code) })
			if !slices.Equal(fs, funds) {
				t.Errorf("%s: funds %+v, want %+v", what, fs, funds)
			}
			for _, f := range funds {
				if got, err := tx.Fund(bg, f.Code); err != nil || got != f {
					t.Errorf("%s: Fund(%q) = %+v, %v", what, f.Code, got, err)
				}
			}
			gq, err := tx.GoldQuote(bg)
			if err != nil || gq.Price != q.Price || !gq.UpdatedAt.Equal(q.UpdatedAt) {
				t.Errorf("%s: gold quote %+v, %v; want %+v", what, gq, err, q)
			}
			return nil
		})
	}
	checkCatalog("after puts", []coffer.WealthProduct{demand, fixed}, []coffer.Fund{fund, other}, quote)
	// Overwrites: a product changes, a NAV moves on a new day (history
	// grows) and is corrected on the same day (history does not).
	demand.AnnualYieldBP, demand.Retired = 190, true
	fund.NAV, fund.NAVDate = 1_3000, "2026-11-24"
	quote = coffer.GoldQuote{Price: 561_23, UpdatedAt: Start.Add(time.Hour)}
	before = CountRows(t, s)
	update(t, s, func(tx coffer.Tx) error {
		for _, err := range []error{tx.PutWealthProduct(bg, demand), tx.PutFund(bg, fund), tx.SetGoldQuote(bg, quote)} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	countDelta(t, "catalog update", before, CountRows(t, s), map[string]int64{"fund_navs": 1})
	fund.NAV = 1_3001
	update(t, s, func(tx coffer.Tx) error { return tx.PutFund(bg, fund) })
	countDelta(t, "same-day NAV correction", before, CountRows(t, s), map[string]int64{"fund_navs": 1})
	checkCatalog("after updates", []coffer.WealthProduct{demand, fixed}, []coffer.Fund{fund, other}, quote)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func testCountRows(t *testing.T, s coffer.Store) {
	counts := CountRows(t, s)
	for _, table := range []string{"users", "sessions", "attempts", "idempotency", "accounts", "transactions", "entries", "spend_days", "wealth_products", "funds", "fund_navs", "gold_quote", "business_days"} {
		n, ok := counts[table]
		if !ok {
			t.Errorf("CountRows has no table %q", table)
		} else if n != 0 {
			t.Errorf("fresh store: table %s has %d rows", table, n)
		}
	}
	users := createUsers(t, s, 1, 3)
	Deposit(t, s, users[0].ID, 5_00)
	update(t, s, func(tx coffer.Tx) error {
		return tx.AddDailySpend(bg, users[0].ID, "2026-11-23", 1_00, 10_00)
	})
	countDelta(t, "three users, a deposit, a spend", counts, CountRows(t, s),
		map[string]int64{"users": 3, "accounts": 4, "transactions": 1, "entries": 2, "spend_days": 1})
}

// testCheckLedgerBusy posts random transactions among many accounts,
// some of them refused, against a model of every balance.
func testCheckLedgerBusy(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 6)
	var keys []coffer.AccountKey
	for _, u := range users {
		keys = append(keys, coffer.CardAccount(u.ID), wealthAccount(u.ID, "demand", 0))
	}
	systems := []coffer.AccountKey{cash, carrier, coffer.SystemAccount(coffer.KindGoldDesk, coffer.AssetCNY)}
	keys = append(keys, systems...)
	model := map[coffer.AccountKey]int64{}
	rng := newRand(20261123)
	var posted, refused int
	for step := range 300 {
		// A few transactions per Update: several Posts in one transaction.
		n := 1 + rng.IntN(3)
		var txs [][]coffer.Leg
		for range n {
			var legs []coffer.Leg
			for range 1 + rng.IntN(3) {
				from, to := keys[rng.IntN(len(keys))], keys[rng.IntN(len(keys))]
				if from == to {
					continue
				}
				if step < 20 || rng.IntN(4) == 0 {
					from = systems[rng.IntN(len(systems))] // keep money flowing in
				}
				if from == to {
					continue
				}
				legs = append(legs, coffer.Leg{From: from, To: to, Amount: 1 + rng.Int64N(500_00), FromMethod: "out", ToMethod: "in"})
			}
			if len(legs) > 0 {
				txs = append(txs, legs)
			}
		}
		// Post refuses a transaction that leaves a user account
		// negative, checked after each transaction of the Update.
		trial := maps.Clone(model)
		ok := true
		for _, legs := range txs {
			for _, l := range legs {
				trial[l.From] -= l.Amount
				trial[l.To] += l.Amount
			}
			for k, v := range trial {
				if k.IsUser() && v < 0 {
					ok = false
				}
			}
		}
		err := s.Update(bg, func(tx coffer.Tx) error {
			for _, legs := range txs {
				if _, err := tx.Post(bg, &coffer.Transaction{Kind: "busy", Legs: legs, CreatedAt: Start}); err != nil {
					return err
				}
			}
			return nil
		})
		switch {
		case ok && err == nil:
			model = trial
			posted += len(txs)
		case !ok && coffer.IsCode(err, coffer.ErrInsufficientFunds):
			refused++
		default:
			t.Fatalf("step %d: Update = %v, model says ok=%v", step, err, ok)
		}
		if step%100 == 99 {
			AssertLedger(t, s)
		}
	}
	if posted < 100 || refused < 10 {
		t.Errorf("busy ledger posted %d and refused %d: the mix does not exercise both", posted, refused)
	}
	for _, k := range keys {
		if got := balance(t, s, k); got != model[k] {
			t.Errorf("account %v at %d, model %d", k, got, model[k])
		}
	}
	var r coffer.LedgerReport
	view(t, s, func(tx coffer.ReadTx) error {
		var err error
		r, err = tx.CheckLedger(bg)
		return err
	})
	counts := CountRows(t, s)
	if !r.OK() || int64(r.Accounts) != counts["accounts"] || int64(r.Entries) != counts["entries"] || int64(r.Transactions) != counts["transactions"] {
		t.Errorf("ledger report %+v, rows %v", r, counts)
	}
	if r.Transactions != posted {
		t.Errorf("report counts %d transactions, %d posted", r.Transactions, posted)
	}
}

// testPaymentLookup: PaymentLookup finds what the separate lookups find,
// each part alone or all together, and zero values for what is not there.
func testPaymentLookup(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 2)
	rec := coffer.IdempotentRecord{User: users[0].ID, Key: "key-1", RequestHash: []byte{9}, Status: 200, Body: []byte("1.00"), CreatedAt: Start}
	update(t, s, func(tx coffer.Tx) error {
		if err := tx.PutIdempotent(bg, rec); err != nil {
			return err
		}
		_, err := tx.CountAttempt(bg, "lookup:test", Start, time.Minute)
		return err
	})
	for _, c := range []struct {
		name string
		q    coffer.PaymentQuery
		want string
	}{
		{"all there", coffer.PaymentQuery{User: users[0].ID, IdempotencyKey: "key-1", AttemptKey: "lookup:test", Mobile: users[1].Mobile}, "stored 1.00, 1 failures, user " + users[1].Username},
		{"none there", coffer.PaymentQuery{User: users[0].ID, IdempotencyKey: "key-2", AttemptKey: "lookup:none", Mobile: "13900000000"}, "stored -, 0 failures, user -"},
		{"key of another user", coffer.PaymentQuery{User: users[1].ID, IdempotencyKey: "key-1"}, "stored -, 0 failures, user -"},
		{"key alone", coffer.PaymentQuery{User: users[0].ID, IdempotencyKey: "key-1"}, "stored 1.00, 0 failures, user -"},
		{"attempt alone", coffer.PaymentQuery{User: users[0].ID, AttemptKey: "lookup:test"}, "stored -, 1 failures, user -"},
		{"mobile alone", coffer.PaymentQuery{User: users[0].ID, Mobile: users[0].Mobile}, "stored -, 0 failures, user " + users[0].Username},
	} {
		for _, read := range readModes(s) {
			name := read.name + ", " + c.name
			if err := read.fn(bg, func(tx coffer.ReadTx) error {
				f, err := tx.PaymentLookup(bg, c.q)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					return nil
				}
				stored, user := "-", "-"
				if f.StoredFound {
					stored = string(f.Stored.Body)
					if !bytes.Equal(f.Stored.RequestHash, rec.RequestHash) || !f.Stored.CreatedAt.Equal(rec.CreatedAt) {
						t.Errorf("%s: stored %+v, want %+v", name, f.Stored, rec)
					}
				}
				if f.User.ID != 0 {
					user = f.User.Username
					if f.User.Mobile != c.q.Mobile || f.User.CreatedAt.IsZero() {
						t.Errorf("%s: user %+v", name, f.User)
					}
				}
				if got := fmt.Sprintf("stored %s, %d failures, user %s", stored, f.Attempt.Failures, user); got != c.want {
					t.Errorf("%s: %s, want %s", name, got, c.want)
				}
				return nil
			}); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}

// testSessionPayment: SessionPayment reads what Session, UserByID and then
// PaymentLookup for the session's user read, field for field, whatever
// of it is there or asked for; an unknown session is ErrUnauthorized.
func testSessionPayment(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 3)
	const prefix = "lookup:test:"
	sessions := []([]byte){coffer.HashToken("payer"), coffer.HashToken("other")}
	rec := coffer.IdempotentRecord{User: users[0].ID, Key: "key-1", RequestHash: []byte{9}, Status: 200, Body: []byte("1.00"), CreatedAt: Start}
	update(t, s, func(tx coffer.Tx) error {
		for i, hash := range sessions {
			if err := tx.CreateSession(bg, coffer.Session{TokenHash: hash, User: users[i].ID, CreatedAt: Start, LastSeenAt: Start.Add(time.Duration(i) * time.Second)}); err != nil {
				return err
			}
		}
		if err := tx.SetPayPassword(bg, users[2].ID, []byte{1, 2, 3}); err != nil {
			return err
		}
		if err := tx.PutIdempotent(bg, rec); err != nil {
			return err
		}
		_, err := tx.CountAttempt(bg, prefix+strconv.FormatInt(int64(users[0].ID), 10), Start, time.Minute)
		return err
	})
	for _, c := range []struct {
		name    string
		session int
		q       coffer.SessionPaymentQuery
		want    string
	}{
		{"all there", 0, coffer.SessionPaymentQuery{IdempotencyKey: "key-1", AttemptKeyPrefix: prefix, Mobile: users[2].Mobile}, "stored 1.00, 1 failures, user " + users[2].Username},
		{"none there", 0, coffer.SessionPaymentQuery{IdempotencyKey: "key-2", AttemptKeyPrefix: "lookup:none:", Mobile: "13900000000"}, "stored -, 0 failures, user -"},
		{"key and counter of another user", 1, coffer.SessionPaymentQuery{IdempotencyKey: "key-1", AttemptKeyPrefix: prefix}, "stored -, 0 failures, user -"},
		{"key alone", 0, coffer.SessionPaymentQuery{IdempotencyKey: "key-1"}, "stored 1.00, 0 failures, user -"},
		{"counter alone", 0, coffer.SessionPaymentQuery{AttemptKeyPrefix: prefix}, "stored -, 1 failures, user -"},
		{"mobile alone, the payer's own", 0, coffer.SessionPaymentQuery{Mobile: users[0].Mobile}, "stored -, 0 failures, user " + users[0].Username},
		{"nothing asked", 1, coffer.SessionPaymentQuery{}, "stored -, 0 failures, user -"},
	} {
		hash := sessions[c.session]
		for _, read := range readModes(s) {
			name := read.name + ", " + c.name
			if err := read.fn(bg, func(tx coffer.ReadTx) error {
				session, user, f, err := tx.SessionPayment(bg, hash, c.q)
				if err != nil {
					return err
				}
				wantSession, err := tx.Session(bg, hash)
				if err != nil {
					return err
				}
				wantUser, err := tx.UserByID(bg, wantSession.User)
				if err != nil {
					return err
				}
				q := coffer.PaymentQuery{User: wantUser.ID, IdempotencyKey: c.q.IdempotencyKey, Mobile: c.q.Mobile}
				if c.q.AttemptKeyPrefix != "" {
					q.AttemptKey = c.q.AttemptKeyPrefix + strconv.FormatInt(int64(wantUser.ID), 10)
				}
				wantFound, err := tx.PaymentLookup(bg, q)
				if err != nil {
					return err
				}
				if !reflect.DeepEqual(session, wantSession) || !reflect.DeepEqual(user, wantUser) || !reflect.DeepEqual(f, wantFound) {
					t.Errorf("%s: SessionPayment %+v, %+v, %+v; want %+v, %+v, %+v", name, session, user, f, wantSession, wantUser, wantFound)
				}
				stored, payee := "-", "-"
				if f.StoredFound {
					stored = string(f.Stored.Body)
				}
				if f.User.ID != 0 {
					payee = f.User.Username
				}
				if got := fmt.Sprintf("stored %s, %d failures, user %s", stored, f.Attempt.Failures, payee); got != c.want {
					t.Errorf("%s: %s, want %s", name, got, c.want)
				}
				return nil
			}); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	for _, read := range readModes(s) {
		err := read.fn(bg, func(tx coffer.ReadTx) error {
			_, _, _, err := tx.SessionPayment(bg, coffer.HashToken("none"), coffer.SessionPaymentQuery{IdempotencyKey: "key-1", Mobile: users[0].Mobile})
			wantCode(t, read.name+": SessionPayment of an unknown session", err, coffer.ErrUnauthorized)
			return nil
		})
		if err != nil {
			t.Errorf("%s: %v", read.name, err)
		}
	}
}

// readMode is one of a store's ways to read.
type readMode struct {
	name string
	fn   func(context.Context, func(coffer.ReadTx) error) error
}

// readModes are View and ViewEach of s.
func readModes(s coffer.Store) []readMode {
	return []readMode{{"View", s.View}, {"ViewEach", s.ViewEach}}
}

// testViewSnapshot: the statements of a View see one snapshot, taken by
// its first, while those of a ViewEach need not: on PostgreSQL each sees
// what was committed when it ran; on SQLite the first runs alone and the
// rest share one. Neither writes, and a failed read of either leaves its
// connection fit for the next. (A commit inside a read needs a second
// connection: a store with a pool of one would hang here.)
func testViewSnapshot(t *testing.T, s coffer.Store) {
	createUsers(t, s, 1, 1)
	users := 1
	for _, read := range readModes(s) {
		var before, after int
		err := read.fn(bg, func(tx coffer.ReadTx) error {
			var err error
			if before, err = tx.CountUsers(bg); err != nil {
				return err
			}
			createUsers(t, s, users+1, 1) // committed between the two reads
			users++
			after, err = tx.CountUsers(bg)
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", read.name, err)
		}
		snapshot := after == users-1 // the second read saw what the first did
		latest := after == users
		if before != users-1 || !snapshot && !latest || read.name == "View" && !snapshot {
			t.Errorf("%s: %d users, then %d after a commit; want %d, then %d (View) or %d or %d (ViewEach)", read.name, before, after, users-1, users-1, users-1, users)
		}
	}
	for _, read := range readModes(s) {
		err := read.fn(bg, func(tx coffer.ReadTx) error {
			if w, ok := tx.(coffer.Tx); ok { // else writes are not even offered
				return w.CreateUser(bg, testUser(99))
			}
			return nil
		})
		var n int
		view(t, s, func(tx coffer.ReadTx) (err error) {
			n, err = tx.CountUsers(bg)
			return err
		})
		if n != users {
			t.Errorf("%s wrote a user (error %v): %d users, want %d", read.name, err, n, users)
		}
	}
	// Failed reads, of one statement and of two, enough to go round any
	// pool of connections: each connection must be left fit for the next
	// read.
	for i := range 64 {
		for _, read := range readModes(s) {
			err := read.fn(bg, func(tx coffer.ReadTx) error {
				if i%2 == 1 {
					if _, err := tx.CountUsers(bg); err != nil {
						return err
					}
				}
				_, err := tx.UserByMobile(bg, "13900000000")
				return err
			})
			if !coffer.IsCode(err, coffer.ErrUserNotFound) {
				t.Fatalf("%s of a missing user: %v, want %s", read.name, err, coffer.ErrUserNotFound)
			}
		}
	}
	createUsers(t, s, users+1, 1)
	for range 64 {
		for _, read := range readModes(s) {
			var n int
			err := read.fn(bg, func(tx coffer.ReadTx) (err error) {
				n, err = tx.CountUsers(bg)
				return err
			})
			if err != nil || n != users+1 {
				t.Fatalf("%s after the failed reads: %d users, %v; want %d", read.name, n, err, users+1)
			}
		}
	}
}
