package coffer

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strconv"
	"time"
)

// Payment modes of POST /api/pay.
const (
	ModeTransfer        = "transfer"
	ModeMobilePay       = "mobilepay"
	ModeMoneyManagement = "moneymanagement"
	ModeGold            = "gold"
	ModeRedeem          = "redeem"
	ModeFund            = "fund"
	ModeFundRedeem      = "fund_redeem"
	ModeGoldSell        = "gold_sell"
)

// MaxIdempotencyKey is the longest idempotency key accepted.
const MaxIdempotencyKey = 255

// MaxDetail is the longest transfer detail kept, in bytes.
const MaxDetail = 200

// PayRequest is a parsed, well-formed payment request. Which fields are set
// depends on Mode.
type PayRequest struct {
	Mode           string
	Money          Amount
	Detail         string
	Payee          string // mobile
	Payer          string // mobile; must be the caller's when sent
	Mobile         string // mobilepay: the phone topped up
	Password       string
	PasswordSent   bool
	Kind           string // wealth product
	ClientTime     string // moneymanagement: the client's purchase time, normalised
	Weight         Weight
	Price          Amount
	Code           string // fund
	Shares         Shares
	IdempotencyKey string
}

// Fingerprint identifies the request's meaning (not its bytes), so that a
// replay with the same idempotency key can be told from a different request.
func (r *PayRequest) Fingerprint() []byte {
	// The bytes of fmt's "%q|%d|%q|%q|%q|%q|%q|%d|%d|%q|%d" of the fields
	// below (FuzzFingerprintIsFmts), without its reflection: the records
	// stored before keep their meaning.
	b := make([]byte, 0, 128)
	b = append(strconv.AppendQuote(b, r.Mode), '|')
	b = append(strconv.AppendInt(b, int64(r.Money), 10), '|')
	for _, s := range []string{r.Detail, r.Payee, r.Mobile, r.Kind, r.ClientTime} {
		b = append(strconv.AppendQuote(b, s), '|')
	}
	b = append(strconv.AppendInt(b, int64(r.Weight), 10), '|')
	b = append(strconv.AppendInt(b, int64(r.Price), 10), '|')
	b = append(strconv.AppendQuote(b, r.Code), '|')
	b = strconv.AppendInt(b, int64(r.Shares), 10)
	sum := sha256.Sum256(b)
	return sum[:]
}

// PayResult is the answer to a payment: the card balance after it (or, on
// failure, the current one) and, when the gold price moved, the current price.
type PayResult struct {
	Balance  Amount
	Price    Amount // set with ErrPriceChanged
	Replayed bool
}

// Pay runs a payment for user: checks, idempotency, ledger posting.
func (b *Bank) Pay(ctx context.Context, id UserID, req PayRequest) (PayResult, error) {
	now := b.now()
	var reads payReads
	err := b.store.ViewEach(ctx, func(tx ReadTx) error {
		u, err := tx.UserByID(ctx, id)
		if err != nil {
			return err
		}
		reads, err = readForPay(ctx, tx, u, req)
		return err
	})
	if err != nil {
		return b.refusal(ctx, id, PayResult{}, err)
	}
	return b.finishPay(ctx, id, req, reads, now)
}

// PayAs is Pay for the user of the session token, the session checked (as
// Authenticate does) in the statement of the payment's first reads
// (ReadTx.SessionPayment). Those need no snapshot (see payReads), and
// what must hold when the payment decides (the payer's lock and failure
// count, the idempotency key, balances, limits) is enforced in its write
// transaction. It returns the user too, 0 when the session is refused or
// could not be read; past the session, a failure comes with the card
// balance, as from Pay.
func (b *Bank) PayAs(ctx context.Context, token string, req PayRequest) (UserID, PayResult, error) {
	now := b.now()
	q := SessionPaymentQuery{IdempotencyKey: req.IdempotencyKey}
	if req.Mode == ModeTransfer {
		q.AttemptKeyPrefix, q.Mobile = lookupKeyPrefix, req.Payee
	}
	var reads payReads
	withReads := func(tx ReadTx, ctx context.Context, tokenHash []byte) (Session, User, error) {
		s, u, f, err := tx.SessionPayment(ctx, tokenHash, q)
		reads = readsOf(u, f)
		return s, u, err
	}
	id, err := b.viewAs(ctx, token, b.store.ViewEach, withReads, nil)
	if err != nil {
		if id == 0 {
			return 0, PayResult{}, err
		}
		res, err := b.refusal(ctx, id, PayResult{}, err)
		return id, res, err
	}
	res, err := b.finishPay(ctx, id, req, reads, now)
	return id, res, err
}

// finishPay runs the payment after its first reads.
func (b *Bank) finishPay(ctx context.Context, id UserID, req PayRequest, reads payReads, now time.Time) (PayResult, error) {
	res, err := b.pay(ctx, id, req, reads, now)
	if err != nil {
		return b.refusal(ctx, id, res, err)
	}
	return res, nil
}

// refusal adds to a failed payment's answer what the client is told with
// the refusal: the card balance, and the gold quote when the price
// changed.
func (b *Bank) refusal(ctx context.Context, id UserID, res PayResult, err error) (PayResult, error) {
	if bal, berr := b.CardBalance(ctx, id); berr == nil {
		res.Balance = bal
	}
	if IsCode(err, ErrPriceChanged) {
		if err2 := b.store.View(ctx, func(tx ReadTx) error {
			q, err := tx.GoldQuote(ctx)
			res.Price = q.Price
			return err
		}); err2 != nil {
			return res, err2
		}
	}
	return res, err
}

// payReads is what a payment reads before it decides anything, in one
// call of the store's ViewEach: the payer, any answer stored under the
// request's idempotency key, and for a transfer the lookup budget and the
// payee (payee.ID 0 when no user has that mobile). The payee is read
// here, not in the write transaction, because a user's id and name never
// change: the write transaction, which every payment of a store may wait
// for, stays a statement shorter.
type payReads struct {
	payer   User
	lookups Attempt
	stored  IdempotentRecord
	found   bool
	payee   User
}

func readForPay(ctx context.Context, tx ReadTx, payer User, req PayRequest) (payReads, error) {
	q := PaymentQuery{User: payer.ID, IdempotencyKey: req.IdempotencyKey}
	if req.Mode == ModeTransfer {
		q.AttemptKey, q.Mobile = lookupKey(payer.ID), req.Payee
	}
	if q.IdempotencyKey == "" && q.AttemptKey == "" {
		return payReads{payer: payer}, nil
	}
	f, err := tx.PaymentLookup(ctx, q)
	return readsOf(payer, f), err
}

// readsOf is what a payment of payer read, given what its lookup found.
func readsOf(payer User, f PaymentFound) payReads {
	return payReads{payer: payer, stored: f.Stored, found: f.StoredFound, lookups: f.Attempt, payee: f.User}
}

func (b *Bank) pay(ctx context.Context, id UserID, req PayRequest, reads payReads, now time.Time) (PayResult, error) {
	fingerprint := req.Fingerprint()
	u, stored, found, lookups := reads.payer, reads.stored, reads.found, reads.lookups
	var err error
	if req.Mode == ModeTransfer && req.Payer != "" && req.Payer != u.Mobile {
		return PayResult{}, &Error{Code: ErrForbidden, Field: "payer"} // even for a replay
	}
	if found {
		return storedAnswer(stored, fingerprint)
	}
	if now.Before(u.PayLockedUntil) {
		return PayResult{}, &Error{Code: ErrPayLocked} // before any other rule
	}
	if req.Mode == ModeTransfer && b.lookupsSpent(lookups, now) {
		// Transfers to unknown payees spend the budget of /api/mobile,
		// so that 404 against 422 cannot enumerate users either.
		return PayResult{}, &Error{Code: ErrRateLimited}
	}
	if req.IdempotencyKey != "" {
		k := inflightKey{id, req.IdempotencyKey}
		b.inflightMu.Lock()
		_, busy := b.inflight[k]
		if !busy {
			b.inflight[k] = struct{}{}
		}
		b.inflightMu.Unlock()
		if busy {
			return PayResult{}, &Error{Code: ErrIdempotencyPending}
		}
		defer func() {
			b.inflightMu.Lock()
			delete(b.inflight, k)
			b.inflightMu.Unlock()
		}()
	}
	if err := b.precheck(u, &req); err != nil {
		return PayResult{}, err
	}
	// The password is checked outside the transaction (argon2 for users
	// without a payment password is slow); what its result means is
	// decided inside, under the user's row lock.
	var passwordOK bool
	if req.PasswordSent {
		if passwordOK, err = b.matchPayPassword(ctx, u, req.Password); err != nil {
			return PayResult{}, err
		}
	}
	var res PayResult
	var refused *Error
	var posted *Posted
	card := CardAccount(u.ID)
	err = b.store.Update(ctx, func(tx Tx) error {
		res, refused, posted = PayResult{}, nil, nil // the function may be retried
		gate, err := b.payGate(ctx, tx, u.ID, req.PasswordSent, passwordOK, now)
		if err != nil || gate != nil {
			refused = gate
			return err // a refusal commits the failure count and moves nothing
		}
		t, err := b.plan(ctx, tx, u, reads.payee, req, now)
		if err != nil {
			return err
		}
		if !t.moves(card) { // no mode does so yet: the card's balance is read
			bal, err := tx.Balance(ctx, card)
			if err != nil {
				return err
			}
			res.Balance = Amount(bal)
		}
		// The posting and the answer stored with it may go with the
		// commit: the answer is the card's balance after the posting,
		// which the store writes into the record itself.
		if posted, err = tx.PostLater(ctx, t); err != nil {
			return err
		}
		if req.IdempotencyKey == "" {
			return nil
		}
		return tx.PutIdempotent(ctx, IdempotentRecord{User: u.ID, Key: req.IdempotencyKey, RequestHash: fingerprint, Status: 200, BodyBalanceOf: card, CreatedAt: now})
	})
	if err == nil && refused != nil {
		return PayResult{}, refused
	}
	if bal, moved := posted.balance(card); err == nil && moved {
		res.Balance = Amount(bal)
	}
	if IsCode(err, ErrIdempotencyReuse) {
		// Another server stored the key between our check and our commit.
		if r, done, rerr := b.replay(ctx, id, req.IdempotencyKey, fingerprint); done || rerr != nil {
			return r, rerr
		}
	}
	if IsCode(err, ErrPayeeNotFound) {
		if cerr := b.store.Update(ctx, func(tx Tx) error {
			_, err := tx.CountAttempt(ctx, lookupKey(id), now, time.Minute)
			return err
		}); cerr != nil {
			return res, cerr
		}
	}
	return res, err
}

// TransferLeg moves amount from payer's card to payee's, with the bills'
// texts naming the other side and the payer's detail, if any.
func TransferLeg(payer, payee User, amount Amount, detail string) Leg {
	out := "转账给 " + payee.Username
	in := "来自 " + payer.Username + " 的转账"
	if detail != "" {
		out += ": " + detail
		in += ": " + detail
	}
	return Leg{From: CardAccount(payer.ID), To: CardAccount(payee.ID), Amount: int64(amount), FromMethod: MethodTransferOut, ToMethod: MethodTransferIn, FromDetails: out, ToDetails: in}
}

// payGate decides, under the user's row lock, whether a payment may go
// on: not while payments are locked; not with a wrong password, which is
// counted (the fifth in a row locks payments). Concurrent guesses are so
// taken one at a time: at most four answer "wrong" before the lock, and a
// right guess that comes after the lock is refused like any other.
//
// A refusal with something to keep (a wrong password counted) is the
// *Error, with a nil error so that Update commits the count. A payment
// with nothing to count is refused by the store instead (LockPayable),
// with the transaction's error, since it has nothing to keep: the store
// can then send the check with the payment's next statement.
func (b *Bank) payGate(ctx context.Context, tx Tx, user UserID, passwordSent, passwordOK bool, now time.Time) (*Error, error) {
	if !passwordSent || passwordOK {
		if err := tx.LockPayable(ctx, user, now); err != nil {
			return nil, err
		}
		if !passwordSent {
			return nil, nil
		}
		// Only a password checked and found right breaks a row of wrong
		// ones: a payment that checks none (gold, funds, wealth) must not,
		// else the lock would never come between guesses.
		return nil, tx.ClearPayFailures(ctx, user)
	}
	cur, err := tx.LockUser(ctx, user)
	if err != nil {
		return nil, err
	}
	if now.Before(cur.PayLockedUntil) {
		return &Error{Code: ErrPayLocked}, nil
	}
	n, err := tx.AddPayFailure(ctx, user)
	if err != nil {
		return nil, err
	}
	if n >= b.cfg.PayFailuresToLock {
		return &Error{Code: ErrPayLocked}, tx.SetPayFailures(ctx, user, 0, now.Add(b.cfg.PayLockFor))
	}
	return &Error{Code: ErrBadPayPassword}, nil
}

// lookupKeyPrefix and the user's id name a user's budget of payee
// lookups.
const lookupKeyPrefix = "lookup:user:"

// lookupKey names a user's budget of payee lookups.
func lookupKey(id UserID) string { return lookupKeyPrefix + strconv.FormatInt(int64(id), 10) }

// lookupsSpent reports whether a lookup budget read at now is used up.
func (b *Bank) lookupsSpent(a Attempt, now time.Time) bool {
	return a.Key != "" && now.Sub(a.WindowStart) < time.Minute && a.Failures >= b.cfg.LookupsPerMinute
}

// replay returns the stored answer of key, or done=false when there is none.
func (b *Bank) replay(ctx context.Context, id UserID, key string, fingerprint []byte) (PayResult, bool, error) {
	var rec IdempotentRecord
	var found bool
	err := b.store.View(ctx, func(tx ReadTx) error {
		var err error
		rec, found, err = tx.Idempotent(ctx, id, key)
		return err
	})
	if err != nil || !found {
		return PayResult{}, false, err
	}
	res, err := storedAnswer(rec, fingerprint)
	return res, true, err
}

// storedAnswer is the answer to a repeat of the payment stored in rec: the
// stored one when the request is the same, else ErrIdempotencyReuse.
func storedAnswer(rec IdempotentRecord, fingerprint []byte) (PayResult, error) {
	if string(rec.RequestHash) != string(fingerprint) {
		return PayResult{}, &Error{Code: ErrIdempotencyReuse}
	}
	v, ok := ParseDecimal(string(rec.Body), AmountScale)
	if !ok {
		return PayResult{}, Errorf(ErrInternal, "stored answer %q is not an amount", rec.Body)
	}
	return PayResult{Balance: Amount(v), Replayed: true}, nil
}

// precheck applies the rules that need no database.
func (b *Bank) precheck(u User, req *PayRequest) error {
	if err := req.checkQuantities(); err != nil {
		return err
	}
	switch req.Mode {
	case ModeTransfer:
		if req.Payee == u.Mobile {
			return &Error{Code: ErrSamePayee}
		}
		if req.Money > b.cfg.LimitTransfer {
			return &Error{Code: ErrLimitSingle}
		}
	case ModeMobilePay:
		if req.Money < b.cfg.MobilePayMin || req.Money > b.cfg.MobilePayMax {
			return &Error{Code: ErrAmountOutOfRange}
		}
	case ModeMoneyManagement, ModeGold, ModeRedeem, ModeFund, ModeFundRedeem, ModeGoldSell:
	default:
		return FieldError(ErrUnknownMode, "mode")
	}
	if (req.Mode == ModeTransfer || req.Mode == ModeMobilePay) && !req.PasswordSent {
		return FieldError(ErrMissingField, "password")
	}
	return nil
}

// checkQuantities refuses a request whose quantity for its mode is not
// positive or past its ceiling. The HTTP decoder refuses them first; this
// keeps every other caller of Pay to the same rules.
func (r *PayRequest) checkQuantities() error {
	switch r.Mode {
	case ModeGold, ModeGoldSell:
		if r.Weight <= 0 || r.Price <= 0 || r.Price > MaxAmount {
			return FieldError(ErrInvalidField, "weight")
		}
	case ModeFundRedeem:
		if r.Shares <= 0 {
			return FieldError(ErrInvalidField, "shares")
		}
	default:
		if r.Money <= 0 || r.Money > MaxAmount {
			return FieldError(ErrInvalidField, "money")
		}
	}
	return nil
}

// matchPayPassword reports whether pw is the user's payment password: the
// 6-digit one when set (an HMAC, microseconds), else the login password
// (argon2id).
func (b *Bank) matchPayPassword(ctx context.Context, u User, pw string) (bool, error) {
	if len(u.PayPasswordMAC) > 0 {
		return b.keyer.Match(u.PayPasswordMAC, pw), nil
	}
	return b.hasher.Verify(ctx, u.PasswordHash, pw)
}

// plan turns a request into a ledger transaction, reading what it needs
// inside the payment's own database transaction; a transfer's payee was
// read before it (see payReads).
func (b *Bank) plan(ctx context.Context, tx Tx, u, payee User, req PayRequest, now time.Time) (*Transaction, error) {
	t := &Transaction{User: u.ID, Kind: req.Mode, CreatedAt: now}
	card := CardAccount(u.ID)
	switch req.Mode {
	case ModeTransfer:
		if payee.ID == 0 {
			return nil, &Error{Code: ErrPayeeNotFound}
		}
		if err := tx.AddDailySpend(ctx, u.ID, b.Day(now), req.Money, b.cfg.LimitDaily); err != nil {
			return nil, err
		}
		t.Legs = []Leg{TransferLeg(u, payee, req.Money, req.Detail)}
	case ModeMobilePay:
		if err := tx.AddDailySpend(ctx, u.ID, b.Day(now), req.Money, b.cfg.LimitDaily); err != nil {
			return nil, err
		}
		details := "手机充值 " + req.Mobile
		t.Legs = []Leg{{From: card, To: SystemAccount(KindCarrier, AssetCNY), Amount: int64(req.Money), FromMethod: MethodMobilePay, ToMethod: MethodMobilePay, FromDetails: details, ToDetails: details}}
	case ModeMoneyManagement:
		return b.planWealthPurchase(ctx, tx, u, req, t, now)
	case ModeRedeem:
		return b.planRedeem(ctx, tx, u, req, t)
	case ModeGold, ModeGoldSell:
		return b.planGold(ctx, tx, u, req, t)
	case ModeFund, ModeFundRedeem:
		return b.planFund(ctx, tx, u, req, t)
	}
	return t, nil
}

func (b *Bank) planWealthPurchase(ctx context.Context, tx Tx, u User, req PayRequest, t *Transaction, now time.Time) (*Transaction, error) {
	p, err := tx.WealthProduct(ctx, req.Kind)
	if err != nil {
		return nil, err
	}
	if p.Retired {
		return nil, &Error{Code: ErrProductRetired}
	}
	if req.Money < p.MinAmount {
		return nil, &Error{Code: ErrBelowMinimum, Detail: "minimum " + p.MinAmount.String()}
	}
	holding := AccountKey{User: u.ID, Kind: KindWealth, Asset: AssetCNY, Product: p.Kind}
	details := "购买理财 " + p.Name
	if p.TermDays > 0 {
		matures := now.In(b.cfg.Zone).AddDate(0, 0, p.TermDays).Format(time.DateOnly)
		if holding, err = tx.CreateLot(ctx, u.ID, p.Kind, matures); err != nil {
			return nil, err
		}
		details += " (" + strconv.Itoa(p.TermDays) + "天, " + matures + " 到期)"
	}
	t.Memo = req.ClientTime
	t.Legs = []Leg{{From: CardAccount(u.ID), To: holding, Amount: int64(req.Money), FromMethod: MethodMoneyManagement, ToMethod: MethodMoneyManagement, FromDetails: details, ToDetails: details}}
	return t, nil
}

func (b *Bank) planRedeem(ctx context.Context, tx Tx, u User, req PayRequest, t *Transaction) (*Transaction, error) {
	p, err := tx.WealthProduct(ctx, req.Kind)
	if err != nil {
		return nil, err
	}
	if p.TermDays > 0 {
		return nil, &Error{Code: ErrNotMatured}
	}
	holding := AccountKey{User: u.ID, Kind: KindWealth, Asset: AssetCNY, Product: p.Kind}
	details := "赎回理财 " + p.Name
	t.Legs = []Leg{{From: holding, To: CardAccount(u.ID), Amount: int64(req.Money), FromMethod: MethodRedeem, ToMethod: MethodRedeem, FromDetails: details, ToDetails: details, ShortfallCode: ErrInsufficientHold}}
	return t, nil
}

func (b *Bank) planGold(ctx context.Context, tx Tx, u User, req PayRequest, t *Transaction) (*Transaction, error) {
	q, err := tx.GoldQuote(ctx)
	if err != nil {
		return nil, err
	}
	if q.Price != req.Price {
		return nil, &Error{Code: ErrPriceChanged}
	}
	value, ok := MulRoundHalfUp(int64(req.Weight), int64(q.Price), 1000)
	if !ok || Amount(value) > MaxAmount {
		return nil, FieldError(ErrAmountOutOfRange, "weight")
	}
	if value == 0 {
		return nil, FieldError(ErrAmountTooSmall, "weight")
	}
	card, gold := CardAccount(u.ID), AccountKey{User: u.ID, Kind: KindGold, Asset: AssetGold}
	deskCNY, deskGold := SystemAccount(KindGoldDesk, AssetCNY), SystemAccount(KindGoldDesk, AssetGold)
	if req.Mode == ModeGold {
		details := fmt.Sprintf("买入黄金 %s 克, 单价 %s", req.Weight, q.Price)
		t.Legs = []Leg{
			{From: card, To: deskCNY, Amount: value, FromMethod: MethodGold, ToMethod: MethodGold, FromDetails: details, ToDetails: details},
			{From: deskGold, To: gold, Amount: int64(req.Weight), FromMethod: MethodGold, ToMethod: MethodGold, FromDetails: details, ToDetails: details},
		}
		return t, nil
	}
	details := fmt.Sprintf("卖出黄金 %s 克, 单价 %s", req.Weight, q.Price)
	t.Legs = []Leg{
		{From: gold, To: deskGold, Amount: int64(req.Weight), FromMethod: MethodGoldSell, ToMethod: MethodGoldSell, FromDetails: details, ToDetails: details, ShortfallCode: ErrInsufficientHold},
		{From: deskCNY, To: card, Amount: value, FromMethod: MethodGoldSell, ToMethod: MethodGoldSell, FromDetails: details, ToDetails: details},
	}
	return t, nil
}

// sharesPerFen converts between fen x NAV and shares: shares (10^-4) x NAV
// (10^-4 yuan) / 10^6 = fen.
const sharesPerFen = 1_000_000

func (b *Bank) planFund(ctx context.Context, tx Tx, u User, req PayRequest, t *Transaction) (*Transaction, error) {
	f, err := tx.Fund(ctx, req.Code)
	if err != nil {
		return nil, err
	}
	asset := FundAsset(f.Code)
	card, holding := CardAccount(u.ID), AccountKey{User: u.ID, Kind: KindFund, Asset: asset, Product: f.Code}
	deskCNY, deskShares := SystemAccount(KindFundDesk, AssetCNY), AccountKey{Kind: KindFundDesk, Asset: asset, Product: f.Code}
	if req.Mode == ModeFund {
		if f.Retired {
			return nil, &Error{Code: ErrProductRetired}
		}
		shares, ok := MulDivFloor(int64(req.Money), sharesPerFen, int64(f.NAV))
		if !ok {
			return nil, FieldError(ErrAmountOutOfRange, "money")
		}
		charged, _ := MulRoundHalfUp(shares, int64(f.NAV), sharesPerFen)
		if shares == 0 || charged == 0 {
			return nil, FieldError(ErrAmountTooSmall, "money")
		}
		details := fmt.Sprintf("申购基金 %s %s 份, 净值 %s", f.Name, Shares(shares), f.NAV)
		t.Legs = []Leg{
			{From: card, To: deskCNY, Amount: charged, FromMethod: MethodFund, ToMethod: MethodFund, FromDetails: details, ToDetails: details},
			{From: deskShares, To: holding, Amount: shares, FromMethod: MethodFund, ToMethod: MethodFund, FromDetails: details, ToDetails: details},
		}
		return t, nil
	}
	proceeds, ok := MulRoundHalfUp(int64(req.Shares), int64(f.NAV), sharesPerFen)
	if !ok || Amount(proceeds) > MaxAmount {
		return nil, FieldError(ErrAmountOutOfRange, "shares")
	}
	if proceeds == 0 {
		return nil, FieldError(ErrAmountTooSmall, "shares")
	}
	details := fmt.Sprintf("赎回基金 %s %s 份, 净值 %s", f.Name, req.Shares, f.NAV)
	t.Legs = []Leg{
		{From: holding, To: deskShares, Amount: int64(req.Shares), FromMethod: MethodFundRedeem, ToMethod: MethodFundRedeem, FromDetails: details, ToDetails: details, ShortfallCode: ErrInsufficientHold},
		{From: deskCNY, To: card, Amount: proceeds, FromMethod: MethodFundRedeem, ToMethod: MethodFundRedeem, FromDetails: details, ToDetails: details},
	}
	return t, nil
}
