// Package loadgen drives HTTP load against a Coffer server: it creates
// users with funds and payment passwords, logs them in, then, for each
// scenario in turn, keeps a fixed number of keep-alive connections busy
// with its requests for a fixed time, and reports throughput, latency
// quantiles and answers by HTTP status. It talks to a loopback address
// only.
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"coffer"
)

// Scenarios: what each request of a run does.
const (
	// ScenarioTransfer: a transfer between two random users, each with a
	// fresh Idempotency-Key.
	ScenarioTransfer = "transfer"
	// ScenarioTransferHot: transfers back and forth between two users only.
	ScenarioTransferHot = "transfer-hot"
	// ScenarioInfo: GET /api/info of a random user.
	ScenarioInfo = "info"
	// ScenarioWallet: the first page of GET /api/wallet of a random user.
	ScenarioWallet = "wallet"
	// ScenarioLogin: POST /api/login of a random user (argon2id per request).
	ScenarioLogin = "login"
	// ScenarioMixed: info, wallet, transfers and the catalog, as weighted
	// in mixedWeights.
	ScenarioMixed = "mixed"
)

// Scenarios lists every scenario.
var Scenarios = []string{ScenarioTransfer, ScenarioTransferHot, ScenarioInfo, ScenarioWallet, ScenarioLogin, ScenarioMixed}

// mixedWeights are the shares of each kind of request in ScenarioMixed, in
// percent. Logins are left out: each costs an argon2id hash, and a few per
// second would saturate the cores (ScenarioLogin measures them alone).
var mixedWeights = []struct {
	kind    string
	percent int
}{{ScenarioInfo, 40}, {ScenarioWallet, 25}, {ScenarioTransfer, 30}, {"products", 5}}

// Limits of a run.
const (
	// DefaultMaxRequests caps the requests of one run whatever its duration.
	DefaultMaxRequests = 20_000_000
	// MaxConnections bounds the connections of one run.
	MaxConnections = 4096
	// MaxUsers bounds the users one run creates.
	MaxUsers = 100_000
	// requestTimeout bounds one request.
	requestTimeout = 30 * time.Second
	// setupWorkers is how many setup requests (registrations, logins,
	// deposits) run at once: enough to keep the server's hashing slots
	// busy without overflowing its hashing queue.
	setupWorkers = 8
	// setupTries bounds the tries of one setup step answered 429 or 503.
	setupTries = 50
	// historyPerUser is how many transfers each user makes before a
	// wallet or mixed run, so that a first page of bills is full.
	historyPerUser = coffer.WalletDefaultLimit + 5
	// depositFen is every user's starting balance: 1,000,000.00 yuan,
	// far more than a run moves in transfers of under one yuan each.
	depositFen coffer.Amount = 1_000_000_00
	// maxTransferFen bounds one transfer's amount (0.01 to 0.99 yuan), so
	// that no run reaches the daily limit.
	maxTransferFen = 99
)

// Fixed credentials of the users a run creates.
const (
	userPassword = "bench-password-0"
	payPassword  = "123456"
)

// Funder credits a user's card, as the operator's deposit does.
type Funder func(ctx context.Context, mobile string, amount coffer.Amount) error

// Config describes a run.
type Config struct {
	// BaseURL is the server, "http://127.0.0.1:PORT": a loopback address.
	BaseURL string
	// Scenarios are run one after another on the same users.
	Scenarios   []string
	Duration    time.Duration
	Connections int
	Users       int
	// MaxRequests caps the run's requests; 0 means DefaultMaxRequests.
	MaxRequests int64
	// Fund deposits money for the users; needed by every scenario that
	// pays (transfer, transfer-hot, wallet, mixed).
	Fund Funder
	// Backfill, when set, is called once the users exist, with their
	// mobiles, to give them a large history written straight to the
	// database (the wallet's and mixed's few bills over HTTP are still
	// made after it, so that they are the newest).
	Backfill func(ctx context.Context, mobiles []string) error
	// Progress receives a line per setup step; nil discards them.
	Progress io.Writer
	// Client is ClientRaw (the default when empty) or ClientStd.
	Client string
	// HonorRetryAfter makes a connection wait as an answer's Retry-After
	// header asks, plus a random part of up to a fifth of it, before its
	// next request, as a well-behaved client does; without it, a refused
	// connection asks again at once.
	HonorRetryAfter bool
	// Ramp spreads the connections' first requests evenly over this long
	// at the start of each load instead of sending them all in one
	// instant. Requests sent in one instant are answered one after
	// another, so the last answer of such a herd measures its size
	// rather than the server's answer time; clients of a real server
	// do not arrive together. 0 sends them together.
	Ramp time.Duration
}

// needsFunds reports whether one of the scenarios moves money.
func needsFunds(scenarios []string) bool {
	for _, s := range scenarios {
		switch s {
		case ScenarioTransfer, ScenarioTransferHot, ScenarioWallet, ScenarioMixed:
			return true
		}
	}
	return false
}

// readsBills reports whether one of the scenarios reads statements.
func readsBills(scenarios []string) bool {
	for _, s := range scenarios {
		if s == ScenarioWallet || s == ScenarioMixed {
			return true
		}
	}
	return false
}

// Validate checks the configuration; Run does too.
func (c *Config) Validate() error {
	if err := CheckLoopback(c.BaseURL); err != nil {
		return err
	}
	if len(c.Scenarios) == 0 {
		return errors.New("no scenario")
	}
	for _, s := range c.Scenarios {
		if !slices.Contains(Scenarios, s) {
			return fmt.Errorf("unknown scenario %q", s)
		}
	}
	switch {
	case c.Duration <= 0:
		return errors.New("the duration must be positive")
	case c.Connections < 1 || c.Connections > MaxConnections:
		return fmt.Errorf("connections must be 1 to %d", MaxConnections)
	case c.Users < 2 || c.Users > MaxUsers:
		return fmt.Errorf("users must be 2 to %d", MaxUsers)
	case c.Client != "" && c.Client != ClientRaw && c.Client != ClientStd:
		return fmt.Errorf("client must be %s or %s", ClientRaw, ClientStd)
	case c.MaxRequests < 0:
		return errors.New("the request cap must not be negative")
	case c.Ramp < 0 || c.Ramp >= c.Duration:
		return errors.New("the ramp must be at least 0 and shorter than the duration")
	case needsFunds(c.Scenarios) && c.Fund == nil:
		return errors.New("a scenario that moves money needs the server's database to deposit funds")
	}
	return nil
}

// CheckLoopback accepts only an http URL whose host is a loopback address:
// the load generator never sends traffic off the machine.
func CheckLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("target %q: want http://127.0.0.1:PORT", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("target %q is not a loopback address: the load generator only sends traffic to 127.0.0.1", raw)
}

// Result is what a run measured.
type Result struct {
	Scenario    string  `json:"scenario"`
	Connections int     `json:"connections"`
	Users       int     `json:"users"`
	DurationS   float64 `json:"duration_s"` // from the first request to the last answer
	Requests    int64   `json:"requests"`
	// Succeeded counts 2xx answers.
	Succeeded    int64   `json:"succeeded"`
	RequestsPerS float64 `json:"requests_per_s"`
	// SucceededPerS is the rate of 2xx answers.
	SucceededPerS float64 `json:"succeeded_per_s"`
	Latency       Latency `json:"latency_ms"`
	// Statuses counts answers by HTTP status; status 0 counts requests
	// that got no answer (connection errors, timeouts).
	Statuses []StatusCount `json:"statuses"`
	// Errors counts answers that are not 2xx, and requests without one.
	Errors int64 `json:"errors"`
	// ServerErrors counts 5xx answers and requests without an answer.
	ServerErrors int64 `json:"server_errors"`
}

// Latency holds quantiles in milliseconds.
type Latency struct {
	P50MS float64 `json:"p50"`
	P90MS float64 `json:"p90"`
	P99MS float64 `json:"p99"`
	MaxMS float64 `json:"max"`
}

// StatusCount is the answers of one HTTP status with their latency.
type StatusCount struct {
	Status  int     `json:"status"`
	Count   int64   `json:"count"`
	Latency Latency `json:"latency_ms"`
}

func latencyOf(h *histogram) Latency {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Latency{P50MS: ms(h.quantile(0.50)), P90MS: ms(h.quantile(0.90)), P99MS: ms(h.quantile(0.99)), MaxMS: ms(h.max)}
}

// benchUser is a user of the run with their session.
type benchUser struct {
	username string
	mobile   string
	token    string
}

// Runner is a prepared run: its users exist, hold funds and are logged
// in. Load runs one scenario on them.
type Runner struct {
	cfg       Config
	transport *http.Transport
	client    *http.Client
	users     []benchUser
	runID     string
	keySeq    atomic.Int64
	scenario  string       // of the load in progress
	issued    atomic.Int64 // requests of the load in progress
}

// NewTransport is an http.Transport tuned for load: keep-alive
// connections, as many idle ones kept per host as there are connections,
// no proxy from the environment, no compression.
func NewTransport(connections int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        connections,
		MaxIdleConnsPerHost: connections,
		MaxConnsPerHost:     connections,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

// Prepare checks cfg and creates the users: registered with a payment
// password, logged in, and funded when a scenario needs it. Each Load then
// drives its scenario until cfg.Duration has passed or cfg.MaxRequests
// were sent.
func Prepare(ctx context.Context, cfg Config) (*Runner, error) {
	if cfg.MaxRequests == 0 {
		cfg.MaxRequests = DefaultMaxRequests
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	transport := NewTransport(max(cfg.Connections, setupWorkers))
	r := &Runner{
		cfg:       cfg,
		transport: transport,
		client:    &http.Client{Transport: transport, Timeout: requestTimeout},
		runID:     strconv.FormatUint(rand.Uint64()%1_000_000_000, 36),
	}
	if err := r.setup(ctx); err != nil {
		transport.CloseIdleConnections()
		return nil, err
	}
	return r, nil
}

// Close releases the setup's idle connections.
func (r *Runner) Close() { r.transport.CloseIdleConnections() }

// workerStats is what one connection's worker measured.
type workerStats struct {
	all      *histogram
	byStatus map[int]*histogram
}

// Load runs scenario, one of the configuration's, for the configured
// duration and returns what it measured. Loads run one at a time: a
// Runner's loads must not overlap.
func (r *Runner) Load(ctx context.Context, scenario string) (*Result, error) {
	if !slices.Contains(r.cfg.Scenarios, scenario) {
		return nil, fmt.Errorf("scenario %q was not prepared for", scenario)
	}
	r.scenario = scenario
	r.issued.Store(0)
	fmt.Fprintf(r.cfg.Progress, "load: %s, %d connections, %s\n", scenario, r.cfg.Connections, r.cfg.Duration)
	stats := make([]*workerStats, r.cfg.Connections)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(r.cfg.Duration)
	for i := range stats {
		stats[i] = &workerStats{all: newHistogram(), byStatus: map[int]*histogram{}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait(ctx, r.cfg.Ramp*time.Duration(i)/time.Duration(len(stats)))
			r.worker(ctx, i, deadline, stats[i])
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	all := newHistogram()
	byStatus := map[int]*histogram{}
	for _, s := range stats {
		all.merge(s.all)
		for status, h := range s.byStatus {
			if byStatus[status] == nil {
				byStatus[status] = newHistogram()
			}
			byStatus[status].merge(h)
		}
	}
	res := &Result{
		Scenario: scenario, Connections: r.cfg.Connections, Users: len(r.users),
		DurationS: elapsed.Seconds(), Requests: all.total, Latency: latencyOf(all),
	}
	for status := range 600 {
		h := byStatus[status]
		if h == nil {
			continue
		}
		res.Statuses = append(res.Statuses, StatusCount{Status: status, Count: h.total, Latency: latencyOf(h)})
		switch {
		case status >= 200 && status < 300:
			res.Succeeded += h.total
		case status == 0 || status >= 500:
			res.ServerErrors += h.total
			res.Errors += h.total
		default:
			res.Errors += h.total
		}
	}
	res.RequestsPerS = float64(res.Requests) / elapsed.Seconds()
	res.SucceededPerS = float64(res.Succeeded) / elapsed.Seconds()
	return res, nil
}

// worker sends one request at a time on its connection until the deadline
// or the run's request cap.
func (r *Runner) worker(ctx context.Context, id int, deadline time.Time, stats *workerStats) {
	rng := rand.New(rand.NewPCG(rand.Uint64(), uint64(id)))
	snd := r.newSender()
	defer snd.close()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if r.issued.Add(1) > r.cfg.MaxRequests {
			return
		}
		c := r.next(rng)
		start := time.Now()
		a := snd.send(ctx, c)
		took := time.Since(start)
		stats.all.record(took)
		h := stats.byStatus[a.status]
		if h == nil {
			h = newHistogram()
			stats.byStatus[a.status] = h
		}
		h.record(took)
		if r.cfg.HonorRetryAfter && a.retryAfter > 0 {
			wait(ctx, min(a.retryAfter+retryJitter(rng, a.retryAfter), time.Until(deadline)))
		}
	}
}

// retryJitter is a random part of up to a fifth of retryAfter, added to
// the wait as well-behaved clients do. Without it, the connections refused
// together come back together, a second later, for as long as the run
// lasts (see Config.Ramp).
func retryJitter(rng *rand.Rand, retryAfter time.Duration) time.Duration {
	if retryAfter < 5 {
		return 0
	}
	return time.Duration(rng.Int64N(int64(retryAfter / 5)))
}

// wait sleeps for d or until ctx ends.
func wait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// newSender returns a connection's sender for the configured client.
func (r *Runner) newSender() sender {
	if r.cfg.Client == ClientStd {
		return &stdSender{r: r}
	}
	snd, err := newRawSender(r.cfg.BaseURL)
	if err != nil {
		panic(err) // BaseURL was validated
	}
	return snd
}

// next is the scenario's next request.
func (r *Runner) next(rng *rand.Rand) call {
	kind := r.scenario
	if kind == ScenarioMixed {
		n := rng.IntN(100)
		for _, w := range mixedWeights {
			if n < w.percent {
				kind = w.kind
				break
			}
			n -= w.percent
		}
	}
	switch kind {
	case ScenarioTransfer:
		i, j := r.pair(rng, len(r.users))
		return r.transfer(r.users[i], r.users[j], rng)
	case ScenarioTransferHot:
		i := rng.IntN(2)
		return r.transfer(r.users[i], r.users[1-i], rng)
	case ScenarioInfo:
		return call{method: http.MethodGet, path: "/api/info", token: r.users[rng.IntN(len(r.users))].token}
	case ScenarioWallet:
		return call{method: http.MethodGet, path: "/api/wallet", token: r.users[rng.IntN(len(r.users))].token}
	case ScenarioLogin:
		return call{method: http.MethodPost, path: "/api/login", body: loginBody(r.users[rng.IntN(len(r.users))].username)}
	default:
		return call{method: http.MethodGet, path: "/api/products", token: r.users[rng.IntN(len(r.users))].token}
	}
}

// pair picks two distinct users of n.
func (r *Runner) pair(rng *rand.Rand, n int) (int, int) {
	i, j := rng.IntN(n), rng.IntN(n-1)
	if j >= i {
		j++
	}
	return i, j
}

// transfer is a transfer from payer to payee of 0.01 to 0.99 yuan with a
// fresh idempotency key.
func (r *Runner) transfer(payer, payee benchUser, rng *rand.Rand) call {
	amount := coffer.Amount(1 + rng.IntN(maxTransferFen))
	body := `{"mode":"transfer","money":"` + amount.String() + `","payee":"` + payee.mobile +
		`","payer":"` + payer.mobile + `","detail":"bench","password":"` + payPassword + `"}`
	return call{method: http.MethodPost, path: "/api/pay", token: payer.token, body: []byte(body),
		key: r.runID + "-" + strconv.FormatInt(r.keySeq.Add(1), 10)}
}

func loginBody(username string) []byte {
	return []byte(`{"username":"` + username + `","password":"` + userPassword + `"}`)
}

// httpRequest is c as a net/http request, for the setup.
func (r *Runner) httpRequest(ctx context.Context, c call) *http.Request {
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, r.cfg.BaseURL+c.path, body)
	if err != nil {
		panic(err) // BaseURL was validated and paths are constants
	}
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.key != "" {
		req.Header.Set("Idempotency-Key", c.key)
	}
	return req
}
