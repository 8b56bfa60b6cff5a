package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"coffer"
	"coffer/sqlite"
	"coffer/storetest"
)

// checkClientError fails unless err is nil or a coded error that the
// catalogue answers with a 4xx status.
func checkClientError(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var ce *coffer.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%s: uncoded error %v", what, err)
	}
	status, code, text := describe(err, false)
	if status < 400 || status > 499 || text == "" || code == coffer.ErrInternal {
		t.Fatalf("%s: %v answers %d %s %q", what, err, status, code, text)
	}
}

// FuzzParsePay feeds arbitrary bodies and idempotency keys to the payment
// decoder: it must answer a request or a 4xx error, never panic.
func FuzzParsePay(f *testing.F) {
	for _, body := range []string{
		`{"mode":"transfer","money":"20.50","payee":"13900139000","payer":"13800138000","password":"123456","detail":"x"}`,
		`{"mode":"mobilepay","mobile":"13800138000","money":50,"passwrd":"123456"}`,
		`{"mode":"moneymanagement","kind":"demand","money":"100","time":1700000000}`,
		`{"mode":"gold","weight":"1.5","price":"560.00"}`,
		`{"mode":"fund_redeem","code":"000001","shares":"1.0001"}`,
		`{"mode":"transfer","money":1e3}`, `{"mode":null}`, `[]`, `"x"`, `{"mode":"gold","weight":-1}`, "{\"mode\":\"\x00\"}",
	} {
		f.Add([]byte(body), "")
	}
	f.Add([]byte(`{"mode":"fund","code":"000001","money":"1","request_id":"a"}`), "b")
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		r := httptest.NewRequest(http.MethodPost, "/api/pay", bytes.NewReader(body))
		if key != "" && !strings.ContainsAny(key, "\r\n") {
			r.Header.Set("Idempotency-Key", key)
		}
		req, err := parsePay(httptest.NewRecorder(), r)
		checkClientError(t, "parsePay", err)
		if err != nil {
			return
		}
		if req.Money < 0 || req.Money > coffer.MaxAmount || req.Weight < 0 || req.Shares < 0 || req.Price < 0 {
			t.Fatalf("parsePay accepted out-of-range values: %+v", req)
		}
		if len(req.IdempotencyKey) > coffer.MaxIdempotencyKey {
			t.Fatalf("key of %d bytes accepted", len(req.IdempotencyKey))
		}
	})
}

// FuzzDecodeFields checks the generic decoder and field getters.
func FuzzDecodeFields(f *testing.F) {
	for _, body := range []string{`{"mobile":"13800138000","userid":7,"limit":"3"}`, `{"mobile":13800138000}`, `{"a":{"b":[1,2]}}`, `{}`, ``, `null`, `{"x":1}{"y":2}`, "\xff\xfe"} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodGet, "/api/info?limit=2", bytes.NewReader(body))
		fs, err := decode(httptest.NewRecorder(), r)
		checkClientError(t, "decode", err)
		if err != nil {
			return
		}
		for _, name := range []string{"mobile", "userid", "limit", "username", "money"} {
			_, err := fs.str(name, false)
			checkClientError(t, "str "+name, err)
			_, err = fs.digits(name, false)
			checkClientError(t, "digits "+name, err)
			_, _, err = fs.number(name, false)
			checkClientError(t, "number "+name, err)
			_, err = fs.amount(name)
			checkClientError(t, "amount "+name, err)
		}
		checkClientError(t, "userid", checkUserID(fs, 1))
	})
}

// FuzzServer sends arbitrary requests to the whole server, logged in, on
// a real store: every answer is a JSON envelope and none is a 5xx.
func FuzzServer(f *testing.F) {
	for _, seed := range []struct{ method, path, body string }{
		{"POST", "/api/pay", `{"mode":"transfer","money":"1","payee":"13900139000","password":"123456"}`},
		{"POST", "/api/pay", `{"mode":"gold","weight":"0.001","price":"560.00"}`},
		{"GET", "/api/wallet?limit=2&cursor=YjEuNQ", ``},
		{"GET", "/api/info", `{"mobile":"13800138000"}`},
		{"POST", "/api/mobile", `{"mobile":"13900139000"}`},
		{"POST", "/api/user", `{"username":"x","password":"12345678","email":"a@b.cn","mobile":"13700137000","cardnum":"6217000000000000012"}`},
		{"POST", "/api/paypassword", `{"password":"wrong","pay_password":"654321"}`},
		{"DELETE", "/api/pay", ``},
	} {
		f.Add(seed.method, seed.path, []byte(seed.body))
	}
	handler, token := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#") || !validMethod(method) {
			return
		}
		if path == "/api/logout" {
			return // keep the shared session alive
		}
		r, err := http.NewRequest(method, "http://coffer.test"+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: status %d %s", method, path, body, w.Code, w.Body.String())
		}
		if method == http.MethodHead {
			return
		}
		var env map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
			t.Fatalf("%s %s: not JSON: %q", method, path, w.Body.String())
		}
		if _, ok := env["success"]; !ok && !(path == "/api/mobile" && w.Code == 200) {
			t.Fatalf("%s %s: no envelope: %s", method, path, w.Body.String())
		}
	})
}

func validMethod(m string) bool {
	switch m {
	case "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS":
		return true
	}
	return false
}

// newFuzzServer builds a server on a fresh SQLite store with two users,
// one logged in with money on the card.
func newFuzzServer(f *testing.F) (http.Handler, string) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	bank, _ := storetest.NewBank(f, store)
	for _, r := range []coffer.Registration{
		{Username: "alice", Password: "correct horse", Email: "a@example.com", Mobile: "13800138000", CardNum: "6222020200112233446", PayPassword: "123456"},
		{Username: "bob", Password: "battery staple", Email: "b@example.com", Mobile: "13900139000", CardNum: "6228480012345678903"},
	} {
		if err := bank.Register(ctx, r); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := bank.Deposit(ctx, "13800138000", 1_000_000_00); err != nil {
		f.Fatal(err)
	}
	token, _, err := bank.Login(ctx, "alice", "correct horse", "127.0.0.1")
	if err != nil {
		f.Fatal(err)
	}
	return NewServer(bank, Options{}), token
}

func TestDecodeObjectRefusesDuplicateMembers(t *testing.T) {
	for body, ok := range map[string]bool{
		`{"money":"1","mode":"transfer"}`: true,
		`{}`:                              true,
		`{"money":"1","money":"1000"}`:    false,
		`{"a":{"x":1,"x":2}}`:             true, // nested objects are values, read whole
		`{"a":1}{"b":2}`:                  false,
		`{"a":1`:                          false,
		`[{"a":1}]`:                       false,
		`{"a":1,}`:                        false,
		`{"password":"x","password":"y"}`: false,
	} {
		_, err := decodeObject([]byte(body))
		if (err == nil) != ok {
			t.Errorf("decodeObject(%s): %v, want ok=%v", body, err, ok)
		}
		if err != nil {
			checkClientError(t, body, err)
		}
	}
}

// FuzzDecodeObjectAgrees checks that decodeObject, which splits a valid
// body by hand, answers every body as decodeObjectTokens does: the same
// members with the same raw values, or the same error.
func FuzzDecodeObjectAgrees(f *testing.F) {
	for _, body := range []string{
		`{"mode":"transfer","money":"20.50","payee":"13900139000","password":"123456"}`,
		` { "a" : 1 , "b" : [ 1 , { "c" : "}" } ] , "d" : "x\"y" , "e":true,"f":null,"g":-1.5e3 } `,
		`{"\u0061":1,"a":2}`, `{"a\\":1}`, `{"é":"ü"}`, `{}`, ` {} `, `{"a":{}}`, `{"a":[]}`, `{"a":"\\"}`,
		`{"a":1,}`, `{"a" 1}`, `{"a":1 "b":2}`, `{,}`, `{"a":1}{"b":2}`, `{"a":1} x`, `[1]`, `"x"`, `1`, `null`,
		`{"a":1`, `{"a":}`, `{"a":01}`, `{"a":"\x01"}`, "{\"a\":\"\xff\"}", `{"a":"\ud800"}`, `{"a":1,"a":{"b":[}`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, gotErr := decodeObject(body)
		want, wantErr := decodeObjectTokens(body)
		if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
			t.Fatalf("decodeObject(%q): error %v, decodeObjectTokens: %v", body, gotErr, wantErr)
		}
		if len(got) != len(want) {
			t.Fatalf("decodeObject(%q) = %q, decodeObjectTokens: %q", body, got, want)
		}
		for k, v := range want {
			if g, ok := got[k]; !ok || !bytes.Equal(g, v) {
				t.Fatalf("decodeObject(%q)[%q] = %q, decodeObjectTokens: %q", body, k, g, v)
			}
		}
	})
}
