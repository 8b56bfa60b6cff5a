package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"coffer"
)

// concurrencyBound is how long a concurrency test's payments may take
// before the test calls it a deadlock. They take about a second.
const concurrencyBound = 60 * time.Second

// newRand returns a deterministic generator for seed.
func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// registerUsers registers n users numbered from first through the Bank and
// returns them as stored.
func registerUsers(t testing.TB, bank *coffer.Bank, first, n int) []coffer.User {
	t.Helper()
	out := make([]coffer.User, n)
	for i := range out {
		r := Registration(first + i)
		if err := bank.Register(bg, r); err != nil {
			t.Fatalf("register %s: %v", r.Username, err)
		}
		view(t, bank.Store(), func(tx coffer.ReadTx) error {
			var err error
			out[i], err = tx.UserByMobile(bg, r.Mobile)
			return err
		})
	}
	return out
}

// bankDeposit credits user through the operator's deposit.
func bankDeposit(t testing.TB, bank *coffer.Bank, u coffer.User, amount coffer.Amount) coffer.Amount {
	t.Helper()
	bal, err := bank.Deposit(bg, u.Mobile, amount)
	if err != nil {
		t.Fatalf("deposit %s to %s: %v", amount, u.Username, err)
	}
	return bal
}

func info(t testing.TB, bank *coffer.Bank, id coffer.UserID) coffer.Info {
	t.Helper()
	in, err := bank.Info(bg, id)
	if err != nil {
		t.Fatalf("info of user %d: %v", id, err)
	}
	return in
}

// runWorkers runs work in n goroutines and fails the test if they do not
// all finish within concurrencyBound: a deadlock fails instead of hanging.
func runWorkers(t testing.TB, n int, work func(ctx context.Context, worker int)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, concurrencyBound)
	defer cancel()
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() { work(ctx, g) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(concurrencyBound + 5*time.Second):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		fmt.Fprintf(os.Stderr, "goroutines of a stuck concurrency test:\n%s\n", buf)
		t.Fatalf("%d workers did not finish within %v: deadlock", n, concurrencyBound)
	}
}

func transferRequest(payee coffer.User, money coffer.Amount, key string) coffer.PayRequest {
	return coffer.PayRequest{Mode: coffer.ModeTransfer, Money: money, Payee: payee.Mobile, Detail: "test",
		Password: TestPayPassword, PasswordSent: true, IdempotencyKey: key}
}

func testBankRegisterAndDeposit(t *testing.T, s coffer.Store) {
	bank, _ := NewBank(t, s)
	u := registerUsers(t, bank, 1, 1)[0]
	in := info(t, bank, u.ID)
	if in.User.Username != "user1" || in.User.CardNum != CardNumber(1) || in.Balance != 0 || in.TotalAssets != 0 {
		t.Errorf("new user's info %+v", in)
	}
	before := CountRows(t, s)
	dups := []struct {
		name   string
		mutate func(*coffer.Registration)
		code   coffer.Code
	}{
		{"username in another case", func(r *coffer.Registration) { r.Username = "USER1" }, coffer.ErrUsernameTaken},
		{"email in another case", func(r *coffer.Registration) { r.Email = "User1@Example.COM" }, coffer.ErrEmailTaken},
		{"mobile with +86", func(r *coffer.Registration) { r.Mobile = "+86" + MobileNumber(1) }, coffer.ErrMobileTaken},
		{"card with spaces", func(r *coffer.Registration) { c := CardNumber(1); r.CardNum = c[:4] + " " + c[4:8] + " " + c[8:] }, coffer.ErrCardTaken},
		{"card failing Luhn", func(r *coffer.Registration) { r.CardNum = breakLuhn(CardNumber(2)) }, coffer.ErrInvalidField},
		{"bad mobile", func(r *coffer.Registration) { r.Mobile = "12345678901" }, coffer.ErrInvalidField},
		{"bad pay password", func(r *coffer.Registration) { r.PayPassword = "12345a" }, coffer.ErrInvalidField},
	}
	for _, d := range dups {
		r := Registration(2)
		d.mutate(&r)
		wantCode(t, d.name, bank.Register(bg, r), d.code)
		sameCounts(t, d.name, before, CountRows(t, s))
	}
	if bal := bankDeposit(t, bank, u, 123_45); bal != 123_45 {
		t.Errorf("first deposit returned %s", bal)
	}
	if bal := bankDeposit(t, bank, u, 1_00); bal != 124_45 {
		t.Errorf("second deposit returned %s", bal)
	}
	before = CountRows(t, s)
	for name, c := range map[string]struct {
		mobile string
		amount coffer.Amount
		code   coffer.Code
	}{
		"zero":           {u.Mobile, 0, coffer.ErrInvalidField},
		"negative":       {u.Mobile, -1_00, coffer.ErrInvalidField},
		"over the limit": {u.Mobile, coffer.MaxAmount + 1, coffer.ErrInvalidField},
		"unknown mobile": {MobileNumber(77), 1_00, coffer.ErrUserNotFound},
		"bad mobile":     {"1234", 1_00, coffer.ErrInvalidField},
	} {
		_, err := bank.Deposit(bg, c.mobile, c.amount)
		wantCode(t, "deposit "+name, err, c.code)
	}
	sameCounts(t, "refused deposits", before, CountRows(t, s))
	if in := info(t, bank, u.ID); in.Balance != 124_45 || in.TotalAssets != 124_45 {
		t.Errorf("info after deposits: %+v", in)
	}
	if got := balance(t, s, cash); got != -124_45 {
		t.Errorf("cash account %d", got)
	}
	AssertLedger(t, s)
}

// breakLuhn changes the check digit of a valid card number.
func breakLuhn(card string) string {
	last := card[len(card)-1]
	return card[:len(card)-1] + string('0'+(last-'0'+1)%10)
}

func testBankWalletCursorWalk(t *testing.T, s coffer.Store) {
	bank, clock := NewBank(t, s)
	users := registerUsers(t, bank, 1, 2)
	var amounts []coffer.Amount
	for i := range 45 {
		clock.Advance(time.Minute)
		a := coffer.Amount(1_00 + i*11)
		bankDeposit(t, bank, users[0], a)
		amounts = append(amounts, a)
		if i%10 == 0 {
			bankDeposit(t, bank, users[1], 1)
		}
	}
	var walked []coffer.Bill
	var sizes []int
	cursor := ""
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("wallet walk does not end")
		}
		p, err := bank.Wallet(bg, users[0].ID, coffer.KindCard, cursor, 20)
		if err != nil {
			t.Fatalf("wallet page %d: %v", page, err)
		}
		sizes = append(sizes, len(p.Bills))
		walked = append(walked, p.Bills...)
		if strings.Trim(p.NextCursor, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			t.Errorf("cursor %q is not URL-safe", p.NextCursor)
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if fmt.Sprint(sizes) != "[20 20 5]" {
		t.Errorf("page sizes %v, want [20 20 5]", sizes)
	}
	if len(walked) != len(amounts) {
		t.Fatalf("walked %d bills, want %d", len(walked), len(amounts))
	}
	var running coffer.Amount
	for i := range amounts {
		b := walked[len(walked)-1-i]
		running += amounts[i]
		if coffer.Amount(b.Amount) != amounts[i] || coffer.Amount(b.BalanceAfter) != running || b.Method != coffer.MethodDeposit {
			t.Errorf("bill %d (oldest first): %+v, want amount %s balance %s", i, b, amounts[i], running)
		}
		if want := Start.Add(time.Duration(i+1) * time.Minute); !b.Date.Equal(want) {
			t.Errorf("bill %d dated %v, want %v", i, b.Date, want)
		}
	}
	checkChain(t, "wallet", walked)
	// Exactly a page's worth leaves no cursor.
	p, err := bank.Wallet(bg, users[1].ID, coffer.KindCard, "", 5)
	if err != nil || len(p.Bills) != 5 || p.NextCursor != "" {
		t.Errorf("wallet of exactly one page: %d bills, cursor %q, %v", len(p.Bills), p.NextCursor, err)
	}
	for _, bad := range []string{"x", "!!!", coffer.EncodeCursor(0)[:3]} {
		_, err := bank.Wallet(bg, users[0].ID, coffer.KindCard, bad, 20)
		wantCode(t, "cursor "+bad, err, coffer.ErrInvalidField)
	}
	AssertLedger(t, s)
}

// payOutcome is one payment of a concurrency test.
type payOutcome struct {
	payer, payee int
	req          coffer.PayRequest
	res          coffer.PayResult
	err          error
	kind         string // "fresh", "replay", "reuse", "shared", "nokey"
	prev         *payOutcome
}

// testBankConcurrentTransfers has 16 goroutines pay random transfers among
// 4 users at once, some reusing idempotency keys, and checks every outcome
// and the final balances against what the outcomes say moved.
func testBankConcurrentTransfers(t *testing.T, s coffer.Store) {
	bank, _ := NewBank(t, s)
	const nUsers, workers, perWorker, initial = 4, 16, 24, coffer.Amount(3_000_00)
	users := registerUsers(t, bank, 1, nUsers)
	for _, u := range users {
		bankDeposit(t, bank, u, initial)
	}
	results := make([][]*payOutcome, workers)
	runWorkers(t, workers, func(ctx context.Context, g int) {
		rng := newRand(uint64(1000 + g))
		var prev *payOutcome
		for i := range perWorker {
			if ctx.Err() != nil {
				return
			}
			o := &payOutcome{payer: rng.IntN(nUsers)}
			o.payee = (o.payer + 1 + rng.IntN(nUsers-1)) % nUsers
			money := coffer.Amount(1 + rng.Int64N(1000_00))
			switch i % 6 {
			case 0, 3:
				o.kind = "fresh"
				o.req = transferRequest(users[o.payee], money, fmt.Sprintf("w%d-%d", g, i))
			case 1: // the same request again
				o.kind, o.prev, o.payer, o.payee, o.req = "replay", prev, prev.payer, prev.payee, prev.req
			case 4: // the same key, another request
				o.kind, o.prev, o.payer, o.payee = "reuse", prev, prev.payer, prev.payee
				o.req = transferRequest(users[o.payee], prev.req.Money+1, prev.req.IdempotencyKey)
			case 2: // one request many workers send under one key
				o.kind, o.payer, o.payee = "shared", 0, 1
				o.req = transferRequest(users[1], coffer.Amount(100_00+i), fmt.Sprintf("shared-%d", i))
			case 5:
				o.kind = "nokey"
				o.req = transferRequest(users[o.payee], money, "")
			}
			o.res, o.err = bank.Pay(ctx, users[o.payer].ID, o.req)
			results[g] = append(results[g], o)
			prev = o
		}
	})
	want := make([]coffer.Amount, nUsers)
	for i := range want {
		want[i] = initial
	}
	type keyRef struct {
		payer int
		key   string
	}
	originals := map[keyRef]*payOutcome{}
	var replays []*payOutcome
	var moved, refused int
	for g, list := range results {
		if len(list) != perWorker {
			t.Errorf("worker %d made %d payments of %d", g, len(list), perWorker)
		}
		for _, o := range list {
			what := fmt.Sprintf("worker %d %s payment %d→%d of %s key %q", g, o.kind, o.payer, o.payee, o.req.Money, o.req.IdempotencyKey)
			code := coffer.ErrorCode(o.err)
			prevOK := o.prev != nil && o.prev.err == nil
			switch {
			case code == coffer.ErrInsufficientFunds && !(o.kind == "replay" && prevOK) && !(o.kind == "reuse" && prevOK):
				refused++
			case code == coffer.ErrIdempotencyReuse && o.kind == "reuse" && prevOK:
			case code == coffer.ErrIdempotencyPending && o.kind == "shared":
			case code == "" && o.res.Replayed:
				if o.kind != "replay" && o.kind != "shared" || o.kind == "replay" && !prevOK {
					t.Errorf("%s: replayed", what)
				}
				replays = append(replays, o)
			case code == "" && !(o.kind == "replay" && prevOK) && !(o.kind == "reuse" && prevOK):
				moved++
				want[o.payer] -= o.req.Money
				want[o.payee] += o.req.Money
				if o.res.Balance < 0 {
					t.Errorf("%s: balance after %s", what, o.res.Balance)
				}
				if o.req.IdempotencyKey != "" {
					k := keyRef{o.payer, o.req.IdempotencyKey}
					if originals[k] != nil {
						t.Errorf("%s: key ran twice", what)
					}
					originals[k] = o
				}
			default:
				t.Errorf("%s: unexpected outcome %v (balance %s, replayed %v)", what, o.err, o.res.Balance, o.res.Replayed)
			}
		}
	}
	for _, r := range replays {
		orig := originals[keyRef{r.payer, r.req.IdempotencyKey}]
		if orig == nil {
			t.Errorf("replay of key %q that never ran", r.req.IdempotencyKey)
		} else if r.res.Balance != orig.res.Balance {
			t.Errorf("replay of key %q answered %s, the payment answered %s", r.req.IdempotencyKey, r.res.Balance, orig.res.Balance)
		}
	}
	if moved < workers*perWorker/4 || len(replays) == 0 || refused == 0 {
		t.Errorf("the mix is not exercised: %d payments moved money, %d refused, %d replayed", moved, refused, len(replays))
	}
	t.Logf("%d payments moved money, %d refused, %d replayed", moved, refused, len(replays))
	var sum coffer.Amount
	for i, u := range users {
		got := info(t, bank, u.ID).Balance
		if got != want[i] {
			t.Errorf("user %d balance %s, outcomes say %s", i, got, want[i])
		}
		if got < 0 {
			t.Errorf("user %d negative: %s", i, got)
		}
		sum += got
	}
	if sum != nUsers*initial {
		t.Errorf("cards sum to %s, deposits to %s", sum, nUsers*initial)
	}
	if got := balance(t, s, cash); got != -int64(nUsers*initial) {
		t.Errorf("cash account %d", got)
	}
	AssertLedger(t, s)
}

// testBankOppositeTransfers pays A→B and B→A at the same moment from many
// goroutines: the classic lock-order deadlock.
func testBankOppositeTransfers(t *testing.T, s coffer.Store) {
	bank, _ := NewBank(t, s)
	const workers, perWorker, initial = 16, 20, coffer.Amount(1000_00)
	users := registerUsers(t, bank, 1, 2)
	for _, u := range users {
		bankDeposit(t, bank, u, initial)
	}
	results := make([][]*payOutcome, workers)
	runWorkers(t, workers, func(ctx context.Context, g int) {
		rng := newRand(uint64(2000 + g))
		payer := g % 2
		for range perWorker {
			o := &payOutcome{payer: payer, payee: 1 - payer}
			o.req = transferRequest(users[o.payee], coffer.Amount(1+rng.Int64N(300_00)), "")
			o.res, o.err = bank.Pay(ctx, users[payer].ID, o.req)
			results[g] = append(results[g], o)
		}
	})
	want := []coffer.Amount{initial, initial}
	for _, list := range results {
		if len(list) != perWorker {
			t.Errorf("a worker made %d payments of %d", len(list), perWorker)
		}
		for _, o := range list {
			switch coffer.ErrorCode(o.err) {
			case "":
				want[o.payer] -= o.req.Money
				want[o.payee] += o.req.Money
			case coffer.ErrInsufficientFunds:
			default:
				t.Errorf("transfer %d→%d of %s: %v", o.payer, o.payee, o.req.Money, o.err)
			}
		}
	}
	for i, u := range users {
		if got := info(t, bank, u.ID).Balance; got != want[i] || got < 0 {
			t.Errorf("user %d balance %s, outcomes say %s", i, got, want[i])
		}
	}
	if want[0]+want[1] != 2*initial {
		t.Errorf("money not conserved: %s + %s", want[0], want[1])
	}
	AssertLedger(t, s)
}

// testBankConcurrentSystemAccounts has many payers top up phones, buy gold
// and buy fund shares at once: every one of them credits the same few
// system accounts.
func testBankConcurrentSystemAccounts(t *testing.T, s coffer.Store) {
	bank, _ := NewBank(t, s)
	const nUsers, workers, perWorker, initial = 8, 16, 12, coffer.Amount(3000_00)
	users := registerUsers(t, bank, 1, nUsers)
	for _, u := range users {
		bankDeposit(t, bank, u, initial)
	}
	const price, nav = 560_00, 1_2345 // the default catalog's
	type buy struct {
		user                  int
		req                   coffer.PayRequest
		err                   error
		cost, weight, shares  int64
		mobile, gold, fundBuy bool
	}
	results := make([][]buy, workers)
	runWorkers(t, workers, func(ctx context.Context, g int) {
		rng := newRand(uint64(3000 + g))
		user := g % nUsers
		for range perWorker {
			b := buy{user: user}
			switch rng.IntN(3) {
			case 0:
				b.mobile = true
				b.req = coffer.PayRequest{Mode: coffer.ModeMobilePay, Money: coffer.Amount(1_00 + rng.Int64N(200_00)), Mobile: users[user].Mobile, Password: TestPayPassword, PasswordSent: true}
				b.cost = int64(b.req.Money)
			case 1:
				b.gold = true
				b.weight = 1 + rng.Int64N(1500)
				b.req = coffer.PayRequest{Mode: coffer.ModeGold, Weight: coffer.Weight(b.weight), Price: price}
				b.cost = roundHalfUp(b.weight*price, 1000)
			case 2:
				b.fundBuy = true
				money := 1 + rng.Int64N(300_00)
				b.req = coffer.PayRequest{Mode: coffer.ModeFund, Code: "000001", Money: coffer.Amount(money)}
				b.shares = money * 1_000_000 / nav
				b.cost = roundHalfUp(b.shares*nav, 1_000_000)
			}
			_, b.err = bank.Pay(ctx, users[user].ID, b.req)
			results[g] = append(results[g], b)
		}
	})
	cards := make([]int64, nUsers)
	gold := make([]int64, nUsers)
	shares := make([]int64, nUsers)
	var carrierWant, deskCNY, deskGold, fundCNY, fundShares int64
	for i := range cards {
		cards[i] = int64(initial)
	}
	for _, list := range results {
		for _, b := range list {
			switch coffer.ErrorCode(b.err) {
			case coffer.ErrInsufficientFunds:
				continue
			case "":
			default:
				t.Errorf("%s by user %d: %v", b.req.Mode, b.user, b.err)
				continue
			}
			cards[b.user] -= b.cost
			switch {
			case b.mobile:
				carrierWant += b.cost
			case b.gold:
				gold[b.user] += b.weight
				deskCNY += b.cost
				deskGold -= b.weight
			case b.fundBuy:
				shares[b.user] += b.shares
				fundCNY += b.cost
				fundShares -= b.shares
			}
		}
	}
	for i, u := range users {
		in := info(t, bank, u.ID)
		if int64(in.Balance) != cards[i] || int64(in.GoldWeight) != gold[i] ||
			int64(in.Gold) != roundHalfUp(gold[i]*price, 1000) || int64(in.Funds) != roundHalfUp(shares[i]*nav, 1_000_000) {
			t.Errorf("user %d: info %+v, want card %d gold %d mg shares %d", i, in, cards[i], gold[i], shares[i])
		}
	}
	fundDesk := coffer.AccountKey{Kind: coffer.KindFundDesk, Asset: coffer.FundAsset("000001"), Product: "000001"}
	for _, c := range []struct {
		key  coffer.AccountKey
		want int64
	}{
		{carrier, carrierWant},
		{coffer.SystemAccount(coffer.KindGoldDesk, coffer.AssetCNY), deskCNY},
		{goldDesk, deskGold},
		{coffer.SystemAccount(coffer.KindFundDesk, coffer.AssetCNY), fundCNY},
		{fundDesk, fundShares},
	} {
		if got := balance(t, s, c.key); got != c.want {
			t.Errorf("system account %v at %d, want %d", c.key, got, c.want)
		}
	}
	AssertLedger(t, s)
}

// roundHalfUp is x/d rounded half-up, for non-negative x and even d.
func roundHalfUp(x, d int64) int64 { return (x + d/2) / d }

// testBankPayLock: five wrong payment passwords in a row lock payments
// for the configured time, and a payment that checks no password does not
// break the row (else a thief with a session could guess the PIN forever,
// four guesses at a time between small fund purchases).
func testBankPayLock(t *testing.T, s coffer.Store) {
	bank, clock := NewBank(t, s)
	users := registerUsers(t, bank, 1, 2)
	u, payee := users[0], users[1]
	bankDeposit(t, bank, u, 1000_00)
	cfg := bank.Config()
	wrong := transferRequest(payee, 1_00, "")
	wrong.Password = "000000"
	pinless := coffer.PayRequest{Mode: coffer.ModeFund, Code: "000001", Money: 1}
	for round := range 3 {
		for i := range cfg.PayFailuresToLock - 1 {
			_, err := bank.Pay(bg, u.ID, wrong)
			wantCode(t, fmt.Sprintf("round %d: wrong password %d", round, i+1), err, coffer.ErrBadPayPassword)
		}
		if round == 2 {
			break
		}
		// A payment that checks no password must not reset the count.
		if _, err := bank.Pay(bg, u.ID, pinless); err != nil {
			t.Fatalf("fund purchase without a password: %v", err)
		}
		_, err := bank.Pay(bg, u.ID, wrong)
		wantCode(t, fmt.Sprintf("round %d: the %dth wrong password in a row", round, cfg.PayFailuresToLock), err, coffer.ErrPayLocked)
		right := transferRequest(payee, 1_00, "")
		res, err := bank.Pay(bg, u.ID, right)
		wantCode(t, "the right password while locked", err, coffer.ErrPayLocked)
		if before := info(t, bank, u.ID).Balance; res.Balance != before {
			t.Errorf("locked payment answered balance %s, card holds %s", res.Balance, before)
		}
		clock.Advance(cfg.PayLockFor - time.Second)
		_, err = bank.Pay(bg, u.ID, right)
		wantCode(t, "a second before the lock ends", err, coffer.ErrPayLocked)
		clock.Advance(time.Second)
		if _, err := bank.Pay(bg, u.ID, right); err != nil {
			t.Fatalf("the right password after the lock: %v", err)
		}
	}
	// The right password breaks a row of wrong ones.
	if _, err := bank.Pay(bg, u.ID, transferRequest(payee, 1_00, "")); err != nil {
		t.Fatalf("the right password after %d wrong ones: %v", cfg.PayFailuresToLock-1, err)
	}
	_, err := bank.Pay(bg, u.ID, wrong)
	wantCode(t, "a wrong password after the right one", err, coffer.ErrBadPayPassword)
	AssertLedger(t, s)
}
