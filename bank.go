package coffer

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"
)

// PasswordHasher hashes login passwords slowly (argon2id).
type PasswordHasher interface {
	Hash(ctx context.Context, pw string) (string, error)
	// Verify reports whether pw matches encoded; an empty encoded takes
	// the same time and reports false.
	Verify(ctx context.Context, encoded, pw string) (bool, error)
	// Busy reports whether a hash asked for now would be refused with
	// ErrOverloaded: every core busy and the queue full.
	Busy() bool
}

// PayKeyer keys payment passwords under a server secret.
type PayKeyer interface {
	Key(pin string) []byte
	Match(stored []byte, pin string) bool
}

// Config holds the bank's rules that operators may change.
type Config struct {
	SessionIdle       time.Duration
	SessionAbsolute   time.Duration
	Zone              *time.Location
	LimitTransfer     Amount // per transfer
	LimitDaily        Amount // transfers and top-ups of one calendar day
	MobilePayMin      Amount
	MobilePayMax      Amount
	PayFailuresToLock int
	PayLockFor        time.Duration
	LoginUserFailures int // failures per username within LoginWindow before 429
	LoginAddrFailures int // failures per client address within LoginWindow before 429
	LoginWindow       time.Duration
	LoginLockFor      time.Duration
	LookupsPerMinute  int // POST /api/mobile per session
}

// DefaultConfig is the contract's defaults.
func DefaultConfig() Config {
	zone, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		zone = time.FixedZone("CST", 8*3600)
	}
	return Config{
		SessionIdle:       30 * time.Minute,
		SessionAbsolute:   12 * time.Hour,
		Zone:              zone,
		LimitTransfer:     50_000_00,
		LimitDaily:        200_000_00,
		MobilePayMin:      1_00,
		MobilePayMax:      500_00,
		PayFailuresToLock: 5,
		PayLockFor:        15 * time.Minute,
		LoginUserFailures: 5,
		LoginAddrFailures: 50,
		LoginWindow:       15 * time.Minute,
		LoginLockFor:      15 * time.Minute,
		LookupsPerMinute:  30,
	}
}

// sessionTouchEvery is how stale LastSeenAt may get before a request
// refreshes it: a session lookup costs a write at most once a minute.
const sessionTouchEvery = time.Minute

// Bank is the service: every operation of the API and the operator
// commands, on top of a Store.
type Bank struct {
	store  Store
	hasher PasswordHasher
	keyer  PayKeyer
	cfg    Config
	now    func() time.Time

	inflightMu sync.Mutex
	inflight   map[inflightKey]struct{}
}

type inflightKey struct {
	user UserID
	key  string
}

// NewBank returns a Bank. now is the clock (time.Now in production).
func NewBank(store Store, hasher PasswordHasher, keyer PayKeyer, cfg Config, now func() time.Time) *Bank {
	if now == nil {
		now = time.Now
	}
	return &Bank{store: store, hasher: hasher, keyer: keyer, cfg: cfg, now: now, inflight: map[inflightKey]struct{}{}}
}

// Config returns the bank's rules.
func (b *Bank) Config() Config { return b.cfg }

// Store returns the bank's store.
func (b *Bank) Store() Store { return b.store }

// Day returns the calendar day of t in the configured zone.
func (b *Bank) Day(t time.Time) string { return t.In(b.cfg.Zone).Format(time.DateOnly) }

// Register opens an account: the user and a card at 0.00.
func (b *Bank) Register(ctx context.Context, r Registration) error {
	if err := r.Validate(); err != nil {
		return err
	}
	hash, err := b.hasher.Hash(ctx, r.Password)
	if err != nil {
		return err
	}
	u := &User{Username: r.Username, Email: r.Email, Mobile: r.Mobile, CardNum: r.CardNum, PasswordHash: hash, CreatedAt: b.now()}
	if r.PayPassword != "" {
		u.PayPasswordMAC = b.keyer.Key(r.PayPassword)
	}
	return b.store.Update(ctx, func(tx Tx) error { return tx.CreateUser(ctx, u) })
}

// Login checks the credentials and opens a session. It returns the session
// token and the user.
func (b *Bank) Login(ctx context.Context, username, pw, addr string) (token string, user User, err error) {
	now := b.now()
	if b.hasher.Busy() {
		// Refused before anything is written: overload is answered in
		// microseconds, and takes no CPU from the hashing.
		return "", User{}, Errorf(ErrOverloaded, "password hashing queue full")
	}
	keys := []throttle{{"login:user:" + FoldKey(username), b.cfg.LoginUserFailures}, {"login:addr:" + addr, b.cfg.LoginAddrFailures}}
	reserved, err := b.reserveAttempts(ctx, now, keys)
	if err != nil {
		return "", User{}, err
	}
	var found bool
	err = b.store.View(ctx, func(tx ReadTx) error {
		u, err := tx.UserByUsername(ctx, username)
		if IsCode(err, ErrUserNotFound) {
			return nil
		}
		user, found = u, err == nil
		return err
	})
	if err != nil {
		b.releaseAttempts(ctx, keys, reserved)
		return "", User{}, err
	}
	ok, err := b.hasher.Verify(ctx, user.PasswordHash, pw) // "" for unknown users: same time
	if err != nil {
		// Overloaded: the password was not checked.
		b.releaseAttempts(ctx, keys, reserved)
		return "", User{}, err
	}
	if !ok || !found {
		if err := b.lockSpent(ctx, now, keys, reserved); err != nil {
			return "", User{}, err
		}
		return "", User{}, &Error{Code: ErrBadCredentials}
	}
	token, hash := newToken()
	err = b.store.Update(ctx, func(tx Tx) error {
		if err := tx.DeleteAttempt(ctx, keys[0].key); err != nil {
			return err
		}
		// Many users may share an address: only failures count there.
		if err := tx.UncountAttempt(ctx, keys[1].key, reserved[1].WindowStart); err != nil {
			return err
		}
		return tx.CreateSession(ctx, Session{TokenHash: hash, User: user.ID, CreatedAt: now, LastSeenAt: now})
	})
	if err != nil {
		return "", User{}, err
	}
	return token, user, nil
}

// throttle is a counter of password attempts and the failures it allows
// within the login window.
type throttle struct {
	key string
	max int
}

// reserveAttempts counts an attempt against every key before the password
// is checked, so that concurrent guesses are all counted before any of
// them is answered: at most max are ever checked in a window. It refuses
// with ErrTooManyAttempts when a key is locked or its attempts are spent,
// and returns each key's counter otherwise.
//
// A refused attempt counts nothing (its transaction is rolled back): it
// checks no password, so it is no guess, and counting it would keep an
// address that sends more logins at once than its limit refused for the
// whole window, its successes included.
func (b *Bank) reserveAttempts(ctx context.Context, now time.Time, keys []throttle) ([]Attempt, error) {
	counts := make([]Attempt, len(keys))
	err := b.store.Update(ctx, func(tx Tx) error {
		for i, k := range keys {
			a, err := tx.CountAttempt(ctx, k.key, now, b.cfg.LoginWindow)
			if err != nil {
				return err
			}
			counts[i] = a
			if now.Before(a.LockedUntil) || a.Failures > k.max {
				return &Error{Code: ErrTooManyAttempts}
			}
		}
		return nil
	})
	return counts, err
}

// releaseAttempts gives back the attempts reserved for a password that
// was not checked (the hashing queue was full, the database failed).
// Best effort: a failure here leaves one attempt counted until the window
// ends.
func (b *Bank) releaseAttempts(ctx context.Context, keys []throttle, reserved []Attempt) {
	ctx = context.WithoutCancel(ctx) // also when the client has gone
	b.store.Update(ctx, func(tx Tx) error {
		for i, k := range keys {
			if err := tx.UncountAttempt(ctx, k.key, reserved[i].WindowStart); err != nil {
				return err
			}
		}
		return nil
	})
}

// lockSpent locks, for LoginLockFor, every key whose wrong attempt just
// reached its limit.
func (b *Bank) lockSpent(ctx context.Context, now time.Time, keys []throttle, reserved []Attempt) error {
	return b.store.Update(ctx, func(tx Tx) error {
		for i, k := range keys {
			if reserved[i].Failures >= k.max {
				if err := tx.PutAttempt(ctx, Attempt{Key: k.key, WindowStart: now, LockedUntil: now.Add(b.cfg.LoginLockFor)}); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func newToken() (token string, hash []byte) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		panic(err)
	}
	token = base64.RawURLEncoding.EncodeToString(raw)
	return token, HashToken(token)
}

// HashToken is the form in which a session token is stored.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Authenticate returns the user of a live session, refreshing its idle
// clock at most once a minute. Missing, unknown, expired and logged-out
// tokens all fail with ErrUnauthorized.
func (b *Bank) Authenticate(ctx context.Context, token string) (UserID, error) {
	return b.viewAs(ctx, token, b.store.ViewEach, sessionAlone, nil)
}

// sessionReader reads the session of a token hash and as much of its user
// as the request needs.
type sessionReader func(tx ReadTx, ctx context.Context, tokenHash []byte) (Session, User, error)

// sessionAlone is a sessionReader that reads no user.
func sessionAlone(tx ReadTx, ctx context.Context, tokenHash []byte) (Session, User, error) {
	s, err := tx.Session(ctx, tokenHash)
	return s, User{}, err
}

// viewAs checks the session of token, read by readSession with as much
// of its user as fn needs, and, when fn is not nil, runs fn for that user
// in the same call of view (the store's View or ViewEach): the reads of
// an authenticated request cost one call, not two. Once the
// session has been found live it returns its user, also when fn then
// fails, and refreshes its idle clock when that is due, as Authenticate
// does before any handler runs: a request refused for its own input still
// counts as activity. It returns 0 when the session is refused or could
// not be read.
func (b *Bank) viewAs(ctx context.Context, token string, view func(context.Context, func(ReadTx) error) error, readSession sessionReader, fn func(tx ReadTx, user User) error) (UserID, error) {
	if token == "" || len(token) > 128 {
		return 0, &Error{Code: ErrUnauthorized}
	}
	hash := HashToken(token)
	now := b.now()
	var s Session
	live := false
	viewErr := view(ctx, func(tx ReadTx) error {
		var u User
		var err error
		if s, u, err = readSession(tx, ctx, hash); err != nil {
			return err
		}
		if now.Sub(s.LastSeenAt) >= b.cfg.SessionIdle || now.Sub(s.CreatedAt) >= b.cfg.SessionAbsolute {
			return &Error{Code: ErrUnauthorized, Detail: "session expired"}
		}
		live = true
		if fn == nil {
			return nil
		}
		return fn(tx, u)
	})
	if !live {
		return 0, viewErr
	}
	if now.Sub(s.LastSeenAt) >= sessionTouchEvery {
		// The refresh only extends the session's idle life. When the
		// database refuses writes (or the writer is full), the session is
		// still good for what can be served, reads above all; a later
		// request refreshes it.
		err := b.store.Update(ctx, func(tx Tx) error { return tx.TouchSession(ctx, hash, now) })
		if err != nil && !IsCode(err, ErrUnavailable) && !IsCode(err, ErrOverloaded) && viewErr == nil {
			return s.User, err
		}
	}
	return s.User, viewErr
}

// Logout ends the session of token.
func (b *Bank) Logout(ctx context.Context, token string) error {
	hash := HashToken(token)
	return b.store.Update(ctx, func(tx Tx) error { return tx.DeleteSession(ctx, hash) })
}

// User returns a user by id.
func (b *Bank) User(ctx context.Context, id UserID) (User, error) {
	var u User
	err := b.store.View(ctx, func(tx ReadTx) error {
		var err error
		u, err = tx.UserByID(ctx, id)
		return err
	})
	return u, err
}

// SetPayPassword sets or changes the user's 6-digit payment password after
// checking the login password. Attempts here count against the username's
// login throttle, so that a stolen session cannot guess the login password
// without end.
func (b *Bank) SetPayPassword(ctx context.Context, id UserID, loginPassword, pin string) error {
	if !ValidPayPassword(pin) {
		return FieldError(ErrInvalidField, "pay_password")
	}
	u, err := b.User(ctx, id)
	if err != nil {
		return err
	}
	now := b.now()
	keys := []throttle{{"login:user:" + FoldKey(u.Username), b.cfg.LoginUserFailures}}
	reserved, err := b.reserveAttempts(ctx, now, keys)
	if err != nil {
		return err
	}
	ok, err := b.hasher.Verify(ctx, u.PasswordHash, loginPassword)
	if err != nil { // overloaded: the password was not checked
		b.releaseAttempts(ctx, keys, reserved)
		return err
	}
	if !ok {
		if err := b.lockSpent(ctx, now, keys, reserved); err != nil {
			return err
		}
		return &Error{Code: ErrBadPassword}
	}
	mac := b.keyer.Key(pin)
	return b.store.Update(ctx, func(tx Tx) error {
		if err := tx.DeleteAttempt(ctx, keys[0].key); err != nil {
			return err
		}
		if err := tx.SetPayPassword(ctx, id, mac); err != nil {
			return err
		}
		return tx.SetPayFailures(ctx, id, 0, time.Time{})
	})
}

// Payee is what POST /api/mobile shows of a user.
type Payee struct {
	Username string
	CardNum  string // masked unless it is the caller's own
}

// LookupMobile shows the payee with mobile to caller, rate-limited per
// user (not per session, which a new login would renew) so that it cannot
// enumerate users; transfers to unknown payees spend the same budget.
func (b *Bank) LookupMobile(ctx context.Context, caller UserID, mobile string) (Payee, error) {
	m, ok := NormalizeMobile(mobile)
	if !ok {
		return Payee{}, FieldError(ErrInvalidField, "mobile")
	}
	now := b.now()
	key := lookupKey(caller)
	err := b.store.Update(ctx, func(tx Tx) error {
		a, err := tx.CountAttempt(ctx, key, now, time.Minute)
		if err != nil {
			return err
		}
		if a.Failures > b.cfg.LookupsPerMinute {
			return &Error{Code: ErrRateLimited} // rolls the count back
		}
		return nil
	})
	if err != nil {
		return Payee{}, err
	}
	var u User
	err = b.store.View(ctx, func(tx ReadTx) error {
		var err error
		u, err = tx.UserByMobile(ctx, m)
		return err
	})
	if err != nil {
		return Payee{}, err
	}
	p := Payee{Username: u.Username, CardNum: u.CardNum}
	if u.ID != caller {
		p.CardNum = MaskCardNum(u.CardNum)
	}
	return p, nil
}
