package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"coffer"
	"coffer/storetest"
)

// badBodies are request bodies no endpoint accepts, with the status each
// must get.
var badBodies = []struct {
	name   string
	body   string
	status int
}{
	{"truncated JSON", `{"username":"x"`, 400},
	{"only a brace", `{`, 400},
	{"trailing comma", `{"a":1,}`, 400},
	{"single quotes", `{'a':'b'}`, 400},
	{"unquoted key", `{a:1}`, 400},
	{"a JSON array", `[]`, 400},
	{"an array of an object", `[{"mobile":"13800000000"}]`, 400},
	{"a JSON string", `"hello"`, 400},
	{"a JSON number", `42`, 400},
	{"a JSON bool", `true`, 400},
	{"JSON null", `null`, 400},
	{"two objects", `{} {}`, 400},
	{"an object and garbage", `{}garbage`, 400},
	{"a byte order mark", "\xef\xbb\xbf{}", 400},
	{"invalid UTF-8 in a string", "{\"username\":\"\xff\xfe\xfd\"}", 400},
	{"invalid UTF-8 in a key", "{\"\xc3\x28\":\"x\"}", 400},
	{"a raw NUL in a string", "{\"username\":\"a\x00b\"}", 400},
	{"a raw newline in a string", "{\"username\":\"a\nb\"}", 400},
	{"nesting past any sane depth", `{"a":` + strings.Repeat("[", 30000) + strings.Repeat("]", 30000) + `}`, 400},
	{"not JSON at all", `username=alice&password=x`, 400},
	{"over 64 KiB", `{"username":"` + strings.Repeat("a", 70<<10) + `"}`, 413},
	{"over 64 KiB of whitespace", `{` + strings.Repeat(" ", 65<<10) + `}`, 413},
}

// hostileValues are JSON values that no field of any endpoint accepts.
var hostileValues = []string{
	`true`, `false`, `{}`, `{"$ne":null}`, `[]`, `["13800000000"]`,
	`"a\u0000b"`, `"` + strings.Repeat("x", 10000) + `"`, `"` + strings.Repeat("好", 10000) + `"`,
}

// fieldCase is a value (raw JSON; "" deletes the field) and the status it gets.
type fieldCase struct {
	value  string
	status int
}

// fieldCases are a field and its values beyond hostileValues.
type fieldCases struct {
	field string
	cases []fieldCase
}

// bodyEndpoint is an endpoint that reads a body: a valid body for it and
// the fields to spoil one at a time.
type bodyEndpoint struct {
	name         string
	method, path string
	authed       bool
	base         func(e *testEnv, u, other *user) map[string]any
	fields       []fieldCases
}

func bodyEndpoints() []bodyEndpoint {
	missing := fieldCase{"", 400}
	empty := fieldCase{`""`, 400}
	str := func(field string, extra ...fieldCase) fieldCases {
		return fieldCases{field, append([]fieldCase{missing, empty, {`123`, 400}, {`12.5`, 400}}, extra...)}
	}
	optional := func(field string, extra ...fieldCase) fieldCases { return fieldCases{field, extra} }
	// num is a decimal field: a JSON number is as good as a string there.
	num := func(field string, extra ...fieldCase) fieldCases {
		return fieldCases{field, append([]fieldCase{missing, empty, {`"-1"`, 400}, {`0`, 400}, {`"1e3"`, 400}, {`1e3`, 400}, {`"NaN"`, 400}}, extra...)}
	}
	money := num("money", fieldCase{`"1.001"`, 400}, fieldCase{`"0.00"`, 400})
	payBase := func(fields map[string]any) func(e *testEnv, u, other *user) map[string]any {
		return func(e *testEnv, u, other *user) map[string]any {
			out := map[string]any{}
			for k, v := range fields {
				switch v {
				case "$payee":
					v = other.Mobile
				case "$mobile":
					v = u.Mobile
				case "$password":
					v = u.Password
				}
				out[k] = v
			}
			return out
		}
	}
	payFields := func(extra ...fieldCases) []fieldCases {
		return append([]fieldCases{
			str("mode", fieldCase{`"Transfer"`, 400}, fieldCase{`"transfer "`, 400}),
			optional("request_id", fieldCase{`12`, 400}, fieldCase{`"` + strings.Repeat("k", 256) + `"`, 400}),
		}, extra...)
	}
	mobileCases := []fieldCase{{`"1380013800"`, 400}, {`"23800138000"`, 400}, {`13800138000.0`, 400}, {`-13800138000`, 400}, {`1.38e10`, 400}, {`"１３８００１３８０００"`, 400}, {`"138 0013 8000"`, 400}}
	return []bodyEndpoint{
		{
			name: "register", method: http.MethodPost, path: "/api/user",
			base: func(e *testEnv, u, other *user) map[string]any { return registration(newUser()) },
			fields: []fieldCases{
				str("username", fieldCase{`"a\"b"`, 400}, fieldCase{`"😀😀😀"`, 400}, fieldCase{`"' OR '1'='1"`, 400}, fieldCase{`"<script>"`, 400}, fieldCase{`" padded "`, 400}, fieldCase{`"a"`, 400}),
				str("password", fieldCase{`12345678`, 400}, fieldCase{`"😀😀😀"`, 400}, fieldCase{`"a\"b'c"`, 400}),
				str("email", fieldCase{`"a\"b@example.com"`, 400}, fieldCase{`"a@b@example.com"`, 400}, fieldCase{`"x@example.com, y@example.com"`, 400}),
				str("mobile", mobileCases...),
				str("cardnum", fieldCase{`"😀"`, 400}, fieldCase{`"6222-0200-0000-0001"`, 400}),
				optional("pay_password", fieldCase{`123456`, 400}, fieldCase{`"12345😀"`, 400}, fieldCase{`"１２３４５６"`, 400}),
			},
		},
		{
			name: "login", method: http.MethodPost, path: "/api/login",
			base: func(e *testEnv, u, other *user) map[string]any {
				return map[string]any{"username": "nobody-" + newUser().Username, "password": "whatever-password"}
			},
			fields: []fieldCases{
				str("username", fieldCase{`"' OR '1'='1"`, 401}, fieldCase{`"😀"`, 401}),
				str("password", fieldCase{`"😀😀😀😀😀😀😀😀"`, 401}, fieldCase{`"\"; --"`, 401}),
			},
		},
		{
			name: "info", method: http.MethodGet, path: "/api/info", authed: true,
			base:   func(e *testEnv, u, other *user) map[string]any { return map[string]any{"mobile": u.Mobile} },
			fields: []fieldCases{optional("mobile", append([]fieldCase{{`123`, 400}, {`"abc"`, 400}}, mobileCases...)...)},
		},
		{
			name: "wallet", method: http.MethodGet, path: "/api/wallet", authed: true,
			base: func(e *testEnv, u, other *user) map[string]any { return map[string]any{} },
			fields: []fieldCases{
				optional("userid", fieldCase{`"abc"`, 400}, fieldCase{`-1`, 400}, fieldCase{`0`, 400}, fieldCase{`1e2`, 400}, fieldCase{`"99999999999999999999"`, 400}),
				optional("limit", fieldCase{`0`, 400}, fieldCase{`101`, 400}, fieldCase{`"x"`, 400}, fieldCase{`1.5`, 400}, fieldCase{`-5`, 400}),
				optional("cursor", fieldCase{`"!!"`, 400}, fieldCase{`"../../etc/passwd"`, 400}, fieldCase{`5`, 400}),
				optional("account", fieldCase{`"savings"`, 400}, fieldCase{`"CARD"`, 400}, fieldCase{`1`, 400}),
			},
		},
		{
			name: "mobile", method: http.MethodPost, path: "/api/mobile", authed: true,
			base:   func(e *testEnv, u, other *user) map[string]any { return map[string]any{"mobile": other.Mobile} },
			fields: []fieldCases{str("mobile", mobileCases...)},
		},
		{
			name: "paypassword", method: http.MethodPost, path: "/api/paypassword", authed: true,
			base: func(e *testEnv, u, other *user) map[string]any {
				return map[string]any{"password": u.Password, "pay_password": "112233"}
			},
			fields: []fieldCases{
				str("password"),
				str("pay_password", fieldCase{`112233`, 400}, fieldCase{`"11223"`, 400}, fieldCase{`"1122334"`, 400}, fieldCase{`"11223a"`, 400}, fieldCase{`"１１２２３３"`, 400}),
			},
		},
		{
			name: "pay transfer", method: http.MethodPost, path: "/api/pay", authed: true,
			base: payBase(map[string]any{"mode": "transfer", "money": "1.00", "payee": "$payee", "detail": "x", "password": "$password"}),
			fields: payFields(money, str("payee", mobileCases...), optional("payer", mobileCases...), optional("detail", fieldCase{`"` + strings.Repeat("长", 100) + `"`, 400}),
				str("password", fieldCase{`123456`, 400})),
		},
		{
			name: "pay mobilepay", method: http.MethodPost, path: "/api/pay", authed: true,
			base:   payBase(map[string]any{"mode": "mobilepay", "money": "10.00", "mobile": "$mobile", "passwrd": "$password"}),
			fields: payFields(money, str("mobile", mobileCases...), str("passwrd", fieldCase{`123456`, 400})),
		},
		{
			name: "pay moneymanagement", method: http.MethodPost, path: "/api/pay", authed: true,
			base: payBase(map[string]any{"mode": "moneymanagement", "money": "10.00", "kind": "demand", "time": "2026-11-23T10:00:00+08:00", "password": "$password"}),
			fields: payFields(money, str("kind"), optional("time", fieldCase{`"yesterday"`, 400}, fieldCase{`-5`, 400}, fieldCase{`1.5`, 400}, fieldCase{`"2026-11-23"`, 400}),
				optional("password", fieldCase{`123`, 400})),
		},
		{
			name: "pay redeem", method: http.MethodPost, path: "/api/pay", authed: true,
			base:   payBase(map[string]any{"mode": "redeem", "money": "1.00", "kind": "demand"}),
			fields: payFields(money, str("kind")),
		},
		{
			name: "pay gold", method: http.MethodPost, path: "/api/pay", authed: true,
			base: payBase(map[string]any{"mode": "gold", "weight": "0.1", "price": "560.00"}),
			fields: payFields(
				num("weight", fieldCase{`"0.0001"`, 400}, fieldCase{`" 1"`, 400}, fieldCase{`"Infinity"`, 400}),
				num("price", fieldCase{`"560.001"`, 400}, fieldCase{`"-560"`, 400}, fieldCase{`5.6e2`, 400})),
		},
		{
			name: "pay gold_sell", method: http.MethodPost, path: "/api/pay", authed: true,
			base:   payBase(map[string]any{"mode": "gold_sell", "weight": "0.1", "price": "560.00"}),
			fields: payFields(num("weight", fieldCase{`"0.0001"`, 400}), num("price", fieldCase{`"1.001"`, 400})),
		},
		{
			name: "pay fund", method: http.MethodPost, path: "/api/pay", authed: true,
			base:   payBase(map[string]any{"mode": "fund", "money": "10.00", "code": "000001"}),
			fields: payFields(money, str("code")),
		},
		{
			name: "pay fund_redeem", method: http.MethodPost, path: "/api/pay", authed: true,
			base: payBase(map[string]any{"mode": "fund_redeem", "shares": "1", "code": "000001"}),
			fields: payFields(str("code"),
				num("shares", fieldCase{`"1.00001"`, 400})),
		},
	}
}

// TestBadInputEveryEndpoint sends every endpoint that reads a body broken
// bodies and one spoiled field at a time: each is a 4xx in the envelope
// (checked by do), and the business tables do not change.
func TestBadInputEveryEndpoint(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u, other := e.signup(t), e.signup(t)
		e.deposit(t, u, "1000.00")
		for _, p := range []map[string]any{
			{"mode": "moneymanagement", "kind": "demand", "money": "100.00"},
			{"mode": "gold", "weight": "1", "price": "560.00"},
			{"mode": "fund", "code": "000001", "money": "123.45"},
		} {
			e.pay(t, u, p).ok(t, http.StatusOK, nil)
		}
		balance := e.cardBalance(t, u)
		rows := e.businessRows(t) // no request below may change them
		seq := 0
		send := func(t *testing.T, ep bodyEndpoint, name string, body any, status int) {
			t.Helper()
			seq++
			r := req{method: ep.method, path: ep.path, body: body, remote: fmt.Sprintf("10.%d.%d.%d:4000", seq>>16&255, seq>>8&255, seq&255)}
			if ep.authed {
				r.token = u.token
			}
			got := e.do(t, r)
			if got.status != status {
				t.Errorf("%s: status %d, want %d: %.300s", name, got.status, status, got.raw)
			}
			if got.status < 400 || got.status >= 500 {
				return
			}
			if ep.path == "/api/pay" {
				if b := got.balance(t); b != balance {
					t.Errorf("%s: data.balance %s, want the current %s", name, b, balance)
				}
			}
			sameRows(t, name, rows, e.businessRows(t))
		}
		for _, ep := range bodyEndpoints() {
			t.Run(ep.name, func(t *testing.T) {
				for _, b := range badBodies {
					send(t, ep, b.name, rawBody(b.body), b.status)
				}
				for _, f := range ep.fields {
					cases := f.cases
					for _, v := range hostileValues {
						cases = append(cases, fieldCase{v, 400})
					}
					for _, c := range cases {
						body := map[string]json.RawMessage{}
						for k, v := range ep.base(e, u, other) {
							body[k] = json.RawMessage(mustJSON(v))
						}
						name := f.field + " deleted"
						if c.value == "" {
							delete(body, f.field)
						} else {
							body[f.field] = json.RawMessage(c.value)
							name = fmt.Sprintf("%s=%.40s", f.field, c.value)
						}
						send(t, ep, name, body, c.status)
					}
				}
				// Only JSON bodies are read.
				for _, ct := range []string{"application/x-www-form-urlencoded", "text/html", "multipart/form-data; boundary=x", "application/json; charset"} {
					r := req{method: ep.method, path: ep.path, body: rawBody(`{}`), header: map[string]string{"Content-Type": ct}}
					if ep.authed {
						r.token = u.token
					}
					if got := e.do(t, r); got.status < 400 || got.status >= 500 {
						t.Errorf("Content-Type %q: status %d, want a 4xx", ct, got.status)
					}
				}
			})
		}
		if got := e.cardBalance(t, u); got != balance {
			t.Errorf("balance %s after bad input, want %s", got, balance)
		}
		// The payment password was not changed by any of it: the login password still pays.
		e.pay(t, u, map[string]any{"mode": "transfer", "money": "1", "payee": other.Mobile, "password": u.Password}).ok(t, http.StatusOK, nil)
		storetest.AssertLedger(t, e.store)
	})
}

// TestBigButValidBodiesAreRead checks that the body limit is not lower
// than it says: a body just under 64 KiB is served.
func TestBigButValidBodiesAreRead(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u := newUser()
		e.register(t, u)
		body := `{"username":` + mustJSON(u.Username) + `,` + strings.Repeat(" ", 60<<10) + `"password":` + mustJSON(u.Password) + `}`
		e.do(t, req{method: http.MethodPost, path: "/api/login", body: rawBody(body)}).ok(t, http.StatusOK, nil)
	})
}

// TestPayMoneyEdgeCases checks every money field's parsing through the
// modes that take money: what the contract rejects answers 400 and moves
// nothing; plain decimals as strings or JSON numbers are accepted.
func TestPayMoneyEdgeCases(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u, other := e.signup(t), e.signup(t)
		e.deposit(t, u, "1000.00")
		e.pay(t, u, map[string]any{"mode": "moneymanagement", "kind": "demand", "money": "100.00"}).ok(t, http.StatusOK, nil)
		balance := e.cardBalance(t, u)
		rejected := []string{
			`"-1"`, `-1`, `"-0.01"`, `-0.01`, `"0"`, `0`, `"0.00"`, `0.00`, `"-0"`,
			`"1.001"`, `1.001`, `"12.500"`, `12.500`,
			`"1e3"`, `1e3`, `1E3`, `"1E3"`, `1e-2`, `1.5e1`,
			`"NaN"`, `"nan"`, `"Infinity"`, `"-Infinity"`, `"inf"`,
			`""`, `" "`, `" 12"`, `"12 "`, `"\t12"`, `"12\n"`,
			`"1000000000.01"`, `1000000000.01`, `"9999999999999999999999"`, `99999999999999999999999`, `1000000000000`,
			`"1,000"`, `"1_000"`, `"0x10"`, `"+12"`, `"+12.00"`, `".5"`, `"5."`, `"00.5"`, `"012"`, `"１２"`, `"12.5.1"`, `"12元"`, `"¥12"`,
			`null`, `true`, `{"amount":"12"}`, `["12"]`, `"\u0031\u0032\u0000"`,
		}
		modes := []map[string]any{
			{"mode": "transfer", "payee": other.Mobile, "password": u.Password},
			{"mode": "mobilepay", "mobile": u.Mobile, "passwrd": u.Password},
			{"mode": "moneymanagement", "kind": "demand"},
			{"mode": "redeem", "kind": "demand"},
			{"mode": "fund", "code": "000001"},
		}
		for _, m := range modes {
			for _, v := range rejected {
				body := map[string]json.RawMessage{"money": json.RawMessage(v)}
				for k, x := range m {
					body[k] = json.RawMessage(mustJSON(x))
				}
				before := e.businessRows(t)
				r := e.post(t, "/api/pay", u.token, body)
				if r.status != http.StatusBadRequest || (r.code() != string(coffer.ErrInvalidField) && r.code() != string(coffer.ErrMissingField)) {
					t.Errorf("%s money=%s: %d %s, want 400 INVALID_FIELD or MISSING_FIELD", m["mode"], v, r.status, r.raw)
					continue
				}
				if b := r.balance(t); b != balance {
					t.Errorf("%s money=%s: data.balance %s, want %s", m["mode"], v, b, balance)
				}
				sameRows(t, fmt.Sprintf("%s money=%s", m["mode"], v), before, e.businessRows(t))
			}
		}
		// The largest amount parses; it is then refused by the transfer's limit, not by the parser.
		e.pay(t, u, map[string]any{"mode": "transfer", "money": "1000000000.00", "payee": other.Mobile, "password": u.Password}).fail(t, http.StatusUnprocessableEntity, coffer.ErrLimitSingle)
		e.pay(t, u, map[string]any{"mode": "transfer", "money": json.RawMessage(`1000000000`), "payee": other.Mobile, "password": u.Password}).fail(t, http.StatusUnprocessableEntity, coffer.ErrLimitSingle)

		accepted := []struct {
			value string
			fen   int64
		}{
			{`12.50`, 1250}, {`"12"`, 1200}, {`"12.5"`, 1250}, {`12`, 1200}, {`"0.01"`, 1}, {`0.1`, 10}, {`"12.50"`, 1250}, {`"0.10"`, 10},
		}
		want := fen(t, balance)
		for _, a := range accepted {
			r := e.post(t, "/api/pay", u.token, map[string]any{"mode": "transfer", "money": json.RawMessage(a.value), "payee": other.Mobile, "password": u.Password})
			want -= a.fen
			if r.status != http.StatusOK || r.balance(t) != coffer.Amount(want).String() {
				t.Errorf("money=%s: %d %s, want 200 with balance %s", a.value, r.status, r.raw, coffer.Amount(want))
			}
		}
		storetest.AssertLedger(t, e.store)
	})
}
