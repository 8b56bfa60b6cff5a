package httpapi_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"coffer"
	"coffer/httpapi"
	"coffer/internal/teststores"
	"coffer/password"
	"coffer/storetest"
)

// TestRegisterSuccess registers users: three cases on one store.
func TestRegisterSuccess(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		t.Run("creates a user with an empty card", func(t *testing.T) { registerCreatesUserWithEmptyCard(t, e) })
		t.Run("normalizes mobile and card", func(t *testing.T) { registerNormalizesMobileAndCard(t, e) })
		t.Run("accepts unicode", func(t *testing.T) { registerAcceptsUnicode(t, e) })
	})
}

// registerCreatesUserWithEmptyCard: 201 "ok", one user more, a card at
// 0.00 and an empty statement.
func registerCreatesUserWithEmptyCard(t *testing.T, e *testEnv) {
	u := newUser()
	before := e.businessRows(t)
	r := e.post(t, "/api/user", "", u)
	r.ok(t, http.StatusCreated, nil)
	if string(r.top["data"]) != `"ok"` || string(r.top["error"]) != `""` || string(r.top["success"]) != "true" {
		t.Errorf("registration body %s, want success true, error \"\", data \"ok\"", r.raw)
	}
	after := e.businessRows(t)
	if after["users"] != before["users"]+1 {
		t.Errorf("users %d -> %d, want one more", before["users"], after["users"])
	}
	e.login(t, u)
	in := e.info(t, u)
	if in.Balance != "0.00" || in.TotalAssets != "0.00" || in.CardNum != u.CardNum || in.Email != u.Email || in.Mobile != u.Mobile {
		t.Errorf("new user's info %+v", in)
	}
	var w []walletData
	e.get(t, "/api/wallet", u.token, nil).ok(t, http.StatusOK, &w)
	if len(w) != 1 || w[0].BillList == nil || len(w[0].BillList) != 0 || w[0].NextCursor != "" {
		t.Errorf("new user's wallet %s, want one element with an empty bill_list", mustJSON(w))
	}
}

// registerNormalizesMobileAndCard: +86 and spaces in the card number are stripped before storing.
func registerNormalizesMobileAndCard(t *testing.T, e *testEnv) {
	u := newUser()
	sent := *u
	sent.Mobile = "+86" + u.Mobile
	sent.CardNum = u.CardNum[:4] + " " + u.CardNum[4:8] + " " + u.CardNum[8:12] + " " + u.CardNum[12:]
	e.register(t, &sent)
	e.login(t, u)
	in := e.info(t, u)
	if in.Mobile != u.Mobile || in.CardNum != u.CardNum {
		t.Errorf("stored mobile %q card %q, want %q %q", in.Mobile, in.CardNum, u.Mobile, u.CardNum)
	}
}

// registerAcceptsUnicode: usernames in any script and passwords with quotes and emoji work.
func registerAcceptsUnicode(t *testing.T, e *testEnv) {
	u := newUser()
	u.Username = "张三_" + u.Username
	u.Password = `p"a's\w😀rd 密码`
	e.register(t, u)
	r := e.login(t, u)
	var mobile string
	r.data(t, &mobile)
	if mobile != u.Mobile {
		t.Errorf("login data %q, want %q", mobile, u.Mobile)
	}
	if got := e.info(t, u).Username; got != u.Username {
		t.Errorf("username %q, want %q", got, u.Username)
	}
}

// TestRegisterDuplicates checks that a taken username, mobile, email or card (regardless of case and
// formatting) is 409 with a sentence naming which, and registers nothing.
func TestRegisterDuplicates(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		first := newUser()
		first.Username = "Alice" + first.Username
		first.Email = "Alice." + first.Email
		e.register(t, first)
		tests := []struct {
			name    string
			change  func(u *user)
			code    coffer.Code
			message string
		}{
			{"same username", func(u *user) { u.Username = first.Username }, coffer.ErrUsernameTaken, "用户名已存在"},
			{"username in other case", func(u *user) { u.Username = strings.ToUpper(first.Username) }, coffer.ErrUsernameTaken, "用户名已存在"},
			{"same mobile", func(u *user) { u.Mobile = first.Mobile }, coffer.ErrMobileTaken, "手机号已注册"},
			{"same mobile with +86", func(u *user) { u.Mobile = "+86" + first.Mobile }, coffer.ErrMobileTaken, "手机号已注册"},
			{"same email", func(u *user) { u.Email = first.Email }, coffer.ErrEmailTaken, "邮箱已注册"},
			{"email in other case", func(u *user) { u.Email = strings.ToUpper(first.Email) }, coffer.ErrEmailTaken, "邮箱已注册"},
			{"same card", func(u *user) { u.CardNum = first.CardNum }, coffer.ErrCardTaken, "银行卡号已注册"},
			{"same card with spaces", func(u *user) { u.CardNum = first.CardNum[:8] + " " + first.CardNum[8:] }, coffer.ErrCardTaken, "银行卡号已注册"},
		}
		for _, tc := range tests {
			u := newUser()
			tc.change(u)
			before := e.businessRows(t)
			r := e.post(t, "/api/user", "", u)
			r.fail(t, http.StatusConflict, tc.code)
			if r.message() != tc.message {
				t.Errorf("%s: message %q, want %q", tc.name, r.message(), tc.message)
			}
			if string(r.top["data"]) != "null" {
				t.Errorf("%s: data %s, want null", tc.name, r.top["data"])
			}
			sameRows(t, tc.name, before, e.businessRows(t))
		}
		// The loser of a duplicate did not half-register: its other fields are still free.
		u := newUser()
		u.Username = first.Username
		e.post(t, "/api/user", "", u).fail(t, http.StatusConflict, coffer.ErrUsernameTaken)
		u.Username = newUser().Username
		e.register(t, u)
	})
}

// TestRegisterInvalidFieldNamesTheField checks that an invalid field is 400 INVALID_FIELD whose message
// names the field, in Chinese and in English.
func TestRegisterInvalidFieldNamesTheField(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		tests := []struct {
			field, value string
			zh           string
		}{
			{"username", "a", "用户名"},
			{"username", "has space", "用户名"},
			{"username", strings.Repeat("x", 33), "用户名"},
			{"password", "short7!", "密码"},
			{"password", strings.Repeat("p", 129), "密码"},
			{"email", "not-an-email", "邮箱"},
			{"email", "Bob <bob@example.com>", "邮箱"},
			{"email", "a@b", "邮箱"},
			{"email", strings.Repeat("a", 250) + "@x.cn", "邮箱"},
			{"mobile", "12345678901", "手机号"},
			{"mobile", "1380013800", "手机号"},
			{"mobile", "138001380000", "手机号"},
			{"mobile", "138-0013-800", "手机号"},
			{"cardnum", "6222020000000001", "银行卡号"}, // fails the Luhn check
			{"cardnum", luhnCard("62220200000001"), "银行卡号"},
			{"cardnum", luhnCard("6222020000000000001"), "银行卡号"},
			{"cardnum", "6222abcd00000000", "银行卡号"},
			{"pay_password", "12345", "支付密码"},
			{"pay_password", "abcdef", "支付密码"},
			{"pay_password", "1234567", "支付密码"},
		}
		for _, tc := range tests {
			body := registration(newUser())
			body[tc.field] = tc.value
			before := e.businessRows(t)
			r := e.post(t, "/api/user", "", body)
			r.fail(t, http.StatusBadRequest, coffer.ErrInvalidField)
			if !strings.Contains(r.message(), tc.zh) {
				t.Errorf("%s=%q: message %q does not name %s", tc.field, tc.value, r.message(), tc.zh)
			}
			en := e.do(t, req{method: http.MethodPost, path: "/api/user", body: body, header: map[string]string{"Accept-Language": "en-US,en;q=0.9"}})
			en.fail(t, http.StatusBadRequest, coffer.ErrInvalidField)
			if !strings.Contains(en.message(), tc.field) {
				t.Errorf("%s=%q: English message %q does not name the field", tc.field, tc.value, en.message())
			}
			sameRows(t, tc.field+"="+tc.value, before, e.businessRows(t))
		}
	})
}

// registration is u's registration body as a map, for tests to mangle.
func registration(u *user) map[string]any {
	return map[string]any{"username": u.Username, "password": u.Password, "email": u.Email, "mobile": u.Mobile, "cardnum": u.CardNum}
}

// TestLoginSessions checks what a login answers and the sessions it opens.
func TestLoginSessions(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		t.Run("answers mobile, token and cookie", func(t *testing.T) { loginAnswersMobileTokenAndCookie(t, e) })
		t.Run("a new token each login", func(t *testing.T) { loginGivesANewTokenEachTime(t, e) })
	})
}

// loginAnswersMobileTokenAndCookie: data is the mobile, the token is top-level and in an
// HttpOnly, SameSite=Lax cookie; cookie and bearer both work, on any server of the database.
func loginAnswersMobileTokenAndCookie(t *testing.T, e *testEnv) {
	u := newUser()
	e.register(t, u)
	r := e.login(t, u)
	var mobile string
	r.data(t, &mobile)
	if mobile != u.Mobile {
		t.Errorf("login data %q, want the mobile %q", mobile, u.Mobile)
	}
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == httpapi.SessionCookie {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatalf("login set no %s cookie; headers %v", httpapi.SessionCookie, r.header)
	}
	if cookie.Value != u.token || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/" {
		t.Errorf("session cookie %+v: want the token, HttpOnly, SameSite=Lax, Path=/", cookie)
	}
	if cookie.Secure {
		t.Errorf("session cookie is Secure over plain HTTP")
	}
	// The cookie alone and the bearer token alone both authenticate.
	var data []infoData
	e.do(t, req{method: http.MethodGet, path: "/api/info", cookie: cookie.Value}).ok(t, http.StatusOK, &data)
	e.do(t, req{method: http.MethodGet, path: "/api/info", token: u.token}).ok(t, http.StatusOK, &data)
	e.do(t, req{method: http.MethodGet, path: "/api/info", header: map[string]string{"Authorization": "bearer " + u.token}}).ok(t, http.StatusOK, &data)
	// Usernames match regardless of case at login too.
	e.post(t, "/api/login", "", map[string]string{"username": strings.ToUpper(u.Username), "password": u.Password}).ok(t, http.StatusOK, nil)
	// Over TLS the cookie is Secure.
	tls := e.do(t, req{method: http.MethodPost, path: "https://bank.example/api/login", body: map[string]string{"username": u.Username, "password": u.Password}})
	tls.ok(t, http.StatusOK, nil)
	secure := false
	for _, c := range (&http.Response{Header: tls.header}).Cookies() {
		secure = secure || (c.Name == httpapi.SessionCookie && c.Secure && c.HttpOnly)
	}
	if !secure {
		t.Errorf("session cookie over TLS is not Secure: %v", tls.header["Set-Cookie"])
	}
	// The session lives in the database: another server on the same
	// database (or this one restarted) accepts it.
	bank2, _ := storetest.NewBank(t, e.store)
	e2 := &testEnv{store: e.store, bank: bank2, h: httpapi.NewServer(bank2, httpapi.Options{})}
	e2.get(t, "/api/info", u.token, nil).ok(t, http.StatusOK, &data)
}

// TestPostReadsOnlyTheBody checks that a query string on a POST is ignored: it cannot change a
// payment, and credentials are not read from URLs.
func TestPostReadsOnlyTheBody(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u, other := e.signup(t), e.signup(t)
		e.deposit(t, u, "100.00")
		r := e.post(t, query("/api/pay", "money", "50.00", "payee", u.Mobile), u.token,
			map[string]any{"mode": "transfer", "money": "1.00", "payee": other.Mobile, "password": u.Password})
		if r.status != http.StatusOK || r.balance(t) != "99.00" {
			t.Errorf("a query string overrode the body of a payment: %s", r.raw)
		}
		e.do(t, req{method: http.MethodPost, path: query("/api/login", "username", u.Username, "password", u.Password)}).fail(t, http.StatusBadRequest, coffer.ErrMissingField)
		n := newUser()
		e.do(t, req{method: http.MethodPost, path: query("/api/user", "username", n.Username, "password", n.Password, "email", n.Email, "mobile", n.Mobile, "cardnum", n.CardNum)}).fail(t, http.StatusBadRequest, coffer.ErrMissingField)
		storetest.AssertLedger(t, e.store)
	})
}

// loginGivesANewTokenEachTime: every login opens its own session; logout ends one.
func loginGivesANewTokenEachTime(t *testing.T, e *testEnv) {
	u := newUser()
	e.register(t, u)
	e.login(t, u)
	first := u.token
	e.login(t, u)
	second := u.token
	if first == second {
		t.Fatalf("two logins gave the same token")
	}
	e.get(t, "/api/info", first, nil).ok(t, http.StatusOK, nil)
	e.get(t, "/api/info", second, nil).ok(t, http.StatusOK, nil)
	// Logging one session out leaves the other.
	r := e.post(t, "/api/logout", first, nil)
	r.ok(t, http.StatusOK, nil)
	cleared := false
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		cleared = cleared || (c.Name == httpapi.SessionCookie && c.Value == "" && c.MaxAge < 0)
	}
	if !cleared {
		t.Errorf("logout did not clear the cookie: %v", r.header["Set-Cookie"])
	}
	e.get(t, "/api/info", first, nil).fail(t, http.StatusUnauthorized, coffer.ErrUnauthorized)
	e.get(t, "/api/info", second, nil).ok(t, http.StatusOK, nil)
}

// TestLoginWrongCredentialsLookTheSame checks that a wrong password and an unknown user get the same
// 401, message and body, and neither a token nor a cookie.
func TestLoginWrongCredentialsLookTheSame(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u := newUser()
		e.register(t, u)
		for _, lang := range []string{"", "en"} {
			h := map[string]string{"Accept-Language": lang}
			wrong := e.do(t, req{method: http.MethodPost, path: "/api/login", header: h, body: map[string]string{"username": u.Username, "password": u.Password + "x"}})
			unknown := e.do(t, req{method: http.MethodPost, path: "/api/login", header: h, body: map[string]string{"username": "nobody" + u.Username, "password": u.Password}})
			wrong.fail(t, http.StatusUnauthorized, coffer.ErrBadCredentials)
			unknown.fail(t, http.StatusUnauthorized, coffer.ErrBadCredentials)
			if wrong.message() != unknown.message() || string(wrong.top["data"]) != string(unknown.top["data"]) {
				t.Errorf("wrong password %s and unknown user %s answer differently", wrong.raw, unknown.raw)
			}
			if lang == "" && wrong.message() != "用户名或密码错误" {
				t.Errorf("message %q, want 用户名或密码错误", wrong.message())
			}
			if _, ok := wrong.top["token"]; ok {
				t.Errorf("failed login carries a token: %s", wrong.raw)
			}
			if len(wrong.header["Set-Cookie"]) > 0 {
				t.Errorf("failed login sets a cookie: %v", wrong.header["Set-Cookie"])
			}
		}
	})
}

// TestLoginThrottledPerUsername checks the 429 after repeated failures for one username.
func TestLoginThrottledPerUsername(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		t.Run("known user", func(t *testing.T) { loginThrottledKnownUser(t, e) })
		t.Run("unknown user", func(t *testing.T) { loginThrottledUnknownUser(t, e) })
	})
}

// loginThrottledKnownUser: the lock holds even for the right password, spares other users and ends.
func loginThrottledKnownUser(t *testing.T, e *testEnv) {
	u, other := newUser(), newUser()
	e.register(t, u)
	e.register(t, other)
	cfg := e.bank.Config()
	for i := 1; i <= cfg.LoginUserFailures; i++ {
		name := u.Username
		if i%2 == 0 {
			name = strings.ToUpper(name) // the same username for the counter
		}
		e.post(t, "/api/login", "", map[string]string{"username": name, "password": "wrong-password"}).fail(t, http.StatusUnauthorized, coffer.ErrBadCredentials)
	}
	// Locked now, even with the right password.
	r := e.post(t, "/api/login", "", map[string]string{"username": u.Username, "password": u.Password})
	r.fail(t, http.StatusTooManyRequests, coffer.ErrTooManyAttempts)
	if _, ok := r.top["token"]; ok {
		t.Errorf("throttled login carries a token")
	}
	// Other users are not affected.
	e.login(t, other)
	// The lock ends.
	e.clock.Advance(cfg.LoginLockFor - time.Second)
	e.post(t, "/api/login", "", map[string]string{"username": u.Username, "password": u.Password}).fail(t, http.StatusTooManyRequests, coffer.ErrTooManyAttempts)
	e.clock.Advance(time.Second)
	e.login(t, u)
}

// loginThrottledUnknownUser: an unknown username is throttled like a known one.
func loginThrottledUnknownUser(t *testing.T, e *testEnv) {
	name := "ghost" + newUser().Username
	for i := 0; i < e.bank.Config().LoginUserFailures; i++ {
		e.post(t, "/api/login", "", map[string]string{"username": name, "password": "whatever-pass"}).fail(t, http.StatusUnauthorized, coffer.ErrBadCredentials)
	}
	e.post(t, "/api/login", "", map[string]string{"username": name, "password": "whatever-pass"}).fail(t, http.StatusTooManyRequests, coffer.ErrTooManyAttempts)
}

// TestLoginThrottledPerClientAddress checks that failures from one client address across many
// usernames end in 429 for that address only, for LoginLockFor.
func TestLoginThrottledPerClientAddress(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u := newUser()
		e.register(t, u)
		const attacker, neighbour = "198.51.100.7:40000", "203.0.113.9:50000"
		cfg := e.bank.Config()
		for i := 0; i < cfg.LoginAddrFailures; i++ {
			// A different username each time: only the address counter reaches its limit.
			body := map[string]string{"username": fmt.Sprintf("spray%d-%s", i, u.Username), "password": "password1"}
			e.do(t, req{method: http.MethodPost, path: "/api/login", remote: attacker, body: body}).fail(t, http.StatusUnauthorized, coffer.ErrBadCredentials)
		}
		good := map[string]string{"username": u.Username, "password": u.Password}
		e.do(t, req{method: http.MethodPost, path: "/api/login", remote: attacker, body: good}).fail(t, http.StatusTooManyRequests, coffer.ErrTooManyAttempts)
		// Another port of the same host is the same client.
		e.do(t, req{method: http.MethodPost, path: "/api/login", remote: "198.51.100.7:40001", body: good}).fail(t, http.StatusTooManyRequests, coffer.ErrTooManyAttempts)
		e.do(t, req{method: http.MethodPost, path: "/api/login", remote: neighbour, body: good}).ok(t, http.StatusOK, nil)
		e.clock.Advance(cfg.LoginLockFor)
		e.do(t, req{method: http.MethodPost, path: "/api/login", remote: attacker, body: good}).ok(t, http.StatusOK, nil)
	})
}

// authedEndpoints are every endpoint that needs a session, with a body
// that would otherwise be acceptable.
var authedEndpoints = []struct {
	method, path string
	body         any
}{
	{http.MethodPost, "/api/logout", nil},
	{http.MethodGet, "/api/info", nil},
	{http.MethodGet, "/api/wallet", nil},
	{http.MethodPost, "/api/mobile", map[string]string{"mobile": "13800000001"}},
	{http.MethodPost, "/api/paypassword", map[string]string{"password": "password1", "pay_password": "123456"}},
	{http.MethodPost, "/api/pay", map[string]string{"mode": "moneymanagement", "kind": "demand", "money": "1.00"}},
	{http.MethodGet, "/api/products", nil},
}

// TestEveryAuthenticatedEndpointRefusesWithoutASession checks that every endpoint that needs a
// session answers 401 to missing, forged, logged-out and idle-expired credentials.
func TestEveryAuthenticatedEndpointRefusesWithoutASession(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u := e.signup(t)
		e.deposit(t, u, "100.00")
		loggedOut := newUser()
		e.register(t, loggedOut)
		e.login(t, loggedOut)
		e.post(t, "/api/logout", loggedOut.token, nil).ok(t, http.StatusOK, nil)
		forged := make([]byte, 32)
		rand.Read(forged)
		bad := []struct {
			name string
			r    req
		}{
			{"no token", req{}},
			{"forged bearer", req{token: base64.RawURLEncoding.EncodeToString(forged)}},
			{"forged cookie", req{cookie: base64.RawURLEncoding.EncodeToString(forged)}},
			{"garbage bearer", req{token: "'; DROP TABLE sessions; --"}},
			{"huge bearer", req{token: strings.Repeat("A", 4096)}},
			{"empty bearer", req{header: map[string]string{"Authorization": "Bearer "}}},
			{"basic auth", req{header: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(u.Username+":"+u.Password))}}},
			{"logged-out bearer", req{token: loggedOut.token}},
			{"logged-out cookie", req{cookie: loggedOut.token}},
		}
		for _, b := range bad {
			e.assertRefused(t, b.name, b.r)
		}
		// u's session is live until it has been idle for SessionIdle.
		e.get(t, "/api/info", u.token, nil).ok(t, http.StatusOK, nil)
		e.clock.Advance(e.bank.Config().SessionIdle)
		e.assertRefused(t, "idle-expired bearer", req{token: u.token})
		e.assertRefused(t, "idle-expired cookie", req{cookie: u.token})
		if got := e.cardBalanceAfterLogin(t, u); got != "100.00" {
			t.Errorf("balance %s after refused requests, want 100.00", got)
		}
		storetest.AssertLedger(t, e.store)
	})
}

// TestStrangersAreRefusedBeforeTheirInputIsJudged checks the order of
// refusals on the endpoints that check the session in their own read
// (info, wallet, pay): without a live session every request is answered 401,
// whatever is wrong with its query; with one, the query's fault is named.
func TestStrangersAreRefusedBeforeTheirInputIsJudged(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u := e.signup(t)
		other := e.signup(t)
		otherID := e.info(t, other).UserID
		cases := []struct {
			path   string
			body   any // POST when set
			status int
			code   coffer.Code
		}{
			{"/api/pay", map[string]string{"mode": "transfer", "money": "-1", "payee": other.Mobile}, http.StatusBadRequest, coffer.ErrInvalidField},
			{"/api/pay", map[string]string{"mode": "teleport"}, http.StatusBadRequest, coffer.ErrUnknownMode},
			{"/api/pay", rawBody("{"), http.StatusBadRequest, coffer.ErrInvalidJSON},
			{"/api/info?mobile=12", nil, http.StatusBadRequest, coffer.ErrInvalidField},
			{"/api/info?mobile=" + other.Mobile, nil, http.StatusForbidden, coffer.ErrForbidden},
			{"/api/info?mobile=1&mobile=2", nil, http.StatusBadRequest, coffer.ErrInvalidField},
			{"/api/wallet?limit=0", nil, http.StatusBadRequest, coffer.ErrInvalidField},
			{"/api/wallet?cursor=not-a-cursor", nil, http.StatusBadRequest, coffer.ErrInvalidField},
			{"/api/wallet?account=gold", nil, http.StatusBadRequest, coffer.ErrInvalidField},
			{"/api/wallet?userid=abc", nil, http.StatusBadRequest, coffer.ErrInvalidField},
			{"/api/wallet?userid=" + otherID, nil, http.StatusForbidden, coffer.ErrForbidden},
		}
		for _, c := range cases {
			method := http.MethodGet
			if c.body != nil {
				method = http.MethodPost
			}
			for name, r := range map[string]req{"no token": {}, "forged token": {token: "Zm9yZ2Vk"}} {
				r.method, r.path, r.body = method, c.path, c.body
				got := e.do(t, r)
				if got.status != http.StatusUnauthorized || got.code() != string(coffer.ErrUnauthorized) {
					t.Errorf("%s with %s: %d %s, want 401 UNAUTHORIZED", c.path, name, got.status, got.raw)
				}
			}
			got := e.do(t, req{method: method, path: c.path, body: c.body, token: u.token})
			if got.status != c.status || got.code() != string(c.code) {
				t.Errorf("%s with a session: %d %s, want %d %s", c.path, got.status, got.raw, c.status, c.code)
			}
		}
	})
}

// assertRefused checks that every authenticated endpoint answers a request
// with r's credentials 401 UNAUTHORIZED and writes nothing.
func (e *testEnv) assertRefused(t *testing.T, name string, r req) {
	t.Helper()
	for _, ep := range authedEndpoints {
		r.method, r.path, r.body = ep.method, ep.path, ep.body
		before := e.businessRows(t)
		got := e.do(t, r)
		if got.status != http.StatusUnauthorized || got.code() != string(coffer.ErrUnauthorized) {
			t.Errorf("%s %s with %s: %d %s, want 401 UNAUTHORIZED", ep.method, ep.path, name, got.status, got.raw)
		}
		sameRows(t, name+" "+ep.path, before, e.businessRows(t))
	}
}

// cardBalanceAfterLogin logs u in afresh and returns the card balance.
func (e *testEnv) cardBalanceAfterLogin(t *testing.T, u *user) string {
	t.Helper()
	e.login(t, u)
	return e.cardBalance(t, u)
}

// TestSessionIdleExpiry checks that a session in use lives on; one idle for SessionIdle is over.
func TestSessionIdleExpiry(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u := e.signup(t)
		idle := e.bank.Config().SessionIdle
		// Activity keeps the session alive past one idle period.
		for i := 0; i < 3; i++ {
			e.clock.Advance(idle - time.Minute)
			e.get(t, "/api/info", u.token, nil).ok(t, http.StatusOK, nil)
		}
		e.clock.Advance(idle)
		e.get(t, "/api/info", u.token, nil).fail(t, http.StatusUnauthorized, coffer.ErrUnauthorized)
		// Going back to being idle-expired is not undone by time passing.
		e.clock.Advance(time.Hour)
		e.do(t, req{method: http.MethodGet, path: "/api/products", cookie: u.token}).fail(t, http.StatusUnauthorized, coffer.ErrUnauthorized)
	})
}

// TestSessionAbsoluteExpiryWhileActive checks that a session ends SessionAbsolute after login
// however active it was, on every endpoint.
func TestSessionAbsoluteExpiryWhileActive(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u := e.signup(t)
		cfg := e.bank.Config()
		step := 20 * time.Minute
		var elapsed time.Duration
		for elapsed+step < cfg.SessionAbsolute {
			e.clock.Advance(step)
			elapsed += step
			e.get(t, "/api/products", u.token, nil).ok(t, http.StatusOK, nil)
		}
		e.clock.Advance(cfg.SessionAbsolute - elapsed)
		e.assertRefused(t, "absolute-expired bearer", req{token: u.token})
		e.assertRefused(t, "absolute-expired cookie", req{cookie: u.token})
		e.login(t, u)
		e.get(t, "/api/products", u.token, nil).ok(t, http.StatusOK, nil)
	})
}

// TestPaymentPassword checks setting the payment password and paying with it.
func TestPaymentPassword(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		t.Run("wrong login password keeps the session", func(t *testing.T) { payPasswordWrongLoginPasswordKeepsSession(t, e) })
		t.Run("given at registration", func(t *testing.T) { registrationPayPassword(t, e) })
	})
}

// payPasswordWrongLoginPasswordKeepsSession: POST /api/paypassword with a wrong login password
// is 403 BAD_PASSWORD and the session lives on; a set PIN replaces the login password for paying.
func payPasswordWrongLoginPasswordKeepsSession(t *testing.T, e *testEnv) {
	u := e.signup(t)
	other := e.signup(t)
	e.deposit(t, u, "100.00")
	before := e.businessRows(t)
	r := e.post(t, "/api/paypassword", u.token, map[string]string{"password": u.Password + "nope", "pay_password": "135790"})
	r.fail(t, http.StatusForbidden, coffer.ErrBadPassword)
	sameRows(t, "wrong login password", before, e.businessRows(t))
	e.get(t, "/api/info", u.token, nil).ok(t, http.StatusOK, nil)
	// The old payment password (the login password) still pays.
	transfer := func(pw string) reply {
		return e.pay(t, u, map[string]any{"mode": "transfer", "money": "1.00", "payee": other.Mobile, "password": pw})
	}
	transfer(u.Password).ok(t, http.StatusOK, nil)

	for _, bad := range []any{"12345", "1234567", "abcdef", "12 456", 123456, "", nil} {
		body := map[string]any{"password": u.Password, "pay_password": bad}
		r := e.post(t, "/api/paypassword", u.token, body)
		if r.status != http.StatusBadRequest {
			t.Errorf("pay_password %#v: status %d, want 400: %s", bad, r.status, r.raw)
		}
	}
	var ok string
	e.post(t, "/api/paypassword", u.token, map[string]string{"password": u.Password, "pay_password": "135790"}).ok(t, http.StatusOK, &ok)
	transfer(u.Password).fail(t, http.StatusForbidden, coffer.ErrBadPayPassword)
	if got := transfer("135790"); got.balance(t) != "98.00" {
		t.Errorf("balance %s after two transfers, want 98.00", got.balance(t))
	}
	// Changing it again.
	e.post(t, "/api/paypassword", u.token, map[string]string{"password": u.Password, "pay_password": "000111"}).ok(t, http.StatusOK, nil)
	transfer("135790").fail(t, http.StatusForbidden, coffer.ErrBadPayPassword)
	transfer("000111").ok(t, http.StatusOK, nil)
	storetest.AssertLedger(t, e.store)
}

// registrationPayPassword: a pay_password given at registration is the one that pays.
func registrationPayPassword(t *testing.T, e *testEnv) {
	u := newUser()
	u.PayPassword = "246810"
	e.register(t, u)
	e.login(t, u)
	e.deposit(t, u, "50.00")
	top := func(pw string) reply {
		return e.pay(t, u, map[string]any{"mode": "mobilepay", "mobile": u.Mobile, "money": "10.00", "passwrd": pw})
	}
	top(u.Password).fail(t, http.StatusForbidden, coffer.ErrBadPayPassword)
	if got := top("246810"); got.status != http.StatusOK || got.balance(t) != "40.00" {
		t.Errorf("top-up with the payment password: %s", got.raw)
	}
	storetest.AssertLedger(t, e.store)
}

// TestBrowserClientOverHTTP drives a real HTTP server as a browser would:
// a cookie jar, a GET carrying a JSON body, and logout clearing the cookie.
func TestBrowserClientOverHTTP(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		srv := httptest.NewServer(e.h)
		t.Cleanup(srv.Close)
		jar, _ := cookiejar.New(nil)
		client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		send := func(method, path, body string) (int, string) {
			t.Helper()
			hr, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			hr.Header.Set("Content-Type", "application/json")
			res, err := client.Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			return res.StatusCode, string(b)
		}
		u := newUser()
		if st, body := send("POST", "/api/user", mustJSON(u)); st != http.StatusCreated || !strings.Contains(body, `"data":"ok"`) {
			t.Fatalf("register: %d %s", st, body)
		}
		if st, body := send("POST", "/api/login", mustJSON(map[string]string{"username": u.Username, "password": u.Password})); st != http.StatusOK {
			t.Fatalf("login: %d %s", st, body)
		}
		st, body := send("GET", "/api/info", mustJSON(map[string]string{"mobile": u.Mobile}))
		if st != http.StatusOK || !strings.Contains(body, `"email":"`+u.Email+`"`) {
			t.Fatalf("info by cookie with a JSON body on GET: %d %s", st, body)
		}
		if st, body := send("POST", "/api/logout", ""); st != http.StatusOK {
			t.Fatalf("logout: %d %s", st, body)
		}
		if st, body := send("GET", "/api/info", ""); st != http.StatusUnauthorized {
			t.Fatalf("info after logout: %d %s", st, body)
		}
	})
}

// TestLoginTimingWithProductionHashing logs in with the production argon2id
// parameters and checks, loosely, that a wrong password and an unknown
// user take about the same time.
func TestLoginTimingWithProductionHashing(t *testing.T) {
	if testing.Short() {
		t.Skip("production password hashing is slow")
	}
	t.Parallel()
	store := teststores.All(t)[0]
	t.Run(store.Name, func(t *testing.T) {
		s := store.Open(t)
		keyer, err := password.NewPayKeyer(storetest.TestSecret)
		if err != nil {
			t.Fatal(err)
		}
		cfg := coffer.DefaultConfig()
		cfg.LoginUserFailures, cfg.LoginAddrFailures = 1000, 1000 // measure, not throttle
		clock := storetest.NewClock(storetest.Start)
		ctx := context.Background()
		if err := s.Update(ctx, func(tx coffer.Tx) error { return coffer.SeedCatalog(ctx, tx, clock.Now(), cfg.Zone) }); err != nil {
			t.Fatal(err)
		}
		bank := coffer.NewBank(s, password.NewHasher(password.DefaultParams), keyer, cfg, clock.Now)
		e := &testEnv{store: s, bank: bank, clock: clock, h: httpapi.NewServer(bank, httpapi.Options{})}
		u := newUser()
		e.register(t, u)
		e.login(t, u)
		e.get(t, "/api/info", u.token, nil).ok(t, http.StatusOK, nil)

		timeLogin := func(username, pw string) time.Duration {
			start := time.Now()
			e.post(t, "/api/login", "", map[string]string{"username": username, "password": pw}).fail(t, http.StatusUnauthorized, coffer.ErrBadCredentials)
			return time.Since(start)
		}
		samples := 9
		if raceEnabled {
			samples = 3
		}
		var wrong, unknown []time.Duration
		for i := 0; i < samples; i++ {
			wrong = append(wrong, timeLogin(u.Username, "not-the-password"))
			unknown = append(unknown, timeLogin(fmt.Sprintf("nobody%d%s", i, u.Username), "not-the-password"))
		}
		mw, mu := median(wrong), median(unknown)
		t.Logf("median login failure: wrong password %v, unknown user %v", mw, mu)
		if mw > 3*mu || mu > 3*mw {
			t.Errorf("wrong password takes %v, unknown user %v: more than 3x apart", mw, mu)
		}
	})
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
