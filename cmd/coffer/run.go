package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"time"

	"coffer"
	"coffer/httpapi"
	"coffer/password"
)

const usage = `usage: coffer <command> [flags]

commands:
  serve       run the server (--addr, --db)
  deposit     credit a card with cash: --mobile M --amount A
  gold-price  set the gold quote in yuan per gram: --price P
  check       verify the ledger's invariants
  accrue      close business days, paying interest: [--date YYYY-MM-DD]
  product     the wealth catalog: add|set|retire|list
  fund        the fund catalog: add|nav|set|retire|list
  bench       measure the server under load: --scenario --duration --connections
run "coffer <command> -h" for a command's flags.
Environment: COFFER_ADDR, COFFER_DB, COFFER_SECRET, COFFER_SECRET_FILE.
`

// usageError is bad input on the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// run is the whole program; main only wires the process to it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, getenv, stdout, stderr)
	case "deposit":
		return cmdDeposit(ctx, rest, getenv, stdout, stderr)
	case "gold-price":
		return cmdGoldPrice(ctx, rest, getenv, stdout, stderr)
	case "check":
		return cmdCheck(ctx, rest, getenv, stdout, stderr)
	case "accrue":
		return cmdAccrue(ctx, rest, getenv, stdout, stderr)
	case "product":
		return cmdProduct(ctx, rest, getenv, stdout, stderr)
	case "fund":
		return cmdFund(ctx, rest, getenv, stdout, stderr)
	case "bench":
		return cmdBench(ctx, rest, getenv, stdout, stderr)
	case passwordWorkerCommand:
		return password.ServeWorker(os.Stdin, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}

// passwordWorkerCommand is the hidden command that runs a password hashing
// worker on standard input and output, for serve to start.
const passwordWorkerCommand = "password-worker"

// newPasswordWorker describes this program, run as the password hashing
// worker, writing its complaints to stderr.
func newPasswordWorker(stderr io.Writer) (*password.Worker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this program to run the password worker: %w", err)
	}
	return password.NewWorker(workerCommand(exe, stderr)), nil
}

// workerCommand makes the commands that start a password worker: the
// program found at exe when the server started, writing to stderr.
func workerCommand(exe string, stderr io.Writer) func() *exec.Cmd {
	program := workerProgram(exe)
	return func() *exec.Cmd {
		cmd := exec.Command(program, passwordWorkerCommand)
		cmd.Args[0] = exe // what ps shows
		cmd.Env = workerEnv(os.Environ())
		cmd.Stderr = stderr
		return cmd
	}
}

// runningProgram is, on Linux, the file of the running program itself,
// whatever has since become of its path.
const runningProgram = "/proc/self/exe"

// workerProgram is the file to run as the password worker: this very
// build. A worker is started again after it dies, perhaps long after an
// upgrade put another build at exe's path; started from runningProgram,
// it is still the build its parent speaks the protocol of. Where there is
// no such file, exe.
func workerProgram(exe string) string {
	if _, err := os.Stat(runningProgram); err == nil {
		return runningProgram
	}
	return exe
}

// workerEnv is env without what the password worker has no use for and
// should not hold: the server's settings (COFFER_SECRET, and COFFER_DB,
// whose URL may carry a password) and PostgreSQL's client settings
// (PGPASSWORD). The worker only hashes; the Go runtime's settings stay.
func workerEnv(env []string) []string {
	kept := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "COFFER_") && !strings.HasPrefix(kv, "PG") {
			kept = append(kept, kv)
		}
	}
	return kept
}

// common holds the flags every command shares.
type common struct {
	db   string
	zone string
}

func newFlags(name string, getenv func(string) string, stderr io.Writer, c *common) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.db, "db", envOr(getenv, "COFFER_DB", "coffer.db"), "database: an SQLite file path or a postgres:// URL")
	fs.StringVar(&c.zone, "zone", envOr(getenv, "COFFER_ZONE", "Asia/Shanghai"), "time zone of calendar days (daily limits, interest)")
	return fs
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func (c common) config() (coffer.Config, error) {
	cfg := coffer.DefaultConfig()
	zone, err := time.LoadLocation(c.zone)
	if err != nil {
		return cfg, usageError{fmt.Sprintf("unknown time zone %q", c.zone)}
	}
	cfg.Zone = zone
	return cfg, nil
}

func cmdServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("serve", getenv, stderr, &c)
	addr := fs.String("addr", envOr(getenv, "COFFER_ADDR", "127.0.0.1:8080"), "address to listen on")
	secretFile := fs.String("secret-file", getenv("COFFER_SECRET_FILE"), "file holding the server secret (default: the environment's COFFER_SECRET, else a file beside an SQLite database, created on first start)")
	idle := fs.Duration("session-idle", 30*time.Minute, "a session ends after this long without a request")
	absolute := fs.Duration("session-absolute", 12*time.Hour, "a session ends this long after login")
	limitTransfer := fs.String("limit-transfer", "50000.00", "largest single transfer, yuan")
	limitDaily := fs.String("limit-daily", "200000.00", "largest total of transfers and top-ups in one day, yuan")
	trustProxy := fs.Bool("trust-proxy", false, "take client addresses from X-Forwarded-For (behind a load balancer only)")
	logJSON := fs.Bool("log-json", false, "write logs as JSON")
	logFlush := fs.Duration("log-flush", 100*time.Millisecond, "write the log out at this interval instead of a write per line (0: a write per line)")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this separate address, e.g. 127.0.0.1:6060 (off by default; never expose it)")
	hashWorker := fs.Bool("password-worker", true, "hash login passwords in a worker process of lower priority, so that hashing neither delays other requests nor loads the server's garbage collector (false: in the server process)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	cfg.SessionIdle, cfg.SessionAbsolute = *idle, *absolute
	if cfg.SessionIdle <= 0 || cfg.SessionAbsolute <= 0 {
		return usageError{"session limits must be positive"}
	}
	var ok bool
	if cfg.LimitTransfer, ok = coffer.ParseAmount(*limitTransfer); !ok {
		return usageError{fmt.Sprintf("bad --limit-transfer %q", *limitTransfer)}
	}
	if cfg.LimitDaily, ok = coffer.ParseAmount(*limitDaily); !ok {
		return usageError{fmt.Sprintf("bad --limit-daily %q", *limitDaily)}
	}
	if getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	if *logFlush < 0 {
		return usageError{"--log-flush must not be negative"}
	}
	logOut, flushLog := stderr, func() {}
	if *logFlush > 0 {
		buffered := newFlushingWriter(stderr, *logFlush)
		defer buffered.Close() // after the last line: deferred first, run last
		logOut, flushLog = buffered, func() { buffered.Flush() }
	}
	var handler slog.Handler = slog.NewTextHandler(logOut, nil)
	if *logJSON {
		handler = slog.NewJSONHandler(logOut, nil)
	}
	if *logFlush > 0 {
		handler = urgentFlush{handler, flushLog}
	}
	log := slog.New(handler)

	store, err := openStore(ctx, c.db, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	secret, err := loadSecret(c.db, *secretFile, getenv)
	if err != nil {
		return err
	}
	keyer, err := password.NewPayKeyer(secret)
	if err != nil {
		return err
	}
	var hasher *password.Hasher
	if *hashWorker {
		worker, err := newPasswordWorker(stderr)
		if err != nil {
			return err
		}
		defer worker.Close() // after the server's shutdown: deferred earlier
		if hasher, err = password.NewWorkerHasher(password.DefaultParams, worker); err != nil {
			return err
		}
	} else {
		hasher = password.NewHasher(password.DefaultParams)
	}
	bank := coffer.NewBank(store, hasher, keyer, cfg, time.Now)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           httpapi.NewServer(bank, httpapi.Options{Logger: log, TrustProxy: *trustProxy}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(handler, slog.LevelWarn),
	}
	log.Info("coffer listening", "addr", ln.Addr().String(), "db", redactDSN(c.db))
	flushLog() // at once, for whoever waits for it
	if *pprofAddr != "" {
		stopProfiler, err := serveProfiler(*pprofAddr, log)
		if err != nil {
			return err
		}
		defer stopProfiler()
	}
	go janitor(ctx, bank, log)
	go accrualScheduler(ctx, bank, log.Info)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// serveGCPercent is the server's GOGC unless the environment sets one. The
// live heap of a server is small (a few MiB: the work of each request is
// short-lived), so the default of 100 runs the collector, and returns
// memory to the system, very often; 400 lets the heap grow to five times
// the live data between collections, saving about a fifth of the CPU of a
// request for a few MiB more memory (see BENCHMARKS.md).
const serveGCPercent = 400

// janitor deletes expired sessions, counters and idempotency keys hourly.
func janitor(ctx context.Context, bank *coffer.Bank, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := bank.Store().Update(ctx, func(tx coffer.Tx) error { return tx.DeleteExpired(ctx, time.Now()) })
			if err != nil {
				log.Warn("janitor", "err", err.Error())
			}
		}
	}
}

// redactDSN hides the passwords of a postgres:// URL, in its user part
// and in a password parameter, before it is logged.
func redactDSN(dsn string) string {
	if !isPostgres(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unparsable URL hidden)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func cmdDeposit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("deposit", getenv, stderr, &c)
	mobile := fs.String("mobile", "", "the depositor's mobile number")
	amount := fs.String("amount", "", "amount in yuan, at most two decimals")
	if err := parse(fs, args); err != nil {
		return err
	}
	m, ok := coffer.NormalizeMobile(*mobile)
	if !ok {
		return usageError{fmt.Sprintf("bad --mobile %q: want 11 digits 1[3-9]xxxxxxxxx", *mobile)}
	}
	a, ok := coffer.ParseAmount(*amount)
	if !ok {
		return usageError{fmt.Sprintf("bad --amount %q: want a positive amount of yuan with at most two decimals", *amount)}
	}
	return withBank(ctx, c, func(bank *coffer.Bank) error {
		bal, err := bank.Deposit(ctx, m, a)
		if coffer.IsCode(err, coffer.ErrUserNotFound) {
			return fmt.Errorf("no user has mobile %s", m)
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, bal.String())
		return nil
	})
}

func cmdGoldPrice(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("gold-price", getenv, stderr, &c)
	price := fs.String("price", "", "gold price in yuan per gram, at most two decimals")
	if err := parse(fs, args); err != nil {
		return err
	}
	p, ok := coffer.ParseAmount(*price)
	if !ok {
		return usageError{fmt.Sprintf("bad --price %q: want a positive amount of yuan with at most two decimals", *price)}
	}
	return withBank(ctx, c, func(bank *coffer.Bank) error {
		if err := bank.SetGoldPrice(ctx, p); err != nil {
			return err
		}
		fmt.Fprintln(stdout, p.String())
		return nil
	})
}

func cmdCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("check", getenv, stderr, &c)
	if err := parse(fs, args); err != nil {
		return err
	}
	return withBank(ctx, c, func(bank *coffer.Bank) error {
		r, err := bank.Check(ctx)
		if err != nil {
			return err
		}
		for _, p := range r.Problems {
			fmt.Fprintln(stdout, "FAIL:", p)
		}
		if !r.OK() {
			return fmt.Errorf("ledger check failed: %d problems", len(r.Problems))
		}
		fmt.Fprintf(stdout, "ok: %d accounts, %d transactions, %d entries; every asset sums to zero, no user account is negative, every balance equals its entries\n", r.Accounts, r.Transactions, r.Entries)
		return nil
	})
}

// withBank opens the store for an operator command. Only serve creates a
// database: an operator's mistyped path must fail, not answer from a new,
// empty one.
func withBank(ctx context.Context, c common, fn func(*coffer.Bank) error) error {
	cfg, err := c.config()
	if err != nil {
		return err
	}
	if !isPostgres(c.db) {
		if _, err := os.Stat(c.db); err != nil {
			return usageError{fmt.Sprintf("no database at %s (coffer serve creates it): %v", c.db, err)}
		}
	}
	store, err := openStore(ctx, c.db, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(coffer.NewBank(store, nil, nil, cfg, time.Now))
}
