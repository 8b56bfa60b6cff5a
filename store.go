package coffer

import (
	"context"
	"time"
)

// Store is the persistence the service needs. Implementations: sqlite (the
// embedded default) and postgres. Both pass the storetest conformance suite.
type Store interface {
	// Update runs fn in one read-write transaction: everything fn wrote is
	// committed together when it returns nil and rolled back when it
	// returns an error, which Update then returns. fn may be run more than
	// once (retries after serialization failures), so it must have no
	// effect outside the transaction. A database that refuses writes yields
	// ErrUnavailable.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction: every statement of fn sees
	// the same snapshot.
	View(ctx context.Context, fn func(ReadTx) error) error
	// ViewEach runs fn's reads where they need not agree: each statement
	// may see what was committed when it ran, or all one snapshot,
	// whichever costs the store less (on PostgreSQL no transaction, which
	// saves View's BEGIN and COMMIT, two statements and a round trip). For
	// reads that do not depend on each other.
	ViewEach(ctx context.Context, fn func(ReadTx) error) error
	// Close releases the store's resources.
	Close() error
}

// ReadTx reads the store. Lookups of a missing row return an *Error with a
// NOT_FOUND-kind code (ErrUserNotFound, ErrProductNotFound) or ErrUnauthorized
// for sessions.
type ReadTx interface {
	UserByID(ctx context.Context, id UserID) (User, error)
	UserByMobile(ctx context.Context, mobile string) (User, error)
	UserByUsername(ctx context.Context, username string) (User, error)
	CountUsers(ctx context.Context) (int, error)

	Session(ctx context.Context, tokenHash []byte) (Session, error)
	// SessionProfile is Session with what a profile shows of its user,
	// read in one statement: its id, username, email, mobile and card
	// number. Nothing of its passwords is read.
	SessionProfile(ctx context.Context, tokenHash []byte) (Session, User, error)
	// SessionHoldings is SessionProfile with the user's holdings (as
	// Holdings lists them), read in one statement.
	SessionHoldings(ctx context.Context, tokenHash []byte) (Session, User, []Holding, error)
	Attempt(ctx context.Context, key string) (Attempt, error)
	Idempotent(ctx context.Context, user UserID, key string) (IdempotentRecord, bool, error)
	// PaymentLookup is Idempotent, Attempt and UserByMobile at once, in
	// one round trip where the store can: what a payment reads before it
	// decides anything.
	PaymentLookup(ctx context.Context, q PaymentQuery) (PaymentFound, error)
	// SessionPayment is Session, its user (as UserByID reads it) and
	// PaymentLookup at once, in one statement: what a payment made with a
	// session reads before it decides anything. The lookup is for the
	// session's user.
	SessionPayment(ctx context.Context, tokenHash []byte, q SessionPaymentQuery) (Session, User, PaymentFound, error)

	Balance(ctx context.Context, key AccountKey) (int64, error)
	Holdings(ctx context.Context, user UserID) ([]Holding, error)
	// Bills lists the entries of the user's accounts of kind (card or
	// wealth), newest first, with ids below beforeID (0: from the newest).
	Bills(ctx context.Context, user UserID, kind AccountKind, beforeID int64, limit int) ([]Bill, error)

	GoldQuote(ctx context.Context) (GoldQuote, error)
	WealthProducts(ctx context.Context) ([]WealthProduct, error)
	WealthProduct(ctx context.Context, kind string) (WealthProduct, error)
	Funds(ctx context.Context) ([]Fund, error)
	Fund(ctx context.Context, code string) (Fund, error)

	// CheckLedger verifies every invariant of the ledger.
	CheckLedger(ctx context.Context) (LedgerReport, error)
	// LastClosedDay is the latest business day closed, "" when none is.
	LastClosedDay(ctx context.Context) (string, error)
	// FirstEntryAt is the time of the first entry on any account of kind;
	// ok is false when there is none.
	FirstEntryAt(ctx context.Context, kind AccountKind) (at time.Time, ok bool, err error)
	// WealthHoldings lists every user's wealth accounts with their interest carry.
	WealthHoldings(ctx context.Context) ([]Holding, error)
	// BalanceBefore is the balance of key counting only entries created
	// before the instant before.
	BalanceBefore(ctx context.Context, key AccountKey, before time.Time) (int64, error)

	// CountRows counts the rows of every table, by table name: operators
	// see the store's size, tests see that a failure wrote nothing.
	CountRows(ctx context.Context) (map[string]int64, error)
}

// Tx reads and writes the store inside one transaction.
type Tx interface {
	ReadTx

	// CreateUser inserts the user and their card account; it fails with
	// ErrUsernameTaken, ErrMobileTaken, ErrEmailTaken or ErrCardTaken.
	CreateUser(ctx context.Context, u *User) error
	SetPayPassword(ctx context.Context, user UserID, mac []byte) error
	// LockUser reads the user, holding the user's row until the
	// transaction ends, so that payment-password checks of one user are
	// decided one at a time.
	LockUser(ctx context.Context, id UserID) (User, error)
	// AddPayFailure counts one more wrong payment password in a row and
	// returns the new count.
	AddPayFailure(ctx context.Context, user UserID) (int, error)
	SetPayFailures(ctx context.Context, user UserID, failures int, lockedUntil time.Time) error
	// LockPayable takes the user's row as LockUser does and fails the
	// transaction with ErrPayLocked if the user's payments are locked at
	// now: from this call, or (where the store sends the statement with
	// the next one) from that statement's call or from Update itself, so a
	// caller acts on Update's error, not only on this one's. For a payment
	// whose gate has nothing to count.
	LockPayable(ctx context.Context, user UserID, now time.Time) error
	// ClearPayFailures ends a row of wrong payment passwords, if there is
	// one: the count and any lock go back to none.
	ClearPayFailures(ctx context.Context, user UserID) error

	CreateSession(ctx context.Context, s Session) error
	TouchSession(ctx context.Context, tokenHash []byte, at time.Time) error
	DeleteSession(ctx context.Context, tokenHash []byte) error
	DeleteExpired(ctx context.Context, now time.Time) error

	PutAttempt(ctx context.Context, a Attempt) error
	// CountAttempt adds one failure to key's counter in one atomic
	// statement, starting a new window at now when the current one began
	// at or before now - window, and returns the counter after it.
	CountAttempt(ctx context.Context, key string, now time.Time, window time.Duration) (Attempt, error)
	DeleteAttempt(ctx context.Context, key string) error
	// UncountAttempt takes one back from key's counter (never below
	// zero) if its window is still the one that started at windowStart:
	// an attempt given back after its window ended frees nothing in the
	// next.
	UncountAttempt(ctx context.Context, key string, windowStart time.Time) error

	// PutIdempotent stores a payment's answer under its key. A key
	// already taken fails the transaction with ErrIdempotencyReuse: from
	// this call, or (where the store sends the insert with the commit)
	// from Update itself, so a caller acts on Update's error, not only on
	// this one's.
	PutIdempotent(ctx context.Context, r IdempotentRecord) error

	// Post applies a transaction: every leg or none. It fails with the
	// leg's ShortfallCode when a user account would go negative.
	Post(ctx context.Context, t *Transaction) (Posted, error)
	// PostLater is Post for a caller that reads the result only after
	// Update returns: the store may send the posting with the
	// transaction's next statement or its commit, without waiting for its
	// answer. The Posted it returns is complete when Update returns nil.
	// Its failures, a shortfall included, come from this call, from a
	// later one, or from Update itself, so a caller acts on Update's
	// error, not only on this one's. A user's card must be there, as
	// registration makes it: where Post would create a card on its first
	// credit, PostLater may fail with ErrInternal.
	PostLater(ctx context.Context, t *Transaction) (*Posted, error)
	// CreateLot opens a new fixed-term wealth lot of product for user and
	// returns its key.
	CreateLot(ctx context.Context, user UserID, product string, maturesOn string) (AccountKey, error)
	// AddDailySpend adds amount to the user's outgoing payments of day and
	// fails the transaction with ErrLimitDaily if the total would pass
	// limit: from this call, or (where the store sends the statement with
	// the next one) from that statement's call or from Update itself, so a
	// caller acts on Update's error, not only on this one's.
	AddDailySpend(ctx context.Context, user UserID, day string, amount, limit Amount) error

	// CloseDay records that day is closed; it fails with ErrDayClosed if
	// it was already.
	CloseDay(ctx context.Context, day string, at time.Time) error
	// SetInterestCarry keeps a holding's interest below one fen, in
	// ten-thousandths of a fen, for its next day.
	SetInterestCarry(ctx context.Context, key AccountKey, carry int64) error
	// SetFundNAV records a fund's NAV for a date; the fund's current NAV
	// follows when the date is the latest. ErrProductNotFound for an
	// unknown fund.
	SetFundNAV(ctx context.Context, code, date string, nav NAV) error

	SetGoldQuote(ctx context.Context, q GoldQuote) error
	PutWealthProduct(ctx context.Context, p WealthProduct) error
	PutFund(ctx context.Context, f Fund) error
}

// Session is a login session. The token itself is never stored: only its
// SHA-256.
type Session struct {
	TokenHash  []byte
	User       UserID
	CreatedAt  time.Time
	LastSeenAt time.Time
}

// Attempt counts failures of one throttled key (a username or a client
// address) within a window.
type Attempt struct {
	Key         string
	Failures    int
	WindowStart time.Time
	LockedUntil time.Time
}

// PaymentQuery names what ReadTx.PaymentLookup reads; an empty key or
// mobile reads nothing for it.
type PaymentQuery struct {
	User           UserID
	IdempotencyKey string // the answer stored under it for User
	AttemptKey     string // an attempt counter
	Mobile         string // the user with this mobile
}

// SessionPaymentQuery names what ReadTx.SessionPayment reads with the
// session: what a PaymentQuery names, for the session's user, whose id is
// not known before the read. An empty field reads nothing for it.
type SessionPaymentQuery struct {
	IdempotencyKey   string // the answer stored under it for the user
	AttemptKeyPrefix string // the attempt counter named by this prefix and the user's id in decimal
	Mobile           string // the user with this mobile
}

// PaymentFound is what ReadTx.PaymentLookup (or SessionPayment) found:
// zero values for what was not asked or not there.
type PaymentFound struct {
	Stored      IdempotentRecord
	StoredFound bool
	Attempt     Attempt
	User        User // ID 0: no user has the mobile
}

// IdempotentRecord is a payment's stored answer.
type IdempotentRecord struct {
	User        UserID
	Key         string
	RequestHash []byte
	Status      int
	Body        []byte
	CreatedAt   time.Time
	// BodyBalanceOf, a user's account, when Body is nil on a record given
	// to Tx.PutIdempotent: the body is that account's balance as the
	// transaction leaves it at that point, as Amount.String writes it. The
	// store reads the balance itself, so that the record can go with a
	// posting sent by PostLater before its answer came back.
	BodyBalanceOf AccountKey
}
