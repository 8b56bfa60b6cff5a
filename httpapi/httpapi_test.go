package httpapi_test

// Black-box tests of the HTTP API: every request goes through
// httpapi.NewServer on a real store (every store of teststores.All), and
// every assertion is about what a client sees: status, envelope, headers,
// and, for failures, that the store's business tables did not change.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"coffer"
	"coffer/httpapi"
	"coffer/internal/pgtest"
	"coffer/internal/teststores"
	"coffer/storetest"
)

// TestMain stops the PostgreSQL server that the tests may have started.
func TestMain(m *testing.M) { pgtest.Main(m) }

// testEnv is one API server on a fresh store.
type testEnv struct {
	store coffer.Store
	bank  *coffer.Bank
	clock *storetest.Clock
	h     http.Handler
}

// eachStore runs f as a parallel subtest, with a fresh server, on every
// store under test.
func eachStore(t *testing.T, f func(t *testing.T, e *testEnv)) {
	t.Helper()
	for _, s := range teststores.All(t) {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			f(t, newEnv(t, s.Open))
		})
	}
}

func newEnv(t *testing.T, open storetest.Opener) *testEnv {
	t.Helper()
	store := open(t)
	bank, clock := storetest.NewBank(t, store)
	return &testEnv{store: store, bank: bank, clock: clock, h: httpapi.NewServer(bank, httpapi.Options{})}
}

// rawBody is a request body sent byte for byte.
type rawBody string

// req is one request to the API.
type req struct {
	method string
	path   string // with the query string
	body   any    // nil: none; rawBody: as is; anything else: JSON-encoded
	token  string // sent as a bearer token
	cookie string // sent as the session cookie
	header map[string]string
	remote string // the client's address; 192.0.2.1:1234 by default
}

// reply is what the client got.
type reply struct {
	status int
	header http.Header
	raw    []byte
	top    map[string]json.RawMessage // the body's top-level object
}

// do sends r and checks what holds for every answer: valid JSON, never a
// 5xx, the envelope (except POST /api/mobile's bare success object) with
// success true exactly on 2xx, an empty error on success and a non-empty
// error and code on failure.
func (e *testEnv) do(t *testing.T, r req) reply {
	t.Helper()
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, newRequest(t, r))
	return checkReply(t, r, rec)
}

// newRequest builds the HTTP request of r.
func newRequest(t *testing.T, r req) *http.Request {
	t.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case rawBody:
		body = strings.NewReader(string(b))
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encode request: %v", err)
		}
		body = bytes.NewReader(enc)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.remote != "" {
		hr.RemoteAddr = r.remote
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.cookie != "" {
		hr.AddCookie(&http.Cookie{Name: httpapi.SessionCookie, Value: r.cookie})
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	return hr
}

// checkReply checks what holds for every answer (see do) and returns it.
func checkReply(t *testing.T, r req, rec *httptest.ResponseRecorder) reply {
	t.Helper()
	res := rec.Result()
	got := reply{status: res.StatusCode, header: res.Header, raw: rec.Body.Bytes()}
	what := r.method + " " + r.path
	if got.status >= 500 {
		t.Errorf("%s: status %d, want no 5xx; body %s", what, got.status, got.raw)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	if err := json.Unmarshal(got.raw, &got.top); err != nil || got.top == nil {
		t.Fatalf("%s: body is not a JSON object (%v): %q", what, err, got.raw)
	}
	ok2xx := got.status >= 200 && got.status < 300
	if strings.HasSuffix(r.path, "/api/mobile") && r.method == http.MethodPost && ok2xx {
		return got
	}
	for _, k := range []string{"success", "error", "data"} {
		if _, ok := got.top[k]; !ok {
			t.Errorf("%s: envelope lacks %q: %s", what, k, got.raw)
		}
	}
	var success bool
	var msg, code string
	json.Unmarshal(got.top["success"], &success)
	json.Unmarshal(got.top["error"], &msg)
	json.Unmarshal(got.top["code"], &code)
	if success != ok2xx {
		t.Errorf("%s: status %d with success %v: %s", what, got.status, success, got.raw)
	}
	if ok2xx && msg != "" {
		t.Errorf("%s: success with error %q", what, msg)
	}
	if !ok2xx && (msg == "" || code == "") {
		t.Errorf("%s: failure without an error sentence and a code: %s", what, got.raw)
	}
	return got
}

// post sends a POST with a JSON body and the bearer token.
func (e *testEnv) post(t *testing.T, path, token string, body any) reply {
	t.Helper()
	return e.do(t, req{method: http.MethodPost, path: path, token: token, body: body})
}

// get sends a GET with the bearer token and, when body is not nil, a body.
func (e *testEnv) get(t *testing.T, path, token string, body any) reply {
	t.Helper()
	return e.do(t, req{method: http.MethodGet, path: path, token: token, body: body})
}

// code is the failure's code ("" on success).
func (r reply) code() string {
	var c string
	json.Unmarshal(r.top["code"], &c)
	return c
}

// message is the envelope's error sentence.
func (r reply) message() string {
	var m string
	json.Unmarshal(r.top["error"], &m)
	return m
}

// ok fails the test unless the answer is a success with status; it
// decodes data into v when v is not nil.
func (r reply) ok(t *testing.T, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if v != nil {
		r.data(t, v)
	}
}

// fail fails the test unless the answer is a failure with status and code.
func (r reply) fail(t *testing.T, status int, code coffer.Code) {
	t.Helper()
	if r.status != status || r.code() != string(code) {
		t.Fatalf("got %d %s, want %d %s: %s", r.status, r.code(), status, code, r.raw)
	}
}

// data decodes the envelope's data into v.
func (r reply) data(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.top["data"], v); err != nil {
		t.Fatalf("decode data: %v: %s", err, r.raw)
	}
}

// balance is data.balance of a payment's answer, success or failure.
func (r reply) balance(t *testing.T) string {
	t.Helper()
	var d struct {
		Balance *string `json:"balance"`
	}
	r.data(t, &d)
	if d.Balance == nil {
		t.Fatalf("data has no balance: %s", r.raw)
	}
	return *d.Balance
}

// user is a registered customer and the session the tests act in.
type user struct {
	Username    string `json:"username"`
	Password    string `json:"password"`
	Email       string `json:"email"`
	Mobile      string `json:"mobile"`
	CardNum     string `json:"cardnum"`
	PayPassword string `json:"pay_password,omitempty"`
	token       string
}

var userSeq atomic.Int64

// newUser returns registration details that no other user of the test
// binary has: username, email, mobile and a Luhn-valid card number.
func newUser() *user {
	n := userSeq.Add(1)
	return &user{
		Username: fmt.Sprintf("user%d", n),
		Password: fmt.Sprintf("secret-pass-%d", n),
		Email:    fmt.Sprintf("user%d@example.com", n),
		Mobile:   fmt.Sprintf("138%08d", n),
		CardNum:  luhnCard(fmt.Sprintf("622202%09d", n)),
	}
}

// luhnCard appends the Luhn check digit to digits.
func luhnCard(digits string) string {
	sum := 0
	for i := 0; i < len(digits); i++ {
		d := int(digits[len(digits)-1-i] - '0')
		if i%2 == 0 { // doubled: these are odd positions once the check digit is appended
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return digits + string(rune('0'+(10-sum%10)%10))
}

// register registers u and fails the test unless it answers 201 "ok".
func (e *testEnv) register(t *testing.T, u *user) {
	t.Helper()
	var data string
	e.post(t, "/api/user", "", u).ok(t, http.StatusCreated, &data)
	if data != "ok" {
		t.Fatalf("registration data %q, want \"ok\"", data)
	}
}

// login logs u in, keeps the token in u and returns the reply.
func (e *testEnv) login(t *testing.T, u *user) reply {
	t.Helper()
	r := e.post(t, "/api/login", "", map[string]string{"username": u.Username, "password": u.Password})
	r.ok(t, http.StatusOK, nil)
	if err := json.Unmarshal(r.top["token"], &u.token); err != nil || u.token == "" {
		t.Fatalf("login gave no token: %s", r.raw)
	}
	return r
}

// signup registers a new user and logs them in.
func (e *testEnv) signup(t *testing.T) *user {
	t.Helper()
	u := newUser()
	e.register(t, u)
	e.login(t, u)
	return u
}

// deposit credits u's card at the counter.
func (e *testEnv) deposit(t *testing.T, u *user, amount string) {
	t.Helper()
	a, ok := coffer.ParseAmount(amount)
	if !ok {
		t.Fatalf("bad amount %q", amount)
	}
	if _, err := e.bank.Deposit(context.Background(), u.Mobile, a); err != nil {
		t.Fatalf("deposit: %v", err)
	}
}

// pay sends POST /api/pay for u with fields.
func (e *testEnv) pay(t *testing.T, u *user, fields map[string]any) reply {
	t.Helper()
	return e.post(t, "/api/pay", u.token, fields)
}

// infoData is one element of GET /api/info's data.
type infoData struct {
	UserID          string `json:"userid"`
	Username        string `json:"username"`
	Mobile          string `json:"mobile"`
	Email           string `json:"email"`
	TotalAssets     string `json:"total_assets"`
	Balance         string `json:"balance"`
	MoneyManagement string `json:"money_management"`
	CardNum         string `json:"cardnum"`
	Funds           string `json:"funds"`
	Gold            string `json:"gold"`
	GoldWeight      string `json:"gold_weight"`
}

// info returns u's GET /api/info.
func (e *testEnv) info(t *testing.T, u *user) infoData {
	t.Helper()
	var data []infoData
	e.get(t, "/api/info", u.token, nil).ok(t, http.StatusOK, &data)
	if len(data) != 1 {
		t.Fatalf("info data has %d elements, want 1", len(data))
	}
	return data[0]
}

// cardBalance is u's card balance as GET /api/info shows it.
func (e *testEnv) cardBalance(t *testing.T, u *user) string {
	t.Helper()
	return e.info(t, u).Balance
}

// businessTables are the tables a failed request must not change. The
// security counters (attempts, users.pay_failures) and sessions may.
var businessTables = []string{"users", "accounts", "transactions", "entries", "idempotency", "spend_days"}

// businessRows counts the rows of the business tables.
func (e *testEnv) businessRows(t *testing.T) map[string]int64 {
	t.Helper()
	all := storetest.CountRows(t, e.store)
	out := make(map[string]int64, len(businessTables))
	for _, table := range businessTables {
		n, ok := all[table]
		if !ok {
			t.Fatalf("the store has no table %q", table)
		}
		out[table] = n
	}
	return out
}

// sameRows fails the test when a business table's row count changed.
func sameRows(t *testing.T, what string, before, after map[string]int64) {
	t.Helper()
	for table, n := range before {
		if after[table] != n {
			t.Errorf("%s: table %s went from %d to %d rows", what, table, n, after[table])
		}
	}
}

var moneyRe = regexp.MustCompile(`^-?(0|[1-9][0-9]*)\.[0-9]{2}$`)

// isMoney reports whether s is money as the contract writes it: a decimal
// string with exactly two decimals.
func isMoney(s string) bool { return moneyRe.MatchString(s) }

// query builds a path with a query string.
func query(path string, kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return path + "?" + v.Encode()
}

// nextMidnight returns the start of the next calendar day in zone.
func nextMidnight(t time.Time, zone *time.Location) time.Time {
	y, m, d := t.In(zone).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, zone)
}

// mustJSON encodes v, for request bodies and messages.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
