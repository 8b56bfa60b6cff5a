//go:build linux

package banktest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"coffer/internal/pgtest"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for terminating backends
)

// Sizes and limits of the bank test.
const (
	depositPerUser = 300_00 // fen deposited to each user at the counter
	maxTransfer    = 30_00  // fen; transfers are 0.01 to 30.00
	settleTimeout  = 90 * time.Second
	maxAttempts    = 5_000 // tries of one transfer
	maxPerClient   = 10_000_000
	maxReads       = 100_000_000
	maxKills       = 100_000
	maxViolations  = 50 // described in the failure; all are counted
)

// outcome is what a client learnt of a transfer.
type outcome int

const (
	unresolved outcome = iota // no definite answer: applied at most once
	acked                     // 200: applied exactly once
	rejected                  // 422: applied never
)

// transfer is one transfer a client made, under its own idempotency key,
// which is also its detail, so that it can be found in both statements.
type transfer struct {
	key          string
	payer, payee int
	amount       int64
	outcome      outcome
	replayed     bool // acknowledged by a replay of a committed attempt
	attempts     int
}

// bank is one run of the bank test against one store.
type bank struct {
	t     *testing.T
	store string
	srv   *server
	users []user
	runID string

	mu        sync.Mutex
	transfers []*transfer

	// chaos keeps the faults apart: a restart does not meet a terminated
	// backend or a read-only database, which would only make it fail.
	chaos sync.Mutex

	violationCount atomic.Int64
	violationMu    sync.Mutex
	violationList  []string

	// What happened, for the summary.
	payRequests, acks, replays, rejections, retriedTransfers, retries atomic.Int64
	connErrors, timeouts, unavailable, inProgress, unexpected         atomic.Int64
	reads, readFailures, kills, terminations, backends                atomic.Int64
	writeFaults, faultTime                                            atomic.Int64
	downtime                                                          atomic.Int64 // from kill to answering again
	// Payments in flight: at each kill, a batch of the group commit (or
	// several PostgreSQL transactions) is likely among them.
	inFlight, inFlightAtKills, maxInFlightAtKill atomic.Int64
}

// violation records a broken promise; the test fails at the end.
func (b *bank) violation(format string, args ...any) {
	if b.violationCount.Add(1) > maxViolations {
		return
	}
	b.violationMu.Lock()
	b.violationList = append(b.violationList, fmt.Sprintf(format, args...))
	b.violationMu.Unlock()
}

// TestBank is the bank test: see the package documentation.
func TestBank(t *testing.T) {
	for _, name := range strings.Split(*flagStores, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			var db, pgDSN string
			var env []string
			switch name {
			case "sqlite":
				db = filepath.Join(t.TempDir(), "bank.db")
			case "postgres":
				pgDSN = pgtest.DSN(t)
				db = pgDSN
				env = []string{"COFFER_SECRET=" + randomHex(32)}
			default:
				t.Fatalf("unknown store %q in -bank.stores (sqlite, postgres)", name)
			}
			runBank(t, name, db, pgDSN, env)
		})
	}
}

// defaultChaosEvery is the mean time between kills, and between spells
// of refused writes: about eight in a short run, one every 5 s in a long one.
func defaultChaosEvery(runFor time.Duration) time.Duration {
	return min(max(runFor/8, time.Second), 5*time.Second)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func runBank(t *testing.T, store, db, pgDSN string, env []string) {
	seed := *flagSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	runFor := duration()
	killEvery := *flagKillEvery
	if killEvery == 0 {
		killEvery = defaultChaosEvery(runFor)
	}
	nUsers, nClients, nReaders := max(*flagUsers, 2), max(*flagClients, 1), max(*flagReaders, 0)
	t.Logf("bank test on %s: %s, %d users, %d clients, %d readers, SIGKILL every %s on average, seed %d",
		store, runFor, nUsers, nClients, nReaders, killEvery, seed)

	b := &bank{t: t, store: store, runID: randomHex(4)}
	// No daily limit gets in the way of a long run: every rejection is
	// then for insufficient funds.
	b.srv = newServer(t, db, env...)
	b.srv.extra = []string{"--limit-daily", "1000000000.00"}
	if err := b.srv.start(); err != nil {
		t.Fatal(err)
	}
	b.setup(t, nUsers)

	faultEvery := *flagFaultEvery
	if faultEvery == 0 {
		faultEvery = defaultChaosEvery(runFor)
	}
	var wf fault
	if faultEvery > 0 {
		var err error
		if pgDSN != "" {
			wf, err = pgReadOnly(t, pgDSN)
		} else {
			wf, err = sqliteReadOnly(t, db)
		}
		if err != nil {
			t.Logf("no write faults: %v", err)
			faultEvery = -1
		} else {
			t.Logf("%s every %s on average", wf.name, faultEvery)
		}
	}

	runCtx, stopRun := context.WithTimeout(context.Background(), runFor)
	defer stopRun()
	settleCtx, stopSettle := context.WithTimeout(context.Background(), runFor+settleTimeout)
	defer stopSettle()
	started := time.Now()

	var chaos sync.WaitGroup
	if killEvery > 0 {
		chaos.Go(func() { b.killer(runCtx, killEvery, mrand.New(mrand.NewPCG(uint64(seed), 1))) })
	}
	if faultEvery > 0 {
		chaos.Go(func() { b.faulter(runCtx, wf, faultEvery, mrand.New(mrand.NewPCG(uint64(seed), 3))) })
	}
	if pgDSN != "" && *flagTermEvery > 0 {
		chaos.Go(func() { b.terminator(runCtx, pgDSN, *flagTermEvery, mrand.New(mrand.NewPCG(uint64(seed), 2))) })
	}
	var readers sync.WaitGroup
	for i := 0; i < nReaders; i++ {
		readers.Go(func() { b.reader(runCtx, mrand.New(mrand.NewPCG(uint64(seed), uint64(100+i)))) })
	}
	var clients sync.WaitGroup
	for i := 0; i < nClients; i++ {
		clients.Go(func() { b.client(runCtx, settleCtx, i, mrand.New(mrand.NewPCG(uint64(seed), uint64(1000+i)))) })
	}

	chaos.Wait()
	// The faults are over: the server must be up for the clients to settle
	// what they still retry.
	if b.srv.pid() == 0 {
		if err := b.srv.start(); err != nil {
			t.Fatalf("start after the run: %v", err)
		}
	}
	readers.Wait()
	clients.Wait()
	elapsed := time.Since(started)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	balances := b.verify(ctx)

	// The ledger as a crash leaves it: SIGKILL, then the operator's check.
	b.srv.kill()
	if out, err := b.srv.command("check"); err != nil {
		b.violation("coffer check failed: %v\n%s", err, out)
	} else {
		t.Logf("coffer check: %s", strings.TrimSpace(out))
	}
	// What was acknowledged survives that last kill too.
	if err := b.srv.start(); err != nil {
		t.Fatal(err)
	}
	for i := range b.users {
		bal, r, err := info(ctx, newClient(b.srv.base(), b.users[i].token), 30*time.Second)
		if err != nil || r.status != http.StatusOK || bal != balances[i] {
			b.violation("after the last kill, %s's balance is %s (status %d, %v), was %s", b.users[i].name, yuan(bal), r.status, err, yuan(balances[i]))
		}
	}
	b.srv.kill()

	b.summary(elapsed)
	b.serverErrors()
	if n := b.violationCount.Load(); n > 0 {
		t.Errorf("%d violations of the bank's promises, the first %d:\n%s", n, len(b.violationList), strings.Join(b.violationList, "\n"))
	}
}

// setup registers and logs in the users (over HTTP) and deposits their
// funds with the operator's command, while the server runs.
func (b *bank) setup(t *testing.T, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b.users = make([]user, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range b.users {
		b.users[i] = newUser("bank", i)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = register(ctx, b.srv.base(), &b.users[i])
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, u := range b.users {
		out, err := b.srv.command("deposit", "--mobile", u.mobile, "--amount", yuan(depositPerUser))
		if err != nil || strings.TrimSpace(out) != yuan(depositPerUser) {
			t.Fatalf("deposit for %s: %v: %s", u.name, err, out)
		}
	}
}

func (b *bank) add(tr *transfer) {
	b.mu.Lock()
	b.transfers = append(b.transfers, tr)
	b.mu.Unlock()
}

// client makes transfers from one user's account to random others until
// the run ends, each until it has a definite answer.
func (b *bank) client(runCtx, settleCtx context.Context, id int, rng *mrand.Rand) {
	payer := id % len(b.users)
	c := newClient(b.srv.base(), b.users[payer].token)
	for seq := 0; seq < maxPerClient && runCtx.Err() == nil; seq++ {
		payee := rng.IntN(len(b.users) - 1)
		if payee >= payer {
			payee++
		}
		tr := &transfer{key: fmt.Sprintf("bk%s-c%d-%d", b.runID, id, seq), payer: payer, payee: payee, amount: 1 + rng.Int64N(maxTransfer)}
		b.add(tr)
		b.send(settleCtx, c, tr, rng)
	}
}

// send posts the transfer, retrying with the same idempotency key after a
// timeout, a lost connection, 503 or 409 IDEMPOTENCY_IN_PROGRESS, until an
// answer says what became of it.
func (b *bank) send(ctx context.Context, c *client, tr *transfer, rng *mrand.Rand) {
	body := map[string]any{
		"mode": "transfer", "money": yuan(tr.amount), "detail": tr.key, "password": payPassword,
		"payee": b.users[tr.payee].mobile, "payer": b.users[tr.payer].mobile,
	}
	header := map[string]string{"Idempotency-Key": tr.key}
	for tr.attempts < maxAttempts && ctx.Err() == nil {
		tr.attempts++
		b.payRequests.Add(1)
		if tr.attempts == 2 {
			b.retriedTransfers.Add(1)
		}
		if tr.attempts > 1 {
			b.retries.Add(1)
		}
		// Short timeouts on purpose: some give up on requests the server
		// still completes, and their retries must not pay twice.
		timeout := 200*time.Millisecond + randDur(rng, 1800*time.Millisecond)
		if rng.IntN(8) == 0 {
			timeout = time.Millisecond + randDur(rng, 30*time.Millisecond)
		}
		b.inFlight.Add(1)
		r, err := c.call(ctx, timeout, "POST", "/api/pay", body, header)
		b.inFlight.Add(-1)
		switch {
		case err != nil:
			var ne net.Error
			if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
				b.timeouts.Add(1)
			} else {
				b.connErrors.Add(1)
			}
		case r.status == http.StatusOK:
			var data struct {
				Balance string `json:"balance"`
			}
			bal, ok := int64(0), json.Unmarshal(r.env.Data, &data) == nil
			if ok {
				bal, ok = parseMoney(data.Balance)
			}
			if !ok || bal < 0 {
				b.violation("transfer %s: answered 200 with balance %s", tr.key, r.env.Data)
			}
			tr.outcome = acked
			b.acks.Add(1)
			if r.header.Get("Idempotent-Replayed") == "true" {
				tr.replayed = true
				b.replays.Add(1)
			}
			return
		case r.status == http.StatusUnprocessableEntity && r.env.Code == "INSUFFICIENT_FUNDS":
			tr.outcome = rejected
			b.rejections.Add(1)
			return
		case r.status == http.StatusServiceUnavailable:
			b.unavailable.Add(1)
		case r.status == http.StatusConflict && r.env.Code == "IDEMPOTENCY_IN_PROGRESS":
			b.inProgress.Add(1)
		default:
			// Nothing else is a proper answer to a well-formed transfer of
			// a logged-in user with funds or without: its fate is unknown.
			b.unexpected.Add(1)
			b.violation("transfer %s attempt %d: unexpected answer %d %s %q", tr.key, tr.attempts, r.status, r.env.Code, r.env.Error)
			return
		}
		pause(ctx, 10*time.Millisecond+randDur(rng, 90*time.Millisecond))
	}
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// reader watches random users' balances through GET /api/info.
func (b *bank) reader(ctx context.Context, rng *mrand.Rand) {
	clients := make([]*client, len(b.users))
	for i, u := range b.users {
		clients[i] = newClient(b.srv.base(), u.token)
	}
	for n := 0; n < maxReads && ctx.Err() == nil; n++ {
		i := rng.IntN(len(b.users))
		bal, r, err := info(ctx, clients[i], 2*time.Second)
		b.reads.Add(1)
		switch {
		case err != nil || r.status != http.StatusOK:
			b.readFailures.Add(1)
			if err == nil && r.status != http.StatusServiceUnavailable {
				b.violation("GET /api/info of %s: unexpected answer %d %s", b.users[i].name, r.status, r.env.Code)
			}
		case bal < 0:
			b.violation("GET /api/info showed %s a negative balance %s", b.users[i].name, yuan(bal))
		}
		pause(ctx, 5*time.Millisecond+randDur(rng, 20*time.Millisecond))
	}
}

// killer SIGKILLs the server at random moments, mean apart, and restarts
// it at once on the same database and port.
func (b *bank) killer(ctx context.Context, mean time.Duration, rng *mrand.Rand) {
	for i := 0; i < maxKills; i++ {
		pause(ctx, mean/2+randDur(rng, mean))
		if ctx.Err() != nil {
			return
		}
		b.chaos.Lock()
		killed := time.Now()
		n := b.inFlight.Load()
		b.srv.kill()
		b.inFlightAtKills.Add(n)
		if n > b.maxInFlightAtKill.Load() {
			b.maxInFlightAtKill.Store(n)
		}
		pause(ctx, randDur(rng, 200*time.Millisecond)) // clients meet a closed port
		err := b.srv.start()
		b.chaos.Unlock()
		if err != nil {
			b.violation("restart after kill %d: %v", i+1, err)
			return
		}
		b.kills.Add(1)
		b.downtime.Add(int64(time.Since(killed)))
	}
}

// faulter makes the database refuse writes for a moment (50 ms to 1 s),
// mean apart.
func (b *bank) faulter(ctx context.Context, f fault, mean time.Duration, rng *mrand.Rand) {
	for n := 0; n < maxKills; n++ {
		pause(ctx, mean/2+randDur(rng, mean))
		if ctx.Err() != nil {
			return
		}
		b.chaos.Lock()
		start := time.Now()
		err := f.inject()
		if err == nil {
			time.Sleep(50*time.Millisecond + randDur(rng, 950*time.Millisecond))
		}
		if cerr := f.clear(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		b.chaos.Unlock()
		if err != nil {
			b.violation("%s: %v", f.name, err)
			return
		}
		b.writeFaults.Add(1)
		b.faultTime.Add(int64(time.Since(start)))
	}
}

// terminator terminates every backend of the database but its own, mean
// apart: the server's transactions die wherever they are.
func (b *bank) terminator(ctx context.Context, dsn string, mean time.Duration, rng *mrand.Rand) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		b.violation("terminator: %v", err)
		return
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for n := 0; n < maxKills; n++ {
		pause(ctx, mean/2+randDur(rng, mean))
		if ctx.Err() != nil {
			return
		}
		var killed int64
		b.chaos.Lock()
		err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (
			SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend') t WHERE ok`).Scan(&killed)
		b.chaos.Unlock()
		if err != nil {
			if ctx.Err() == nil {
				b.t.Logf("terminate backends: %v", err)
			}
			continue
		}
		b.terminations.Add(1)
		b.backends.Add(killed)
	}
}

// keyPattern finds a transfer's key in a bill's details.
var keyPattern = regexp.MustCompile(`bk[0-9a-f]+-c[0-9]+-[0-9]+`)

// verify checks the end state against what the clients were told, and
// returns each user's balance.
func (b *bank) verify(ctx context.Context) []int64 {
	byKey := make(map[string]*transfer, len(b.transfers))
	for _, tr := range b.transfers {
		byKey[tr.key] = tr
	}
	n := len(b.users)
	balances := make([]int64, n)
	var total int64
	for i, u := range b.users {
		bal, r, err := info(ctx, newClient(b.srv.base(), u.token), 30*time.Second)
		if err != nil || r.status != http.StatusOK {
			b.t.Fatalf("final info of %s: %d %v", u.name, r.status, err)
		}
		balances[i] = bal
		total += bal
	}
	if want := int64(n) * depositPerUser; total != want {
		b.violation("the balances total %s; %s was deposited", yuan(total), yuan(want))
	}

	outs, ins := map[string]int{}, map[string]int{}
	for i, u := range b.users {
		bills, err := statement(ctx, newClient(b.srv.base(), u.token))
		if err != nil {
			b.t.Fatalf("statement of %s: %v", u.name, err)
		}
		var deposited int64
		for j, bl := range bills {
			money, ok1 := parseMoney(bl.Money)
			after, ok2 := parseMoney(bl.Balance)
			if !ok1 || !ok2 {
				b.violation("%s's bill %+v: bad money", u.name, bl)
				continue
			}
			if after < 0 {
				b.violation("%s's bill %+v: negative balance", u.name, bl)
			}
			// Newest first: each balance is the older one plus the change.
			before := int64(0)
			if j+1 < len(bills) {
				before, _ = parseMoney(bills[j+1].Balance)
			}
			if before+money != after {
				b.violation("%s's statement does not chain at %+v: %s before it", u.name, bl, yuan(before))
			}
			if j == 0 && after != balances[i] {
				b.violation("%s's newest bill shows %s, info %s", u.name, yuan(after), yuan(balances[i]))
			}
			switch bl.Method {
			case "deposit":
				deposited += money
				continue
			case "transfer_out", "transfer_in":
			default:
				b.violation("%s's bill %+v: a movement no client made", u.name, bl)
				continue
			}
			key := keyPattern.FindString(bl.Details)
			tr := byKey[key]
			if tr == nil {
				b.violation("%s's bill %+v: no client made that transfer", u.name, bl)
				continue
			}
			if bl.Method == "transfer_out" {
				outs[key]++
				if tr.payer != i || money != -tr.amount {
					b.violation("%s's bill %+v does not match transfer %+v", u.name, bl, *tr)
				}
			} else {
				ins[key]++
				if tr.payee != i || money != tr.amount {
					b.violation("%s's bill %+v does not match transfer %+v", u.name, bl, *tr)
				}
			}
		}
		if deposited != depositPerUser {
			b.violation("%s's deposits total %s, want %s", u.name, yuan(deposited), yuan(depositPerUser))
		}
	}

	expected := make([]int64, n)
	for i := range expected {
		expected[i] = depositPerUser
	}
	var unresolvedCount int
	for _, tr := range b.transfers {
		o, in := outs[tr.key], ins[tr.key]
		applied := false
		switch tr.outcome {
		case acked:
			applied = true
			if o != 1 || in != 1 {
				b.violation("acknowledged transfer %s (%d attempts, replayed %v) is in the payer's statement %d times and the payee's %d times", tr.key, tr.attempts, tr.replayed, o, in)
			}
		case rejected:
			if o != 0 || in != 0 {
				b.violation("rejected transfer %s is in the payer's statement %d times and the payee's %d times", tr.key, o, in)
			}
		case unresolved:
			unresolvedCount++
			applied = o == 1
			if o != in || o > 1 {
				b.violation("unresolved transfer %s is in the payer's statement %d times and the payee's %d times", tr.key, o, in)
			}
		}
		if applied {
			expected[tr.payer] -= tr.amount
			expected[tr.payee] += tr.amount
		}
	}
	for i, u := range b.users {
		if expected[i] != balances[i] {
			b.violation("%s's balance is %s; the answers the clients had add up to %s", u.name, yuan(balances[i]), yuan(expected[i]))
		}
	}
	if unresolvedCount > 0 {
		b.violation("%d transfers had no definite answer %s after the faults stopped: the server did not recover", unresolvedCount, settleTimeout)
	}
	if b.acks.Load() == 0 {
		b.violation("no transfer was acknowledged")
	}
	if *flagKillEvery >= 0 && b.kills.Load() == 0 {
		b.violation("the server was never killed: run longer than -bank.kill-every")
	}
	return balances
}

// summary logs what the run did.
func (b *bank) summary(elapsed time.Duration) {
	retriedOK := 0
	for _, tr := range b.transfers {
		if tr.attempts > 1 && tr.outcome == acked {
			retriedOK++
		}
	}
	t := b.t
	t.Logf("%s: %d transfers attempted in %s (%.0f/s): %d acknowledged (%d of them replays of an attempt whose answer was lost), %d rejected for insufficient funds",
		b.store, len(b.transfers), elapsed.Round(time.Millisecond), float64(len(b.transfers))/elapsed.Seconds(), b.acks.Load(), b.replays.Load(), b.rejections.Load())
	t.Logf("%s: %d payment requests; %d transfers retried (%d retries; %d of them acknowledged in the end): %d connection errors, %d client timeouts, %d answers 503, %d answers 409 in progress, %d other answers",
		b.store, b.payRequests.Load(), b.retriedTransfers.Load(), b.retries.Load(), retriedOK, b.connErrors.Load(), b.timeouts.Load(), b.unavailable.Load(), b.inProgress.Load(), b.unexpected.Load())
	downtime, faultTime := time.Duration(b.downtime.Load()), time.Duration(b.faultTime.Load())
	inFlight := 0.0
	if k := b.kills.Load(); k > 0 {
		inFlight = float64(b.inFlightAtKills.Load()) / float64(k)
	}
	t.Logf("%s: %d SIGKILLs survived (down %s in all; %.1f payments in flight at a kill on average, at most %d); %d spells of refused writes (%s in all); %d backend terminations ending %d backends",
		b.store, b.kills.Load(), downtime.Round(time.Millisecond), inFlight, b.maxInFlightAtKill.Load(), b.writeFaults.Load(), faultTime.Round(time.Millisecond), b.terminations.Load(), b.backends.Load())
	t.Logf("%s: %d balance reads, %d of them failed during faults", b.store, b.reads.Load(), b.readFailures.Load())
	if b.violationCount.Load() == 0 {
		t.Logf("%s: total %s = deposits; no negative balance seen; every acknowledged transfer once in both statements, nothing applied twice, nothing unacknowledged lost or invented; coffer check passed",
			b.store, yuan(int64(len(b.users))*depositPerUser))
	}
}

// randDur is a random duration in [0, d).
func randDur(rng *mrand.Rand, d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rng.Int64N(int64(d)))
}

// serverErrors logs the errors the server logged: internal errors no
// client saw (a client that gave up) are not violations, but are worth a
// look.
func (b *bank) serverErrors() {
	raw, err := os.ReadFile(b.srv.logPath)
	if err != nil {
		b.t.Logf("server log: %v", err)
		return
	}
	counts := map[string]int{}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.Contains(line, "level=ERROR") {
			continue
		}
		msg := line
		if i := strings.Index(line, "msg="); i >= 0 {
			msg = line[i:]
		}
		msg = requestIDPattern.ReplaceAllString(msg, "")
		counts[msg]++
	}
	for msg, n := range counts {
		b.t.Logf("%s: the server logged %d times: %s", b.store, n, msg)
	}
}

var requestIDPattern = regexp.MustCompile(` request_id=[0-9a-zA-Z_-]+`)
