package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"coffer/internal/pgtest"
)

// serverProcess is a `coffer serve` child process.
type serverProcess struct {
	cmd  *exec.Cmd
	base string
	logs *syncBuffer
}

// startProcess runs `coffer serve` on a free port with env added to this
// process's environment, and waits until it listens.
func startProcess(t *testing.T, bin, dsn string, env ...string) *serverProcess {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--db", dsn)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{cmd: cmd, logs: &syncBuffer{}}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.logs.Write(append(sc.Bytes(), '\n'))
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case addr := <-found:
		p.base = "http://" + addr
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start:\n%s", p.logs.String())
	}
	return p
}

type apiAnswer struct {
	status  int
	header  http.Header
	Success bool            `json:"success"`
	Error   string          `json:"error"`
	Code    string          `json:"code"`
	Token   string          `json:"token"`
	Data    json.RawMessage `json:"data"`
}

func call(t *testing.T, method, url, token string, body any, header ...string) apiAnswer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := apiAnswer{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("%s %s: not JSON: %s", method, url, raw)
	}
	return a
}

// TestTwoServeProcessesOnOnePostgreSQL runs two `coffer serve` processes on
// one PostgreSQL database and drives a client that alternates between
// them: a session from one works on the other, an idempotency key used on
// one is honoured on the other, login throttling counts across both, and
// the ledger's invariants hold at the end.
func TestTwoServeProcessesOnOnePostgreSQL(t *testing.T) {
	dsn := pgtest.DSN(t)
	bin := buildCoffer(t)
	secret := "COFFER_SECRET=" + strings.Repeat("5e", 32)
	servers := []*serverProcess{startProcess(t, bin, dsn, secret), startProcess(t, bin, dsn, secret)}
	at := func(i int, path string) string { return servers[i%2].base + path }

	users := []map[string]string{
		{"username": "alice", "password": "correct horse", "email": "alice@example.com", "mobile": "13800138000", "cardnum": "6222020200112233446", "pay_password": "123456"},
		{"username": "bob", "password": "battery staple", "email": "bob@example.com", "mobile": "13900139000", "cardnum": "6228480012345678903"},
	}
	for i, u := range users {
		if a := call(t, "POST", at(i, "/api/user"), "", u); a.status != 201 {
			t.Fatalf("register %s on server %d: %d %s", u["username"], i%2, a.status, a.Error)
		}
	}
	// A user registered on one server is known to the other.
	if a := call(t, "POST", at(1, "/api/user"), "", users[0]); a.status != 409 || a.Code != "USERNAME_TAKEN" {
		t.Errorf("registering alice again on the other server: %d %s", a.status, a.Code)
	}
	if out, errs, code := runCmd(t, "deposit", "--db", dsn, "--mobile", "13800138000", "--amount", "1000"); code != 0 {
		t.Fatalf("deposit: %s %s", out, errs)
	}

	login := call(t, "POST", at(0, "/api/login"), "", map[string]string{"username": "alice", "password": "correct horse"})
	if login.status != 200 || login.Token == "" {
		t.Fatalf("login on server 0: %d %s", login.status, login.Error)
	}
	token := login.Token
	for i := 0; i < 4; i++ {
		if a := call(t, "GET", at(i, "/api/info"), token, nil); a.status != 200 {
			t.Errorf("info on server %d with a session from server 0: %d %s", i%2, a.status, a.Error)
		}
	}

	transfer := map[string]string{"mode": "transfer", "money": "12.34", "payee": "13900139000", "password": "123456", "detail": "shared key"}
	first := call(t, "POST", at(0, "/api/pay"), token, transfer, "Idempotency-Key", "k-1")
	replay := call(t, "POST", at(1, "/api/pay"), token, transfer, "Idempotency-Key", "k-1")
	if first.status != 200 || replay.status != 200 || string(first.Data) != string(replay.Data) || replay.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("idempotency across servers: first %d %s, replay %d %s replayed=%q", first.status, first.Data, replay.status, replay.Data, replay.header.Get("Idempotent-Replayed"))
	}
	other := map[string]string{"mode": "transfer", "money": "99.00", "payee": "13900139000", "password": "123456"}
	if a := call(t, "POST", at(1, "/api/pay"), token, other, "Idempotency-Key", "k-1"); a.status != 409 || a.Code != "IDEMPOTENCY_KEY_REUSED" {
		t.Errorf("another request under the key on the other server: %d %s", a.status, a.Code)
	}
	info := call(t, "GET", at(1, "/api/info"), token, nil)
	if !strings.Contains(string(info.Data), `"balance":"987.66"`) {
		t.Errorf("after one transfer of 12.34 sent to both servers: %s", info.Data)
	}

	// Five wrong logins spread over both servers lock bob's username on both.
	for i := 0; i < 5; i++ {
		if a := call(t, "POST", at(i, "/api/login"), "", map[string]string{"username": "bob", "password": "wrong password"}); a.status != 401 {
			t.Fatalf("wrong login %d on server %d: %d %s", i, i%2, a.status, a.Code)
		}
	}
	for i := 0; i < 2; i++ {
		if a := call(t, "POST", at(i, "/api/login"), "", map[string]string{"username": "bob", "password": "battery staple"}); a.status != 429 {
			t.Errorf("bob's right password on server %d after five failures across both: %d %s, want 429", i, a.status, a.Code)
		}
	}

	if a := call(t, "POST", at(1, "/api/logout"), token, nil); a.status != 200 {
		t.Errorf("logout on server 1: %d", a.status)
	}
	if a := call(t, "GET", at(0, "/api/info"), token, nil); a.status != 401 {
		t.Errorf("session logged out on server 1 still works on server 0: %d", a.status)
	}
	if out, errs, code := runCmd(t, "check", "--db", dsn); code != 0 {
		t.Errorf("coffer check: %s %s", out, errs)
	}
}
