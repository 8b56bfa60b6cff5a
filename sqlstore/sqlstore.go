// Package sqlstore implements coffer.Tx in portable SQL over database/sql.
// The sqlite and postgres packages own their connections, schema, locking
// and retries, and hand a Querier and a Dialect to this package; the SQL
// here keeps to what both (and distributed PostgreSQL-compatible engines)
// support: ON CONFLICT, RETURNING, integer times in unix milliseconds.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"coffer"
)

// Querier is what a Tx runs its statements on: database/sql statements
// (SQLite's connections, which cache them prepared) or a driver's own API
// (PostgreSQL's, which sends a transaction's BEGIN with its first
// statement).
type Querier interface {
	// Exec runs a statement that returns no rows.
	Exec(ctx context.Context, query string, args ...any) error
	// Query runs a statement that returns rows.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// QueryRow runs a statement that returns at most one row; the row's
	// Scan reports an error that errors.Is sql.ErrNoRows when there was
	// none.
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Pipeliner is a Querier that can send several statements in one round
// trip.
type Pipeliner interface {
	// QueryRows runs queries[i] with args[i], in order, and scans the row
	// each returns into dests[i]; errs[i] is that statement's error
	// (one that errors.Is sql.ErrNoRows when it returned no row).
	QueryRows(ctx context.Context, queries []string, args, dests [][]any) (errs []error)
}

// Deferrer is a Querier that can hold a statement back and send it with
// the next one, or with the commit, saving its round trip. The statement's
// error, passed through onError when it is not nil, then comes from the
// statement that carried it (or the commit), and the transaction does not
// commit. Only a statement whose failure PostgreSQL itself reports may be
// held back: one that "fails" by changing no row would be committed all
// the same when COMMIT carries it.
type Deferrer interface {
	ExecLater(onError func(error) error, query string, args ...any)
	// QueryRowLater is ExecLater for a statement that returns a row:
	// when its answer is read, the row is scanned into dests, and then
	// done runs (when not nil). The statement must return a row whenever
	// it does not fail in the database: a missing one is found only as
	// its answer is read, after a COMMIT sent with it may have committed.
	QueryRowLater(onError func(error) error, dests []any, done func(), query string, args ...any)
}

// LockPlanner is a Deferrer told which rows the statements it holds back
// will lock: users by id, accounts by key. PostgreSQL's batches take the
// rows of all their transactions first, in one order (users by id, then
// accounts in AccountKey.Less order, the order of a transaction of its
// own), so that two batches never wait on each other in a cycle. A
// statement that writes a user's other rows (a day's spending, an
// idempotency record) names the user's row, which guards them.
type LockPlanner interface {
	WillLock(users []coffer.UserID, accounts []coffer.AccountKey)
}

// willLock tells the Querier, when it is a LockPlanner, which rows the
// statements about to be held back lock.
func (t *Tx) willLock(users []coffer.UserID, accounts []coffer.AccountKey) {
	if p, ok := t.q.(LockPlanner); ok {
		p.WillLock(users, accounts)
	}
}

// Rows is the result of Querier.Query, as *sql.Rows is.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// Row is the result of Querier.QueryRow, as *sql.Row is.
type Row interface {
	Scan(dest ...any) error
}

// Dialect is what differs between the databases.
type Dialect struct {
	// Dollar rewrites ? placeholders as $1, $2, ... (PostgreSQL).
	Dollar bool
	// ForUpdate ends a SELECT that must hold the rows it reads until the
	// transaction ends: " FOR UPDATE" on PostgreSQL; "" on SQLite, whose
	// one writer holds the whole database already.
	ForUpdate string
	// UniqueViolation reports whether err is a unique-constraint
	// violation and returns the text that names the constraint.
	UniqueViolation func(err error) (string, bool)
	// CheckViolation reports whether err is a CHECK-constraint violation
	// and returns the text that names the constraint.
	CheckViolation func(err error) (string, bool)
	// RefuseIf names the SQL function refuse_if(refused BOOLEAN, code
	// TEXT) that fails its statement with code when refused (its error
	// recognised by Refused), so that a statement that decides can be held
	// back like any other; "" where the store has none, and sqlstore
	// decides in Go instead.
	RefuseIf string
	// Refused reports whether err is RefuseIf's refusal, and its code.
	Refused func(err error) (coffer.Code, bool)
	// Blob is the binary column type: BYTEA, BLOB.
	Blob string

	rebound sync.Map // query -> rebound query
}

// Rebind returns query with the dialect's placeholders.
func (d *Dialect) Rebind(query string) string {
	if !d.Dollar {
		return query
	}
	if q, ok := d.rebound.Load(query); ok {
		return q.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	d.rebound.Store(query, b.String())
	return b.String()
}

// Tx implements coffer.Tx on a Querier.
type Tx struct {
	q Querier
	d *Dialect
	// balances are the accounts' balances as this transaction's Post left
	// them, for PutIdempotent's BodyBalanceOf; an account that PostLater
	// changed by a statement held back is not among them.
	balances map[coffer.AccountKey]int64
}

// NewTx returns a Tx running its statements on q.
func NewTx(q Querier, d *Dialect) *Tx { return &Tx{q: q, d: d} }

var _ coffer.Tx = (*Tx)(nil)

func (t *Tx) exec(ctx context.Context, query string, args ...any) error {
	return t.q.Exec(ctx, t.d.Rebind(query), args...)
}

func (t *Tx) query(ctx context.Context, query string, args ...any) (Rows, error) {
	return t.q.Query(ctx, t.d.Rebind(query), args...)
}

func (t *Tx) row(ctx context.Context, query string, args ...any) Row {
	return t.q.QueryRow(ctx, t.d.Rebind(query), args...)
}

// execLater runs a statement whose answer nothing waits for: held back
// and sent with the next statement when the Querier is a Deferrer, else
// at once. onError (when not nil) turns its failure into the error to
// report, wherever that failure comes to light.
func (t *Tx) execLater(ctx context.Context, onError func(error) error, query string, args ...any) error {
	if d, ok := t.q.(Deferrer); ok {
		d.ExecLater(onError, t.d.Rebind(query), args...)
		return nil
	}
	err := t.exec(ctx, query, args...)
	if err != nil && onError != nil {
		err = onError(err)
	}
	return err
}

// rows runs single-row statements in order, sent together when the
// Querier is a Pipeliner, and returns each one's error.
func (t *Tx) rows(ctx context.Context, queries []string, args, dests [][]any) []error {
	rebound := make([]string, len(queries))
	for i, q := range queries {
		rebound[i] = t.d.Rebind(q)
	}
	if p, ok := t.q.(Pipeliner); ok {
		return p.QueryRows(ctx, rebound, args, dests)
	}
	errs := make([]error, len(queries))
	for i, q := range rebound {
		errs[i] = t.q.QueryRow(ctx, q, args[i]...).Scan(dests[i]...)
	}
	return errs
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

const userColumns = `id, username, email, mobile, cardnum, password_hash, pay_password_mac, pay_failures, pay_locked_until_ms, created_at_ms`

func scanUser(r interface{ Scan(...any) error }) (coffer.User, error) {
	var d userRow
	err := r.Scan(d.dests()...)
	if errors.Is(err, sql.ErrNoRows) {
		return coffer.User{}, &coffer.Error{Code: coffer.ErrUserNotFound}
	}
	return d.user(), err
}

// userRow receives the userColumns of a row.
type userRow struct {
	u               coffer.User
	locked, created int64
}

func (d *userRow) dests() []any {
	return []any{&d.u.ID, &d.u.Username, &d.u.Email, &d.u.Mobile, &d.u.CardNum, &d.u.PasswordHash, &d.u.PayPasswordMAC, &d.u.PayFailures, &d.locked, &d.created}
}

func (d *userRow) user() coffer.User {
	d.u.PayLockedUntil, d.u.CreatedAt = fromMS(d.locked), fromMS(d.created)
	return d.u
}

// UserByID implements coffer.ReadTx.
func (t *Tx) UserByID(ctx context.Context, id coffer.UserID) (coffer.User, error) {
	return scanUser(t.row(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
}

// UserByMobile implements coffer.ReadTx.
func (t *Tx) UserByMobile(ctx context.Context, mobile string) (coffer.User, error) {
	return scanUser(t.row(ctx, userByMobileQuery, mobile))
}

const userByMobileQuery = `SELECT ` + userColumns + ` FROM users WHERE mobile = ?`

// UserByUsername implements coffer.ReadTx; usernames match regardless of case.
func (t *Tx) UserByUsername(ctx context.Context, username string) (coffer.User, error) {
	return scanUser(t.row(ctx, `SELECT `+userColumns+` FROM users WHERE username_key = ?`, coffer.FoldKey(username)))
}

// CountUsers implements coffer.ReadTx.
func (t *Tx) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := t.row(ctx, `SELECT COUNT(*) FROM users`).Scan(&n)
	return n, err
}

// CreateUser implements coffer.Tx.
func (t *Tx) CreateUser(ctx context.Context, u *coffer.User) error {
	err := t.row(ctx, `INSERT INTO users (username, username_key, email, email_key, mobile, cardnum, password_hash, pay_password_mac, pay_failures, pay_locked_until_ms, created_at_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?) RETURNING id`,
		u.Username, coffer.FoldKey(u.Username), u.Email, coffer.FoldKey(u.Email), u.Mobile, u.CardNum, u.PasswordHash, u.PayPasswordMAC, ms(u.CreatedAt)).Scan(&u.ID)
	if err != nil {
		if name, ok := t.d.UniqueViolation(err); ok {
			switch {
			case strings.Contains(name, "username"):
				return &coffer.Error{Code: coffer.ErrUsernameTaken}
			case strings.Contains(name, "email"):
				return &coffer.Error{Code: coffer.ErrEmailTaken}
			case strings.Contains(name, "cardnum"):
				return &coffer.Error{Code: coffer.ErrCardTaken}
			case strings.Contains(name, "mobile"):
				return &coffer.Error{Code: coffer.ErrMobileTaken}
			}
		}
		return fmt.Errorf("insert user: %w", err)
	}
	err = t.exec(ctx, `INSERT INTO accounts (user_id, kind, asset, product, lot, matures_on, balance) VALUES (?, ?, ?, '', 0, '', 0)`, u.ID, coffer.KindCard, coffer.AssetCNY)
	return err
}

// LockUser implements coffer.Tx with a SELECT that holds the row (see
// Dialect.ForUpdate) and reads it as it is after any transaction that held
// it before. It writes nothing: an UPDATE that changed nothing took the
// same lock for a new row version, and a page in every group commit.
func (t *Tx) LockUser(ctx context.Context, id coffer.UserID) (coffer.User, error) {
	return scanUser(t.row(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`+t.d.ForUpdate, id))
}

// LockPayable implements coffer.Tx: held back where the dialect has
// RefuseIf, else decided on the row LockUser reads.
func (t *Tx) LockPayable(ctx context.Context, user coffer.UserID, now time.Time) error {
	if t.d.RefuseIf == "" {
		u, err := t.LockUser(ctx, user)
		if err == nil && now.Before(u.PayLockedUntil) {
			return &coffer.Error{Code: coffer.ErrPayLocked}
		}
		return err
	}
	// pay_locked_until_ms > ms(now) is now.Before(PayLockedUntil) in
	// whole milliseconds: both hold up to the lock's end, and neither from
	// its instant on. A row changed while this waited for it is decided
	// again on its new version (PostgreSQL re-runs the scan on it). A user
	// that does not exist is not refused here.
	t.willLock([]coffer.UserID{user}, nil)
	return t.execLater(ctx, t.refused, `SELECT `+t.d.RefuseIf+`(pay_locked_until_ms > ?, '`+string(coffer.ErrPayLocked)+`')
		FROM users WHERE id = ?`+t.d.ForUpdate, ms(now), user)
}

// refused turns RefuseIf's refusal into the error of its code.
func (t *Tx) refused(err error) error {
	if code, ok := t.d.Refused(err); ok {
		return &coffer.Error{Code: code}
	}
	return err
}

// ClearPayFailures implements coffer.Tx: nothing waits for it.
func (t *Tx) ClearPayFailures(ctx context.Context, user coffer.UserID) error {
	t.willLock([]coffer.UserID{user}, nil)
	return t.execLater(ctx, nil, `UPDATE users SET pay_failures = 0, pay_locked_until_ms = 0 WHERE id = ? AND pay_failures > 0`, user)
}

// SetPayPassword implements coffer.Tx.
func (t *Tx) SetPayPassword(ctx context.Context, user coffer.UserID, mac []byte) error {
	err := t.exec(ctx, `UPDATE users SET pay_password_mac = ? WHERE id = ?`, mac, user)
	return err
}

// AddPayFailure implements coffer.Tx.
func (t *Tx) AddPayFailure(ctx context.Context, user coffer.UserID) (int, error) {
	var n int
	err := t.row(ctx, `UPDATE users SET pay_failures = pay_failures + 1 WHERE id = ? RETURNING pay_failures`, user).Scan(&n)
	return n, err
}

// SetPayFailures implements coffer.Tx.
func (t *Tx) SetPayFailures(ctx context.Context, user coffer.UserID, failures int, lockedUntil time.Time) error {
	err := t.exec(ctx, `UPDATE users SET pay_failures = ?, pay_locked_until_ms = ? WHERE id = ?`, failures, ms(lockedUntil), user)
	return err
}

// Session implements coffer.ReadTx.
func (t *Tx) Session(ctx context.Context, tokenHash []byte) (coffer.Session, error) {
	s := coffer.Session{TokenHash: tokenHash}
	var created, seen int64
	err := t.row(ctx, `SELECT user_id, created_at_ms, last_seen_at_ms FROM sessions WHERE token_hash = ?`, tokenHash).Scan(&s.User, &created, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return s, &coffer.Error{Code: coffer.ErrUnauthorized}
	}
	s.CreatedAt, s.LastSeenAt = fromMS(created), fromMS(seen)
	return s, err
}

// profileColumns are a session's and its user's profile, for
// SessionProfile and SessionHoldings, read by profileRow.
const profileColumns = `s.user_id, s.created_at_ms, s.last_seen_at_ms, u.id, u.username, u.email, u.mobile, u.cardnum`

// profileRow receives the profileColumns of a row.
type profileRow struct {
	s             coffer.Session
	u             coffer.User
	created, seen int64
}

func (d *profileRow) dests() []any {
	return []any{&d.s.User, &d.created, &d.seen, &d.u.ID, &d.u.Username, &d.u.Email, &d.u.Mobile, &d.u.CardNum}
}

func (d *profileRow) session() coffer.Session {
	d.s.CreatedAt, d.s.LastSeenAt = fromMS(d.created), fromMS(d.seen)
	return d.s
}

// SessionProfile implements coffer.ReadTx: 8 columns, where the session
// with its whole user would be 13, for the requests that show a user (info,
// the wallet).
func (t *Tx) SessionProfile(ctx context.Context, tokenHash []byte) (coffer.Session, coffer.User, error) {
	d := profileRow{s: coffer.Session{TokenHash: tokenHash}}
	err := t.row(ctx, `SELECT `+profileColumns+` FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`, tokenHash).
		Scan(d.dests()...)
	if errors.Is(err, sql.ErrNoRows) {
		return d.s, d.u, &coffer.Error{Code: coffer.ErrUnauthorized}
	}
	return d.session(), d.u, err
}

// SessionHoldings implements coffer.ReadTx: a row for each of the user's
// accounts, each with the session and the profile, or one row with no
// account when the user has none.
func (t *Tx) SessionHoldings(ctx context.Context, tokenHash []byte) (coffer.Session, coffer.User, []coffer.Holding, error) {
	d := profileRow{s: coffer.Session{TokenHash: tokenHash}}
	rows, err := t.query(ctx, `SELECT `+profileColumns+`, a.kind, a.asset, a.product, a.lot, a.matures_on, a.balance
		FROM sessions s JOIN users u ON u.id = s.user_id LEFT JOIN accounts a ON a.user_id = s.user_id
		WHERE s.token_hash = ? ORDER BY a.id`, tokenHash)
	if err != nil {
		return d.s, d.u, nil, err
	}
	defer rows.Close()
	var holdings []coffer.Holding
	found := false
	for rows.Next() {
		var kind, asset, product, maturesOn sql.NullString
		var lot, balance sql.NullInt64
		if err := rows.Scan(append(d.dests(), &kind, &asset, &product, &lot, &maturesOn, &balance)...); err != nil {
			return d.s, d.u, nil, err
		}
		found = true
		if kind.Valid {
			key := coffer.AccountKey{User: d.u.ID, Kind: coffer.AccountKind(kind.String), Asset: coffer.Asset(asset.String), Product: product.String, Lot: lot.Int64}
			holdings = append(holdings, coffer.Holding{Key: key, Balance: balance.Int64, MaturesOn: maturesOn.String})
		}
	}
	if err := rows.Err(); err != nil {
		return d.s, d.u, nil, err
	}
	if !found {
		return d.s, d.u, nil, &coffer.Error{Code: coffer.ErrUnauthorized}
	}
	return d.session(), d.u, holdings, nil
}

// CreateSession implements coffer.Tx.
func (t *Tx) CreateSession(ctx context.Context, s coffer.Session) error {
	err := t.exec(ctx, `INSERT INTO sessions (token_hash, user_id, created_at_ms, last_seen_at_ms) VALUES (?, ?, ?, ?)`, s.TokenHash, s.User, ms(s.CreatedAt), ms(s.LastSeenAt))
	return err
}

// TouchSession implements coffer.Tx.
func (t *Tx) TouchSession(ctx context.Context, tokenHash []byte, at time.Time) error {
	err := t.exec(ctx, `UPDATE sessions SET last_seen_at_ms = ? WHERE token_hash = ? AND last_seen_at_ms < ?`, ms(at), tokenHash, ms(at))
	return err
}

// DeleteSession implements coffer.Tx.
func (t *Tx) DeleteSession(ctx context.Context, tokenHash []byte) error {
	err := t.exec(ctx, `DELETE FROM sessions WHERE token_hash = ?`, tokenHash)
	return err
}

// DeleteExpired implements coffer.Tx: it removes sessions idle for a day
// past any sane idle limit, attempt counters whose lock and window are long
// over, and idempotency keys older than the 24 hours they are promised.
func (t *Tx) DeleteExpired(ctx context.Context, now time.Time) error {
	const keep = 48 * time.Hour
	cutoff := ms(now.Add(-keep))
	for _, q := range []string{
		`DELETE FROM sessions WHERE last_seen_at_ms < ?`,
		`DELETE FROM attempts WHERE window_start_ms < ? AND locked_until_ms < ?`,
		`DELETE FROM idempotency WHERE created_at_ms < ?`,
	} {
		args := []any{cutoff}
		if strings.Count(q, "?") == 2 {
			args = append(args, ms(now))
		}
		if err := t.exec(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

// Attempt implements coffer.ReadTx; an unknown key is the zero Attempt.
func (t *Tx) Attempt(ctx context.Context, key string) (coffer.Attempt, error) {
	var d attemptRow
	return d.attempt(t.row(ctx, attemptQuery, key).Scan(d.dests()...))
}

const attemptQuery = `SELECT key, failures, window_start_ms, locked_until_ms FROM attempts WHERE key = ?`

// attemptRow receives a row of attemptQuery.
type attemptRow struct {
	a             coffer.Attempt
	start, locked int64
}

func (d *attemptRow) dests() []any { return []any{&d.a.Key, &d.a.Failures, &d.start, &d.locked} }

// attempt returns the attempt read with err; none read is the zero Attempt.
func (d *attemptRow) attempt(err error) (coffer.Attempt, error) {
	if errors.Is(err, sql.ErrNoRows) {
		return coffer.Attempt{}, nil
	}
	d.a.WindowStart, d.a.LockedUntil = fromMS(d.start), fromMS(d.locked)
	return d.a, err
}

// PutAttempt implements coffer.Tx.
func (t *Tx) PutAttempt(ctx context.Context, a coffer.Attempt) error {
	err := t.exec(ctx, `INSERT INTO attempts (key, failures, window_start_ms, locked_until_ms) VALUES (?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, window_start_ms = excluded.window_start_ms, locked_until_ms = excluded.locked_until_ms`,
		a.Key, a.Failures, ms(a.WindowStart), ms(a.LockedUntil))
	return err
}

// CountAttempt implements coffer.Tx with one upsert: the row lock it takes
// serialises concurrent counts of one key.
func (t *Tx) CountAttempt(ctx context.Context, key string, now time.Time, window time.Duration) (coffer.Attempt, error) {
	a := coffer.Attempt{Key: key}
	var start, locked int64
	expired := ms(now.Add(-window))
	err := t.row(ctx, `INSERT INTO attempts (key, failures, window_start_ms, locked_until_ms) VALUES (?, 1, ?, 0)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN attempts.window_start_ms <= ? THEN 1 ELSE attempts.failures + 1 END,
			window_start_ms = CASE WHEN attempts.window_start_ms <= ? THEN excluded.window_start_ms ELSE attempts.window_start_ms END
		RETURNING failures, window_start_ms, locked_until_ms`, key, ms(now), expired, expired).Scan(&a.Failures, &start, &locked)
	a.WindowStart, a.LockedUntil = fromMS(start), fromMS(locked)
	return a, err
}

// UncountAttempt implements coffer.Tx.
func (t *Tx) UncountAttempt(ctx context.Context, key string, windowStart time.Time) error {
	err := t.exec(ctx, `UPDATE attempts SET failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END WHERE key = ? AND window_start_ms = ?`, key, ms(windowStart))
	return err
}

// DeleteAttempt implements coffer.Tx.
func (t *Tx) DeleteAttempt(ctx context.Context, key string) error {
	err := t.exec(ctx, `DELETE FROM attempts WHERE key = ?`, key)
	return err
}

// Idempotent implements coffer.ReadTx.
func (t *Tx) Idempotent(ctx context.Context, user coffer.UserID, key string) (coffer.IdempotentRecord, bool, error) {
	d := idempotentRow{r: coffer.IdempotentRecord{User: user, Key: key}}
	return d.record(t.row(ctx, idempotentQuery, user, key).Scan(d.dests()...))
}

const idempotentQuery = `SELECT request_hash, status, body, created_at_ms FROM idempotency WHERE user_id = ? AND key = ?`

// idempotentRow receives a row of idempotentQuery.
type idempotentRow struct {
	r       coffer.IdempotentRecord
	created int64
}

func (d *idempotentRow) dests() []any {
	return []any{&d.r.RequestHash, &d.r.Status, &d.r.Body, &d.created}
}

// record returns the record read with err, and whether there was one.
func (d *idempotentRow) record(err error) (coffer.IdempotentRecord, bool, error) {
	if errors.Is(err, sql.ErrNoRows) {
		return d.r, false, nil
	}
	d.r.CreatedAt = fromMS(d.created)
	return d.r, err == nil, err
}

// PaymentLookup implements coffer.ReadTx: its statements go together
// where the Querier pipelines.
func (t *Tx) PaymentLookup(ctx context.Context, q coffer.PaymentQuery) (coffer.PaymentFound, error) {
	var f coffer.PaymentFound
	var queries []string
	var args, dests [][]any
	stored := idempotentRow{r: coffer.IdempotentRecord{User: q.User, Key: q.IdempotencyKey}}
	if q.IdempotencyKey != "" {
		queries = append(queries, idempotentQuery)
		args, dests = append(args, []any{q.User, q.IdempotencyKey}), append(dests, stored.dests())
	}
	var attempt attemptRow
	if q.AttemptKey != "" {
		queries = append(queries, attemptQuery)
		args, dests = append(args, []any{q.AttemptKey}), append(dests, attempt.dests())
	}
	var user userRow
	if q.Mobile != "" {
		queries = append(queries, userByMobileQuery)
		args, dests = append(args, []any{q.Mobile}), append(dests, user.dests())
	}
	errs := t.rows(ctx, queries, args, dests)
	var err error
	if q.IdempotencyKey != "" {
		f.Stored, f.StoredFound, err = stored.record(errs[0])
		if err != nil {
			return f, err
		}
		errs = errs[1:]
	}
	if q.AttemptKey != "" {
		if f.Attempt, err = attempt.attempt(errs[0]); err != nil {
			return f, err
		}
		errs = errs[1:]
	}
	if q.Mobile != "" {
		switch {
		case errors.Is(errs[0], sql.ErrNoRows):
		case errs[0] != nil:
			return f, errs[0]
		default:
			f.User = user.user()
		}
	}
	return f, nil
}

// sessionPaymentQuery is SessionPayment's statement: the session and its
// user, with whatever of the rest is there (the LEFT JOINs give NULL,
// here zero values, for what is not, or not asked: a NULL parameter
// matches no row). Its parameters: the idempotency key, the attempt key's
// prefix, the mobile, the token's hash.
var sessionPaymentQuery = `SELECT s.user_id, s.created_at_ms, s.last_seen_at_ms, u.` +
	strings.ReplaceAll(userColumns, ", ", ", u.") + `,
		i.user_id IS NOT NULL, COALESCE(i.request_hash, ''), COALESCE(i.status, 0), COALESCE(i.body, ''), COALESCE(i.created_at_ms, 0),
		COALESCE(a.key, ''), COALESCE(a.failures, 0), COALESCE(a.window_start_ms, 0), COALESCE(a.locked_until_ms, 0),
		COALESCE(p.id, 0), COALESCE(p.username, ''), COALESCE(p.email, ''), COALESCE(p.mobile, ''), COALESCE(p.cardnum, ''),
		COALESCE(p.password_hash, ''), p.pay_password_mac, COALESCE(p.pay_failures, 0), COALESCE(p.pay_locked_until_ms, 0), COALESCE(p.created_at_ms, 0)
	FROM sessions s JOIN users u ON u.id = s.user_id
	LEFT JOIN idempotency i ON i.user_id = s.user_id AND i.key = ?
	LEFT JOIN attempts a ON a.key = CAST(? AS TEXT) || CAST(s.user_id AS TEXT)
	LEFT JOIN users p ON p.mobile = ?
	WHERE s.token_hash = ?`

// SessionPayment implements coffer.ReadTx in one statement.
func (t *Tx) SessionPayment(ctx context.Context, tokenHash []byte, q coffer.SessionPaymentQuery) (coffer.Session, coffer.User, coffer.PaymentFound, error) {
	s := coffer.Session{TokenHash: tokenHash}
	var created, seen int64
	var user, payee userRow
	var found bool
	var stored idempotentRow
	var attempt attemptRow
	dests := append([]any{&s.User, &created, &seen}, user.dests()...)
	dests = append(append(append(append(dests, &found), stored.dests()...), attempt.dests()...), payee.dests()...)
	err := t.row(ctx, sessionPaymentQuery, orNull(q.IdempotencyKey), orNull(q.AttemptKeyPrefix), orNull(q.Mobile), tokenHash).Scan(dests...)
	if errors.Is(err, sql.ErrNoRows) {
		return s, coffer.User{}, coffer.PaymentFound{}, &coffer.Error{Code: coffer.ErrUnauthorized}
	}
	if err != nil {
		return s, coffer.User{}, coffer.PaymentFound{}, err
	}
	s.CreatedAt, s.LastSeenAt = fromMS(created), fromMS(seen)
	// What was not there reads as PaymentLookup gives it.
	var f coffer.PaymentFound
	if q.IdempotencyKey != "" {
		f.Stored = coffer.IdempotentRecord{User: s.User, Key: q.IdempotencyKey}
		if found {
			stored.r.User, stored.r.Key = s.User, q.IdempotencyKey
			f.Stored, f.StoredFound, _ = stored.record(nil)
		}
	}
	if attempt.a.Key != "" {
		f.Attempt, _ = attempt.attempt(nil)
	}
	if payee.u.ID != 0 {
		f.User = payee.user()
	}
	return s, user.user(), f, nil
}

// orNull is s, or NULL when s is empty.
func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// PutIdempotent implements coffer.Tx. Nothing waits for the insert: where
// the Querier defers, it goes with the transaction's commit, and a key
// taken meanwhile fails the commit with ErrIdempotencyReuse.
//
// With BodyBalanceOf, a balance that this Tx's Post left is written out
// here (SQLite's one writer spares itself the lookup); another, the
// database writes out itself.
func (t *Tx) PutIdempotent(ctx context.Context, r coffer.IdempotentRecord) error {
	t.willLock([]coffer.UserID{r.User}, nil) // the key is the user's
	if r.Body == nil {
		if !r.BodyBalanceOf.IsUser() {
			return coffer.Errorf(coffer.ErrInternal, "idempotency record with neither a body nor a user's account: %s", r.BodyBalanceOf)
		}
		b, known := t.balances[r.BodyBalanceOf]
		if !known { // a missing account gives a NULL body, which NOT NULL refuses
			return t.execLater(ctx, t.idempotencyReuse, insertIdempotent+`(?, ?, ?, ?,
				(SELECT CAST(`+amountText("balance")+` AS `+t.d.Blob+`) FROM accounts WHERE `+accountWhere+`), ?)`,
				append(append([]any{r.User, r.Key, r.RequestHash, r.Status}, keyArgs(r.BodyBalanceOf)...), ms(r.CreatedAt))...)
		}
		r.Body = []byte(coffer.Amount(b).String())
	}
	return t.execLater(ctx, t.idempotencyReuse, insertIdempotent+`(?, ?, ?, ?, ?, ?)`,
		r.User, r.Key, r.RequestHash, r.Status, r.Body, ms(r.CreatedAt))
}

// insertIdempotent begins PutIdempotent's statements, up to their values.
const insertIdempotent = `INSERT INTO idempotency (user_id, key, request_hash, status, body, created_at_ms) VALUES `

// amountText is the SQL that writes column, an amount of fen that is not
// negative, as coffer.Amount.String does: whole yuan, a point, two digits
// of fen (the hundreds digit of 100 + fen dropped).
func amountText(column string) string {
	return `CAST(` + column + ` / 100 AS TEXT) || '.' || substr(CAST(100 + ` + column + ` % 100 AS TEXT), 2)`
}

// idempotencyReuse turns the unique violation of an idempotency record
// into ErrIdempotencyReuse.
func (t *Tx) idempotencyReuse(err error) error {
	if _, dup := t.d.UniqueViolation(err); dup {
		return &coffer.Error{Code: coffer.ErrIdempotencyReuse}
	}
	return err
}
