package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"coffer"
	"coffer/history"
	"coffer/loadgen"
)

// Ways the bench runs the server it measures.
const (
	serverChild     = "child"     // `coffer serve` as a child process: its own CPU and memory figures
	serverInProcess = "inprocess" // in this process: CPU figures include the load generator
)

// Limits of the bench command.
const (
	// benchMaxDuration bounds one run's load.
	benchMaxDuration = time.Hour
	// benchRamp is --ramp's default: 64 connections start about 1.6 ms
	// apart.
	benchRamp = 100 * time.Millisecond
	// benchMaxBills bounds --bills.
	benchMaxBills = 1_000_000_000
	// serverStartTimeout bounds the wait for the server to answer /healthz.
	serverStartTimeout = 60 * time.Second
	// serverStopTimeout bounds the wait for the server to stop.
	serverStopTimeout = 40 * time.Second
	// hashRateDuration is how long the login scenario measures the
	// machine's argon2id rate before the load.
	hashRateDuration = 3 * time.Second
)

// benchReport is what the bench prints: the load's figures and the
// server's resources.
type benchReport struct {
	*loadgen.Result
	Server   string `json:"server"`
	Database string `json:"database"`
	// ServerCPUS is the server's CPU time (user and system) during the
	// load, its password worker's included; in-process, the whole
	// process's, load generator included.
	ServerCPUS  float64 `json:"server_cpu_s"`
	ServerCores float64 `json:"server_cores"`
	// ServerPeakRSSMiB is the server's peak resident memory during the
	// load (VmHWM, reset when the load starts), its password worker's
	// peak added.
	ServerPeakRSSMiB float64 `json:"server_peak_rss_mib"`
	// LoadGeneratorCPUS is this process's CPU time during the load (with
	// an in-process server, the server's too).
	LoadGeneratorCPUS float64 `json:"load_generator_cpu_s"`
	// DatabaseCPUS is, with a PostgreSQL database, the CPU time during the
	// load of this machine's processes named postgres: the database's,
	// when it runs here (then 0 when it does not).
	DatabaseCPUS float64 `json:"database_cpu_s,omitempty"`
	// MachineBusyPct is how busy the machine's CPUs were during the load,
	// all of them, whatever ran on them: 100 less it was idle (0: not
	// measured, without /proc/stat).
	MachineBusyPct float64 `json:"machine_busy_pct,omitempty"`
	// inProcess: the server ran in this process, whose CPU time is both
	// ServerCPUS and LoadGeneratorCPUS.
	inProcess bool
	// HashesPerS is the machine's argon2id rate, measured before a login run.
	HashesPerS float64 `json:"argon2id_hashes_per_s,omitempty"`
	// LoginsOfHashRatePct is successful logins per second as a percentage
	// of HashesPerS.
	LoginsOfHashRatePct float64 `json:"logins_of_hash_rate_pct,omitempty"`
	// Pgbench is pgbench's rate on the same PostgreSQL server, measured
	// in the same run (--pgbench).
	Pgbench   *pgbenchResult `json:"pgbench,omitempty"`
	Ledger    string         `json:"ledger"`
	CPUs      int            `json:"cpus"`
	GoVersion string         `json:"go_version"`
}

func cmdBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 10*time.Second, "how long the load runs")
	connections := fs.Int("connections", 64, "keep-alive connections, each with one request at a time")
	scenario := fs.String("scenario", loadgen.ScenarioTransfer, "what the requests do: "+strings.Join(loadgen.Scenarios, " | ")+"; several, comma-separated, run one after another on the same server and users")
	users := fs.Int("users", 100, "users created for the run (transfer-hot uses two of them)")
	target := fs.String("target", "", "an already-running server, http://127.0.0.1:PORT (then --db names its database, to deposit funds)")
	db := fs.String("db", "", "database: with --target, the target's; else a fresh one for the server the bench starts (default: a temporary SQLite file)")
	server := fs.String("server", serverChild, "without --target, how the bench runs the server: child (coffer serve as a child process) or inprocess")
	maxRequests := fs.Int64("max-requests", loadgen.DefaultMaxRequests, "cap on the requests of the run")
	client := fs.String("client", loadgen.ClientRaw, "how the load is sent: raw (HTTP/1.1 written by hand, little CPU) or std (net/http's client)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	serverPID := fs.Int("server-pid", 0, "with --target, the target's process id, to measure its CPU time and peak memory")
	cpuProfile := fs.String("cpuprofile", "", "write the server's CPU profile during the load to this file (not with --target)")
	zone := fs.String("zone", envOr(getenv, "COFFER_ZONE", "Asia/Shanghai"), "time zone of calendar days")
	pgbench := fs.Bool("pgbench", false, "with a PostgreSQL --db, also run pgbench's default script at --connections clients for --duration on the same server before the load, and print its tps beside (it drops and makes again the pgbench_* tables of that database)")
	retryAfter := fs.Bool("retry-after", true, "wait as an answer's Retry-After header asks (503s carry one), plus up to a fifth more at random, before the connection's next request, as a well-behaved client does; false: ask again at once")
	ramp := fs.Duration("ramp", benchRamp, "spread the connections' first requests over this long at the start of each scenario (0: all in one instant)")
	bills := fs.Int64("bills", 0, "before the load, write this many bills of past transfers among the users straight to the database (e.g. 10000000)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent) // the load generator's garbage is as short-lived as the server's
	}
	switch {
	case *duration <= 0 || *duration > benchMaxDuration:
		return usageError{fmt.Sprintf("--duration must be positive and at most %s", benchMaxDuration)}
	case *server != serverChild && *server != serverInProcess:
		return usageError{fmt.Sprintf("--server must be %s or %s", serverChild, serverInProcess)}
	case *bills < 0 || *bills > benchMaxBills:
		return usageError{fmt.Sprintf("--bills must be 0 to %d", benchMaxBills)}
	case *bills > 0 && *target != "" && *db == "":
		return usageError{"--bills writes to the database: with --target, name it with --db"}
	case *pgbench && !isPostgres(*db):
		return usageError{"--pgbench needs a PostgreSQL --db"}
	case *cpuProfile != "" && strings.Contains(*scenario, ","):
		return usageError{"--cpuprofile profiles one scenario"}
	case *target != "" && *cpuProfile != "":
		return usageError{"--cpuprofile profiles a server the bench starts: run the target with --pprof instead"}
	}
	if *target != "" {
		if err := loadgen.CheckLoopback(*target); err != nil {
			return usageError{err.Error()}
		}
	}
	cfg, err := common{zone: *zone}.config()
	if err != nil {
		return err
	}
	scenarios := strings.Split(*scenario, ",")
	early := loadgen.Config{BaseURL: "http://127.0.0.1", Scenarios: scenarios, Client: *client, Duration: *duration, Connections: *connections, Users: *users, MaxRequests: *maxRequests, Ramp: *ramp}
	if *target == "" || *db != "" {
		early.Fund = func(context.Context, string, coffer.Amount) error { return nil } // the bench will have the database
	}
	if err := early.Validate(); err != nil {
		return usageError{err.Error()}
	}
	database := benchDatabase(*target, *db)
	dsn := *db

	tmp, err := os.MkdirTemp("", "coffer-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	base := strings.TrimSuffix(*target, "/")
	var srv *benchServer
	if base == "" {
		if dsn == "" {
			dsn = filepath.Join(tmp, "bench.db")
		}
		if srv, err = startBenchServer(ctx, *server, dsn, tmp, *cpuProfile != "", getenv, stderr); err != nil {
			return err
		}
		defer srv.stop()
		base = srv.url
	}
	serverDescription := "target " + base + " (its CPU and memory are not measured: see --server-pid)"
	switch {
	case srv != nil:
		serverDescription = srv.describe()
	case *serverPID > 0:
		serverDescription = fmt.Sprintf("target %s (pid %d)", base, *serverPID)
	}
	pid := *serverPID
	if srv != nil {
		pid = srv.pid()
	}

	var bank *coffer.Bank
	var store coffer.Store
	if dsn != "" {
		if store, err = openStore(ctx, dsn, cfg); err != nil {
			return err
		}
		defer store.Close()
		bank = coffer.NewBank(store, nil, nil, cfg, time.Now)
	}
	lcfg := loadgen.Config{
		BaseURL: base, Scenarios: scenarios, Duration: *duration, Connections: *connections,
		Users: *users, MaxRequests: *maxRequests, Progress: stderr, Client: *client,
		HonorRetryAfter: *retryAfter, Ramp: *ramp,
	}
	if bank != nil {
		lcfg.Fund = func(ctx context.Context, mobile string, amount coffer.Amount) error {
			_, err := bank.Deposit(ctx, mobile, amount)
			return err
		}
	}
	if *bills > 0 {
		lcfg.Backfill = func(ctx context.Context, mobiles []string) error {
			return backfill(ctx, store, mobiles, *bills, stderr)
		}
	}
	runner, err := loadgen.Prepare(ctx, lcfg)
	if err != nil {
		return err
	}
	defer runner.Close()
	var pgb *pgbenchResult
	if *pgbench {
		if pgb, err = runPgbench(ctx, dsn, *connections, *duration, stderr); err != nil {
			return err
		}
	}
	var failed error
	for n, sc := range scenarios {
		report := &benchReport{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Database: database, Server: serverDescription, Pgbench: pgb, inProcess: pid == os.Getpid()}
		if err := benchLoad(ctx, runner, sc, report, srv, pid, *cpuProfile, *duration, stderr); err != nil {
			return err
		}
		report.Ledger = "not checked (no --db)"
		if bank != nil {
			report.Ledger = checkLedger(ctx, bank)
			if !strings.HasPrefix(report.Ledger, "ok") && failed == nil {
				failed = fmt.Errorf("ledger after %s: %s", sc, report.Ledger)
			}
		}
		if *asJSON {
			line, err := json.Marshal(report) // JSON Lines: one object per scenario
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s\n", line)
		} else {
			if n > 0 {
				fmt.Fprintln(stdout)
			}
			writeBenchReport(stdout, report)
		}
		for _, s := range report.Statuses {
			if (s.Status == 0 || s.Status == http.StatusInternalServerError) && failed == nil {
				failed = fmt.Errorf("%s: %d requests failed with status %d (0: no answer)", sc, s.Count, s.Status)
			}
		}
	}
	return failed
}

// benchDatabase names the database of the report: the bench's own server
// runs on --db, or on SQLite without it; a target's database is known only
// when --db names it.
func benchDatabase(target, db string) string {
	switch {
	case isPostgres(db):
		return "postgresql"
	case db == "" && target != "":
		return "unknown"
	default:
		return "sqlite"
	}
}

// postgresCommand is the command name of PostgreSQL's processes, whose
// CPU time the bench adds up when the database is PostgreSQL on this
// machine.
const postgresCommand = "postgres"

// benchLoad runs one scenario of a prepared run and fills report with what
// it measured: the load's figures, the server's CPU time and peak memory
// (when pid is known), this process's CPU time, and the argon2id rate
// before a login run.
func benchLoad(ctx context.Context, runner *loadgen.Runner, scenario string, report *benchReport, srv *benchServer, pid int, cpuProfile string, duration time.Duration, stderr io.Writer) error {
	if scenario == loadgen.ScenarioLogin {
		fmt.Fprintf(stderr, "measuring this machine's argon2id rate for %s\n", hashRateDuration)
		report.HashesPerS = loadgen.HashRate(ctx, hashRateDuration)
	}
	usage := func() (loadgen.ProcessUsage, error) {
		if pid > 0 {
			// With the server's password worker; this process's own
			// /proc entry when in-process.
			return loadgen.TreeUsage(pid)
		}
		return loadgen.ProcessUsage{}, errors.New("not measured")
	}
	var dbBefore time.Duration
	if report.Database == "postgresql" {
		dbBefore = loadgen.CommandUsage(postgresCommand)
	}
	machineBefore, machineErr := loadgen.ReadMachineUsage()
	selfBefore, _ := loadgen.SelfUsage()
	if pid > 0 {
		loadgen.ResetPeakRSS(pid) // the peak of the load, not of the setup's password hashing
	}
	before, _ := usage()
	var profileDone chan error
	profileCtx, stopProfile := context.WithCancel(ctx)
	defer stopProfile()
	if srv != nil && cpuProfile != "" {
		profileDone = make(chan error, 1)
		go func() { profileDone <- srv.profile(profileCtx, duration, cpuProfile) }()
	}
	res, err := runner.Load(ctx, scenario)
	if err != nil {
		if profileDone != nil {
			stopProfile()
			<-profileDone
		}
		return err
	}
	report.Result = res
	selfAfter, _ := loadgen.SelfUsage()
	report.LoadGeneratorCPUS = (selfAfter.CPU - selfBefore.CPU).Seconds()
	if machineAfter, err := loadgen.ReadMachineUsage(); err == nil && machineErr == nil && machineAfter.Total > machineBefore.Total {
		report.MachineBusyPct = 100 * float64(machineAfter.Busy-machineBefore.Busy) / float64(machineAfter.Total-machineBefore.Total)
	}
	if report.Database == "postgresql" {
		report.DatabaseCPUS = max(0, loadgen.CommandUsage(postgresCommand)-dbBefore).Seconds()
	}
	if after, err := usage(); err == nil {
		report.ServerCPUS = (after.CPU - before.CPU).Seconds()
		report.ServerCores = report.ServerCPUS / res.DurationS
		report.ServerPeakRSSMiB = float64(after.PeakRSSKiB) / 1024
	}
	if report.HashesPerS > 0 {
		report.LoginsOfHashRatePct = 100 * res.SucceededPerS / report.HashesPerS
	}
	if profileDone != nil {
		if err := <-profileDone; err != nil {
			fmt.Fprintf(stderr, "cpu profile: %v\n", err)
		}
	}
	return nil
}

// checkLedger verifies the ledger's invariants and says how it found them.
func checkLedger(ctx context.Context, bank *coffer.Bank) string {
	r, err := bank.Check(ctx)
	switch {
	case err != nil:
		return "check failed: " + err.Error()
	case r.OK():
		return fmt.Sprintf("ok: %d accounts, %d transactions, %d entries", r.Accounts, r.Transactions, r.Entries)
	default:
		return "BROKEN: " + strings.Join(r.Problems, "; ")
	}
}

// backfill writes a history of bills past transfers among the users of
// mobiles.
func backfill(ctx context.Context, store coffer.Store, mobiles []string, bills int64, progress io.Writer) error {
	users := make([]coffer.User, len(mobiles))
	err := store.View(ctx, func(tx coffer.ReadTx) error {
		for i, m := range mobiles {
			u, err := tx.UserByMobile(ctx, m)
			if err != nil {
				return err
			}
			users[i] = u
		}
		return nil
	})
	if err != nil {
		return err
	}
	// A minute back: the history is older than the run's transfers,
	// which it must not reach the daily limit with.
	_, err = history.Write(ctx, store, history.Plan{
		Users: users, Bills: bills, Now: time.Now().Add(-time.Minute), Seed: 1, Progress: progress,
	})
	return err
}

func writeBenchReport(w io.Writer, r *benchReport) {
	l := r.Latency
	fmt.Fprintf(w, "scenario      %s: %d connections, %d users, %s database, %d CPUs, %s\n", r.Scenario, r.Connections, r.Users, r.Database, r.CPUs, r.GoVersion)
	fmt.Fprintf(w, "server        %s\n", r.Server)
	fmt.Fprintf(w, "requests      %d in %.2f s: %.0f req/s, %.0f succeeded/s\n", r.Requests, r.DurationS, r.RequestsPerS, r.SucceededPerS)
	fmt.Fprintf(w, "latency       p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n", l.P50MS, l.P90MS, l.P99MS, l.MaxMS)
	for _, s := range r.Statuses {
		name := strconv.Itoa(s.Status)
		if s.Status == 0 {
			name = "no answer"
		}
		fmt.Fprintf(w, "  status %-9s %d (p50 %.2f ms, p99 %.2f ms)\n", name, s.Count, s.Latency.P50MS, s.Latency.P99MS)
	}
	fmt.Fprintf(w, "errors        %d not 2xx, of which %d 5xx or no answer\n", r.Errors, r.ServerErrors)
	if r.ServerCPUS > 0 {
		fmt.Fprintf(w, "server CPU    %.2f s (%.2f cores), peak RSS %.1f MiB\n", r.ServerCPUS, r.ServerCores, r.ServerPeakRSSMiB)
	}
	fmt.Fprintf(w, "loadgen CPU   %.2f s\n", r.LoadGeneratorCPUS)
	if r.DatabaseCPUS > 0 {
		fmt.Fprintf(w, "database CPU  %.2f s (%.2f cores): this machine's processes named %s\n", r.DatabaseCPUS, r.DatabaseCPUS/r.DurationS, postgresCommand)
	}
	if r.MachineBusyPct > 0 {
		fmt.Fprintf(w, "machine       %.0f%% busy (all its CPUs, whatever ran on them)\n", r.MachineBusyPct)
	}
	if r.Requests > 0 {
		parts := []struct {
			name string
			cpuS float64
		}{{"server", r.ServerCPUS}, {"load generator", r.LoadGeneratorCPUS}, {"database", r.DatabaseCPUS}}
		if r.inProcess { // one process: one figure
			parts = parts[1:]
			parts[0].name = "server and load generator (one process)"
		}
		var measured []string
		for _, p := range parts {
			if p.cpuS > 0 { // 0: not measured
				measured = append(measured, fmt.Sprintf("%s %.0f µs", p.name, p.cpuS/float64(r.Requests)*1e6))
			}
		}
		fmt.Fprintf(w, "CPU a request %s\n", strings.Join(measured, ", "))
	}
	if r.HashesPerS > 0 {
		fmt.Fprintf(w, "argon2id      %.1f hashes/s on this machine; logins %.1f/s = %.0f%% of it\n", r.HashesPerS, r.SucceededPerS, r.LoginsOfHashRatePct)
	}
	if p := r.Pgbench; p != nil {
		fmt.Fprintf(w, "pgbench       %.0f tps (%s, scale %d, same server); this run's successes: %.0f%% of it\n", p.TPS, p.Command, p.Scale, 100*r.SucceededPerS/p.TPS)
	}
	fmt.Fprintf(w, "ledger        %s\n", r.Ledger)
}

// benchServer is the server a bench started.
type benchServer struct {
	mode     string
	url      string
	pprofURL string // "" without profiling
	logPath  string
	cmd      *exec.Cmd // child mode
	cancel   func()    // in-process mode
	done     chan struct{}
	err      error // how the server ended, once done is closed
	stopOnce sync.Once
}

func (s *benchServer) describe() string {
	if s.mode == serverChild {
		return fmt.Sprintf("coffer serve as a child process (pid %d)", s.cmd.Process.Pid)
	}
	return "in-process (CPU and memory figures include the load generator)"
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startBenchServer starts `coffer serve` on a free loopback port, as a
// child process or in this process, and waits until it answers.
func startBenchServer(ctx context.Context, mode, dsn, dir string, profile bool, getenv func(string) string, stderr io.Writer) (*benchServer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, secretBytes)
	rand.Read(secret)
	args := []string{"serve", "--addr", addr, "--db", dsn}
	s := &benchServer{mode: mode, url: "http://" + addr, logPath: filepath.Join(dir, "server.log"), done: make(chan struct{})}
	if profile {
		paddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		args = append(args, "--pprof", paddr)
		s.pprofURL = "http://" + paddr
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	env := func(key string) string {
		if key == "COFFER_SECRET" {
			return hex.EncodeToString(secret)
		}
		return getenv(key)
	}
	fmt.Fprintf(stderr, "starting the server (%s) on %s, database %s\n", mode, addr, redactDSN(dsn))
	if mode == serverChild {
		exe, err := os.Executable()
		if err != nil {
			logFile.Close()
			return nil, err
		}
		s.cmd = exec.Command(exe, args...)
		s.cmd.Env = append(os.Environ(), "COFFER_SECRET="+hex.EncodeToString(secret))
		s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
		if err := s.cmd.Start(); err != nil {
			logFile.Close()
			return nil, err
		}
		logFile.Close() // the child has its own descriptor
		go func() {
			s.err = s.cmd.Wait()
			close(s.done)
		}()
	} else {
		sctx, cancel := context.WithCancel(ctx)
		s.cancel = cancel
		go func() {
			s.err = run(sctx, args, env, logFile, logFile)
			logFile.Close()
			close(s.done)
		}()
	}
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		return nil, fmt.Errorf("%w\nserver log:\n%s", err, s.logTail())
	}
	return s, nil
}

// waitReady polls /healthz until it answers 200.
func (s *benchServer) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(serverStartTimeout)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		if resp, err := client.Get(s.url + "/healthz"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("the server exited: %v", s.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("the server did not answer within %s", serverStartTimeout)
}

// pid is the server's process id (this process's in-process).
func (s *benchServer) pid() int {
	if s.mode == serverChild {
		return s.cmd.Process.Pid
	}
	return os.Getpid()
}

// profile fetches a CPU profile over about d from the server's pprof
// listener and writes it to path.
func (s *benchServer) profile(ctx context.Context, d time.Duration, path string) error {
	seconds := max(1, int(d.Seconds())-1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.pprofURL+"/debug/pprof/profile?seconds="+strconv.Itoa(seconds), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof answered %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// stop ends the server gracefully (SIGTERM for a child), killing a child
// that does not stop in time. It may be called more than once.
func (s *benchServer) stop() error {
	s.stopOnce.Do(func() {
		if s.mode == serverChild {
			s.cmd.Process.Signal(syscall.SIGTERM)
		} else {
			s.cancel()
		}
	})
	select {
	case <-s.done:
		return s.err
	case <-time.After(serverStopTimeout):
	}
	if s.mode == serverChild {
		s.cmd.Process.Kill()
		<-s.done
		return errors.New("the server did not stop in time: killed")
	}
	return errors.New("the in-process server did not stop in time")
}

// logTail is the end of the server's log, for errors.
func (s *benchServer) logTail() string {
	f, err := os.Open(s.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 20 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
