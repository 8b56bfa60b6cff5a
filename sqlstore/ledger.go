package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"coffer"
)

const accountWhere = `user_id = ? AND kind = ? AND asset = ? AND product = ? AND lot = ?`

func keyArgs(k coffer.AccountKey) []any {
	return []any{k.User, k.Kind, k.Asset, k.Product, k.Lot}
}

// Post implements coffer.Tx. Balances are updated in the order of
// coffer.AccountKey.Less, each with a conditional UPDATE that refuses to
// take a user account below zero, so that concurrent payments can neither
// overdraw nor deadlock each other.
func (t *Tx) Post(ctx context.Context, tr *coffer.Transaction) (coffer.Posted, error) {
	if err := tr.Validate(); err != nil {
		return coffer.Posted{}, err
	}
	changes := tr.NetChanges()
	final := make(map[coffer.AccountKey]int64, len(changes))
	ids := make(map[coffer.AccountKey]int64, len(changes))
	// Every account's conditional UPDATE and the transaction's INSERT go
	// together (one round trip where the Querier pipelines), in the order
	// of AccountKey.Less; an account the UPDATE did not find is handled
	// after, one statement at a time.
	steps := withGroupLocks(changes)
	queries := make([]string, 0, len(steps)+1)
	args := make([][]any, 0, len(steps)+1)
	dests := make([][]any, 0, len(steps)+1)
	balances := make([][2]int64, len(steps))
	for i, c := range steps {
		if c.lockOnly {
			queries = append(queries, `UPDATE accounts SET balance = balance WHERE `+accountWhere+` RETURNING id`)
			args = append(args, keyArgs(c.Key))
			dests = append(dests, []any{&balances[i][0]})
			continue
		}
		queries = append(queries, updateBalance)
		args = append(args, updateBalanceArgs(c.AccountChange))
		dests = append(dests, []any{&balances[i][0], &balances[i][1]})
	}
	var txID int64
	queries = append(queries, `INSERT INTO transactions (user_id, kind, memo, created_at_ms) VALUES (?, ?, ?, ?) RETURNING id`)
	args = append(args, []any{tr.User, tr.Kind, tr.Memo, ms(tr.CreatedAt)})
	dests = append(dests, []any{&txID})
	errs := t.rows(ctx, queries, args, dests)
	// Failures first: after one, PostgreSQL has aborted the transaction,
	// and its error (a deadlock or serialization failure, which the store
	// retries) must not hide behind a statement that fails for that.
	for i, err := range errs {
		if err == nil || i < len(steps) && errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if i == len(steps) {
			return coffer.Posted{}, fmt.Errorf("insert transaction: %w", err)
		}
		return coffer.Posted{}, fmt.Errorf("update balance of %s: %w", steps[i].Key, err)
	}
	for i, c := range steps {
		if errors.Is(errs[i], sql.ErrNoRows) { // no such account, or not enough in it
			if c.lockOnly {
				continue // a card never credited: nothing to hold
			}
			if c.Key.IsUser() && c.Delta < 0 {
				return coffer.Posted{}, &coffer.Error{Code: c.ShortfallCode, Detail: c.Key.String()}
			}
			id, bal, err := t.createAccount(ctx, c.AccountChange)
			if err != nil {
				return coffer.Posted{}, err
			}
			balances[i] = [2]int64{id, bal}
		}
		if !c.lockOnly {
			ids[c.Key], final[c.Key] = balances[i][0], balances[i][1]
		}
	}
	entries := tr.Entries(final)
	for _, e := range entries {
		// The net change of each account was checked above; this checks
		// every step within the transaction, so that no entry shows a
		// user account below zero even for a moment.
		if e.Key.IsUser() && e.BalanceAfter < 0 {
			return coffer.Posted{}, &coffer.Error{Code: coffer.ErrInsufficientFunds, Detail: e.Key.String() + " would go below zero within the transaction"}
		}
	}
	groups, err := t.groupBalances(ctx, entries)
	if err != nil {
		return coffer.Posted{}, err
	}
	// One statement for all the entries: rows are inserted, and take
	// their ids, in the order listed, so that bills chain in entry order.
	// Nothing waits for its answer: where the Querier defers, it goes
	// with the transaction's next statement or its commit.
	created := ms(tr.CreatedAt)
	entryArgs := make([]any, 0, entryColumns*len(entries))
	for i, e := range entries {
		entryArgs = append(entryArgs, txID, ids[e.Key], e.Key.User, e.Key.Kind, e.Amount, e.BalanceAfter, groups[i], e.Method, e.Details, created)
	}
	if err := t.execLater(ctx, nil, insertEntries[len(entries)], entryArgs...); err != nil {
		return coffer.Posted{}, fmt.Errorf("insert entries: %w", err)
	}
	if t.balances == nil {
		t.balances = make(map[coffer.AccountKey]int64, len(final))
	}
	maps.Copy(t.balances, final)
	return coffer.Posted{ID: txID, Balances: final}, nil
}

// PostLater implements coffer.Tx. Where the Querier defers (PostgreSQL,
// with RefuseIf) and each account of the transaction has one entry and
// none is a user's wealth holding, the posting is held back whole, to go
// with the transaction's next statement or its commit: the transaction's
// row first, then one statement an account, in the order of
// AccountKey.Less, that changes its balance (the accounts' CHECK refuses a
// user account below zero) and inserts its entry with the balance after
// it. An account with one entry has that balance after it, and a wealth
// holding's entry would also need its group's (see groupBalances). The
// entries so take their ids in the accounts' order, not the legs': with
// one entry an account, no account's bills chain differently. Any other
// transaction is posted as by Post.
func (t *Tx) PostLater(ctx context.Context, tr *coffer.Transaction) (*coffer.Posted, error) {
	d, deferrer := t.q.(Deferrer)
	changes := tr.NetChanges()
	if !deferrer || t.d.RefuseIf == "" || !oneEntryEach(tr, changes) {
		p, err := t.Post(ctx, tr)
		return &p, err
	}
	if err := tr.Validate(); err != nil {
		return nil, err
	}
	posted := &coffer.Posted{Balances: make(map[coffer.AccountKey]int64, len(changes))}
	keys := make([]coffer.AccountKey, len(changes))
	for i, c := range changes {
		delete(t.balances, c.Key) // known again only when the commit is answered
		keys[i] = c.Key
	}
	t.willLock(nil, keys)
	d.QueryRowLater(func(err error) error { return fmt.Errorf("insert transaction: %w", err) }, []any{&posted.ID}, nil,
		t.d.Rebind(`INSERT INTO transactions (user_id, kind, memo, created_at_ms) VALUES (?, ?, ?, ?) RETURNING id`),
		tr.User, tr.Kind, tr.Memo, ms(tr.CreatedAt))
	entries := tr.Entries(nil) // their amounts and texts; not their balances
	for _, c := range changes {
		i := slices.IndexFunc(entries, func(e coffer.Entry) bool { return e.Key == c.Key })
		e := entries[i] // the account's one entry
		var id, balance int64
		key, shortfall := c.Key, c.ShortfallCode
		onError := func(err error) error {
			if name, ok := t.d.CheckViolation(err); ok && strings.HasPrefix(name, "accounts") { // the accounts' CHECK: a user account below zero
				return &coffer.Error{Code: shortfall, Detail: key.String()}
			}
			return fmt.Errorf("change balance of %s: %w", key, t.refused(err))
		}
		query, args := changeBalance, append([]any{c.Delta}, keyArgs(key)...)
		if key == coffer.CardAccount(key.User) && key.IsUser() {
			query = changeCard(t.d.RefuseIf)
		} else {
			args = append(append(args, keyArgs(key)...), c.Delta)
		}
		args = append(args, key.User, key.Kind, e.Amount, e.Method, e.Details, ms(tr.CreatedAt)) // insertEntry's
		d.QueryRowLater(onError, []any{&id, &balance}, func() { posted.Balances[key] = balance }, t.d.Rebind(query), args...)
	}
	return posted, nil
}

// insertEntry ends changeCard's and changeBalance's statements: it inserts
// the account's entry of the transaction whose row this session inserted
// last, with the account's new balance as the balance after it, and
// returns the account's id and new balance. Its parameters: the entry's
// user, kind, amount, method, details and time.
const insertEntry = `INSERT INTO entries (tx_id, account_id, user_id, account_kind, amount, balance_after, group_balance_after, method, details, created_at_ms)
SELECT currval('transactions_id_seq'), account.id, CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT), account.balance, account.balance, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT)
`

// changeCard returns the statement that changes a user's card by a delta
// and inserts its entry (insertEntry), refused (refuseIf) if the card is
// not there: every user has one from registration (CreateUser), so that
// this needs no branch to create it, which would cost PostgreSQL more on
// every payment; and the statement must refuse rather than return no row
// (see Deferrer.QueryRowLater). Its parameters: the delta, the card's key,
// insertEntry's.
func changeCard(refuseIf string) string {
	if q, ok := changeCards.Load(refuseIf); ok {
		return q.(string)
	}
	q := `WITH account AS (
	UPDATE accounts SET balance = balance + CAST(? AS BIGINT) WHERE ` + accountWhere + ` RETURNING id, balance
)
` + insertEntry + `FROM (SELECT 1) AS one LEFT JOIN account ON true
WHERE NOT ` + refuseIf + `(account.id IS NULL, '` + string(coffer.ErrInternal) + `')
RETURNING account_id, balance_after`
	changeCards.Store(refuseIf, q)
	return q
}

// changeCards caches changeCard's statement for each refuseIf.
var changeCards sync.Map // refuseIf -> string

// oneEntryEach reports whether each account of tr, whose net changes are
// changes, has one entry, and none is a user's wealth holding.
func oneEntryEach(tr *coffer.Transaction, changes []coffer.AccountChange) bool {
	if len(changes) != 2*len(tr.Legs) {
		return false
	}
	for _, c := range changes {
		if c.Key.IsUser() && c.Key.Kind == coffer.KindWealth {
			return false
		}
	}
	return true
}

// changeBalance changes an account's balance by a delta, creating the
// account with the delta as its balance if it is not there yet (or, if
// another transaction created it meanwhile, changing it then), and inserts
// its entry (insertEntry). Its parameters: the delta and the key; the key
// and the delta; insertEntry's.
const changeBalance = `WITH changed AS (
	UPDATE accounts SET balance = balance + CAST(? AS BIGINT) WHERE ` + accountWhere + ` RETURNING id, balance
), created AS (
	INSERT INTO accounts (user_id, kind, asset, product, lot, matures_on, balance)
	SELECT CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), '', CAST(? AS BIGINT)
	WHERE NOT EXISTS (SELECT 1 FROM changed)
	ON CONFLICT (user_id, kind, asset, product, lot) DO UPDATE SET balance = accounts.balance + excluded.balance
	RETURNING id, balance
), account AS (
	SELECT id, balance FROM changed UNION ALL SELECT id, balance FROM created
)
` + insertEntry + `FROM account
RETURNING account_id, balance_after`

// entryColumns is the number of columns Post writes of an entry.
const entryColumns = 10

// insertEntries[n] inserts n entries in one statement; a transaction has
// at most two entries per leg.
var insertEntries = func() []string {
	out := make([]string, 2*coffer.MaxLegs+1)
	row := "(" + strings.Repeat("?, ", entryColumns-1) + "?)"
	for n := 1; n < len(out); n++ {
		out[n] = `INSERT INTO entries (tx_id, account_id, user_id, account_kind, amount, balance_after, group_balance_after, method, details, created_at_ms) VALUES ` +
			strings.Repeat(row+", ", n-1) + row
	}
	return out
}()

// step is one account that Post touches: a change, or only a lock.
type step struct {
	coffer.AccountChange
	lockOnly bool
}

// withGroupLocks returns changes with, for each user whose wealth holdings
// change while their card does not, a lock of the card in its place in the
// order of AccountKey.Less. A wealth bill shows the total of all the
// user's holdings after it, read by groupBalances; that total is right
// only if every writer of any of the holdings goes one at a time, and on
// PostgreSQL at READ COMMITTED two transactions on different holdings of
// one user (interest accrual on one lot, a purchase of another) would
// otherwise interleave, each missing the other's change. The card serves
// as the user's lock because every payment that moves wealth holds it
// already; taking it in Less order keeps the lock order global.
func withGroupLocks(changes []coffer.AccountChange) []step {
	cardChanges := map[coffer.UserID]bool{}
	for _, c := range changes {
		if c.Key.IsUser() && c.Key.Kind == coffer.KindCard && c.Key.Asset == coffer.AssetCNY && c.Key.Product == "" && c.Key.Lot == 0 {
			cardChanges[c.Key.User] = true
		}
	}
	out := make([]step, 0, len(changes)+1)
	for _, c := range changes {
		if c.Key.IsUser() && c.Key.Kind == coffer.KindWealth && !cardChanges[c.Key.User] {
			cardChanges[c.Key.User] = true // lock once
			out = append(out, step{AccountChange: coffer.AccountChange{Key: coffer.CardAccount(c.Key.User)}, lockOnly: true})
		}
		out = append(out, step{AccountChange: c})
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Key.Less(out[j-1].Key); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// updateBalance changes an account's balance by a delta unless that would
// take a user account below zero, and returns its id and new balance.
const updateBalance = `UPDATE accounts SET balance = balance + ? WHERE ` + accountWhere + ` AND (user_id = 0 OR balance + ? >= 0) RETURNING id, balance`

func updateBalanceArgs(c coffer.AccountChange) []any {
	args := append([]any{c.Delta}, keyArgs(c.Key)...)
	return append(args, c.Delta)
}

// createAccount creates the account of a first credit (of any movement,
// for a system account) with the change as its balance, and returns its
// id and balance. It runs after the transaction's other accounts were
// updated, out of their order; only an account's first movement comes
// here, and a deadlock it might cause is retried by the store.
func (t *Tx) createAccount(ctx context.Context, c coffer.AccountChange) (id, balance int64, err error) {
	err = t.row(ctx, `INSERT INTO accounts (user_id, kind, asset, product, lot, matures_on, balance) VALUES (?, ?, ?, ?, ?, '', ?)
		ON CONFLICT (user_id, kind, asset, product, lot) DO NOTHING RETURNING id, balance`, append(keyArgs(c.Key), c.Delta)...).Scan(&id, &balance)
	if err == nil {
		return id, balance, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, 0, fmt.Errorf("create account %s: %w", c.Key, err)
	}
	// Created by another transaction since: update it.
	err = t.row(ctx, updateBalance, updateBalanceArgs(c)...).Scan(&id, &balance)
	if errors.Is(err, sql.ErrNoRows) && c.Key.IsUser() && c.Delta < 0 {
		return 0, 0, &coffer.Error{Code: c.ShortfallCode, Detail: c.Key.String()}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("update balance of %s: %w", c.Key, err)
	}
	return id, balance, nil
}

// groupBalances returns, for each entry, the balance of the owner's whole
// group of accounts of that kind right after it: the sum of all wealth
// holdings for wealth entries, the account's own balance for the others.
func (t *Tx) groupBalances(ctx context.Context, entries []coffer.Entry) ([]int64, error) {
	out := make([]int64, len(entries))
	totals := map[coffer.UserID]int64{}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.Key.Kind != coffer.KindWealth || !e.Key.IsUser() {
			out[i] = e.BalanceAfter
			continue
		}
		total, ok := totals[e.Key.User]
		if !ok {
			if err := t.row(ctx, `SELECT COALESCE(SUM(balance), 0) FROM accounts WHERE user_id = ? AND kind = ?`, e.Key.User, coffer.KindWealth).Scan(&total); err != nil {
				return nil, err
			}
		}
		out[i] = total
		totals[e.Key.User] = total - e.Amount // the group's total before this entry
	}
	return out, nil
}

// CreateLot implements coffer.Tx.
func (t *Tx) CreateLot(ctx context.Context, user coffer.UserID, product, maturesOn string) (coffer.AccountKey, error) {
	k := coffer.AccountKey{User: user, Kind: coffer.KindWealth, Asset: coffer.AssetCNY, Product: product}
	if err := t.row(ctx, `SELECT COALESCE(MAX(lot), 0) + 1 FROM accounts WHERE user_id = ? AND kind = ? AND product = ?`, user, coffer.KindWealth, product).Scan(&k.Lot); err != nil {
		return k, err
	}
	err := t.exec(ctx, `INSERT INTO accounts (user_id, kind, asset, product, lot, matures_on, balance) VALUES (?, ?, ?, ?, ?, ?, 0)`,
		k.User, k.Kind, k.Asset, k.Product, k.Lot, maturesOn)
	return k, err
}

// AddDailySpend implements coffer.Tx with one upsert that keeps the limit
// in the day's row, where a CHECK (LimitCheck) refuses a total past it:
// the database itself refuses, so that the statement can be held back and
// sent with the next one (a refusal by changing no row could not be: see
// coffer.Tx.AddDailySpend), and a refused spend fails the transaction.
func (t *Tx) AddDailySpend(ctx context.Context, user coffer.UserID, day string, amount, limit coffer.Amount) error {
	if amount > limit {
		return &coffer.Error{Code: coffer.ErrLimitDaily}
	}
	t.willLock([]coffer.UserID{user}, nil) // the day's row is the user's
	return t.execLater(ctx, t.limitDaily, `INSERT INTO spend_days (user_id, day, spent, limit_fen) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, day) DO UPDATE SET spent = spend_days.spent + excluded.spent, limit_fen = excluded.limit_fen`,
		user, day, amount, limit)
}

// limitDaily turns the violation of the day's limit into ErrLimitDaily.
func (t *Tx) limitDaily(err error) error {
	if name, ok := t.d.CheckViolation(err); ok && strings.Contains(name, limitCheckName) {
		return &coffer.Error{Code: coffer.ErrLimitDaily}
	}
	return err
}

// Balance implements coffer.ReadTx; an account never credited is 0.
func (t *Tx) Balance(ctx context.Context, k coffer.AccountKey) (int64, error) {
	var bal int64
	err := t.row(ctx, `SELECT balance FROM accounts WHERE `+accountWhere, keyArgs(k)...).Scan(&bal)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return bal, err
}

// Holdings implements coffer.ReadTx.
func (t *Tx) Holdings(ctx context.Context, user coffer.UserID) ([]coffer.Holding, error) {
	rows, err := t.query(ctx, `SELECT kind, asset, product, lot, matures_on, balance FROM accounts WHERE user_id = ? ORDER BY id`, user)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []coffer.Holding
	for rows.Next() {
		h := coffer.Holding{Key: coffer.AccountKey{User: user}}
		if err := rows.Scan(&h.Key.Kind, &h.Key.Asset, &h.Key.Product, &h.Key.Lot, &h.MaturesOn, &h.Balance); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// Bills implements coffer.ReadTx by keyset paging on (user_id, account_kind, id).
func (t *Tx) Bills(ctx context.Context, user coffer.UserID, kind coffer.AccountKind, beforeID int64, limit int) ([]coffer.Bill, error) {
	if beforeID <= 0 {
		beforeID = 1<<63 - 1
	}
	rows, err := t.query(ctx, `SELECT id, created_at_ms, amount, group_balance_after, method, details FROM entries
		WHERE user_id = ? AND account_kind = ? AND id < ? ORDER BY id DESC LIMIT ?`, user, kind, beforeID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]coffer.Bill, 0, limit)
	for rows.Next() {
		var b coffer.Bill
		var at int64
		if err := rows.Scan(&b.ID, &at, &b.Amount, &b.BalanceAfter, &b.Method, &b.Details); err != nil {
			return nil, err
		}
		b.Date = fromMS(at)
		out = append(out, b)
	}
	return out, rows.Err()
}

// CheckLedger implements coffer.ReadTx.
func (t *Tx) CheckLedger(ctx context.Context) (coffer.LedgerReport, error) {
	var r coffer.LedgerReport
	if err := t.row(ctx, `SELECT (SELECT COUNT(*) FROM accounts), (SELECT COUNT(*) FROM entries), (SELECT COUNT(*) FROM transactions)`).Scan(&r.Accounts, &r.Entries, &r.Transactions); err != nil {
		return r, err
	}
	checks := []struct {
		what  string
		query string
	}{
		{"asset %v sums to %v, not 0", `SELECT asset, SUM(balance) FROM accounts GROUP BY asset HAVING SUM(balance) <> 0`},
		{"user account %v is negative: %v", `SELECT id, balance FROM accounts WHERE user_id <> 0 AND balance < 0`},
		{"account %v balance differs from its entries by %v", `SELECT a.id, a.balance - COALESCE(e.total, 0) FROM accounts a
			LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM entries GROUP BY account_id) e ON e.account_id = a.id
			WHERE a.balance <> COALESCE(e.total, 0)`},
		{"transaction %v does not balance: %v", `SELECT e.tx_id, a.asset || ' ' || CAST(SUM(e.amount) AS TEXT) FROM entries e JOIN accounts a ON a.id = e.account_id
			GROUP BY e.tx_id, a.asset HAVING SUM(e.amount) <> 0`},
		{"transaction %v (%v) has no entries", `SELECT t.id, t.kind FROM transactions t WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.tx_id = t.id)`},
		// No foreign key holds these on PostgreSQL (its migration 5).
		{"entry %v names %v, which is not there", `SELECT e.id, CASE WHEN a.id IS NULL THEN 'account ' || CAST(e.account_id AS TEXT) ELSE 'transaction ' || CAST(e.tx_id AS TEXT) END
			FROM entries e LEFT JOIN accounts a ON a.id = e.account_id LEFT JOIN transactions t ON t.id = e.tx_id WHERE a.id IS NULL OR t.id IS NULL`},
		{"account %v last balance_after differs from its balance by %v", `SELECT a.id, a.balance - e.balance_after FROM accounts a
			JOIN (SELECT account_id, MAX(id) AS last_id FROM entries GROUP BY account_id) l ON l.account_id = a.id
			JOIN entries e ON e.id = l.last_id WHERE e.balance_after <> a.balance`},
	}
	for _, c := range checks {
		rows, err := t.query(ctx, c.query)
		if err != nil {
			return r, fmt.Errorf("check %q: %w", c.what, err)
		}
		for rows.Next() {
			var a, b string
			if err := rows.Scan(&a, &b); err != nil {
				rows.Close()
				return r, err
			}
			r.Problems = append(r.Problems, fmt.Sprintf(c.what, a, b))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return r, err
		}
	}
	return r, nil
}

// Tables lists every table of the schema.
var Tables = []string{"users", "sessions", "attempts", "idempotency", "accounts", "transactions", "entries", "spend_days", "wealth_products", "funds", "fund_navs", "gold_quote", "business_days"}

// CountRows implements coffer.ReadTx.
func (t *Tx) CountRows(ctx context.Context) (map[string]int64, error) {
	out := make(map[string]int64, len(Tables))
	for _, table := range Tables {
		var n int64
		if err := t.row(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
			return nil, err
		}
		out[table] = n
	}
	return out, nil
}

// GoldQuote implements coffer.ReadTx.
func (t *Tx) GoldQuote(ctx context.Context) (coffer.GoldQuote, error) {
	var q coffer.GoldQuote
	var at int64
	err := t.row(ctx, `SELECT price, updated_at_ms FROM gold_quote WHERE id = 1`).Scan(&q.Price, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return q, &coffer.Error{Code: coffer.ErrProductNotFound, Detail: "no gold quote"}
	}
	q.UpdatedAt = fromMS(at)
	return q, err
}

// SetGoldQuote implements coffer.Tx.
func (t *Tx) SetGoldQuote(ctx context.Context, q coffer.GoldQuote) error {
	err := t.exec(ctx, `INSERT INTO gold_quote (id, price, updated_at_ms) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET price = excluded.price, updated_at_ms = excluded.updated_at_ms`, q.Price, ms(q.UpdatedAt))
	return err
}

const wealthColumns = `kind, name, annual_yield_bp, min_amount, term_days, retired`

func scanWealth(r interface{ Scan(...any) error }) (coffer.WealthProduct, error) {
	var p coffer.WealthProduct
	var retired int
	err := r.Scan(&p.Kind, &p.Name, &p.AnnualYieldBP, &p.MinAmount, &p.TermDays, &retired)
	p.Retired = retired != 0
	return p, err
}

// WealthProducts implements coffer.ReadTx.
func (t *Tx) WealthProducts(ctx context.Context) ([]coffer.WealthProduct, error) {
	rows, err := t.query(ctx, `SELECT `+wealthColumns+` FROM wealth_products ORDER BY term_days, kind`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []coffer.WealthProduct
	for rows.Next() {
		p, err := scanWealth(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// WealthProduct implements coffer.ReadTx.
func (t *Tx) WealthProduct(ctx context.Context, kind string) (coffer.WealthProduct, error) {
	p, err := scanWealth(t.row(ctx, `SELECT `+wealthColumns+` FROM wealth_products WHERE kind = ?`, kind))
	if errors.Is(err, sql.ErrNoRows) {
		return p, &coffer.Error{Code: coffer.ErrProductNotFound, Field: "kind"}
	}
	return p, err
}

// PutWealthProduct implements coffer.Tx.
func (t *Tx) PutWealthProduct(ctx context.Context, p coffer.WealthProduct) error {
	err := t.exec(ctx, `INSERT INTO wealth_products (`+wealthColumns+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (kind) DO UPDATE SET name = excluded.name, annual_yield_bp = excluded.annual_yield_bp,
		min_amount = excluded.min_amount, term_days = excluded.term_days, retired = excluded.retired`,
		p.Kind, p.Name, p.AnnualYieldBP, p.MinAmount, p.TermDays, boolInt(p.Retired))
	return err
}

const fundColumns = `code, name, nav, nav_date, retired`

func scanFund(r interface{ Scan(...any) error }) (coffer.Fund, error) {
	var f coffer.Fund
	var retired int
	err := r.Scan(&f.Code, &f.Name, &f.NAV, &f.NAVDate, &retired)
	f.Retired = retired != 0
	return f, err
}

// Funds implements coffer.ReadTx.
func (t *Tx) Funds(ctx context.Context) ([]coffer.Fund, error) {
	rows, err := t.query(ctx, `SELECT `+fundColumns+` FROM funds ORDER BY code`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []coffer.Fund
	for rows.Next() {
		f, err := scanFund(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// Fund implements coffer.ReadTx.
func (t *Tx) Fund(ctx context.Context, code string) (coffer.Fund, error) {
	f, err := scanFund(t.row(ctx, `SELECT `+fundColumns+` FROM funds WHERE code = ?`, code))
	if errors.Is(err, sql.ErrNoRows) {
		return f, &coffer.Error{Code: coffer.ErrProductNotFound, Field: "code"}
	}
	return f, err
}

// PutFund implements coffer.Tx; it also records the NAV in the history.
func (t *Tx) PutFund(ctx context.Context, f coffer.Fund) error {
	if err := t.exec(ctx, `INSERT INTO funds (`+fundColumns+`) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (code) DO UPDATE SET name = excluded.name, nav = excluded.nav, nav_date = excluded.nav_date, retired = excluded.retired`,
		f.Code, f.Name, f.NAV, f.NAVDate, boolInt(f.Retired)); err != nil {
		return err
	}
	err := t.exec(ctx, `INSERT INTO fund_navs (code, nav_date, nav) VALUES (?, ?, ?)
		ON CONFLICT (code, nav_date) DO UPDATE SET nav = excluded.nav`, f.Code, f.NAVDate, f.NAV)
	return err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Schema is the portable part of the schema: each store wraps it in its own
// migration, substituting the identity column type for {{ID}} and the
// binary type for {{BLOB}}.
const Schema = `
CREATE TABLE users (
	id {{ID}},
	username TEXT NOT NULL,
	username_key TEXT NOT NULL UNIQUE,
	email TEXT NOT NULL,
	email_key TEXT NOT NULL UNIQUE,
	mobile TEXT NOT NULL UNIQUE,
	cardnum TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	pay_password_mac {{BLOB}},
	pay_failures INTEGER NOT NULL DEFAULT 0,
	pay_locked_until_ms BIGINT NOT NULL DEFAULT 0,
	created_at_ms BIGINT NOT NULL
);
CREATE TABLE sessions (
	token_hash {{BLOB}} PRIMARY KEY,
	user_id BIGINT NOT NULL REFERENCES users (id),
	created_at_ms BIGINT NOT NULL,
	last_seen_at_ms BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_seen ON sessions (last_seen_at_ms);
CREATE TABLE attempts (
	key TEXT PRIMARY KEY,
	failures INTEGER NOT NULL,
	window_start_ms BIGINT NOT NULL,
	locked_until_ms BIGINT NOT NULL
);
CREATE TABLE idempotency (
	user_id BIGINT NOT NULL REFERENCES users (id),
	key TEXT NOT NULL,
	request_hash {{BLOB}} NOT NULL,
	status INTEGER NOT NULL,
	body {{BLOB}} NOT NULL,
	created_at_ms BIGINT NOT NULL,
	PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at_ms);
CREATE TABLE accounts (
	id {{ID}},
	user_id BIGINT NOT NULL,
	kind TEXT NOT NULL,
	asset TEXT NOT NULL,
	product TEXT NOT NULL DEFAULT '',
	lot BIGINT NOT NULL DEFAULT 0,
	matures_on TEXT NOT NULL DEFAULT '',
	balance BIGINT NOT NULL,
	interest_carry BIGINT NOT NULL DEFAULT 0,
	UNIQUE (user_id, kind, asset, product, lot),
	CHECK (user_id = 0 OR balance >= 0)
);
CREATE TABLE transactions (
	id {{ID}},
	user_id BIGINT NOT NULL,
	kind TEXT NOT NULL,
	memo TEXT NOT NULL DEFAULT '',
	created_at_ms BIGINT NOT NULL
);
CREATE TABLE entries (
	id {{ID}},
	tx_id BIGINT NOT NULL REFERENCES transactions (id),
	account_id BIGINT NOT NULL REFERENCES accounts (id),
	user_id BIGINT NOT NULL,
	account_kind TEXT NOT NULL,
	amount BIGINT NOT NULL,
	balance_after BIGINT NOT NULL,
	group_balance_after BIGINT NOT NULL,
	method TEXT NOT NULL,
	details TEXT NOT NULL,
	created_at_ms BIGINT NOT NULL
);
CREATE INDEX entries_owner ON entries (user_id, account_kind, id);
CREATE INDEX entries_account ON entries (account_id, id);
CREATE INDEX entries_tx ON entries (tx_id);
CREATE TABLE spend_days (
	user_id BIGINT NOT NULL,
	day TEXT NOT NULL,
	spent BIGINT NOT NULL,
	PRIMARY KEY (user_id, day)
);
CREATE TABLE wealth_products (
	kind TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	annual_yield_bp BIGINT NOT NULL,
	min_amount BIGINT NOT NULL,
	term_days INTEGER NOT NULL,
	retired INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE funds (
	code TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	nav BIGINT NOT NULL,
	nav_date TEXT NOT NULL,
	retired INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE fund_navs (
	code TEXT NOT NULL,
	nav_date TEXT NOT NULL,
	nav BIGINT NOT NULL,
	PRIMARY KEY (code, nav_date)
);
CREATE TABLE business_days (
	day TEXT PRIMARY KEY,
	closed_at_ms BIGINT NOT NULL
);
CREATE TABLE gold_quote (
	id INTEGER PRIMARY KEY,
	price BIGINT NOT NULL,
	updated_at_ms BIGINT NOT NULL
);
`

// DropAccountIndex is the second migration. The index of entries by
// account and id was read only by `coffer check` (which scans every entry
// anyway) and by interest accrual (which finds a holding's entries through
// the owner's index as well), but every entry written paid for it with an
// insert at a random place in the index, a page more in most commits.
const DropAccountIndex = `DROP INDEX IF EXISTS entries_account;`

// limitCheckName names the CHECK of LimitCheck.
const limitCheckName = "spend_days_within_limit"

// LimitCheck is the third migration, in each store's form: the day's
// limit is kept in its row (each spend writes the limit it was checked
// against), and a CHECK refuses a total past it. Rows from before it get
// the largest limit, which nothing passes. A server of the previous build
// still works beside one of this build as long as both have the same
// limit: its conditional upsert never passes the limit the row holds.
var LimitCheck = struct{ PostgreSQL, SQLite string }{
	// NOT VALID: the rows already there (all within the largest limit)
	// are not scanned under the table's lock; every row written from now
	// on is checked.
	PostgreSQL: `ALTER TABLE spend_days ADD COLUMN limit_fen BIGINT NOT NULL DEFAULT 9223372036854775807;
ALTER TABLE spend_days ADD CONSTRAINT ` + limitCheckName + ` CHECK (spent <= limit_fen) NOT VALID;`,
	SQLite: `ALTER TABLE spend_days ADD COLUMN limit_fen INTEGER NOT NULL DEFAULT 9223372036854775807
	CONSTRAINT ` + limitCheckName + ` CHECK (spent <= limit_fen);`,
}

// RefuseIf is the fourth migration on PostgreSQL: the function
// Dialect.RefuseIf names. Its refusal is SQLSTATE RefusedState, with the
// code as its message.
const RefuseIf = `CREATE OR REPLACE FUNCTION coffer_refuse_if(refused BOOLEAN, code TEXT) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
	IF refused THEN
		RAISE EXCEPTION '%', code USING ERRCODE = '` + RefusedState + `';
	END IF;
	RETURN FALSE;
END
$$;`

// RefusedState is the SQLSTATE of RefuseIf's refusal, in a class that
// PostgreSQL does not use.
const RefusedState = "CF001"

// SchemaFor returns Schema with the identity and binary types filled in.
func SchemaFor(identity, blob string) string {
	return strings.NewReplacer("{{ID}}", identity, "{{BLOB}}", blob).Replace(Schema)
}

// LastClosedDay implements coffer.ReadTx.
func (t *Tx) LastClosedDay(ctx context.Context) (string, error) {
	var day sql.NullString
	err := t.row(ctx, `SELECT MAX(day) FROM business_days`).Scan(&day)
	return day.String, err
}

// FirstEntryAt implements coffer.ReadTx.
func (t *Tx) FirstEntryAt(ctx context.Context, kind coffer.AccountKind) (time.Time, bool, error) {
	var at sql.NullInt64
	err := t.row(ctx, `SELECT MIN(created_at_ms) FROM entries WHERE account_kind = ? AND user_id <> 0`, kind).Scan(&at)
	if err != nil || !at.Valid {
		return time.Time{}, false, err
	}
	return fromMS(at.Int64), true, nil
}

// WealthHoldings implements coffer.ReadTx.
func (t *Tx) WealthHoldings(ctx context.Context) ([]coffer.Holding, error) {
	rows, err := t.query(ctx, `SELECT user_id, kind, asset, product, lot, matures_on, balance, interest_carry FROM accounts
		WHERE kind = ? AND user_id <> 0 ORDER BY user_id, id`, coffer.KindWealth)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []coffer.Holding
	for rows.Next() {
		var h coffer.Holding
		if err := rows.Scan(&h.Key.User, &h.Key.Kind, &h.Key.Asset, &h.Key.Product, &h.Key.Lot, &h.MaturesOn, &h.Balance, &h.Carry); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// BalanceBefore implements coffer.ReadTx: the balance less the entries
// created at or after before. The entries are found through their owner's
// index (entries_owner): there is no index by account (see
// DropAccountIndex), and a user's holdings of one kind are few.
func (t *Tx) BalanceBefore(ctx context.Context, key coffer.AccountKey, before time.Time) (int64, error) {
	var bal int64
	err := t.row(ctx, `SELECT a.balance - COALESCE((SELECT SUM(e.amount) FROM entries e
			WHERE e.user_id = a.user_id AND e.account_kind = a.kind AND e.account_id = a.id AND e.created_at_ms >= ?), 0)
		FROM accounts a WHERE `+strings.ReplaceAll(accountWhere, "user_id", "a.user_id"), append([]any{ms(before)}, keyArgs(key)...)...).Scan(&bal)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return bal, err
}

// CloseDay implements coffer.Tx.
func (t *Tx) CloseDay(ctx context.Context, day string, at time.Time) error {
	err := t.exec(ctx, `INSERT INTO business_days (day, closed_at_ms) VALUES (?, ?)`, day, ms(at))
	if _, dup := t.d.UniqueViolation(err); err != nil && dup {
		return &coffer.Error{Code: coffer.ErrDayClosed, Detail: day}
	}
	return err
}

// SetInterestCarry implements coffer.Tx.
func (t *Tx) SetInterestCarry(ctx context.Context, key coffer.AccountKey, carry int64) error {
	err := t.exec(ctx, `UPDATE accounts SET interest_carry = ? WHERE `+accountWhere, append([]any{carry}, keyArgs(key)...)...)
	return err
}

// SetFundNAV implements coffer.Tx.
func (t *Tx) SetFundNAV(ctx context.Context, code, date string, nav coffer.NAV) error {
	if _, err := t.Fund(ctx, code); err != nil {
		return err
	}
	if err := t.exec(ctx, `INSERT INTO fund_navs (code, nav_date, nav) VALUES (?, ?, ?)
		ON CONFLICT (code, nav_date) DO UPDATE SET nav = excluded.nav`, code, date, nav); err != nil {
		return err
	}
	err := t.exec(ctx, `UPDATE funds SET nav = ?, nav_date = ? WHERE code = ? AND nav_date <= ?`, nav, date, code, date)
	return err
}
