package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"coffer"
	"coffer/httpapi"
	"coffer/internal/teststores"
	"coffer/storetest"
)

// Regression: info, wallet and pay check the session in their own read
// transaction; a request refused after the session was found live (a bad
// cursor, a payment refused) did not refresh its idle clock, as a request
// through requireSession does, and the session expired under an active
// client.
func TestRefusedRequestsStillRefreshTheSession(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u := e.signup(t)
		v := e.signup(t)
		e.deposit(t, u, "100.00")
		idle := e.bank.Config().SessionIdle
		pw := u.PayPassword
		if pw == "" {
			pw = u.Password // a user without a payment password pays with the login password
		}
		for _, refused := range []struct {
			name   string
			r      req
			status int
			code   coffer.Code
		}{
			{"a bad cursor", req{method: http.MethodGet, path: "/api/wallet?cursor=not-a-cursor"}, http.StatusBadRequest, coffer.ErrInvalidField},
			{"another user's mobile", req{method: http.MethodGet, path: "/api/info?mobile=" + v.Mobile}, http.StatusForbidden, coffer.ErrForbidden},
			{"a payment beyond the balance", req{method: http.MethodPost, path: "/api/pay", body: map[string]string{"mode": "transfer", "money": "500.00", "payee": v.Mobile, "password": pw}}, http.StatusUnprocessableEntity, coffer.ErrInsufficientFunds},
		} {
			e.clock.Advance(idle - time.Minute)
			refused.r.token = u.token
			e.do(t, refused.r).fail(t, refused.status, refused.code)
			e.clock.Advance(2 * time.Minute) // past the idle limit counted from the previous request
			e.get(t, "/api/info", u.token, nil).ok(t, http.StatusOK, nil)
		}
	})
}

// failingPayment fails a payment's first read (ReadTx.SessionPayment:
// the session with the payment's lookups) while failRead is set, and
// every write transaction while failWrite is.
type failingPayment struct {
	coffer.Store
	failRead, failWrite *atomic.Bool
}

func (s failingPayment) View(ctx context.Context, fn func(coffer.ReadTx) error) error {
	return s.Store.View(ctx, func(tx coffer.ReadTx) error { return fn(failingPaymentTx{tx, s.failRead}) })
}

func (s failingPayment) ViewEach(ctx context.Context, fn func(coffer.ReadTx) error) error {
	return s.Store.ViewEach(ctx, func(tx coffer.ReadTx) error { return fn(failingPaymentTx{tx, s.failRead}) })
}

func (s failingPayment) Update(ctx context.Context, fn func(coffer.Tx) error) error {
	if s.failWrite.Load() {
		return coffer.Errorf(coffer.ErrUnavailable, "injected")
	}
	return s.Store.Update(ctx, fn)
}

type failingPaymentTx struct {
	coffer.ReadTx
	fail *atomic.Bool
}

func (t failingPaymentTx) SessionPayment(ctx context.Context, tokenHash []byte, q coffer.SessionPaymentQuery) (coffer.Session, coffer.User, coffer.PaymentFound, error) {
	if t.fail.Load() {
		return coffer.Session{}, coffer.User{}, coffer.PaymentFound{}, coffer.Errorf(coffer.ErrUnavailable, "injected")
	}
	return t.ReadTx.SessionPayment(ctx, tokenHash, q)
}

// payEnvelope is a payment's answer.
type payEnvelope struct {
	Code string `json:"code"`
	Data *struct {
		Balance string `json:"balance"`
	} `json:"data"`
}

// Regression: when a payment failed after its session had been found
// live, the refusal came without the card balance the contract puts in
// every failed payment's envelope. (The payment's first read used to be a
// statement of its own after the session's; the write is what can fail
// there now.)
func TestPayRefusedAfterTheSessionCarriesTheBalance(t *testing.T) {
	var failRead, failWrite atomic.Bool
	store := failingPayment{teststores.SQLite(t), &failRead, &failWrite}
	bank, clock := storetest.NewBank(t, store)
	e := &testEnv{store: store, bank: bank, clock: clock, h: httpapi.NewServer(bank, httpapi.Options{})}
	u := e.signup(t)
	v := e.signup(t)
	e.deposit(t, u, "100.00")
	pw := u.PayPassword
	if pw == "" {
		pw = u.Password
	}
	tooMuch := httptest.NewRecorder()
	e.h.ServeHTTP(tooMuch, newRequest(t, req{method: http.MethodPost, path: "/api/pay", token: u.token,
		body: map[string]string{"mode": "transfer", "money": "500.00", "payee": v.Mobile, "password": pw}}))
	if tooMuch.Code != http.StatusUnprocessableEntity || tooMuch.Header().Get("Retry-After") != "" {
		t.Errorf("a payment beyond the balance: %d, Retry-After %q; want 422 without one", tooMuch.Code, tooMuch.Header().Get("Retry-After"))
	}
	pay := func(key string) (*httptest.ResponseRecorder, payEnvelope) {
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, newRequest(t, req{method: http.MethodPost, path: "/api/pay", token: u.token, header: map[string]string{"Idempotency-Key": key},
			body: map[string]string{"mode": "transfer", "money": "1.00", "payee": v.Mobile, "password": pw}}))
		var env payEnvelope
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
			t.Fatalf("answer %q: %v", rec.Body.String(), err)
		}
		return rec, env
	}

	failWrite.Store(true)
	rec, env := pay("k1")
	failWrite.Store(false)
	if rec.Code != http.StatusServiceUnavailable || env.Code != string(coffer.ErrUnavailable) || env.Data == nil || env.Data.Balance != "100.00" {
		t.Errorf("pay whose write failed: %d %s; want 503 UNAVAILABLE with the balance 100.00", rec.Code, rec.Body.String())
	}
	if got := rec.Header().Get("Retry-After"); got != "1" {
		t.Errorf("503's Retry-After %q, want 1", got)
	}

	// A failed first read has not seen the session live: 503, and no
	// balance shown to a session nobody checked.
	failRead.Store(true)
	rec, env = pay("k2")
	failRead.Store(false)
	if rec.Code != http.StatusServiceUnavailable || env.Code != string(coffer.ErrUnavailable) || env.Data != nil {
		t.Errorf("pay whose first read failed: %d %s; want 503 UNAVAILABLE without data", rec.Code, rec.Body.String())
	}
	if got := rec.Header().Get("Retry-After"); got != "1" {
		t.Errorf("503's Retry-After %q, want 1", got)
	}
	if b := e.cardBalance(t, u); b != "100.00" {
		t.Errorf("balance %s after the refused payments, want 100.00", b)
	}
}
