package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"coffer/internal/pgtest"
)

// TestBenchRunsAMixedLoad runs the bench subcommand for about a second on
// an in-process server and checks that it answered requests, none with a
// 5xx, and left the ledger whole. It asserts nothing about speed.
func TestBenchRunsAMixedLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and registers users")
	}
	stdout, stderr, code := runCmd(t, "bench", "--server", "inprocess", "--duration", "1s", "--connections", "4", "--users", "6", "--scenario", "mixed", "--json")
	if code != 0 {
		t.Fatalf("bench: exit %d\nstderr: %s\nstdout: %s", code, stderr, stdout)
	}
	var r struct {
		Requests     int64   `json:"requests"`
		Succeeded    int64   `json:"succeeded"`
		ServerErrors int64   `json:"server_errors"`
		Ledger       string  `json:"ledger"`
		MachineBusy  float64 `json:"machine_busy_pct"`
		Statuses     []struct {
			Status int   `json:"status"`
			Count  int64 `json:"count"`
		} `json:"statuses"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("bench --json printed %q: %v", stdout, err)
	}
	if r.Requests == 0 || r.Succeeded == 0 {
		t.Errorf("bench reported %d requests, %d succeeded", r.Requests, r.Succeeded)
	}
	for _, s := range r.Statuses {
		if s.Status == 0 || s.Status >= 500 {
			t.Errorf("%d requests answered %d (0: no answer)", s.Count, s.Status)
		}
	}
	if r.ServerErrors != 0 || !strings.HasPrefix(r.Ledger, "ok") {
		t.Errorf("server errors %d, ledger %q", r.ServerErrors, r.Ledger)
	}
	if runtime.GOOS == "linux" && (r.MachineBusy <= 0 || r.MachineBusy > 100) { // read from /proc/stat
		t.Errorf("the machine %v%% busy during a load", r.MachineBusy)
	}
}

// benchRun is one line of bench --json.
type benchRun struct {
	Scenario     string  `json:"scenario"`
	Requests     int64   `json:"requests"`
	Succeeded    int64   `json:"succeeded"`
	ServerErrors int64   `json:"server_errors"`
	Ledger       string  `json:"ledger"`
	DatabaseCPUS float64 `json:"database_cpu_s"`
	Pgbench      *struct {
		Clients int     `json:"clients"`
		TPS     float64 `json:"tps"`
	} `json:"pgbench"`
}

// benchRuns runs the bench with args and --json and returns its lines.
func benchRuns(t *testing.T, args ...string) []benchRun {
	t.Helper()
	stdout, stderr, code := runCmd(t, append(append([]string{"bench"}, args...), "--json")...)
	if code != 0 {
		t.Fatalf("bench: exit %d\nstderr: %s\nstdout: %s", code, stderr, stdout)
	}
	var runs []benchRun
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var r benchRun
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("bench --json printed %q: %v", line, err)
		}
		if r.Succeeded == 0 || r.ServerErrors != 0 || !strings.HasPrefix(r.Ledger, "ok") {
			t.Errorf("%s: %d succeeded, %d server errors, ledger %q", r.Scenario, r.Succeeded, r.ServerErrors, r.Ledger)
		}
		runs = append(runs, r)
	}
	return runs
}

// TestBenchRunsScenariosInTurnOverABackfilledHistory runs two scenarios on
// one server whose users were first given a history written straight to
// the database, and checks that both ran and the ledger holds the history.
func TestBenchRunsScenariosInTurnOverABackfilledHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and registers users")
	}
	runs := benchRuns(t, "--server", "inprocess", "--duration", "1s", "--connections", "4", "--users", "6", "--scenario", "info,wallet", "--bills", "3001")
	if len(runs) != 2 || runs[0].Scenario != "info" || runs[1].Scenario != "wallet" {
		t.Fatalf("runs %+v, want info then wallet", runs)
	}
	// 1,501 backfilled transfers and 6 deposits of the history, 6 deposits
	// of the bench, 6×25 transfers made over HTTP for the wallet.
	var accounts, transactions, entries int
	if _, err := fmt.Sscanf(runs[1].Ledger, "ok: %d accounts, %d transactions, %d entries", &accounts, &transactions, &entries); err != nil {
		t.Fatalf("ledger %q: %v", runs[1].Ledger, err)
	}
	if want := 1501 + 6 + 6 + 6*25; transactions != want || entries != 2*want {
		t.Errorf("ledger %q: want %d transactions, %d entries", runs[1].Ledger, want, 2*want)
	}
}

// TestBenchRunsPgbenchBeside runs pgbench and a short transfer load
// against one PostgreSQL database.
func TestBenchRunsPgbenchBeside(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and registers users")
	}
	if _, err := findPgbench(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err) // CI installs PostgreSQL: this test must run there
		}
		t.Skip(err) // PostgreSQL's client programs are not installed
	}
	runs := benchRuns(t, "--server", "inprocess", "--db", pgtest.DSN(t), "--pgbench", "--duration", "1s", "--connections", "4", "--users", "6", "--scenario", "transfer")
	if len(runs) != 1 || runs[0].Pgbench == nil || runs[0].Pgbench.TPS <= 0 || runs[0].Pgbench.Clients != 4 {
		t.Fatalf("runs %+v: want one with pgbench's tps at 4 clients", runs)
	}
	if runtime.GOOS == "linux" && runs[0].DatabaseCPUS <= 0 { // the tests' PostgreSQL runs on this machine; read from /proc
		t.Errorf("database CPU %v s during a load on PostgreSQL", runs[0].DatabaseCPUS)
	}
}

func TestBenchRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--scenario", "nonsense"},
		{"bench", "--duration", "0s"},
		{"bench", "--connections", "0"},
		{"bench", "--users", "1"},
		{"bench", "--server", "elsewhere"},
		{"bench", "--target", "http://192.0.2.1:8080", "--scenario", "info"},
		{"bench", "--target", "http://127.0.0.1:8080", "--scenario", "transfer"},
		{"bench", "--scenario", "info,nonsense"},
		{"bench", "--scenario", "info,wallet", "--cpuprofile", "x.prof"},
		{"bench", "--bills", "-1"},
		{"bench", "--target", "http://127.0.0.1:8080", "--scenario", "info", "--bills", "10"},
		{"bench", "--pgbench"},
		{"bench", "--pgbench", "--db", "coffer.db"},
	} {
		_, stderr, code := runCmd(t, args...)
		if code != 2 || strings.TrimSpace(stderr) == "" {
			t.Errorf("coffer %v: exit %d, stderr %q; want exit 2 with a message", args, code, stderr)
		}
	}
}

// TestBenchNamesTheDatabaseItKnows: a target's database is unknown unless
// --db names it; it was reported as SQLite.
func TestBenchNamesTheDatabaseItKnows(t *testing.T) {
	for _, c := range []struct{ target, db, want string }{
		{"", "", "sqlite"},
		{"", "bench.db", "sqlite"},
		{"", "postgres://u@127.0.0.1/db", "postgresql"},
		{"http://127.0.0.1:8080", "", "unknown"},
		{"http://127.0.0.1:8080", "coffer.db", "sqlite"},
		{"http://127.0.0.1:8080", "postgresql://u@127.0.0.1/db", "postgresql"},
	} {
		if got := benchDatabase(c.target, c.db); got != c.want {
			t.Errorf("--target %q --db %q: database %q, want %q", c.target, c.db, got, c.want)
		}
	}
}
