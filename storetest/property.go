package storetest

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"coffer"
)

// Sizes of the property test: sequenceSeeds fixed seeds plus one from the
// clock, sequenceSteps payments each, the ledger checked every
// sequenceCheckEvery steps.
const (
	sequenceSteps      = 300
	sequenceCheckEvery = 50
	// sequenceInfoAllEvery is how often every user's Info is compared,
	// not only the Info of the users a step touched.
	sequenceInfoAllEvery = 10
)

var sequenceSeeds = []uint64{1, 2, 3}

// SeedVariable names the environment variable that replaces the property
// test's clock-chosen seed, to replay a failing sequence.
const SeedVariable = "COFFER_TEST_SEED"

// extraSeed is the seed of the run's one random sequence: from
// SeedVariable when set, else from the clock.
func extraSeed(t *testing.T) uint64 {
	if v := os.Getenv(SeedVariable); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", SeedVariable, v, err)
		}
		return seed
	}
	return uint64(time.Now().UnixNano())
}

// testBankPaymentSequences runs random sequences of payments of every mode,
// valid and invalid, against a model of what each user holds, comparing
// every answer and every user's Info with the model after each step.
func testBankPaymentSequences(t *testing.T, open Opener) {
	seeds := append(slices.Clone(sequenceSeeds), extraSeed(t))
	covered := map[string]int{} // outcomes of the fixed seeds
	for i, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			m := newSequenceModel(t, open(t), seed)
			m.run(sequenceSteps)
			t.Logf("seed %d outcomes: %v", seed, m.outcomes)
			if i < len(sequenceSeeds) {
				for k, n := range m.outcomes {
					covered[k] += n
				}
			}
		})
	}
	if !t.Failed() {
		checkCoverage(t, covered)
	}
}

// seqUser is the model of one user.
type seqUser struct {
	coffer.User
	card        int64
	demand      *seqHolding   // nil until first bought
	lots        []*seqHolding // fixed-term lots, in purchase order
	gold        int64         // mg
	shares      map[string]int64
	cardBills   []seqBill // oldest first
	wealthBills []seqBill
	answers     map[string]seqAnswer // successful payments by idempotency key
	failedKeys  []string             // keys of failed payments: free again
}

// seqHolding is the model of one wealth account: its balance, the
// history of its changes (to find a day's closing balance) and the interest
// carried below one fen.
type seqHolding struct {
	user      *seqUser
	key       coffer.AccountKey
	yieldBP   int64
	maturesOn string
	balance   int64
	carry     int64 // 10^-4 fen
	history   []seqEvent
}

type seqEvent struct {
	at     time.Time
	amount int64
}

func (h *seqHolding) change(at time.Time, amount int64) {
	h.balance += amount
	h.history = append(h.history, seqEvent{at, amount})
}

// balanceBefore is the balance counting the changes made before the instant.
func (h *seqHolding) balanceBefore(instant time.Time) int64 {
	var b int64
	for _, e := range h.history {
		if e.at.Before(instant) {
			b += e.amount
		}
	}
	return b
}

// state sums up what Info shows of the user, but for prices.
func (u *seqUser) state() string {
	return fmt.Sprint(u.card, u.wealth(), u.gold, u.shares)
}

func (u *seqUser) wealth() int64 {
	var w int64
	if u.demand != nil {
		w += u.demand.balance
	}
	for _, l := range u.lots {
		w += l.balance
	}
	return w
}

type seqBill struct {
	amount int64
	method coffer.Method
}

type seqAnswer struct {
	req     coffer.PayRequest
	balance coffer.Amount
}

// seqModel is the model of the bank under a random sequence of payments.
type seqModel struct {
	t     *testing.T
	seed  uint64
	step  int
	op    string
	store coffer.Store
	bank  *coffer.Bank
	clock *Clock
	rng   *rand.Rand
	users []*seqUser

	goldPrice int64
	navs      map[string]int64
	products  map[string]coffer.WealthProduct
	holdings  []*seqHolding // every user's wealth accounts, in order of creation
	// firstWealth is the day of the first wealth purchase, lastClosed the
	// last business day closed.
	firstWealth, lastClosed string
	interest                int64 // the interest-expense account
	fundNames               map[string]string
	spent                   map[string]int64 // by user id and day

	cash, carrier, goldDeskCNY, goldDeskMG, fundDeskCNY int64
	fundDeskShares                                      map[string]int64

	outcomes map[string]int // op and code → count
	keyCount int
	// touched are the users whose Info the step may have changed; all
	// of them when touchedAll is set.
	touched    map[*seqUser]bool
	touchedAll bool
}

var fundCodes = []string{"000001", "110022"}

func newSequenceModel(t *testing.T, s coffer.Store, seed uint64) *seqModel {
	bank, clock := NewBank(t, s)
	rng := newRand(seed)
	m := &seqModel{
		t: t, seed: seed, store: s, bank: bank, clock: clock, rng: rng,
		spent: map[string]int64{}, fundDeskShares: map[string]int64{}, outcomes: map[string]int{},
		navs: map[string]int64{}, fundNames: map[string]string{}, products: map[string]coffer.WealthProduct{},
		touched: map[*seqUser]bool{},
	}
	c, err := bank.Products(bg)
	if err != nil {
		t.Fatal(err)
	}
	m.goldPrice = int64(c.Gold.Price)
	for _, f := range c.Funds {
		m.navs[f.Code], m.fundNames[f.Code] = int64(f.NAV), f.Name
	}
	for _, p := range c.Wealth {
		m.products[p.Kind] = p
	}
	// The default catalog the rules below rely on.
	if m.goldPrice != 560_00 || m.navs["000001"] != 1_2345 || m.navs["110022"] != 3_4567 {
		t.Fatalf("default catalog: gold %d, NAVs %v", m.goldPrice, m.navs)
	}
	for _, u := range registerUsers(t, bank, 1, 4) {
		m.users = append(m.users, &seqUser{User: u, shares: map[string]int64{}, answers: map[string]seqAnswer{}})
	}
	return m
}

// fatalf stops the sequence, naming the seed that reproduces it.
func (m *seqModel) fatalf(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("seed %d step %d (%s): %s\n(replay with %s=%d)", m.seed, m.step, m.op, fmt.Sprintf(format, args...), SeedVariable, m.seed)
}

func (m *seqModel) errorf(format string, args ...any) {
	m.t.Helper()
	m.t.Errorf("seed %d step %d (%s): %s", m.seed, m.step, m.op, fmt.Sprintf(format, args...))
}

func (m *seqModel) n(max int64) int64 {
	if max < 1 {
		max = 1
	}
	return 1 + m.rng.Int64N(max)
}

func (m *seqModel) day() string { return m.bank.Day(m.clock.Now()) }

func (m *seqModel) spentKey(u *seqUser) string { return fmt.Sprintf("%d/%s", u.ID, m.day()) }

func (m *seqModel) other(u *seqUser) *seqUser {
	for {
		if v := m.users[m.rng.IntN(len(m.users))]; v != u {
			return v
		}
	}
}

// A planned payment: the request, the error code the model expects ("" for
// success) and what success changes in the model.
type seqPlan struct {
	req   coffer.PayRequest
	code  coffer.Code
	apply func()
}

func (m *seqModel) run(steps int) {
	type op struct {
		name   string
		weight int
		do     func()
	}
	pay := func(name string, plan func(*seqUser) seqPlan) func() {
		return func() { m.pay(m.users[m.rng.IntN(len(m.users))], plan) }
	}
	ops := []op{
		{"deposit", 8, m.deposit},
		{"transfer", 16, pay("transfer", m.planTransfer)},
		{"mobilepay", 8, pay("mobilepay", m.planMobilePay)},
		{"moneymanagement", 12, pay("moneymanagement", m.planWealthBuy)},
		{"redeem", 8, pay("redeem", m.planRedeem)},
		{"gold", 8, pay("gold", m.planGoldBuy)},
		{"gold_sell", 6, pay("gold_sell", m.planGoldSell)},
		{"fund", 8, pay("fund", m.planFundBuy)},
		{"fund_redeem", 6, pay("fund_redeem", m.planFundRedeem)},
		{"gold-price", 2, m.setGoldPrice},
		{"nav", 2, m.setNAV},
		{"clock", 3, m.advanceClock},
		{"clock-weeks", 1, m.jumpClock},
		{"daily-limit", 1, m.spendToTheLimit},
		{"accrue", 4, m.accrue},
		{"replay", 5, m.replay},
		{"retry-failed-key", 3, m.retryFailedKey},
	}
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	for m.step = 0; m.step < steps; m.step++ {
		before := make([]string, len(m.users))
		for i, u := range m.users {
			before[i] = u.state()
		}
		r := m.rng.IntN(total)
		for _, o := range ops {
			if r < o.weight {
				m.op = o.name
				o.do()
				break
			}
			r -= o.weight
		}
		for i, u := range m.users {
			if u.state() != before[i] {
				m.touched[u] = true
			}
		}
		m.checkInfo(m.touchedAll || m.step%sequenceInfoAllEvery == 0)
		clear(m.touched)
		m.touchedAll = false
		if m.t.Failed() {
			m.t.Fatalf("seed %d: stopped at step %d (%s); replay with %s=%d", m.seed, m.step, m.op, SeedVariable, m.seed)
		}
		if m.step%sequenceCheckEvery == sequenceCheckEvery-1 {
			m.checkLedger()
		}
	}
	m.op = "final check"
	m.checkLedger()
}

// pay runs a planned payment for u, with a fresh idempotency key now and
// then, and compares the answer with the model.
func (m *seqModel) pay(u *seqUser, plan func(*seqUser) seqPlan) {
	p := plan(u)
	if m.rng.IntN(3) == 0 {
		m.keyCount++
		p.req.IdempotencyKey = fmt.Sprintf("seq-%d-%d", m.seed, m.keyCount)
	}
	m.execute(u, p)
}

func (m *seqModel) execute(u *seqUser, p seqPlan) {
	m.op = p.req.Mode
	m.touched[u] = true
	res, err := m.bank.Pay(bg, u.ID, p.req)
	code := coffer.ErrorCode(err)
	m.outcomes[p.req.Mode+" "+string(code)]++
	if code != p.code {
		m.fatalf("%+v: error %v, model expects %q", p.req, err, p.code)
	}
	if res.Replayed {
		m.fatalf("a new request answered as a replay")
	}
	if code == "" {
		p.apply()
		if p.req.IdempotencyKey != "" {
			u.answers[p.req.IdempotencyKey] = seqAnswer{req: p.req, balance: coffer.Amount(u.card)}
		}
	} else if p.req.IdempotencyKey != "" {
		u.failedKeys = append(u.failedKeys, p.req.IdempotencyKey)
	}
	if int64(res.Balance) != u.card {
		m.fatalf("%+v answered balance %s, model %s", p.req, res.Balance, coffer.Amount(u.card))
	}
	if code == coffer.ErrPriceChanged && int64(res.Price) != m.goldPrice {
		m.fatalf("stale price answered with price %s, current %s", res.Price, coffer.Amount(m.goldPrice))
	}
}

func (m *seqModel) password(req *coffer.PayRequest, required bool) {
	if required || m.rng.IntN(2) == 0 {
		req.Password, req.PasswordSent = TestPayPassword, true
	}
}

func (m *seqModel) deposit() {
	u := m.users[m.rng.IntN(len(m.users))]
	amount := m.n(50_000_00)
	if m.rng.IntN(3) == 0 {
		amount = m.n(200_000_00)
	}
	bal, err := m.bank.Deposit(bg, u.Mobile, coffer.Amount(amount))
	if err != nil {
		m.fatalf("deposit: %v", err)
	}
	u.card += amount
	m.cash -= amount
	u.cardBills = append(u.cardBills, seqBill{amount, coffer.MethodDeposit})
	if int64(bal) != u.card {
		m.fatalf("deposit answered %s, model %s", bal, coffer.Amount(u.card))
	}
}

// limitCode is the daily limit's verdict on u spending money today.
func (m *seqModel) limitCode(u *seqUser, money int64) coffer.Code {
	if m.spent[m.spentKey(u)]+money > int64(m.bank.Config().LimitDaily) {
		return coffer.ErrLimitDaily
	}
	return ""
}

func (m *seqModel) planTransfer(u *seqUser) seqPlan {
	payee := m.other(u)
	var money int64
	switch m.rng.IntN(10) {
	case 0:
		money = u.card + m.n(10_000_00) // overdraft
	case 1:
		money = int64(m.bank.Config().LimitTransfer) + []int64{1, m.n(10_000_00)}[m.rng.IntN(2)]
	case 2, 3:
		money = int64(m.bank.Config().LimitTransfer) // the most one transfer may move
	default:
		money = m.n(min(max(u.card, 1000_00), 60_000_00))
	}
	req := coffer.PayRequest{Mode: coffer.ModeTransfer, Money: coffer.Amount(money), Payee: payee.Mobile, Detail: "seq"}
	p := seqPlan{req: req}
	switch r := m.rng.IntN(40); {
	case r == 0:
		p.req.Payee, p.code = u.Mobile, coffer.ErrSamePayee
	case r == 1:
		p.req.Payer, p.code = payee.Mobile, coffer.ErrForbidden
	case r == 2 && money <= int64(m.bank.Config().LimitTransfer):
		p.code = coffer.ErrMissingField // no password
	case r == 3:
		p.req.Payee = MobileNumber(9999)
		p.code = coffer.ErrPayeeNotFound
	case r < 10:
		p.req.Payer = u.Mobile
	}
	if p.code != coffer.ErrMissingField {
		m.password(&p.req, true)
	}
	switch {
	case p.code == coffer.ErrSamePayee || p.code == coffer.ErrForbidden:
	case money > int64(m.bank.Config().LimitTransfer):
		p.code = coffer.ErrLimitSingle
	case p.code != "":
	case m.limitCode(u, money) != "":
		p.code = coffer.ErrLimitDaily
	case money > u.card:
		p.code = coffer.ErrInsufficientFunds
	}
	p.apply = func() {
		u.card -= money
		payee.card += money
		m.spent[m.spentKey(u)] += money
		u.cardBills = append(u.cardBills, seqBill{-money, coffer.MethodTransferOut})
		payee.cardBills = append(payee.cardBills, seqBill{money, coffer.MethodTransferIn})
	}
	return p
}

func (m *seqModel) planMobilePay(u *seqUser) seqPlan {
	var money int64
	switch m.rng.IntN(10) {
	case 0:
		money = m.n(99) // below 1.00
	case 1:
		money = 500_00 + m.n(100_00) // above 500.00
	case 2:
		money = u.card + m.n(100_00)
	case 3:
		money = []int64{99, 1_00, 500_00, 500_01}[m.rng.IntN(4)] // the edges of the range
	default:
		money = 1_00 + m.rng.Int64N(500_00-1_00+1)
	}
	p := seqPlan{req: coffer.PayRequest{Mode: coffer.ModeMobilePay, Money: coffer.Amount(money), Mobile: m.other(u).Mobile}}
	cfg := m.bank.Config()
	outOfRange := money < int64(cfg.MobilePayMin) || money > int64(cfg.MobilePayMax)
	if !outOfRange && m.rng.IntN(30) == 0 {
		p.code = coffer.ErrMissingField
	} else {
		m.password(&p.req, true)
	}
	switch {
	case outOfRange:
		p.code = coffer.ErrAmountOutOfRange
	case p.code != "":
	case m.limitCode(u, money) != "":
		p.code = coffer.ErrLimitDaily
	case money > u.card:
		p.code = coffer.ErrInsufficientFunds
	}
	p.apply = func() {
		u.card -= money
		m.carrier += money
		m.spent[m.spentKey(u)] += money
		u.cardBills = append(u.cardBills, seqBill{-money, coffer.MethodMobilePay})
	}
	return p
}

// The default catalog's wealth products.
var seqWealthMin = map[string]int64{"demand": 1_00, "fixed90": 1000_00, "fixed365": 5000_00}

func (m *seqModel) planWealthBuy(u *seqUser) seqPlan {
	kinds := []string{"demand", "demand", "fixed90", "fixed365"}
	kind := kinds[m.rng.IntN(len(kinds))]
	minimum := seqWealthMin[kind]
	var money int64
	switch m.rng.IntN(10) {
	case 0:
		money = m.n(minimum - 1)
	case 1:
		money = minimum - 1 // one fen short
	case 2:
		money = minimum // the least accepted
	case 3:
		money = u.card + m.n(1000_00)
	default:
		money = minimum + m.rng.Int64N(max(u.card-minimum+1, 1))
	}
	p := seqPlan{req: coffer.PayRequest{Mode: coffer.ModeMoneyManagement, Kind: kind, Money: coffer.Amount(money), ClientTime: "2026-11-23T10:00:00+08:00"}}
	m.password(&p.req, false)
	switch {
	case m.rng.IntN(40) == 0:
		p.req.Kind, p.code = "nope", coffer.ErrProductNotFound
	case money < minimum:
		p.code = coffer.ErrBelowMinimum
	case money > u.card:
		p.code = coffer.ErrInsufficientFunds
	}
	p.apply = func() {
		u.card -= money
		now := m.clock.Now()
		if m.firstWealth == "" {
			m.firstWealth = m.day()
		}
		if kind == "demand" {
			if u.demand == nil {
				u.demand = m.newHolding(u, wealthAccount(u.ID, kind, 0), "")
			}
			u.demand.change(now, money)
		} else {
			var lot int64 = 1
			for _, l := range u.lots {
				if l.key.Product == kind {
					lot++
				}
			}
			matures := now.In(m.bank.Config().Zone).AddDate(0, 0, m.products[kind].TermDays).Format(time.DateOnly)
			h := m.newHolding(u, wealthAccount(u.ID, kind, lot), matures)
			h.change(now, money)
			u.lots = append(u.lots, h)
		}
		u.cardBills = append(u.cardBills, seqBill{-money, coffer.MethodMoneyManagement})
		u.wealthBills = append(u.wealthBills, seqBill{money, coffer.MethodMoneyManagement})
	}
	return p
}

func (m *seqModel) planRedeem(u *seqUser) seqPlan {
	kind := "demand"
	switch m.rng.IntN(10) {
	case 0:
		kind = "fixed90"
	case 1:
		kind = "nope"
	}
	var demand int64
	if u.demand != nil {
		demand = u.demand.balance
	}
	var money int64
	if m.rng.IntN(5) == 0 {
		money = demand + m.n(100_00)
	} else {
		money = m.n(demand)
	}
	p := seqPlan{req: coffer.PayRequest{Mode: coffer.ModeRedeem, Kind: kind, Money: coffer.Amount(money)}}
	m.password(&p.req, false)
	switch {
	case kind == "nope":
		p.code = coffer.ErrProductNotFound
	case kind != "demand":
		p.code = coffer.ErrNotMatured
	case money > demand:
		p.code = coffer.ErrInsufficientHold
	}
	p.apply = func() {
		u.demand.change(m.clock.Now(), -money)
		u.card += money
		u.cardBills = append(u.cardBills, seqBill{money, coffer.MethodRedeem})
		u.wealthBills = append(u.wealthBills, seqBill{-money, coffer.MethodRedeem})
	}
	return p
}

// quote is the price a client sends: now and then a stale one.
func (m *seqModel) quote(p *seqPlan) {
	p.req.Price = coffer.Amount(m.goldPrice)
	if m.rng.IntN(8) == 0 {
		p.req.Price = coffer.Amount(m.goldPrice + m.n(100) - 50 - 1)
		if p.req.Price == coffer.Amount(m.goldPrice) {
			p.req.Price++
		}
		p.code = coffer.ErrPriceChanged
	}
}

func (m *seqModel) planGoldBuy(u *seqUser) seqPlan {
	var weight int64
	if m.rng.IntN(6) == 0 {
		weight = u.card*1000/m.goldPrice + m.n(1000)
	} else {
		weight = m.n(u.card * 1000 / m.goldPrice)
	}
	p := seqPlan{req: coffer.PayRequest{Mode: coffer.ModeGold, Weight: coffer.Weight(weight)}}
	m.password(&p.req, false)
	m.quote(&p)
	cost := roundHalfUp(weight*m.goldPrice, 1000)
	switch {
	case p.code != "":
	case cost == 0:
		p.code = coffer.ErrAmountTooSmall
	case cost > u.card:
		p.code = coffer.ErrInsufficientFunds
	}
	p.apply = func() {
		u.card -= cost
		u.gold += weight
		m.goldDeskCNY += cost
		m.goldDeskMG -= weight
		u.cardBills = append(u.cardBills, seqBill{-cost, coffer.MethodGold})
	}
	return p
}

func (m *seqModel) planGoldSell(u *seqUser) seqPlan {
	var weight int64
	if m.rng.IntN(5) == 0 {
		weight = u.gold + m.n(1000)
	} else {
		weight = m.n(u.gold)
	}
	p := seqPlan{req: coffer.PayRequest{Mode: coffer.ModeGoldSell, Weight: coffer.Weight(weight)}}
	m.password(&p.req, false)
	m.quote(&p)
	proceeds := roundHalfUp(weight*m.goldPrice, 1000)
	switch {
	case p.code != "":
	case proceeds == 0:
		p.code = coffer.ErrAmountTooSmall
	case weight > u.gold:
		p.code = coffer.ErrInsufficientHold
	}
	p.apply = func() {
		u.gold -= weight
		u.card += proceeds
		m.goldDeskCNY -= proceeds
		m.goldDeskMG += weight
		u.cardBills = append(u.cardBills, seqBill{proceeds, coffer.MethodGoldSell})
	}
	return p
}

func (m *seqModel) planFundBuy(u *seqUser) seqPlan {
	code := fundCodes[m.rng.IntN(len(fundCodes))]
	var money int64
	switch m.rng.IntN(8) {
	case 0:
		money = u.card + m.n(1000_00)
	case 1:
		money = m.n(3) // a few fen
	default:
		money = m.n(u.card)
	}
	p := seqPlan{req: coffer.PayRequest{Mode: coffer.ModeFund, Code: code, Money: coffer.Amount(money)}}
	m.password(&p.req, false)
	if m.rng.IntN(40) == 0 {
		p.req.Code, p.code = "999999", coffer.ErrProductNotFound
		return p
	}
	nav := m.navs[code]
	shares := money * 1_000_000 / nav // rounded down to 0.0001 share
	charged := roundHalfUp(shares*nav, 1_000_000)
	if charged > money {
		m.fatalf("model charges %d for %d", charged, money)
	}
	switch {
	case shares == 0 || charged == 0:
		p.code = coffer.ErrAmountTooSmall
	case charged > u.card:
		p.code = coffer.ErrInsufficientFunds
	}
	p.apply = func() {
		u.card -= charged
		u.shares[code] += shares
		m.fundDeskCNY += charged
		m.fundDeskShares[code] -= shares
		u.cardBills = append(u.cardBills, seqBill{-charged, coffer.MethodFund})
	}
	return p
}

func (m *seqModel) planFundRedeem(u *seqUser) seqPlan {
	code := fundCodes[m.rng.IntN(len(fundCodes))]
	var shares int64
	switch m.rng.IntN(8) {
	case 0:
		shares = u.shares[code] + m.n(10_0000)
	case 1:
		shares = m.n(50) // worth under a fen, or about one
	default:
		shares = m.n(u.shares[code])
	}
	p := seqPlan{req: coffer.PayRequest{Mode: coffer.ModeFundRedeem, Code: code, Shares: coffer.Shares(shares)}}
	m.password(&p.req, false)
	if m.rng.IntN(40) == 0 {
		p.req.Code, p.code = "999999", coffer.ErrProductNotFound
		return p
	}
	proceeds := roundHalfUp(shares*m.navs[code], 1_000_000)
	switch {
	case proceeds == 0:
		p.code = coffer.ErrAmountTooSmall
	case shares > u.shares[code]:
		p.code = coffer.ErrInsufficientHold
	}
	p.apply = func() {
		u.shares[code] -= shares
		u.card += proceeds
		m.fundDeskCNY -= proceeds
		m.fundDeskShares[code] += shares
		u.cardBills = append(u.cardBills, seqBill{proceeds, coffer.MethodFundRedeem})
	}
	return p
}

func (m *seqModel) setGoldPrice() {
	price := 400_00 + m.rng.Int64N(300_00)
	if err := m.bank.SetGoldPrice(bg, coffer.Amount(price)); err != nil {
		m.fatalf("set gold price: %v", err)
	}
	m.goldPrice = price
	m.touchedAll = true
}

func (m *seqModel) setNAV() {
	code := fundCodes[m.rng.IntN(len(fundCodes))]
	nav := 5000 + m.rng.Int64N(4_0000) // 0.5000 to 4.4999
	f := coffer.Fund{Code: code, Name: m.fundNames[code], NAV: coffer.NAV(nav), NAVDate: m.day()}
	update(m.t, m.store, func(tx coffer.Tx) error { return tx.PutFund(bg, f) })
	m.navs[code] = nav
	m.touchedAll = true
}

func (m *seqModel) advanceClock() {
	m.clock.Advance(time.Duration(m.n(10)) * time.Hour)
}

// replay repeats a stored payment: the stored answer comes back and
// nothing moves; then a different request under the same key is refused.
func (m *seqModel) replay() {
	u := m.users[m.rng.IntN(len(m.users))]
	if len(u.answers) == 0 {
		return
	}
	keys := slices.Sorted(mapsKeys(u.answers))
	key := keys[m.rng.IntN(len(keys))]
	a := u.answers[key]
	m.op = "replay " + a.req.Mode
	res, err := m.bank.Pay(bg, u.ID, a.req)
	m.outcomes["replay "+string(coffer.ErrorCode(err))]++
	if err != nil || !res.Replayed || res.Balance != a.balance {
		m.fatalf("replay of %+v: %+v, %v; want the stored balance %s", a.req, res, err, a.balance)
	}
	other := a.req
	other.Money++
	other.Weight++
	other.Shares++
	res, err = m.bank.Pay(bg, u.ID, other)
	m.outcomes["reuse "+string(coffer.ErrorCode(err))]++
	if !coffer.IsCode(err, coffer.ErrIdempotencyReuse) || int64(res.Balance) != u.card {
		m.fatalf("another request under a used key: %+v, %v", res, err)
	}
}

// retryFailedKey sends a new request under the key of a failed payment,
// which stored nothing: the new request runs.
func (m *seqModel) retryFailedKey() {
	u := m.users[m.rng.IntN(len(m.users))]
	if len(u.failedKeys) == 0 {
		return
	}
	i := m.rng.IntN(len(u.failedKeys))
	key := u.failedKeys[i]
	u.failedKeys = slices.Delete(u.failedKeys, i, i+1)
	plans := []func(*seqUser) seqPlan{m.planMobilePay, m.planWealthBuy, m.planGoldBuy, m.planFundBuy}
	p := plans[m.rng.IntN(len(plans))](u)
	p.req.IdempotencyKey = key
	m.outcomes["retry"]++
	m.execute(u, p)
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// checkInfo compares the Info of the users the step touched, or of every
// user, with the model.
func (m *seqModel) checkInfo(all bool) {
	for i, u := range m.users {
		if !all && !m.touched[u] {
			continue
		}
		in, err := m.bank.Info(bg, u.ID)
		if err != nil {
			m.fatalf("info of user %d: %v", i, err)
		}
		wealth := u.wealth()
		var funds int64
		for code, sh := range u.shares {
			funds += roundHalfUp(sh*m.navs[code], 1_000_000)
		}
		gold := roundHalfUp(u.gold*m.goldPrice, 1000)
		got := [...]int64{int64(in.User.ID), int64(in.Balance), int64(in.MoneyManagment), int64(in.Funds), int64(in.Gold), int64(in.GoldWeight), int64(in.TotalAssets)}
		want := [...]int64{int64(u.ID), u.card, wealth, funds, gold, u.gold, u.card + wealth + funds + gold}
		if got != want {
			m.errorf("user %d info [id balance wealth funds gold mg total] = %v, model %v", i, got, want)
		}
	}
}

// checkLedger checks the invariants, the system accounts and every
// statement against the model.
func (m *seqModel) checkLedger() {
	m.t.Helper()
	AssertLedger(m.t, m.store)
	for _, c := range []struct {
		key  coffer.AccountKey
		want int64
	}{
		{cash, m.cash},
		{coffer.SystemAccount(coffer.KindInterest, coffer.AssetCNY), m.interest},
		{carrier, m.carrier},
		{coffer.SystemAccount(coffer.KindGoldDesk, coffer.AssetCNY), m.goldDeskCNY},
		{goldDesk, m.goldDeskMG},
		{coffer.SystemAccount(coffer.KindFundDesk, coffer.AssetCNY), m.fundDeskCNY},
		{coffer.AccountKey{Kind: coffer.KindFundDesk, Asset: coffer.FundAsset("000001"), Product: "000001"}, m.fundDeskShares["000001"]},
		{coffer.AccountKey{Kind: coffer.KindFundDesk, Asset: coffer.FundAsset("110022"), Product: "110022"}, m.fundDeskShares["110022"]},
	} {
		if got := balance(m.t, m.store, c.key); got != c.want {
			m.errorf("system account %v at %d, model %d", c.key, got, c.want)
		}
	}
	m.checkWealthHoldings()
	for i, u := range m.users {
		m.checkStatement(fmt.Sprintf("user %d card", i), u.ID, coffer.KindCard, u.cardBills)
		m.checkStatement(fmt.Sprintf("user %d wealth", i), u.ID, coffer.KindWealth, u.wealthBills)
		if got := balance(m.t, m.store, goldAccount(u.ID)); got != u.gold {
			m.errorf("user %d gold %d mg, model %d", i, got, u.gold)
		}
		for _, code := range fundCodes {
			if got := balance(m.t, m.store, fundAccount(u.ID, code)); got != u.shares[code] {
				m.errorf("user %d fund %s %d shares, model %d", i, code, got, u.shares[code])
			}
		}
	}
}

// checkStatement walks a statement through the Bank's wallet and compares
// it with the model's bills.
func (m *seqModel) checkStatement(what string, id coffer.UserID, kind coffer.AccountKind, want []seqBill) {
	m.t.Helper()
	var got []coffer.Bill
	cursor := ""
	for page := 0; ; page++ {
		p, err := m.bank.Wallet(bg, id, kind, cursor, 17)
		if err != nil {
			m.fatalf("%s statement: %v", what, err)
		}
		got = append(got, p.Bills...)
		if p.NextCursor == "" {
			break
		}
		if page > len(want) {
			m.fatalf("%s statement does not end", what)
		}
		cursor = p.NextCursor
	}
	if len(got) != len(want) {
		m.fatalf("%s statement has %d bills, model %d", what, len(got), len(want))
	}
	var running int64
	for i, w := range want {
		g := got[len(got)-1-i]
		running += w.amount
		if g.Amount != w.amount || g.Method != w.method || g.BalanceAfter != running {
			m.errorf("%s bill %d: %d %s balance %d, model %d %s balance %d", what, i, g.Amount, g.Method, g.BalanceAfter, w.amount, w.method, running)
		}
	}
	checkChain(m.t, what, got)
}

// checkCoverage fails when the fixed seeds together missed an outcome the
// test is meant to exercise, so that a change of weights cannot quietly
// hollow it out.
func checkCoverage(t *testing.T, outcomes map[string]int) {
	must := []string{
		"transfer ", "mobilepay ", "moneymanagement ", "redeem ", "gold ", "gold_sell ", "fund ", "fund_redeem ",
		"transfer " + string(coffer.ErrInsufficientFunds), "transfer " + string(coffer.ErrLimitSingle),
		"transfer " + string(coffer.ErrLimitDaily), "transfer " + string(coffer.ErrSamePayee),
		"mobilepay " + string(coffer.ErrAmountOutOfRange), "mobilepay " + string(coffer.ErrInsufficientFunds),
		"moneymanagement " + string(coffer.ErrBelowMinimum), "moneymanagement " + string(coffer.ErrInsufficientFunds),
		"redeem " + string(coffer.ErrInsufficientHold), "redeem " + string(coffer.ErrNotMatured),
		"gold " + string(coffer.ErrPriceChanged), "gold " + string(coffer.ErrInsufficientFunds),
		"gold_sell " + string(coffer.ErrInsufficientHold), "gold_sell " + string(coffer.ErrPriceChanged),
		"fund " + string(coffer.ErrInsufficientFunds), "fund_redeem " + string(coffer.ErrInsufficientHold),
		"fund_redeem " + string(coffer.ErrAmountTooSmall),
		"replay ", "reuse " + string(coffer.ErrIdempotencyReuse), "retry",
		"accrue interest", "accrue maturity", "accrue " + string(coffer.ErrInvalidField),
	}
	for _, k := range must {
		if outcomes[k] == 0 {
			t.Errorf("no fixed seed produced %q; outcomes %v", k, outcomes)
		}
	}
}

func (m *seqModel) newHolding(u *seqUser, key coffer.AccountKey, maturesOn string) *seqHolding {
	h := &seqHolding{user: u, key: key, yieldBP: m.products[key.Product].AnnualYieldBP, maturesOn: maturesOn}
	m.holdings = append(m.holdings, h)
	return h
}

// jumpClock moves the clock by weeks, so that fixed-term lots mature.
func (m *seqModel) jumpClock() {
	m.clock.Advance(time.Duration(20+m.rng.IntN(50)) * 24 * time.Hour)
}

// spendToTheLimit funds a user and transfers the most one transfer may
// move until the day's limit refuses one.
func (m *seqModel) spendToTheLimit() {
	u := m.users[m.rng.IntN(len(m.users))]
	cfg := m.bank.Config()
	m.op = "deposit"
	bal, err := m.bank.Deposit(bg, u.Mobile, cfg.LimitDaily)
	if err != nil {
		m.fatalf("deposit: %v", err)
	}
	u.card += int64(cfg.LimitDaily)
	m.cash -= int64(cfg.LimitDaily)
	u.cardBills = append(u.cardBills, seqBill{int64(cfg.LimitDaily), coffer.MethodDeposit})
	if int64(bal) != u.card {
		m.fatalf("deposit answered %s, model %s", bal, coffer.Amount(u.card))
	}
	for range int(cfg.LimitDaily/cfg.LimitTransfer) + 1 {
		payee := m.other(u)
		money := int64(cfg.LimitTransfer)
		p := seqPlan{req: coffer.PayRequest{Mode: coffer.ModeTransfer, Money: cfg.LimitTransfer, Payee: payee.Mobile, Password: TestPayPassword, PasswordSent: true}}
		switch {
		case m.limitCode(u, money) != "":
			p.code = coffer.ErrLimitDaily
		case money > u.card:
			p.code = coffer.ErrInsufficientFunds
		}
		p.apply = func() {
			u.card -= money
			payee.card += money
			m.spent[m.spentKey(u)] += money
			u.cardBills = append(u.cardBills, seqBill{-money, coffer.MethodTransferOut})
			payee.cardBills = append(payee.cardBills, seqBill{money, coffer.MethodTransferIn})
		}
		m.execute(u, p)
	}
}

// accrue closes business days through today, yesterday or (refused)
// tomorrow, and compares what was paid with the model's own reckoning of
// the contract: each holding earns its closing balance x yield / 365 in
// 10^-4 fen, rounded down, whole fen paid and the rest carried; a lot
// returns to the card at the end of its maturity day and earns nothing
// that day.
func (m *seqModel) accrue() {
	zone := m.bank.Config().Zone
	today := m.clock.Now().In(zone)
	through := today
	switch m.rng.IntN(5) {
	case 0:
		through = today.AddDate(0, 0, -1)
	case 1:
		through = today.AddDate(0, 0, 1)
	}
	day := through.Format(time.DateOnly)
	before := CountRows(m.t, m.store)
	report, err := m.bank.CloseDays(bg, day)
	m.outcomes["accrue "+string(coffer.ErrorCode(err))]++
	if day > today.Format(time.DateOnly) {
		if !coffer.IsCode(err, coffer.ErrInvalidField) {
			m.fatalf("closing tomorrow %s: %+v, %v", day, report, err)
		}
		sameCounts(m.t, "closing tomorrow", before, CountRows(m.t, m.store))
		return
	}
	if err != nil {
		m.fatalf("close days through %s: %v", day, err)
	}
	var want coffer.AccrualReport
	start := m.firstWealth
	if m.lastClosed != "" {
		last, _ := time.ParseInLocation(time.DateOnly, m.lastClosed, zone)
		start = last.AddDate(0, 0, 1).Format(time.DateOnly)
	}
	if start != "" {
		d, _ := time.ParseInLocation(time.DateOnly, start, zone)
		for ; d.Format(time.DateOnly) <= day; d = d.AddDate(0, 0, 1) {
			m.closeDay(d, &want)
		}
	}
	want.AlreadyClosed = len(want.Days) == 0
	if !slices.Equal(report.Days, want.Days) || report.InterestFen != want.InterestFen || report.Postings != want.Postings ||
		report.LotsMatured != want.LotsMatured || report.MaturedFen != want.MaturedFen || report.AlreadyClosed != want.AlreadyClosed {
		m.fatalf("closing through %s reported %+v, model %+v", day, report, want)
	}
	if want.InterestFen > 0 {
		m.outcomes["accrue interest"]++
	}
	if want.LotsMatured > 0 {
		m.outcomes["accrue maturity"]++
	}
}

// closeDay is the model of closing one business day.
func (m *seqModel) closeDay(day time.Time, r *coffer.AccrualReport) {
	d := day.Format(time.DateOnly)
	now := m.clock.Now()
	cutoff := day.AddDate(0, 0, 1)
	if now.Before(cutoff) {
		cutoff = now.Add(time.Millisecond)
	}
	valueAt := cutoff.Add(-time.Millisecond)
	for _, h := range m.holdings {
		u := h.user
		if h.maturesOn != "" && h.maturesOn < d {
			continue // returned on its maturity day
		}
		closing := h.balanceBefore(cutoff)
		total := h.carry
		if closing > 0 && h.yieldBP > 0 {
			total += closing * h.yieldBP / 365 // 10^-4 fen: fen x (bp / 10^4) / 365 x 10^4
		}
		paid := total / 10_000
		h.carry = total % 10_000
		if paid > 0 {
			h.change(valueAt, paid)
			m.interest -= paid
			u.wealthBills = append(u.wealthBills, seqBill{paid, coffer.MethodInterest})
			r.InterestFen += coffer.Amount(paid)
			r.Postings++
		}
		// A lot is held at the end of its maturity day: it earns that
		// day's interest, then goes back to the card.
		if h.maturesOn == d {
			if amount := h.balance; amount > 0 {
				h.change(valueAt, -amount)
				u.card += amount
				u.cardBills = append(u.cardBills, seqBill{amount, coffer.MethodMaturity})
				u.wealthBills = append(u.wealthBills, seqBill{-amount, coffer.MethodMaturity})
				r.LotsMatured++
				r.MaturedFen += coffer.Amount(amount)
			}
		}
	}
	r.Days = append(r.Days, d)
	m.lastClosed = d
}

// checkWealthHoldings compares every wealth account, its maturity and its
// interest carry with the model.
func (m *seqModel) checkWealthHoldings() {
	var got []coffer.Holding
	view(m.t, m.store, func(tx coffer.ReadTx) error {
		var err error
		got, err = tx.WealthHoldings(bg)
		return err
	})
	if len(got) != len(m.holdings) {
		m.fatalf("%d wealth holdings, model %d", len(got), len(m.holdings))
	}
	// The store lists them by user (the order in which closing a day
	// locks cards), each user's in the order they were opened.
	byUser := slices.Clone(m.holdings)
	slices.SortStableFunc(byUser, func(a, b *seqHolding) int { return cmp.Compare(a.key.User, b.key.User) })
	for i, h := range byUser {
		want := coffer.Holding{Key: h.key, Balance: h.balance, MaturesOn: h.maturesOn, Carry: h.carry}
		if got[i] != want {
			m.errorf("wealth holding %d: %+v, model %+v", i, got[i], want)
		}
	}
}
