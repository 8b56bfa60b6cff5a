package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"coffer/sqlite"
)

// syncBuffer is a bytes.Buffer safe for the server's log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func noEnv(string) string { return "" }

// buildCoffer builds the coffer binary into the test's temporary folder.
func buildCoffer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "coffer")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

var listenRE = regexp.MustCompile(`coffer listening"? addr=(\S+)`)

// startServer runs the server in-process on a free port, with serve's
// flags after the address and database, and returns its base URL and a
// function that stops it and returns run's error.
func startServer(t *testing.T, db string, flags ...string) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db}, flags...)
	go func() { done <- run(ctx, args, noEnv, logs, logs) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := listenRE.FindStringSubmatch(logs.String()); m != nil {
			stop := func() error {
				cancel()
				select {
				case err := <-done:
					return err
				case <-time.After(35 * time.Second):
					t.Fatal("server did not stop")
					return nil
				}
			}
			return "http://" + m[1], stop
		}
		select {
		case err := <-done:
			t.Fatalf("server exited: %v\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	t.Fatalf("server did not start:\n%s", logs.String())
	return "", nil
}

func TestServeAnswersHealthAndStopsGracefully(t *testing.T) {
	db := filepath.Join(t.TempDir(), "coffer.db")
	base, stop := startServer(t, db)
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Success bool   `json:"success"`
		Data    string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || !env.Success || env.Data != "ok" {
		t.Errorf("healthz: %+v, %v", env, err)
	}
	resp.Body.Close()
	if err := stop(); err != nil {
		t.Errorf("graceful stop returned %v", err)
	}
	if _, err := os.Stat(db + ".secret"); err != nil {
		t.Errorf("the server secret was not created beside the database: %v", err)
	}
}

// passwordWorkers lists the password workers this process runs: its
// children started with the worker command.
func passwordWorkers(t *testing.T) []int {
	t.Helper()
	// A child is listed under the thread that started it.
	lists, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", os.Getpid()))
	if len(lists) == 0 {
		t.Skip("this system does not list a process's children")
	}
	var children []string
	for _, l := range lists {
		b, _ := os.ReadFile(l)
		children = append(children, strings.Fields(string(b))...)
	}
	var workers []int
	for _, f := range children {
		cmdline, err := os.ReadFile("/proc/" + f + "/cmdline")
		if err == nil && strings.Contains(string(cmdline), "\x00"+passwordWorkerCommand) {
			pid, _ := strconv.Atoi(f)
			workers = append(workers, pid)
		}
	}
	return workers
}

// TestServeHashesPasswordsInAWorker: by default serve hashes login
// passwords in a worker process of its own, which ends with the server;
// with --password-worker=false, in the server. Both register and log in.
func TestServeHashesPasswordsInAWorker(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	// The worker inherits the process's environment, less the server's
	// secrets.
	t.Setenv("COFFER_SECRET", strings.Repeat("ab", 32))
	t.Setenv("PGPASSWORD", "not-for-the-worker")
	t.Setenv("GOGC", "100")
	for _, worker := range []bool{true, false} {
		t.Run(fmt.Sprintf("worker=%v", worker), func(t *testing.T) {
			base, stopServer := startServer(t, filepath.Join(t.TempDir(), "coffer.db"), fmt.Sprintf("--password-worker=%v", worker))
			stop := sync.OnceValue(stopServer)
			defer stop()
			user := map[string]string{"username": "alice", "password": "correct horse", "email": "alice@example.com", "mobile": "13800138000", "cardnum": "6222020200112233446"}
			if a := call(t, "POST", base+"/api/user", "", user); a.status != 201 {
				t.Fatalf("register: %d %s", a.status, a.Error)
			}
			if a := call(t, "POST", base+"/api/login", "", map[string]string{"username": "alice", "password": "correct horse"}); a.status != 200 {
				t.Fatalf("login: %d %s", a.status, a.Error)
			}
			if a := call(t, "POST", base+"/api/login", "", map[string]string{"username": "alice", "password": "correct horsE"}); a.status != 401 {
				t.Fatalf("login with a wrong password: %d %s", a.status, a.Error)
			}
			workers := passwordWorkers(t)
			if want := map[bool]int{true: 1, false: 0}[worker]; len(workers) != want {
				t.Fatalf("%d password workers running, want %d", len(workers), want)
			}
			for _, pid := range workers {
				environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
				if err != nil {
					t.Fatal(err)
				}
				vars := strings.Split(string(environ), "\x00")
				if !slices.Contains(vars, "GOGC=100") {
					t.Errorf("the worker's environment lacks GOGC=100: %q", vars)
				}
				for _, v := range vars {
					if strings.HasPrefix(v, "COFFER_") || strings.HasPrefix(v, "PG") {
						t.Errorf("the worker's environment holds %s", strings.SplitN(v, "=", 2)[0])
					}
				}
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if left := passwordWorkers(t); len(left) != 0 {
				t.Fatalf("password workers %v still running after the server stopped", left)
			}
		})
	}
}

func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, noEnv, &out, &errb)
	if err != nil {
		code = exitCode(err)
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), code
}

// createDatabase makes the database that coffer serve would create.
func createDatabase(t *testing.T) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "coffer.db")
	store, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	return db
}

func TestOperatorCommandsRejectBadInputWithExitStatus2(t *testing.T) {
	db := createDatabase(t)
	typo := filepath.Join(filepath.Dir(db), "cofer.db")
	for _, args := range [][]string{
		{},
		{"nonsense"},
		{"deposit", "--db", db, "--mobile", "12345", "--amount", "10"},
		{"deposit", "--db", db, "--mobile", "13800138000", "--amount", "-10"},
		{"deposit", "--db", db, "--mobile", "13800138000", "--amount", "1.234"},
		{"deposit", "--db", db, "--mobile", "13800138000", "--amount", "1e3"},
		{"deposit", "--db", db, "--mobile", "13800138000"},
		{"gold-price", "--db", db, "--price", "0"},
		{"gold-price", "--db", db, "--price", "abc"},
		{"check", "--db", db, "extra"},
		{"accrue", "--db", db, "--date", "2026-13-01"},
		{"accrue", "--db", db, "--date", "2999-01-01"},
		{"product", "add", "--db", db, "--kind", "bad kind", "--name", "x", "--yield", "1", "--min", "1", "--term-days", "0"},
		{"product", "add", "--db", db, "--kind", "k", "--name", "x", "--yield", "1.234", "--min", "1", "--term-days", "0"},
		{"fund", "nav", "--db", db, "--code", "000001", "--nav", "-1"},
		{"fund", "nav", "--db", db, "--code", "nosuch", "--nav", "1.0000"},
		{"serve", "--db", db, "--limit-daily", "lots"},
		{"serve", "--db", db, "--zone", "Mars/Olympus"},
		{"check", "--db", typo},
		{"deposit", "--db", typo, "--mobile", "13800138000", "--amount", "10"},
		{"gold-price", "--db", typo, "--price", "600"},
	} {
		_, stderr, code := runCmd(t, args...)
		if code != 2 || strings.TrimSpace(stderr) == "" {
			t.Errorf("coffer %v: exit %d, stderr %q; want exit 2 with a message", args, code, stderr)
		}
	}
	if _, stderr, code := runCmd(t, "deposit", "--db", db, "--mobile", "13800138000", "--amount", "10"); code != 1 || !strings.Contains(stderr, "no user has mobile") {
		t.Errorf("deposit to an unknown mobile: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(typo); err == nil {
		t.Errorf("an operator command created a database at a mistyped path")
	}
}

func TestOperatorCommandsOnAFreshDatabase(t *testing.T) {
	db := createDatabase(t)
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"gold-price", "--db", db, "--price", "612.5"}, "612.50"},
		{[]string{"product", "add", "--db", db, "--kind", "flex", "--name", "灵活宝", "--yield", "2.05", "--min", "0.01", "--term-days", "0"}, "added flex"},
		{[]string{"product", "set", "--db", db, "--kind", "flex", "--yield", "2.10"}, "set flex"},
		{[]string{"product", "retire", "--db", db, "--kind", "flex"}, "retire flex"},
		{[]string{"fund", "add", "--db", db, "--code", "519999", "--name", "测试基金", "--nav", "1.0001", "--date", "2026-11-20"}, "added 519999"},
		{[]string{"fund", "nav", "--db", db, "--code", "519999", "--nav", "1.1111", "--date", "2026-11-21"}, "nav 1.1111 on 2026-11-21"},
		{[]string{"fund", "nav", "--db", db, "--code", "519999", "--nav", "0.9999", "--date", "2026-11-19"}, "nav 0.9999 on 2026-11-19"},
		{[]string{"product", "list", "--db", db}, "flex      灵活宝"},
		{[]string{"fund", "list", "--db", db}, "519999    测试基金     1.1111   2026-11-21"},
		{[]string{"accrue", "--db", db}, "nothing to close"},
		{[]string{"check", "--db", db}, "ok:"},
	}
	for _, s := range steps {
		stdout, stderr, code := runCmd(t, s.args...)
		if code != 0 || !strings.Contains(stdout, s.want) {
			t.Errorf("coffer %v: exit %d, stdout %q, stderr %q; want output containing %q", s.args, code, stdout, stderr, s.want)
		}
	}
}

// TestReadmeJourney runs the README's curl session, as written, against a
// server started from the built binary: the README stays true.
func TestReadmeJourney(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) < 3 || !strings.Contains(blocks[0][1], "go run ./cmd/coffer serve") || !strings.Contains(blocks[1][1], "go test") {
		t.Fatalf("README's first two sh blocks are not the two commands")
	}
	dir := t.TempDir()
	bin := buildCoffer(t)
	base, stop := startServer(t, filepath.Join(dir, "coffer.db"))
	defer stop()
	host := strings.TrimPrefix(base, "http://")
	var script strings.Builder
	script.WriteString("set -e\n")
	for _, b := range blocks[2:] {
		script.WriteString(b[1])
	}
	text := strings.ReplaceAll(script.String(), "localhost:8080", host)
	text = strings.ReplaceAll(text, "go run ./cmd/coffer", bin)
	cmd := exec.Command("bash", "-c", text)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("journey failed: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var answers int
	for _, line := range lines {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		answers++
		var env map[string]any
		if err := json.Unmarshal([]byte(line), &env); err != nil {
			t.Errorf("not JSON: %s", line)
			continue
		}
		if env["success"] == false {
			t.Errorf("a README step failed: %s", line)
		}
	}
	if answers < 15 {
		t.Errorf("only %d JSON answers from the journey:\n%s", answers, out)
	}
	if !strings.Contains(string(out), `"method":"transfer_out"`) || !strings.Contains(string(out), `"gold":"280.00"`) {
		t.Errorf("the journey's bills or info are not what the README shows:\n%s", out)
	}
	if stdout, stderr, code := runCmd(t, "check", "--db", filepath.Join(dir, "coffer.db")); code != 0 {
		t.Errorf("check after the journey: %s %s", stdout, stderr)
	}
}

// Commands of the test binary alone (see TestMain).
const (
	upgradeThenStartWorker = "test-upgrade-then-start-worker"
	sayBuild               = "test-say-build"
)

// replaceSelfThenRunWorkerProgram does what an upgrade does to a running
// server, putting another program at this program's path by renaming it
// over, then runs what the server would start as its worker, asked to say
// which build it is. It prints the answer and returns an exit status.
func replaceSelfThenRunWorkerProgram() int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Println(err)
		return 1
	}
	start := workerCommand(exe, nil) // as the server makes it when it starts
	next := exe + ".next"
	if err := os.WriteFile(next, []byte("#!/bin/sh\necho the upgraded build\n"), 0o755); err != nil {
		fmt.Println(err)
		return 1
	}
	if err := os.Rename(next, exe); err != nil {
		fmt.Println(err)
		return 1
	}
	cmd := start()
	cmd.Args = []string{cmd.Args[0], sayBuild}
	out, err := cmd.CombinedOutput()
	fmt.Print(string(out))
	if err != nil {
		fmt.Println(err)
		return 1
	}
	return 0
}

// TestWorkerIsTheRunningBuild: a password worker started after an upgrade
// replaced the program's file is still the build of the server that
// starts it, which speaks its protocol.
func TestWorkerIsTheRunningBuild(t *testing.T) {
	if _, err := os.Stat(runningProgram); err != nil {
		t.Skip("no " + runningProgram + " on this system")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	server := filepath.Join(t.TempDir(), "coffer")
	if err := os.WriteFile(server, b, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(server, upgradeThenStartWorker).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "the test build" {
		t.Errorf("the worker started after the upgrade says %q, want %q", got, "the test build")
	}
}
