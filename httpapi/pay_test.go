package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"coffer"
	"coffer/httpapi"
	"coffer/internal/teststores"
	"coffer/storetest"
)

// TestPayEveryMode checks that every payment mode succeeds with data {"balance"} and keeps the
// ledger whole, and info adds the holdings up.
func TestPayEveryMode(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u, payee := e.signup(t), e.signup(t)
		e.deposit(t, u, "100000.00")
		steps := []struct {
			name    string
			p       map[string]any
			balance string
		}{
			{"transfer", map[string]any{"mode": "transfer", "money": "100.50", "detail": "房租", "payee": payee.Mobile, "payer": u.Mobile, "password": u.Password}, "99899.50"},
			{"transfer without payer", map[string]any{"mode": "transfer", "money": 0.5, "payee": payee.Mobile, "password": u.Password}, "99899.00"},
			{"mobilepay with passwrd", map[string]any{"mode": "mobilepay", "mobile": payee.Mobile, "money": "50", "passwrd": u.Password}, "99849.00"},
			{"mobilepay with password", map[string]any{"mode": "mobilepay", "mobile": u.Mobile, "money": "1.00", "password": u.Password}, "99848.00"},
			{"mobilepay at the maximum", map[string]any{"mode": "mobilepay", "mobile": u.Mobile, "money": "500.00", "passwrd": u.Password}, "99348.00"},
			{"demand at the minimum", map[string]any{"mode": "moneymanagement", "kind": "demand", "money": "1.00", "time": "2026-11-23T10:00:00+08:00"}, "99347.00"},
			{"fixed-term", map[string]any{"mode": "moneymanagement", "kind": "fixed90", "money": "1000", "time": 1795000000}, "98347.00"},
			{"fixed-term with the password", map[string]any{"mode": "moneymanagement", "kind": "fixed365", "money": "5000.00", "password": u.Password}, "93347.00"},
			{"redeem demand", map[string]any{"mode": "redeem", "kind": "demand", "money": "0.50"}, "93347.50"},
			{"fund", map[string]any{"mode": "fund", "code": "000001", "money": "123.45"}, "93224.05"},
			{"fund_redeem", map[string]any{"mode": "fund_redeem", "code": "000001", "shares": "100"}, "93347.50"},
			{"fund with rounding", map[string]any{"mode": "fund", "code": "110022", "money": "100.00"}, "93247.50"}, // 28.9293 shares, 100.00 charged
			{"gold", map[string]any{"mode": "gold", "weight": "2.5", "price": "560.00"}, "91847.50"},
			{"gold_sell", map[string]any{"mode": "gold_sell", "weight": "1.25", "price": "560.00"}, "92547.50"},
			{"gold by JSON numbers", map[string]any{"mode": "gold", "weight": 0.001, "price": 560}, "92546.94"},
		}
		for _, s := range steps {
			r := e.pay(t, u, s.p)
			if r.status != http.StatusOK {
				t.Fatalf("%s: %d %s", s.name, r.status, r.raw)
			}
			var d map[string]any
			r.data(t, &d)
			if len(d) != 1 || d["balance"] != s.balance {
				t.Errorf("%s: data %s, want {\"balance\": %q}", s.name, r.top["data"], s.balance)
			}
			if r.header.Get("Idempotent-Replayed") != "" {
				t.Errorf("%s: a first request says it was replayed", s.name)
			}
			storetest.AssertLedger(t, e.store)
		}
		in := e.info(t, u)
		want := infoData{
			UserID: in.UserID, Username: u.Username, Mobile: u.Mobile, Email: u.Email, CardNum: u.CardNum,
			Balance: "92546.94", MoneyManagement: "6000.50", Funds: "100.00", Gold: "700.56", GoldWeight: "1.251",
			TotalAssets: "99348.00", // 100000.00 less the transfers and top-ups: nothing lost to rounding
		}
		if in != want {
			t.Errorf("info\n got %+v\nwant %+v", in, want)
		}
		if got := e.cardBalance(t, payee); got != "101.00" {
			t.Errorf("payee balance %s, want 101.00", got)
		}
	})
}

// TestPayFailures checks that each documented payment failure has its status and code, carries the
// current balance in data and writes nothing.
func TestPayFailures(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u, other := e.signup(t), e.signup(t)
		e.deposit(t, u, "3000.00")
		for _, p := range []map[string]any{
			{"mode": "moneymanagement", "kind": "demand", "money": "100.00"},
			{"mode": "moneymanagement", "kind": "fixed90", "money": "1000.00"},
			{"mode": "gold", "weight": "1", "price": "560.00"},
			{"mode": "fund", "code": "000001", "money": "123.45"},
		} {
			e.pay(t, u, p).ok(t, http.StatusOK, nil)
		}
		const balance = "1216.55"
		pw := u.Password
		tests := []struct {
			name   string
			p      map[string]any
			status int
			code   coffer.Code
		}{
			{"transfer with a wrong password", map[string]any{"mode": "transfer", "money": "1", "payee": other.Mobile, "password": "wrong-password"}, 403, coffer.ErrBadPayPassword},
			{"transfer without a password", map[string]any{"mode": "transfer", "money": "1", "payee": other.Mobile}, 400, coffer.ErrMissingField},
			{"transfer more than the balance", map[string]any{"mode": "transfer", "money": "1216.56", "payee": other.Mobile, "password": pw}, 422, coffer.ErrInsufficientFunds},
			{"transfer to an unknown payee", map[string]any{"mode": "transfer", "money": "1", "payee": "13999999999", "password": pw}, 404, coffer.ErrPayeeNotFound},
			{"transfer to oneself", map[string]any{"mode": "transfer", "money": "1", "payee": u.Mobile, "password": pw}, 400, coffer.ErrSamePayee},
			{"transfer to oneself with +86", map[string]any{"mode": "transfer", "money": "1", "payee": "+86" + u.Mobile, "password": pw}, 400, coffer.ErrSamePayee},
			{"transfer from another user", map[string]any{"mode": "transfer", "money": "1", "payee": u.Mobile, "payer": other.Mobile, "password": pw}, 403, coffer.ErrForbidden},
			{"transfer over the single limit", map[string]any{"mode": "transfer", "money": "50000.01", "payee": other.Mobile, "password": pw}, 422, coffer.ErrLimitSingle},
			{"transfer without a payee", map[string]any{"mode": "transfer", "money": "1", "password": pw}, 400, coffer.ErrMissingField},
			{"transfer to a malformed payee", map[string]any{"mode": "transfer", "money": "1", "payee": "1234", "password": pw}, 400, coffer.ErrInvalidField},
			{"transfer with an overlong detail", map[string]any{"mode": "transfer", "money": "1", "payee": other.Mobile, "password": pw, "detail": strings.Repeat("x", coffer.MaxDetail+1)}, 400, coffer.ErrInvalidField},
			{"top-up under 1.00", map[string]any{"mode": "mobilepay", "mobile": u.Mobile, "money": "0.99", "passwrd": pw}, 422, coffer.ErrAmountOutOfRange},
			{"top-up over 500.00", map[string]any{"mode": "mobilepay", "mobile": u.Mobile, "money": "500.01", "passwrd": pw}, 422, coffer.ErrAmountOutOfRange},
			{"top-up with a wrong passwrd", map[string]any{"mode": "mobilepay", "mobile": u.Mobile, "money": "10", "passwrd": "nope-nope"}, 403, coffer.ErrBadPayPassword},
			{"top-up with two different passwords", map[string]any{"mode": "mobilepay", "mobile": u.Mobile, "money": "10", "passwrd": pw, "password": "other-one"}, 400, coffer.ErrInvalidField},
			{"top-up without a password", map[string]any{"mode": "mobilepay", "mobile": u.Mobile, "money": "10"}, 400, coffer.ErrMissingField},
			{"top-up of a malformed number", map[string]any{"mode": "mobilepay", "mobile": "110", "money": "10", "passwrd": pw}, 400, coffer.ErrInvalidField},
			{"demand under its minimum", map[string]any{"mode": "moneymanagement", "kind": "demand", "money": "0.99"}, 422, coffer.ErrBelowMinimum},
			{"fixed-term under its minimum", map[string]any{"mode": "moneymanagement", "kind": "fixed90", "money": "999.99"}, 422, coffer.ErrBelowMinimum},
			{"wealth more than the balance", map[string]any{"mode": "moneymanagement", "kind": "fixed365", "money": "5000.00"}, 422, coffer.ErrInsufficientFunds},
			{"an unknown wealth product", map[string]any{"mode": "moneymanagement", "kind": "lottery", "money": "10"}, 404, coffer.ErrProductNotFound},
			{"wealth with a wrong password", map[string]any{"mode": "moneymanagement", "kind": "demand", "money": "10", "password": "wrong-again"}, 403, coffer.ErrBadPayPassword},
			{"wealth with a malformed time", map[string]any{"mode": "moneymanagement", "kind": "demand", "money": "10", "time": "yesterday"}, 400, coffer.ErrInvalidField},
			{"redeem a fixed-term product", map[string]any{"mode": "redeem", "kind": "fixed90", "money": "10"}, 422, coffer.ErrNotMatured},
			{"redeem more than held", map[string]any{"mode": "redeem", "kind": "demand", "money": "100.01"}, 422, coffer.ErrInsufficientHold},
			{"redeem an unknown product", map[string]any{"mode": "redeem", "kind": "lottery", "money": "1"}, 404, coffer.ErrProductNotFound},
			{"gold at a stale price", map[string]any{"mode": "gold", "weight": "1", "price": "561.00"}, 409, coffer.ErrPriceChanged},
			{"gold more than the balance", map[string]any{"mode": "gold", "weight": "10", "price": "560.00"}, 422, coffer.ErrInsufficientFunds},
			{"gold with four decimals of weight", map[string]any{"mode": "gold", "weight": "0.0001", "price": "560.00"}, 400, coffer.ErrInvalidField},
			{"gold_sell more than held", map[string]any{"mode": "gold_sell", "weight": "1.001", "price": "560.00"}, 422, coffer.ErrInsufficientHold},
			{"gold_sell at a stale price", map[string]any{"mode": "gold_sell", "weight": "1", "price": "559.99"}, 409, coffer.ErrPriceChanged},
			{"an unknown fund", map[string]any{"mode": "fund", "code": "999999", "money": "10"}, 404, coffer.ErrProductNotFound},
			{"fund more than the balance", map[string]any{"mode": "fund", "code": "000001", "money": "5000"}, 422, coffer.ErrInsufficientFunds},
			{"fund_redeem more than held", map[string]any{"mode": "fund_redeem", "code": "000001", "shares": "100.0001"}, 422, coffer.ErrInsufficientHold},
			{"fund_redeem of a fund not held", map[string]any{"mode": "fund_redeem", "code": "110022", "shares": "1"}, 422, coffer.ErrInsufficientHold},
			{"fund_redeem with five decimals", map[string]any{"mode": "fund_redeem", "code": "000001", "shares": "1.00001"}, 400, coffer.ErrInvalidField},
			{"an unknown mode", map[string]any{"mode": "steal", "money": "1"}, 400, coffer.ErrUnknownMode},
			{"a mode in capitals", map[string]any{"mode": "TRANSFER", "money": "1", "payee": other.Mobile, "password": pw}, 400, coffer.ErrUnknownMode},
			{"an empty mode", map[string]any{"mode": "", "money": "1"}, 400, coffer.ErrMissingField},
			{"no mode", map[string]any{"money": "1"}, 400, coffer.ErrMissingField},
		}
		for _, tc := range tests {
			before := e.businessRows(t)
			r := e.pay(t, u, tc.p)
			if r.status != tc.status || r.code() != string(tc.code) {
				t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.raw, tc.status, tc.code)
				continue
			}
			if got := r.balance(t); got != balance {
				t.Errorf("%s: data.balance %s, want the current %s", tc.name, got, balance)
			}
			if tc.code == coffer.ErrPriceChanged {
				var d map[string]string
				r.data(t, &d)
				if d["price"] != "560.00" || len(d) != 2 {
					t.Errorf("%s: data %s, want balance and the current price 560.00", tc.name, r.top["data"])
				}
			}
			sameRows(t, tc.name, before, e.businessRows(t))
		}
		if got := e.cardBalance(t, u); got != balance {
			t.Errorf("balance %s after the failures, want %s", got, balance)
		}
		if got := e.cardBalance(t, other); got != "0.00" {
			t.Errorf("other's balance %s, want 0.00", got)
		}
		storetest.AssertLedger(t, e.store)
	})
}

// TestPayStalePriceReportsTheCurrentPrice checks that a stale gold price is 409 with the current
// price in data; at that price the trade runs, rounded half-up to the fen.
func TestPayStalePriceReportsTheCurrentPrice(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u := e.signup(t)
		e.deposit(t, u, "1000.00")
		if err := e.bank.SetGoldPrice(context.Background(), 612_34); err != nil {
			t.Fatal(err)
		}
		r := e.pay(t, u, map[string]any{"mode": "gold", "weight": "1", "price": "560.00"})
		r.fail(t, http.StatusConflict, coffer.ErrPriceChanged)
		if r.message() != "金价已变动" {
			t.Errorf("message %q, want 金价已变动", r.message())
		}
		var d map[string]string
		r.data(t, &d)
		if d["balance"] != "1000.00" || d["price"] != "612.34" {
			t.Errorf("data %v, want balance 1000.00 and price 612.34", d)
		}
		// Buying at the quoted price works; cost and proceeds round half-up to the fen.
		for _, s := range []struct{ mode, weight, balance string }{
			{"gold", "1", "387.66"},
			{"gold", "0.25", "234.57"},      // 153.085 -> 153.09
			{"gold", "0.001", "233.96"},     // 0.61234 -> 0.61
			{"gold_sell", "0.25", "387.05"}, // 153.085 -> 153.09
		} {
			got := e.pay(t, u, map[string]any{"mode": s.mode, "weight": s.weight, "price": d["price"]})
			if got.status != http.StatusOK || got.balance(t) != s.balance {
				t.Errorf("%s %s g at %s: %s, want balance %s", s.mode, s.weight, d["price"], got.raw, s.balance)
			}
		}
		if in := e.info(t, u); in.GoldWeight != "1.001" || in.Gold != "612.95" {
			t.Errorf("gold_weight %s gold %s, want 1.001 and 612.95", in.GoldWeight, in.Gold)
		}
		storetest.AssertLedger(t, e.store)
	})
}

// TestPayLockAfterFiveWrongPasswords checks that the fifth wrong payment password in a row, and
// every payment after it, is 423 until PayLockFor has passed.
func TestPayLockAfterFiveWrongPasswords(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u, other := e.signup(t), e.signup(t)
		e.deposit(t, u, "1000.00")
		e.post(t, "/api/paypassword", u.token, map[string]string{"password": u.Password, "pay_password": "314159"}).ok(t, http.StatusOK, nil)
		transfer := func(pin string) reply {
			return e.pay(t, u, map[string]any{"mode": "transfer", "money": "1.00", "payee": other.Mobile, "password": pin})
		}
		cfg := e.bank.Config()
		// Wrong passwords not in a row do not lock: a success resets the count.
		for i := 1; i < cfg.PayFailuresToLock; i++ {
			transfer("000000").fail(t, http.StatusForbidden, coffer.ErrBadPayPassword)
		}
		transfer("314159").ok(t, http.StatusOK, nil)
		for i := 1; i < cfg.PayFailuresToLock; i++ {
			r := transfer("000000")
			r.fail(t, http.StatusForbidden, coffer.ErrBadPayPassword)
			if r.message() != "支付密码错误" {
				t.Errorf("message %q, want 支付密码错误", r.message())
			}
		}
		// A wrong PIN is not a lost session.
		e.get(t, "/api/info", u.token, nil).ok(t, http.StatusOK, nil)
		before := e.businessRows(t)
		r := transfer("000000") // the fifth
		r.fail(t, http.StatusLocked, coffer.ErrPayLocked)
		if r.message() != "支付已锁定" || r.balance(t) != "999.00" {
			t.Errorf("fifth wrong password: %s", r.raw)
		}
		// Locked: the right password, other modes, even without a password.
		transfer("314159").fail(t, http.StatusLocked, coffer.ErrPayLocked)
		e.pay(t, u, map[string]any{"mode": "mobilepay", "mobile": u.Mobile, "money": "10", "passwrd": "314159"}).fail(t, http.StatusLocked, coffer.ErrPayLocked)
		e.pay(t, u, map[string]any{"mode": "moneymanagement", "kind": "demand", "money": "10"}).fail(t, http.StatusLocked, coffer.ErrPayLocked)
		e.pay(t, u, map[string]any{"mode": "gold", "weight": "0.1", "price": "560.00"}).fail(t, http.StatusLocked, coffer.ErrPayLocked)
		sameRows(t, "locked payments", before, e.businessRows(t))
		// Another user is not locked.
		e.deposit(t, other, "10.00")
		e.pay(t, other, map[string]any{"mode": "transfer", "money": "1", "payee": u.Mobile, "password": other.Password}).ok(t, http.StatusOK, nil)
		// The lock ends after PayLockFor; sessions stay alive by use meanwhile.
		e.clock.Advance(cfg.PayLockFor - time.Second)
		transfer("314159").fail(t, http.StatusLocked, coffer.ErrPayLocked)
		e.clock.Advance(time.Second)
		if got := transfer("314159"); got.status != http.StatusOK || got.balance(t) != "999.00" {
			t.Errorf("after the lock: %s", got.raw)
		}
		// And the count starts again from zero.
		transfer("000000").fail(t, http.StatusForbidden, coffer.ErrBadPayPassword)
		storetest.AssertLedger(t, e.store)
	})
}

// TestPayDailyLimitCountsTransfersAndTopUps checks that transfers and top-ups of one calendar day
// share the daily limit; the next day starts afresh.
func TestPayDailyLimitCountsTransfersAndTopUps(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u, other := e.signup(t), e.signup(t)
		e.deposit(t, u, "300000.00")
		transfer := func(money string) reply {
			return e.pay(t, u, map[string]any{"mode": "transfer", "money": money, "payee": other.Mobile, "password": u.Password})
		}
		for i := 0; i < 3; i++ {
			transfer("50000.00").ok(t, http.StatusOK, nil) // the single limit itself is allowed
		}
		e.pay(t, u, map[string]any{"mode": "mobilepay", "mobile": u.Mobile, "money": "500.00", "passwrd": u.Password}).ok(t, http.StatusOK, nil)
		// Wealth purchases do not count.
		e.pay(t, u, map[string]any{"mode": "moneymanagement", "kind": "demand", "money": "1000.00"}).ok(t, http.StatusOK, nil)
		if got := transfer("49500.00"); got.balance(t) != "99000.00" {
			t.Fatalf("transfer up to the daily limit: %s", got.raw)
		}
		before := e.businessRows(t)
		r := transfer("0.01")
		r.fail(t, http.StatusUnprocessableEntity, coffer.ErrLimitDaily)
		if r.balance(t) != "99000.00" {
			t.Errorf("data %s, want the current balance", r.top["data"])
		}
		e.pay(t, u, map[string]any{"mode": "mobilepay", "mobile": u.Mobile, "money": "1.00", "password": u.Password}).fail(t, http.StatusUnprocessableEntity, coffer.ErrLimitDaily)
		sameRows(t, "over the daily limit", before, e.businessRows(t))
		// A new calendar day in the bank's zone, a new allowance.
		e.clock.Set(nextMidnight(e.clock.Now(), e.bank.Config().Zone))
		e.login(t, u)
		if got := transfer("50000.00"); got.balance(t) != "49000.00" {
			t.Errorf("next day's transfer: %s", got.raw)
		}
		if got := e.cardBalanceAfterLogin(t, other); got != "249500.00" {
			t.Errorf("payee balance %s, want 249500.00", got)
		}
		storetest.AssertLedger(t, e.store)
	})
}

// TestPayIdempotency checks that a repeat under the same key replays the first answer and moves
// nothing; another request under it is 409; failures are not stored.
func TestPayIdempotency(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u, other := e.signup(t), e.signup(t)
		e.deposit(t, u, "1000.00")
		transfer := func(key string, fields map[string]any) reply {
			p := map[string]any{"mode": "transfer", "money": "10.00", "payee": other.Mobile, "password": u.Password}
			for k, v := range fields {
				p[k] = v
			}
			r := req{method: http.MethodPost, path: "/api/pay", token: u.token, body: p}
			if key != "" {
				r.header = map[string]string{"Idempotency-Key": key}
			}
			return e.do(t, r)
		}
		replayed := func(name string, r reply, balance string) {
			t.Helper()
			if r.status != http.StatusOK || r.balance(t) != balance || r.header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("%s: %d %s replayed=%q, want 200 with the first answer %s, replayed", name, r.status, r.raw, r.header.Get("Idempotent-Replayed"), balance)
			}
		}

		first := transfer("key-1", nil)
		if first.status != http.StatusOK || first.balance(t) != "990.00" || first.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("first request: %s", first.raw)
		}
		rows := e.businessRows(t)
		e.deposit(t, u, "5.00") // the stored answer is the first one, not today's balance
		rows = e.businessRows(t)
		replayed("same request", transfer("key-1", nil), "990.00")
		replayed("same request written differently", transfer("key-1", map[string]any{"money": 10, "payer": u.Mobile}), "990.00")
		replayed("same key in the body", transfer("", map[string]any{"request_id": "key-1"}), "990.00")
		replayed("same key in both", transfer("key-1", map[string]any{"request_id": "key-1"}), "990.00")
		sameRows(t, "replays", rows, e.businessRows(t))
		if got := e.cardBalance(t, other); got != "10.00" {
			t.Errorf("payee got %s, want 10.00 once", got)
		}

		// The same key for another request: 409, nothing moves.
		for name, fields := range map[string]map[string]any{
			"other money":  {"money": "11.00"},
			"other detail": {"detail": "again"},
			"other mode":   {"mode": "mobilepay", "mobile": u.Mobile},
		} {
			r := transfer("key-1", fields)
			r.fail(t, http.StatusConflict, coffer.ErrIdempotencyReuse)
			if r.balance(t) != "995.00" {
				t.Errorf("%s: data %s, want the current balance", name, r.top["data"])
			}
		}
		// Header and body keys that differ: 400.
		transfer("key-2", map[string]any{"request_id": "key-3"}).fail(t, http.StatusBadRequest, coffer.ErrInvalidField)
		// Key bounds.
		transfer(strings.Repeat("k", coffer.MaxIdempotencyKey+1), nil).fail(t, http.StatusBadRequest, coffer.ErrInvalidField)
		transfer("", map[string]any{"request_id": 12345}).fail(t, http.StatusBadRequest, coffer.ErrInvalidField)
		transfer("bad\x01key", nil).fail(t, http.StatusBadRequest, coffer.ErrInvalidField)
		sameRows(t, "conflicts", rows, e.businessRows(t))

		// A failure is not stored: the retry runs again.
		big := map[string]any{"money": "2000.00"}
		transfer("key-4", big).fail(t, http.StatusUnprocessableEntity, coffer.ErrInsufficientFunds)
		transfer("key-4", big).fail(t, http.StatusUnprocessableEntity, coffer.ErrInsufficientFunds)
		e.deposit(t, u, "2000.00")
		r := transfer("key-4", big)
		if r.status != http.StatusOK || r.balance(t) != "995.00" || r.header.Get("Idempotent-Replayed") != "" {
			t.Errorf("retry after a failure: %d %s", r.status, r.raw)
		}
		replayed("retry after success", transfer("key-4", big), "995.00")
		// A wrong password is a failure too.
		transfer("key-5", map[string]any{"password": "not-it"}).fail(t, http.StatusForbidden, coffer.ErrBadPayPassword)
		if r := transfer("key-5", nil); r.status != http.StatusOK || r.header.Get("Idempotent-Replayed") != "" {
			t.Errorf("retry after a wrong password: %s", r.raw)
		}

		// The longest key works, and keys belong to their user.
		long := strings.Repeat("k", coffer.MaxIdempotencyKey)
		transfer(long, nil).ok(t, http.StatusOK, nil)
		replayed("longest key", transfer(long, nil), "975.00")
		e.deposit(t, other, "100.00")
		theirs := e.do(t, req{method: http.MethodPost, path: "/api/pay", token: other.token, header: map[string]string{"Idempotency-Key": "key-1"},
			body: map[string]any{"mode": "transfer", "money": "10.00", "payee": u.Mobile, "password": other.Password}})
		if theirs.status != http.StatusOK || theirs.header.Get("Idempotent-Replayed") != "" {
			t.Errorf("another user's key-1: %s", theirs.raw)
		}
		// Other modes are idempotent too.
		buy := map[string]any{"mode": "moneymanagement", "kind": "demand", "money": "5.00", "request_id": "buy-1"}
		e.pay(t, u, buy).ok(t, http.StatusOK, nil)
		rows = e.businessRows(t)
		if r := e.pay(t, u, buy); r.status != http.StatusOK || r.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replayed purchase: %s", r.raw)
		}
		sameRows(t, "replayed purchase", rows, e.businessRows(t))
		// Keys are kept for at least 24 hours.
		e.clock.Advance(24 * time.Hour)
		e.login(t, u)
		replayed("a day later", transfer("key-1", nil), "990.00")
		sameRows(t, "a day later", rows, e.businessRows(t))
		storetest.AssertLedger(t, e.store)
	})
}

// gateStore is a store whose next Update can be held at its start, to
// catch a request in flight.
type gateStore struct {
	coffer.Store
	mu   sync.Mutex
	hook func()
}

// Update runs the armed hook, once, before the real Update.
func (s *gateStore) Update(ctx context.Context, fn func(coffer.Tx) error) error {
	s.mu.Lock()
	hook := s.hook
	s.hook = nil
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	return s.Store.Update(ctx, fn)
}

func (s *gateStore) arm(hook func()) {
	s.mu.Lock()
	s.hook = hook
	s.mu.Unlock()
}

// TestPayIdempotencyKeyInFlight checks that a repeat while the first request is still running is
// 409 IDEMPOTENCY_IN_PROGRESS, and moves nothing.
func TestPayIdempotencyKeyInFlight(t *testing.T) {
	for _, named := range teststores.All(t) {
		t.Run(named.Name, func(t *testing.T) {
			t.Parallel()
			gs := &gateStore{Store: named.Open(t)}
			bank, clock := storetest.NewBank(t, gs)
			e := &testEnv{store: gs, bank: bank, clock: clock, h: httpapi.NewServer(bank, httpapi.Options{})}
			u, other := e.signup(t), e.signup(t)
			e.deposit(t, u, "100.00")
			pay := req{method: http.MethodPost, path: "/api/pay", token: u.token, header: map[string]string{"Idempotency-Key": "slow-1"},
				body: map[string]any{"mode": "transfer", "money": "10.00", "payee": other.Mobile, "password": u.Password}}
			entered, release := make(chan struct{}), make(chan struct{})
			gs.arm(func() { close(entered); <-release })
			first := httptest.NewRecorder()
			hr := newRequest(t, pay)
			done := make(chan struct{})
			go func() {
				defer close(done)
				e.h.ServeHTTP(first, hr)
			}()
			select {
			case <-entered:
			case <-time.After(30 * time.Second):
				close(release)
				t.Fatal("the first payment never reached the store")
			}
			second := e.do(t, pay)
			close(release)
			<-done
			second.fail(t, http.StatusConflict, coffer.ErrIdempotencyPending)
			if second.balance(t) != "100.00" {
				t.Errorf("in-flight repeat data %s, want the current balance 100.00", second.top["data"])
			}
			r := checkReply(t, pay, first)
			if r.status != http.StatusOK || r.balance(t) != "90.00" {
				t.Errorf("first payment: %s", r.raw)
			}
			third := e.do(t, pay)
			if third.status != http.StatusOK || third.balance(t) != "90.00" || third.header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("repeat after the first ended: %s", third.raw)
			}
			if got := e.cardBalance(t, other); got != "10.00" {
				t.Errorf("payee has %s, want 10.00", got)
			}
			storetest.AssertLedger(t, e.store)
		})
	}
}
