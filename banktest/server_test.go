//go:build linux

package banktest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"coffer/internal/pgtest"
)

// Time limits of the child processes.
const (
	startTimeout   = 30 * time.Second // until a started server answers HTTP
	stopTimeout    = 35 * time.Second // a graceful stop (the server allows 30s)
	commandTimeout = 60 * time.Second // an operator command (deposit, check)
	startTries     = 5                // binds of the same port after a kill
)

// syncBuffer is a bytes.Buffer that child processes may write concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes returns a copy of what was written.
func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// server is a `coffer serve` child process on one database and one fixed
// address of 127.0.0.1, which it keeps across kills and restarts.
type server struct {
	t       testing.TB
	bin     string
	db      string
	addr    string
	env     []string
	extra   []string // more flags of serve
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// newServer prepares a server on db; env is added to the child's
// environment. It is killed when the test ends, and its log printed if the
// test failed.
func newServer(t testing.TB, db string, env ...string) *server {
	t.Helper()
	s := &server{t: t, bin: binary(t), db: db, addr: pgtest.FreeAddr(t), env: env, logPath: filepath.Join(t.TempDir(), "server.log")}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("server log (tail):\n%s", tail(s.logPath, 60))
		}
	})
	return s
}

// base is the server's URL.
func (s *server) base() string { return "http://" + s.addr }

// start starts the server and waits until it answers HTTP. After a kill
// the port may take a moment to be free again: it tries a few times.
func (s *server) start() error {
	var err error
	for try := 0; try < startTries; try++ {
		if err = s.startOnce(); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

func (s *server) startOnce() error {
	logf, err := os.OpenFile(s.logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, append([]string{"serve", "--addr", s.addr, "--db", s.db}, s.extra...)...)
	cmd.Env = childEnv(s.env)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The kernel kills the child if the test binary dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.starts++
	s.mu.Unlock()
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("server exited at start: %s", tail(s.logPath, 5))
		default:
		}
		if resp, err := hc.Get(s.base() + "/healthz"); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.kill()
	return fmt.Errorf("server did not answer within %s: %s", startTimeout, tail(s.logPath, 5))
}

// childEnv is our environment without COFFER_ settings, plus extra.
func childEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "COFFER_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// stop asks the server to shut down gracefully (SIGTERM) and waits.
func (s *server) stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		s.kill()
	}
}

// pid is the running process's id, 0 when it is not running.
func (s *server) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	select {
	case <-s.exited:
		return 0
	default:
		return s.cmd.Process.Pid
	}
}

// command runs an operator command of the binary on the server's
// database and returns its output.
func (s *server) command(args ...string) (string, error) {
	args = append(args[:1:1], append([]string{"--db", s.db}, args[1:]...)...)
	cmd := exec.Command(s.bin, args...)
	cmd.Env = childEnv(s.env)
	out, err := runBounded(cmd, commandTimeout)
	return string(out), err
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// envelope is the API's answer.
type envelope struct {
	Success bool            `json:"success"`
	Error   string          `json:"error"`
	Code    string          `json:"code"`
	Token   string          `json:"token"`
	Data    json.RawMessage `json:"data"`
}

// reply is an HTTP answer of the API.
type reply struct {
	status int
	header http.Header
	env    envelope
}

// client talks to the API as one logged-in user (token) or anonymously,
// over connections of its own.
type client struct {
	base  string
	token string
	hc    *http.Client
}

func newClient(base, token string) *client {
	tr := &http.Transport{
		Proxy:               nil, // 127.0.0.1 only, whatever the environment says
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	return &client{base: base, token: token, hc: &http.Client{Transport: tr}}
}

// call sends one request and decodes the envelope. timeout bounds the whole
// exchange. A transport error, a timeout or an answer that is not the
// envelope is an error.
func (c *client) call(ctx context.Context, timeout time.Duration, method, path string, body any, header map[string]string) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return reply{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return reply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept-Language", "en")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return reply{}, err
	}
	r := reply{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &r.env); err != nil {
		return r, fmt.Errorf("%s %s: status %d, not the envelope: %.200q", method, path, resp.StatusCode, raw)
	}
	return r, nil
}

// user is a registered user of a test.
type user struct {
	name   string
	mobile string
	token  string
}

// Credentials of the test users.
const (
	userPassword = "bank-test-password"
	payPassword  = "135790"
)

// newUser returns user i's registration.
func newUser(prefix string, i int) user {
	return user{name: fmt.Sprintf("%s%03d", prefix, i), mobile: fmt.Sprintf("138%08d", 10000+i)}
}

// register registers u (with a payment password) and logs in.
func register(ctx context.Context, base string, u *user) error {
	c := newClient(base, "")
	r, err := c.call(ctx, 30*time.Second, "POST", "/api/user", map[string]any{
		"username": u.name, "password": userPassword, "email": u.name + "@example.com",
		"mobile": u.mobile, "cardnum": cardNumber(u.mobile), "pay_password": payPassword,
	}, nil)
	if err != nil {
		return err
	}
	if r.status != http.StatusCreated {
		return fmt.Errorf("register %s: %d %s %s", u.name, r.status, r.env.Code, r.env.Error)
	}
	return login(ctx, base, u)
}

// login opens a session for u.
func login(ctx context.Context, base string, u *user) error {
	c := newClient(base, "")
	r, err := c.call(ctx, 30*time.Second, "POST", "/api/login", map[string]any{"username": u.name, "password": userPassword}, nil)
	if err != nil {
		return err
	}
	if r.status != http.StatusOK || r.env.Token == "" {
		return fmt.Errorf("login %s: %d %s %s", u.name, r.status, r.env.Code, r.env.Error)
	}
	u.token = r.env.Token
	return nil
}

// cardNumber makes a 19-digit card number passing the Luhn check from a
// mobile number.
func cardNumber(mobile string) string {
	body := "62220" + mobile + "12"
	sum := 0
	for i := len(body) - 1; i >= 0; i-- {
		d := int(body[i] - '0')
		if (len(body)-1-i)%2 == 0 { // doubled: every second digit from the check digit's left
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return body + string(rune('0'+(10-sum%10)%10))
}

// info returns the user's card balance from GET /api/info, in fen.
func info(ctx context.Context, c *client, timeout time.Duration) (int64, reply, error) {
	r, err := c.call(ctx, timeout, "GET", "/api/info", nil, nil)
	if err != nil || r.status != http.StatusOK {
		return 0, r, err
	}
	var data []struct {
		Balance string `json:"balance"`
	}
	if err := json.Unmarshal(r.env.Data, &data); err != nil || len(data) != 1 {
		return 0, r, fmt.Errorf("info: data %.200s", r.env.Data)
	}
	bal, ok := parseMoney(data[0].Balance)
	if !ok {
		return 0, r, fmt.Errorf("info: balance %q is not money", data[0].Balance)
	}
	return bal, r, nil
}

// bill is one line of a statement.
type bill struct {
	Date    string `json:"date"`
	Money   string `json:"money"`
	Balance string `json:"balance"`
	Method  string `json:"method"`
	Details string `json:"details"`
}

// maxPages bounds a statement walk.
const maxPages = 100_000

// statement walks every page of the user's card statement, newest first.
func statement(ctx context.Context, c *client) ([]bill, error) {
	var all []bill
	cursor := ""
	for page := 0; page < maxPages; page++ {
		path := "/api/wallet?limit=100"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r, err := c.call(ctx, 30*time.Second, "GET", path, nil, nil)
		if err != nil {
			return nil, err
		}
		if r.status != http.StatusOK {
			return nil, fmt.Errorf("wallet: %d %s %s", r.status, r.env.Code, r.env.Error)
		}
		var data []struct {
			Bills      []bill `json:"bill_list"`
			NextCursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.env.Data, &data); err != nil || len(data) != 1 {
			return nil, fmt.Errorf("wallet: data %.200s", r.env.Data)
		}
		all = append(all, data[0].Bills...)
		if data[0].NextCursor == "" {
			return all, nil
		}
		cursor = data[0].NextCursor
	}
	return nil, errors.New("wallet: too many pages")
}

// parseMoney parses the API's money: an optional minus, digits, a dot and
// exactly two decimals, into fen.
func parseMoney(s string) (int64, bool) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, ok := strings.Cut(s, ".")
	if !ok || whole == "" || len(frac) != 2 {
		return 0, false
	}
	var v int64
	for _, c := range whole + frac {
		if c < '0' || c > '9' || v > 1e15 {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// yuan formats fen as the API's money.
func yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}
