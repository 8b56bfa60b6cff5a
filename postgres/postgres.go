// Package postgres is Coffer's production store: PostgreSQL through pgx
// and database/sql, shared by any number of servers.
//
// Every Update is one READ COMMITTED transaction, or a part of a batch's
// transaction that it shares with others (see batch.go), where it
// succeeds or fails as alone. Balances need no stronger isolation:
// sqlstore posts a payment's accounts in one fixed order, each with an
// UPDATE that refuses to overdraw a user account (a condition, or the
// accounts' CHECK), so concurrent payments neither overdraw nor deadlock
// each other. What conflicts remain (a deadlock through an order
// the domain does not control, a serialization failure on engines that run
// everything SERIALIZABLE, a race on a derived key, a batch's lock
// timeout) abort the transaction before anything is committed, and Update
// runs the whole function again, in a transaction of its own.
//
// The package keeps to what distributed PostgreSQL-compatible engines
// (Citus, YugabyteDB) support: no advisory locks, no reliance on the order
// of identity values for correctness, retries of the whole transaction.
// Batches use pipelines, and savepoints when one of their Updates fails;
// on those engines that is untested, and batching=off in the connection
// string turns them off.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"coffer"
	"coffer/sqlstore"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Options tune the store. The zero value is a sensible default.
type Options struct {
	// MaxConns bounds the connections the store opens to PostgreSQL;
	// 0 means 8 x GOMAXPROCS, at most 64. A payment's write holds its
	// connection while its one pipeline runs and commits, the commit's
	// flush to disk included, so that the cores stay busy only with
	// enough connections to cover those waits; past that, more only add
	// contention on hot rows and memory on the server. Several servers
	// sharing one PostgreSQL must together stay under its
	// max_connections (see docs/production.md).
	MaxConns int
	// MaxIdleConns is how many connections stay open while unused;
	// 0 means MaxConns, so that a burst does not pay for new connections.
	MaxIdleConns int
	// ConnMaxLifetime closes connections older than this (0: never), so
	// that a load balancer or a failover in front of PostgreSQL spreads
	// them again.
	ConnMaxLifetime time.Duration
	// MaxTries bounds how many times Update runs its function when
	// PostgreSQL aborts it with a serialization failure, a deadlock or a
	// batch's lock timeout;
	// 0 means DefaultMaxTries. Past it Update fails with ErrOverloaded.
	MaxTries int
	// NoBatching runs every Update in a transaction of its own. By
	// default an Update that needs no answer before its end (a transfer,
	// a top-up) joins a batch: one transaction, one round trip and one
	// commit for every such Update waiting (see batch.go). A connection
	// string that asks pgx for another default_query_exec_mode than
	// cache_statement turns batching off.
	NoBatching bool
}

// defaultMaxConnsCap caps the default of Options.MaxConns on machines with
// many cores: every connection is a PostgreSQL process, and on two cores
// 64 connections already did fewer transfers than 16 or 32.
const defaultMaxConnsCap = 64

// DefaultMaxTries is Options.MaxTries when left 0: enough for a burst of
// conflicts on one hot row, bounded so that a caller is answered (with the
// conflict as an error) rather than kept waiting.
const DefaultMaxTries = 10

// connLossTries bounds how often Update starts over after losing its
// connection before COMMIT was sent. One more try on a fresh connection
// rides over a restarted server or proxy; more would only delay the 503
// of a database that is really down.
const connLossTries = 2

// Backoff between tries: exponential from backoffBase, capped at
// backoffMax, each sleep a random point of its upper half (jitter), so
// that transactions that collided do not collide again in lockstep.
const (
	backoffBase = 2 * time.Millisecond
	backoffMax  = 250 * time.Millisecond
)

// Store is the PostgreSQL implementation of coffer.Store.
type Store struct {
	db       *sql.DB
	conns    *liveConns
	dialect  *sqlstore.Dialect
	maxTries int
	batch    *batcher

	conflictRetries atomic.Int64
	connRetries     atomic.Int64
	gaveUp          atomic.Int64
}

// Stats counts what Update did beyond running each function once, for
// operators' metrics and for tests: a steady rate of conflict retries
// means hot rows (see docs/production.md on striping), connection retries
// mean a restarting server or proxy, and give-ups are 503s.
type Stats struct {
	ConflictRetries int64 // tries run again after 40001, 40P01, 55P03 or a key race
	ConnRetries     int64 // tries run again after losing the connection before COMMIT
	GaveUp          int64 // Updates that failed after MaxTries conflicting tries
	Batches         int64 // batches posted (see batch.go)
	Batched         int64 // Updates posted in them: Batched / Batches is the mean batch
	SplitBatches    int64 // batches that failed whole at an Update's statement and ran again in sections
	UnfitConns      int64 // connections dropped as taken from the pool: lost, or ended by the server
}

// Stats returns the counts since Open.
func (s *Store) Stats() Stats {
	st := Stats{ConflictRetries: s.conflictRetries.Load(), ConnRetries: s.connRetries.Load(), GaveUp: s.gaveUp.Load(), UnfitConns: s.conns.unfit.Load()}
	if s.batch != nil {
		st.Batches, st.Batched, st.SplitBatches = s.batch.batches.Load(), s.batch.batched.Load(), s.batch.split.Load()
	}
	return st
}

var _ coffer.Store = (*Store)(nil)

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value connection string, as libpq and pgx read them), migrates it to
// the current schema and returns the store. Servers may open the same
// database at the same time: exactly one of them applies a migration.
//
// Besides the usual connection parameters, the dsn may carry the pool's
// size as pgxpool spells it, pool_max_conns=N and
// pool_max_conn_lifetime=DURATION (1h30m), so that an operator can size
// the pool of `coffer serve --db URL` without a flag; a non-zero field of
// opts wins over them. batching=off sets opts.NoBatching.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: bad connection string: %w", err)
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "coffer"
	}
	if err := poolParams(cfg.RuntimeParams, &opts); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = min(8*runtime.GOMAXPROCS(0), defaultMaxConnsCap)
	}
	if opts.MaxIdleConns <= 0 || opts.MaxIdleConns > opts.MaxConns {
		opts.MaxIdleConns = opts.MaxConns
	}
	if opts.MaxTries <= 0 {
		opts.MaxTries = DefaultMaxTries
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(opts.MaxConns)
	db.SetMaxIdleConns(opts.MaxIdleConns)
	db.SetConnMaxLifetime(opts.ConnMaxLifetime)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect: %w", classify(ctx, err))
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", classify(ctx, err))
	}
	s := &Store{
		db:    db,
		conns: newLiveConns(db, opts.MaxConns),
		dialect: &sqlstore.Dialect{Dollar: true, ForUpdate: " FOR UPDATE", UniqueViolation: uniqueViolation, CheckViolation: checkViolation,
			RefuseIf: "coffer_refuse_if", Refused: refused, Blob: "BYTEA"},
		maxTries: opts.MaxTries,
	}
	// A batch is sent as statements prepared on its connection: the pgx
	// mode that caches prepared statements, and no other (the
	// others are for poolers that do not keep prepared statements).
	if !opts.NoBatching && cfg.DefaultQueryExecMode == pgx.QueryExecModeCacheStatement {
		s.batch = newBatcher(s.conns)
	}
	return s, nil
}

// DB is the underlying pool, for operators' tools and tests.
func (s *Store) DB() *sql.DB { return s.db }

// Close stops batching, once the batch running is done, and closes every
// connection.
func (s *Store) Close() error {
	if s.batch != nil {
		s.batch.close()
	}
	return s.db.Close()
}

// Update implements coffer.Store: fn runs in a READ COMMITTED transaction
// and runs again, after a random pause, when PostgreSQL aborted the
// transaction for a conflict or the connection was lost before COMMIT.
//
// A connection lost during COMMIT itself is not retried: the transaction
// may have committed, and running fn again could post a payment twice. The
// caller gets ErrUnavailable; a payment sent with an idempotency key can
// then be retried safely by the client. The exception is a COMMIT sent in
// the transaction's first pipeline (fn held every statement back) whose
// first answer shows that nothing of it ran (see nothingRan): that runs
// again.
//
// With batching, fn runs first without a connection: statements are held
// back, and one that needs its answer fails with errNeedsConn. If fn held
// every statement back, its statements join a batch; else fn runs again,
// in a transaction of its own. After a conflict fn runs in a transaction
// of its own too.
func (s *Store) Update(ctx context.Context, fn func(coffer.Tx) error) error {
	conflicts, losses := 0, 0
	for {
		// After a conflict, fn runs in a transaction of its own: a batch
		// that lost a deadlock or its lock_timeout to a row held elsewhere
		// would meet it again in the next batch, and hold up every payment
		// batched with it each time; alone, it waits for its own rows only.
		committing, err := s.updateOnce(ctx, fn, conflicts > 0)
		if err == nil {
			return nil
		}
		switch {
		case ctx.Err() != nil:
			return classify(ctx, err)
		case conflict(err):
			conflicts++
			if conflicts >= s.maxTries {
				s.gaveUp.Add(1)
				// Still colliding after every try: the rows are too hot for
				// now. The caller hears 503 "busy, retry later", not 500.
				return &coffer.Error{Code: coffer.ErrOverloaded, Detail: fmt.Sprintf("gave up after %d conflicting tries: %v", conflicts, err)}
			}
			s.conflictRetries.Add(1)
		case !committing && (connLost(err) || errors.As(err, new(*unstartedError))):
			losses++
			if losses >= connLossTries {
				return classify(ctx, err)
			}
			s.connRetries.Add(1)
		default:
			return classify(ctx, err)
		}
		if err := sleep(ctx, backoff(conflicts+losses)); err != nil {
			return err
		}
	}
}

// updateOnce runs fn in one transaction, its own when alone, else in a
// batch's if it can; committing reports whether the error came from
// COMMIT, whose outcome is then unknown, and not from a first pipeline
// that carried COMMIT but ran nothing.
func (s *Store) updateOnce(ctx context.Context, fn func(coffer.Tx) error, alone bool) (committing bool, err error) {
	if s.batch != nil && !alone {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		// First without a connection: statements are only held back. If fn
		// held every one back, they join a batch; if one needed its answer,
		// fn runs again in a transaction of its own.
		t := &txConn{begin: beginUpdate}
		err := fn(sqlstore.NewTx(t, s.dialect))
		if !t.neededConn {
			if err != nil || len(t.later) == 0 {
				return false, err
			}
			return s.batch.post(ctx, t)
		}
	}
	err = s.inTx(ctx, beginUpdate, func(t *txConn) error {
		if err := fn(sqlstore.NewTx(t, s.dialect)); err != nil {
			return err
		}
		committing = true
		err := t.commit(ctx)
		if unstarted := (*unstartedError)(nil); errors.As(err, &unstarted) {
			committing = false // COMMIT went with the transaction's first pipeline, and nothing of it ran
		}
		return err
	})
	return committing, err
}

// View implements coffer.Store with a read-only REPEATABLE READ
// transaction: every statement of fn sees the same snapshot, so a page of
// bills and the balance beside it agree.
func (s *Store) View(ctx context.Context, fn func(coffer.ReadTx) error) error {
	return classify(ctx, s.inTx(ctx, beginView, func(t *txConn) error {
		if err := fn(sqlstore.NewTx(t, s.dialect)); err != nil {
			return err
		}
		return t.commit(ctx)
	}))
}

// ViewEach implements coffer.Store with no transaction: each statement,
// or each pipeline of them, runs in an implicit transaction of its own,
// at the server's default isolation (READ COMMITTED unless configured
// otherwise). Not being READ ONLY, it hands fn a ReadTx and nothing more,
// so that no type assertion reaches the writes.
func (s *Store) ViewEach(ctx context.Context, fn func(coffer.ReadTx) error) error {
	return classify(ctx, s.inTx(ctx, "", func(t *txConn) error {
		if err := fn(readOnly{sqlstore.NewTx(t, s.dialect)}); err != nil {
			return err
		}
		return t.commit(ctx) // sends nothing: refuses what was held back
	}))
}

// readOnly is a ReadTx that offers nothing else.
type readOnly struct{ coffer.ReadTx }

func backoff(try int) time.Duration {
	d := backoffBase << min(try-1, 16)
	if d > backoffMax || d <= 0 {
		d = backoffMax
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// uniqueViolation is the Dialect's test for a unique-constraint violation;
// the name of the constraint (users_username_key_key, ...) tells sqlstore
// which field was taken.
func uniqueViolation(err error) (string, bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return pe.ConstraintName, true
	}
	return "", false
}

// checkViolation is the Dialect's test for a CHECK-constraint violation,
// with the constraint's name.
func checkViolation(err error) (string, bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23514" {
		return pe.ConstraintName, true
	}
	return "", false
}

// refused is the Dialect's test for coffer_refuse_if's refusal.
func refused(err error) (coffer.Code, bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == sqlstore.RefusedState {
		return coffer.Code(pe.Message), true
	}
	return "", false
}

// poolParams takes the pool's parameters, and batching's, out of the
// connection's runtime parameters (where pgx puts every key it does not
// know, and where the server would reject them) into the options left
// zero.
func poolParams(params map[string]string, opts *Options) error {
	if v, ok := params["pool_max_conns"]; ok {
		delete(params, "pool_max_conns")
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("pool_max_conns=%q is not a positive number", v)
		}
		if opts.MaxConns == 0 {
			opts.MaxConns = n
		}
	}
	if v, ok := params["pool_max_conn_lifetime"]; ok {
		delete(params, "pool_max_conn_lifetime")
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("pool_max_conn_lifetime=%q is not a duration", v)
		}
		if opts.ConnMaxLifetime == 0 {
			opts.ConnMaxLifetime = d
		}
	}
	if v, ok := params["batching"]; ok {
		delete(params, "batching")
		switch v {
		case "on":
		case "off":
			opts.NoBatching = true
		default:
			return fmt.Errorf("batching=%q is neither on nor off", v)
		}
	}
	return nil
}
