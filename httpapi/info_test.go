package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"coffer"
	"coffer/storetest"
)

// TestInfoShape checks that GET /api/info is a one-element array of strings whose money
// fields value every holding and add up to total_assets.
func TestInfoShape(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u := e.signup(t)
		e.deposit(t, u, "10000.00")
		for _, p := range []map[string]any{
			{"mode": "moneymanagement", "kind": "demand", "money": "1000.00"},
			{"mode": "moneymanagement", "kind": "fixed90", "money": "1000.00", "time": "2026-11-23T10:00:00+08:00"},
			{"mode": "fund", "code": "000001", "money": "123.45"}, // 100.0000 shares at 1.2345
			{"mode": "gold", "weight": "2.5", "price": "560.00"},  // 1400.00
		} {
			e.pay(t, u, p).ok(t, http.StatusOK, nil)
		}
		r := e.get(t, "/api/info", u.token, nil)
		r.ok(t, http.StatusOK, nil)
		// Every field the seed shows is a string, and userid too.
		var raw []map[string]any
		r.data(t, &raw)
		if len(raw) != 1 {
			t.Fatalf("data %s, want a one-element array", r.top["data"])
		}
		for _, k := range []string{"email", "total_assets", "balance", "money_management", "cardnum", "funds", "gold", "userid", "username", "mobile", "gold_weight"} {
			if _, ok := raw[0][k].(string); !ok {
				t.Errorf("info %q is %T, want a string", k, raw[0][k])
			}
		}
		in := e.info(t, u)
		want := infoData{
			UserID: in.UserID, Username: u.Username, Mobile: u.Mobile, Email: u.Email, CardNum: u.CardNum,
			Balance: "6476.55", MoneyManagement: "2000.00", Funds: "123.45", Gold: "1400.00", GoldWeight: "2.500",
			TotalAssets: "10000.00",
		}
		if in != want {
			t.Errorf("info\n got %+v\nwant %+v", in, want)
		}
		if id, err := strconv.ParseInt(in.UserID, 10, 64); err != nil || id <= 0 {
			t.Errorf("userid %q is not a positive integer string", in.UserID)
		}
		for _, v := range []string{in.Balance, in.MoneyManagement, in.Funds, in.Gold, in.TotalAssets} {
			if !isMoney(v) {
				t.Errorf("money %q does not have exactly two decimals", v)
			}
		}
		// A new gold price revalues the gold.
		if err := e.bank.SetGoldPrice(context.Background(), 600_00); err != nil {
			t.Fatal(err)
		}
		in = e.info(t, u)
		if in.Gold != "1500.00" || in.TotalAssets != "10100.00" {
			t.Errorf("after the gold price moved: gold %s total %s, want 1500.00 10100.00", in.Gold, in.TotalAssets)
		}
		storetest.AssertLedger(t, e.store)
	})
}

// TestInfoMobileParameter checks that the mobile parameter, from the query or a JSON body, must be
// the caller's own (403 otherwise) and well formed (400 otherwise).
func TestInfoMobileParameter(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u, other := e.signup(t), e.signup(t)
		tests := []struct {
			name   string
			path   string
			body   any
			status int
			code   coffer.Code
		}{
			{"own mobile in the query", query("/api/info", "mobile", u.Mobile), nil, http.StatusOK, ""},
			{"own mobile in a JSON body", "/api/info", map[string]any{"mobile": u.Mobile}, http.StatusOK, ""},
			{"own mobile as a JSON number", "/api/info", rawBody(`{"mobile":` + u.Mobile + `}`), http.StatusOK, ""},
			{"own mobile with +86", query("/api/info", "mobile", "+86"+u.Mobile), nil, http.StatusOK, ""},
			{"no mobile", "/api/info", nil, http.StatusOK, ""},
			{"empty JSON body", "/api/info", rawBody(`{}`), http.StatusOK, ""},
			{"another user's mobile in the query", query("/api/info", "mobile", other.Mobile), nil, http.StatusForbidden, coffer.ErrForbidden},
			{"another user's mobile in a JSON body", "/api/info", map[string]any{"mobile": other.Mobile}, http.StatusForbidden, coffer.ErrForbidden},
			{"an unregistered mobile", "/api/info", map[string]any{"mobile": "13999999999"}, http.StatusForbidden, coffer.ErrForbidden},
			{"a malformed mobile", query("/api/info", "mobile", "12345"), nil, http.StatusBadRequest, coffer.ErrInvalidField},
		}
		for _, tc := range tests {
			r := e.get(t, tc.path, u.token, tc.body)
			if tc.status == http.StatusOK {
				var data []infoData
				r.ok(t, http.StatusOK, &data)
				if len(data) != 1 || data[0].Mobile != u.Mobile {
					t.Errorf("%s: data %s", tc.name, r.top["data"])
				}
				continue
			}
			if r.status != tc.status || r.code() != string(tc.code) {
				t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.raw, tc.status, tc.code)
			}
			if strings.Contains(string(r.raw), other.Email) {
				t.Errorf("%s: the answer leaks the other user's data: %s", tc.name, r.raw)
			}
		}
	})
}

// walletData is one element of GET /api/wallet's data.
type walletData struct {
	BillList   []bill `json:"bill_list"`
	NextCursor string `json:"next_cursor"`
}

type bill struct {
	Date    string `json:"date"`
	Money   string `json:"money"`
	Balance string `json:"balance"`
	Method  string `json:"method"`
	Details string `json:"details"`
}

// wallet fetches one page of u's wallet; params are query parameters.
func (e *testEnv) wallet(t *testing.T, u *user, params ...string) walletData {
	t.Helper()
	var data []walletData
	e.get(t, query("/api/wallet", params...), u.token, nil).ok(t, http.StatusOK, &data)
	if len(data) != 1 {
		t.Fatalf("wallet data has %d elements, want 1", len(data))
	}
	return data[0]
}

// walletAll pages through u's whole wallet, limit bills a page.
func (e *testEnv) walletAll(t *testing.T, u *user, limit int, params ...string) []bill {
	t.Helper()
	var all []bill
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("the wallet does not end")
		}
		p := append([]string{"limit", strconv.Itoa(limit), "cursor", cursor}, params...)
		w := e.wallet(t, u, p...)
		if len(w.BillList) > limit {
			t.Fatalf("page of %d bills, limit %d", len(w.BillList), limit)
		}
		all = append(all, w.BillList...)
		if w.NextCursor == "" {
			return all
		}
		if !cursorRe.MatchString(w.NextCursor) {
			t.Fatalf("next_cursor %q is not URL-safe", w.NextCursor)
		}
		if len(w.BillList) != limit {
			t.Fatalf("a page of %d bills before the last, limit %d", len(w.BillList), limit)
		}
		cursor = w.NextCursor
	}
}

var cursorRe = regexp.MustCompile(`^[A-Za-z0-9_.~-]+$`)

// checkChain checks that bills, newest first, chain: each bill's balance
// less its money is the next (older) bill's balance, and the oldest starts
// from zero. It returns the newest balance.
func checkChain(t *testing.T, bills []bill) string {
	t.Helper()
	var prev time.Time
	for i, b := range bills {
		if !isMoney(b.Money) || !isMoney(b.Balance) {
			t.Fatalf("bill %d money %q balance %q: want two decimals", i, b.Money, b.Balance)
		}
		d, err := time.Parse(time.RFC3339, b.Date)
		if err != nil || !strings.HasSuffix(b.Date, "+08:00") {
			t.Errorf("bill %d date %q: want RFC 3339 in +08:00", i, b.Date)
		}
		if i > 0 && d.After(prev) {
			t.Errorf("bill %d (%s) is newer than bill %d (%s): want newest first", i, b.Date, i-1, bills[i-1].Date)
		}
		prev = d
		if b.Details == "" || b.Method == "" {
			t.Errorf("bill %d has no method or details: %+v", i, b)
		}
		bal, money := fen(t, b.Balance), fen(t, b.Money)
		if money == 0 {
			t.Errorf("bill %d moves nothing", i)
		}
		before := int64(0)
		if i+1 < len(bills) {
			before = fen(t, bills[i+1].Balance)
		}
		if bal-money != before {
			t.Errorf("bill %d: balance %s - money %s != previous balance %s", i, b.Balance, b.Money, coffer.Amount(before))
		}
	}
	if len(bills) == 0 {
		return "0.00"
	}
	return bills[0].Balance
}

// fen parses a signed money string.
func fen(t *testing.T, s string) int64 {
	t.Helper()
	neg := strings.HasPrefix(s, "-")
	v, ok := coffer.ParseDecimal(strings.TrimPrefix(s, "-"), coffer.AmountScale)
	if !ok {
		t.Fatalf("not money: %q", s)
	}
	if neg {
		v = -v
	}
	return v
}

// TestWalletStatementChainsAndPages checks that the card statement lists every movement newest
// first with bills that chain, and keyset pages give the same list at any size.
func TestWalletStatementChainsAndPages(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u, payee := e.signup(t), e.signup(t)
		e.deposit(t, u, "5000.00")
		e.deposit(t, payee, "300.00")
		ops := []struct {
			p      map[string]any
			method string
			money  string
		}{
			{map[string]any{"mode": "transfer", "money": "100.50", "payee": payee.Mobile, "detail": `午饭 "AA" 😀`, "password": u.Password}, "transfer_out", "-100.50"},
			{map[string]any{"mode": "mobilepay", "mobile": u.Mobile, "money": "50", "passwrd": u.Password}, "mobilepay", "-50.00"},
			{map[string]any{"mode": "moneymanagement", "kind": "demand", "money": "200.00"}, "moneymanagement", "-200.00"},
			{map[string]any{"mode": "redeem", "kind": "demand", "money": "20.00"}, "redeem", "20.00"},
			{map[string]any{"mode": "fund", "code": "000001", "money": "123.45"}, "fund", "-123.45"},
			{map[string]any{"mode": "fund_redeem", "code": "000001", "shares": "40"}, "fund_redeem", "49.38"},
			{map[string]any{"mode": "gold", "weight": "1", "price": "560.00"}, "gold", "-560.00"},
			{map[string]any{"mode": "gold_sell", "weight": "0.5", "price": "560"}, "gold_sell", "280.00"},
		}
		for _, op := range ops {
			e.clock.Advance(time.Second)
			e.pay(t, u, op.p).ok(t, http.StatusOK, nil)
		}
		e.clock.Advance(time.Second)
		for i := 0; i < 6; i++ {
			e.deposit(t, u, fmt.Sprintf("%d.01", i+1))
		}
		e.clock.Advance(time.Second)
		e.pay(t, payee, map[string]any{"mode": "transfer", "money": "7", "payee": u.Mobile, "password": payee.Password}).ok(t, http.StatusOK, nil)

		// Newest first, whatever the page size, and the same bills each way.
		whole := e.wallet(t, u, "limit", "100")
		if len(whole.BillList) != 16 || whole.NextCursor != "" {
			t.Fatalf("wallet has %d bills, cursor %q; want 16 and none", len(whole.BillList), whole.NextCursor)
		}
		newest := checkChain(t, whole.BillList)
		if bal := e.cardBalance(t, u); newest != bal {
			t.Errorf("newest bill balance %s, card balance %s", newest, bal)
		}
		for _, limit := range []int{1, 3, 5, 15, 16, 17} {
			paged := e.walletAll(t, u, limit)
			if mustJSON(paged) != mustJSON(whole.BillList) {
				t.Errorf("limit %d: paging gives other bills than one page", limit)
			}
		}
		if got := len(e.wallet(t, u).BillList); got != coffer.WalletDefaultLimit && got != 16 {
			t.Errorf("default page has %d bills", got)
		}
		// The methods and the money of each bill, newest first.
		b := whole.BillList
		if b[0].Method != "transfer_in" || b[0].Money != "7.00" {
			t.Errorf("newest bill %+v, want transfer_in 7.00", b[0])
		}
		for i := 1; i <= 6; i++ {
			if b[i].Method != "deposit" || b[i].Money != fmt.Sprintf("%d.01", 7-i) {
				t.Errorf("bill %d %+v, want a deposit of %d.01", i, b[i], 7-i)
			}
		}
		for i, op := range ops {
			got := b[len(b)-2-i]
			if got.Method != op.method || got.Money != op.money {
				t.Errorf("bill of %s: %+v, want method %s money %s", op.p["mode"], got, op.method, op.money)
			}
		}
		if first := b[len(b)-1]; first.Method != "deposit" || first.Money != "5000.00" || first.Balance != "5000.00" {
			t.Errorf("oldest bill %+v, want the 5000.00 deposit", first)
		}
		if out := b[len(b)-2]; !strings.Contains(out.Details, `午饭 "AA" 😀`) {
			t.Errorf("transfer details %q lost the sender's detail", out.Details)
		}
		// The payee's statement shows the transfer in.
		pb := e.wallet(t, payee).BillList
		checkChain(t, pb)
		if len(pb) != 3 || pb[1].Method != "transfer_in" || pb[1].Money != "100.50" || pb[0].Method != "transfer_out" {
			t.Errorf("payee's bills %+v", pb)
		}
		storetest.AssertLedger(t, e.store)
	})
}

// TestWalletParametersInBodyAndQuery checks that wallet parameters come from the query or a JSON
// body alike, and another user's userid is 403.
func TestWalletParametersInBodyAndQuery(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u, other := e.signup(t), e.signup(t)
		for i := 0; i < 5; i++ {
			e.deposit(t, u, "1.00")
		}
		id := e.info(t, u).UserID
		otherID := e.info(t, other).UserID
		var first []walletData
		e.get(t, "/api/wallet", u.token, map[string]any{"userid": id, "limit": 2}).ok(t, http.StatusOK, &first)
		if len(first[0].BillList) != 2 || first[0].NextCursor == "" {
			t.Fatalf("first page %s", mustJSON(first))
		}
		var second []walletData
		e.get(t, "/api/wallet", u.token, rawBody(fmt.Sprintf(`{"userid": %s, "limit": "2", "cursor": %q}`, id, first[0].NextCursor))).ok(t, http.StatusOK, &second)
		if len(second[0].BillList) != 2 || second[0].BillList[0].Balance != "3.00" {
			t.Errorf("second page by JSON body: %s", mustJSON(second))
		}
		byQuery := e.wallet(t, u, "userid", id, "limit", "2", "cursor", first[0].NextCursor)
		if mustJSON(byQuery) != mustJSON(second[0]) {
			t.Errorf("query %s and body %s give different pages", mustJSON(byQuery), mustJSON(second[0]))
		}
		for _, tc := range []struct {
			name string
			path string
			body any
		}{
			{"other's userid in the query", query("/api/wallet", "userid", otherID), nil},
			{"other's userid in a body", "/api/wallet", map[string]any{"userid": otherID}},
			{"other's userid as a number", "/api/wallet", rawBody(`{"userid":` + otherID + `}`)},
			{"an unknown userid", query("/api/wallet", "userid", "987654321"), nil},
		} {
			e.get(t, tc.path, u.token, tc.body).fail(t, http.StatusForbidden, coffer.ErrForbidden)
		}
		storetest.AssertLedger(t, e.store)
	})
}

// TestWalletWealthAccount checks that account=wealth lists the wealth holdings' movements, with
// balance the total of all wealth products.
func TestWalletWealthAccount(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u := e.signup(t)
		e.deposit(t, u, "10000.00")
		for _, p := range []map[string]any{
			{"mode": "moneymanagement", "kind": "demand", "money": "200.00"},
			{"mode": "moneymanagement", "kind": "fixed90", "money": "1000.00"},
			{"mode": "moneymanagement", "kind": "fixed365", "money": "5000.00", "time": 1795000000},
			{"mode": "redeem", "kind": "demand", "money": "50.00"},
			{"mode": "gold", "weight": "1", "price": "560.00"}, // not a wealth holding
		} {
			e.clock.Advance(time.Second)
			e.pay(t, u, p).ok(t, http.StatusOK, nil)
		}
		w := e.walletAll(t, u, 2, "account", "wealth")
		checkChain(t, w)
		want := []struct{ method, money, balance string }{
			{"redeem", "-50.00", "6150.00"},
			{"moneymanagement", "5000.00", "6200.00"},
			{"moneymanagement", "1000.00", "1200.00"},
			{"moneymanagement", "200.00", "200.00"},
		}
		if len(w) != len(want) {
			t.Fatalf("wealth bills %+v, want %d", w, len(want))
		}
		for i, wb := range want {
			if w[i].Method != wb.method || w[i].Money != wb.money || w[i].Balance != wb.balance {
				t.Errorf("wealth bill %d %+v, want %+v", i, w[i], wb)
			}
		}
		if mm := e.info(t, u).MoneyManagement; mm != "6150.00" {
			t.Errorf("money_management %s, want 6150.00", mm)
		}
		card := e.walletAll(t, u, 100, "account", "card")
		checkChain(t, card)
		if len(card) != 6 {
			t.Errorf("card bills %d, want 6", len(card))
		}
		storetest.AssertLedger(t, e.store)
	})
}

// TestWalletBadParameters checks that malformed paging and account parameters are 400 naming the parameter.
func TestWalletBadParameters(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u := e.signup(t)
		e.deposit(t, u, "1.00")
		tests := []struct {
			name  string
			path  string
			body  any
			field string
		}{
			{"limit 0", query("/api/wallet", "limit", "0"), nil, "limit"},
			{"limit over the maximum", query("/api/wallet", "limit", strconv.Itoa(coffer.WalletMaxLimit+1)), nil, "limit"},
			{"negative limit", query("/api/wallet", "limit", "-1"), nil, "limit"},
			{"fractional limit", "/api/wallet", rawBody(`{"limit": 1.5}`), "limit"},
			{"limit as text", query("/api/wallet", "limit", "ten"), nil, "limit"},
			{"limit as a bool", "/api/wallet", rawBody(`{"limit": true}`), "limit"},
			{"huge limit", query("/api/wallet", "limit", "99999999999999999999999"), nil, "limit"},
			{"cursor garbage", query("/api/wallet", "cursor", "!!!"), nil, "cursor"},
			{"cursor of another format", query("/api/wallet", "cursor", "YWJj"), nil, "cursor"},
			{"cursor as a number", "/api/wallet", rawBody(`{"cursor": 5}`), "cursor"},
			{"unknown account", query("/api/wallet", "account", "savings"), nil, "account"},
			{"account as a number", "/api/wallet", rawBody(`{"account": 1}`), "account"},
			{"userid text", query("/api/wallet", "userid", "me"), nil, "userid"},
			{"userid negative", "/api/wallet", rawBody(`{"userid": -1}`), "userid"},
			{"userid fractional", "/api/wallet", rawBody(`{"userid": 1.5}`), "userid"},
			{"userid bool", "/api/wallet", rawBody(`{"userid": true}`), "userid"},
			{"userid object", "/api/wallet", rawBody(`{"userid": {"id": 1}}`), "userid"},
		}
		for _, tc := range tests {
			r := e.do(t, req{method: http.MethodGet, path: tc.path, body: tc.body, token: u.token, header: map[string]string{"Accept-Language": "en"}})
			if r.status != http.StatusBadRequest || r.code() != string(coffer.ErrInvalidField) || !strings.Contains(r.message(), tc.field) {
				t.Errorf("%s: %d %s, want 400 INVALID_FIELD naming %s", tc.name, r.status, r.raw, tc.field)
			}
		}
	})
}

// TestMobileLookup checks POST /api/mobile.
func TestMobileLookup(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		t.Run("shows a payee", func(t *testing.T) { mobileLookupShowsPayee(t, e) })
		t.Run("rate-limited per session", func(t *testing.T) { mobileLookupRateLimited(t, e) })
	})
}

// mobileLookupShowsPayee: a bare object, the card masked unless it is the caller's own.
func mobileLookupShowsPayee(t *testing.T, e *testEnv) {
	u, other := e.signup(t), e.signup(t)
	lookup := func(body any) (reply, map[string]any) {
		t.Helper()
		r := e.post(t, "/api/mobile", u.token, body)
		var m map[string]any
		if r.status == http.StatusOK {
			json.Unmarshal(r.raw, &m)
		}
		return r, m
	}
	r, m := lookup(map[string]any{"mobile": other.Mobile})
	want := map[string]any{"username": other.Username, "cardnum": "**** **** **** " + other.CardNum[len(other.CardNum)-4:]}
	if r.status != http.StatusOK || mustJSON(m) != mustJSON(want) {
		t.Errorf("lookup of another user: %d %s, want the bare object %s", r.status, r.raw, mustJSON(want))
	}
	if strings.Contains(string(r.raw), other.CardNum[:8]) {
		t.Errorf("the masked card leaks digits: %s", r.raw)
	}
	_, m = lookup(rawBody(`{"mobile": ` + other.Mobile + `}`))
	if mustJSON(m) != mustJSON(want) {
		t.Errorf("lookup by a JSON number: %v", m)
	}
	_, m = lookup(map[string]any{"mobile": "+86" + other.Mobile})
	if mustJSON(m) != mustJSON(want) {
		t.Errorf("lookup with +86: %v", m)
	}
	_, m = lookup(map[string]any{"mobile": u.Mobile})
	if m["cardnum"] != u.CardNum || m["username"] != u.Username {
		t.Errorf("own lookup %v, want the whole card number", m)
	}
	r, _ = lookup(map[string]any{"mobile": "13999999999"})
	r.fail(t, http.StatusNotFound, coffer.ErrUserNotFound)
	if string(r.top["data"]) != "null" {
		t.Errorf("unknown mobile data %s, want null", r.top["data"])
	}
	if r, _ := lookup(map[string]any{"mobile": "123"}); r.status != http.StatusBadRequest {
		t.Errorf("malformed mobile: %d", r.status)
	}
}

// mobileLookupRateLimited: 429 past LookupsPerMinute lookups of one session.
func mobileLookupRateLimited(t *testing.T, e *testEnv) {
	u, other := e.signup(t), e.signup(t)
	per := e.bank.Config().LookupsPerMinute
	for i := 0; i < per; i++ {
		mobile := other.Mobile
		if i%2 == 1 {
			mobile = fmt.Sprintf("1390000%04d", i) // unknown numbers count too
		}
		r := e.post(t, "/api/mobile", u.token, map[string]string{"mobile": mobile})
		if r.status != http.StatusOK && r.status != http.StatusNotFound {
			t.Fatalf("lookup %d: %d %s", i+1, r.status, r.raw)
		}
	}
	e.post(t, "/api/mobile", u.token, map[string]string{"mobile": other.Mobile}).fail(t, http.StatusTooManyRequests, coffer.ErrRateLimited)
	e.post(t, "/api/mobile", u.token, map[string]string{"mobile": "13900001234"}).fail(t, http.StatusTooManyRequests, coffer.ErrRateLimited)
	// Another user's session has its own budget.
	e.post(t, "/api/mobile", other.token, map[string]string{"mobile": u.Mobile}).ok(t, http.StatusOK, nil)
	// The budget comes back with time.
	e.clock.Advance(time.Minute)
	e.post(t, "/api/mobile", u.token, map[string]string{"mobile": other.Mobile}).ok(t, http.StatusOK, nil)
}

// TestProducts checks that GET /api/products shows the default catalog in the contract's shape.
func TestProducts(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		u := e.signup(t)
		r := e.get(t, "/api/products", u.token, nil)
		var p struct {
			Wealth []struct {
				Kind           string `json:"kind"`
				Name           string `json:"name"`
				AnnualYieldPct string `json:"annual_yield_pct"`
				MinAmount      string `json:"min_amount"`
				TermDays       *int   `json:"term_days"`
			} `json:"wealth"`
			Funds []struct {
				Code    string `json:"code"`
				Name    string `json:"name"`
				NAV     string `json:"nav"`
				NAVDate string `json:"nav_date"`
			} `json:"funds"`
			Gold struct {
				Price     string `json:"price"`
				UpdatedAt string `json:"updated_at"`
			} `json:"gold"`
		}
		r.ok(t, http.StatusOK, &p)
		demand, fixed := 0, 0
		for _, w := range p.Wealth {
			if w.Kind == "" || w.Name == "" || w.TermDays == nil || !isMoney(w.MinAmount) || !regexp.MustCompile(`^[0-9]+\.[0-9]{2}$`).MatchString(w.AnnualYieldPct) {
				t.Errorf("wealth product %+v", w)
				continue
			}
			if *w.TermDays == 0 {
				demand++
				if fen(t, w.MinAmount) > 100 {
					t.Errorf("demand product minimum %s, want at most 1.00", w.MinAmount)
				}
			} else {
				fixed++
			}
		}
		if demand < 1 || fixed < 2 {
			t.Errorf("catalog has %d demand and %d fixed-term products, want at least 1 and 2", demand, fixed)
		}
		if len(p.Funds) < 2 {
			t.Errorf("catalog has %d funds, want at least 2", len(p.Funds))
		}
		for _, f := range p.Funds {
			if f.Code == "" || f.Name == "" || !regexp.MustCompile(`^[0-9]+\.[0-9]{4}$`).MatchString(f.NAV) {
				t.Errorf("fund %+v", f)
			}
			if _, err := time.Parse(time.DateOnly, f.NAVDate); err != nil {
				t.Errorf("fund %s nav_date %q", f.Code, f.NAVDate)
			}
		}
		if p.Gold.Price != "560.00" {
			t.Errorf("gold price %q, want 560.00", p.Gold.Price)
		}
		if _, err := time.Parse(time.RFC3339, p.Gold.UpdatedAt); err != nil {
			t.Errorf("gold updated_at %q: %v", p.Gold.UpdatedAt, err)
		}
	})
}

// TestHealthAndRouting checks that GET /healthz answers ok; unknown paths are 404 and wrong methods
// 405 with Allow, in the envelope.
func TestHealthAndRouting(t *testing.T) {
	eachStore(t, func(t *testing.T, e *testEnv) {
		var ok string
		e.get(t, "/healthz", "", nil).ok(t, http.StatusOK, &ok)
		if ok != "ok" {
			t.Errorf("healthz data %q", ok)
		}
		for _, path := range []string{"/", "/api", "/api/", "/api/nope", "/api/user/1", "/api/users", "/API/USER", "/api/pay/transfer", "/.env"} {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				e.do(t, req{method: method, path: path}).fail(t, http.StatusNotFound, coffer.ErrRouteNotFound)
			}
		}
		tests := []struct {
			method, path, allow string
		}{
			{http.MethodGet, "/api/user", "POST"},
			{http.MethodGet, "/api/login", "POST"},
			{http.MethodGet, "/api/logout", "POST"},
			{http.MethodPost, "/api/info", "GET"},
			{http.MethodPut, "/api/wallet", "GET"},
			{http.MethodGet, "/api/mobile", "POST"},
			{http.MethodGet, "/api/paypassword", "POST"},
			{http.MethodDelete, "/api/pay", "POST"},
			{http.MethodGet, "/api/pay", "POST"},
			{http.MethodPost, "/api/products", "GET"},
			{http.MethodPost, "/healthz", "GET"},
			{http.MethodPatch, "/api/user", "POST"},
		}
		for _, tc := range tests {
			r := e.do(t, req{method: tc.method, path: tc.path})
			r.fail(t, http.StatusMethodNotAllowed, coffer.ErrMethodNotAllowed)
			if got := r.header.Get("Allow"); !strings.Contains(got, tc.allow) {
				t.Errorf("%s %s: Allow %q, want %s", tc.method, tc.path, got, tc.allow)
			}
		}
	})
}
