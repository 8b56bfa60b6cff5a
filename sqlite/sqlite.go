// Package sqlite is Coffer's embedded store: one SQLite file in WAL mode,
// a pool of reading connections and one writing connection owned by a
// goroutine that commits waiting transactions in groups (group commit):
// each runs in a SAVEPOINT of one database transaction, so that a failing
// one rolls back alone, and one commit (one fsync) serves them all.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"coffer"
	"coffer/sqlstore"

	"github.com/mattn/go-sqlite3"
)

// Limits of the writer.
const (
	// MaxBatch bounds the transactions committed together.
	MaxBatch = 256
	// queueLength bounds the transactions waiting for the writer.
	queueLength = 4096
	// busyTimeout is how long a connection waits for another process's
	// lock (an operator command beside a running server).
	busyTimeout = 5 * time.Second
)

// Store is the SQLite implementation of coffer.Store.
type Store struct {
	path    string
	read    *sql.DB
	write   *sql.DB
	dialect *sqlstore.Dialect
	queue   chan *job
	done    chan struct{}
	closed  chan struct{}
	// queueMu orders every enqueue before Close: once closing is set, no
	// job can enter the queue that the stopping writer drains for the last
	// time (a job put there would never be answered).
	queueMu sync.RWMutex
	closing bool

	// readers is the pool of reading connections, each with its prepared
	// statements; a View takes one and gives it back.
	readers     chan *stmtCache
	readerCount int // the pool's size
	readersOpen int // readers opened and not yet closed
	closeMu     sync.Mutex
	// writeConn is the writing connection with its prepared statements,
	// used by the writer goroutine only.
	writeConn *stmtCache
}

type job struct {
	ctx    context.Context
	fn     func(coffer.Tx) error
	result chan error
}

var _ coffer.Store = (*Store)(nil)

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_foreign_keys", "on")
	q.Set("_mutex", "no") // each connection is used by one goroutine at a time
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_txlock", "immediate")
	if readOnly {
		q.Set("_query_only", "on")
		q.Set("_txlock", "deferred")
	}
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the database at path and migrates it to
// the current schema.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: bad database path %q", path)
	}
	write, err := sql.Open("sqlite3", dsn(path, false))
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	if err := migrate(ctx, write); err != nil {
		write.Close()
		return nil, err
	}
	read, err := sql.Open("sqlite3", dsn(path, true))
	if err != nil {
		write.Close()
		return nil, err
	}
	readers := max(minReaders, 2*runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(readers)
	read.SetMaxIdleConns(readers)
	read.SetConnMaxLifetime(0)
	s := &Store{
		path:        path,
		read:        read,
		write:       write,
		dialect:     &sqlstore.Dialect{UniqueViolation: uniqueViolation, CheckViolation: checkViolation, Blob: "BLOB"},
		queue:       make(chan *job, queueLength),
		done:        make(chan struct{}),
		closed:      make(chan struct{}),
		readers:     make(chan *stmtCache, readers),
		readerCount: readers,
	}
	if err := s.openConns(ctx); err != nil {
		s.closeConns()
		read.Close()
		write.Close()
		return nil, err
	}
	go s.writer()
	return s, nil
}

// minReaders is the fewest reading connections a store keeps.
const minReaders = 4

// openConns takes the writing connection and every reading connection
// out of their pools for the life of the store, so that each keeps its
// prepared statements.
func (s *Store) openConns(ctx context.Context) error {
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: open the writing connection: %w", err)
	}
	s.writeConn = newStmtCache(conn)
	if err := pragmas(ctx, conn, writerPragmas); err != nil {
		return err
	}
	for range s.readerCount {
		conn, err := s.read.Conn(ctx)
		if err != nil {
			return fmt.Errorf("sqlite: open a reading connection: %w", err)
		}
		s.readers <- newStmtCache(conn)
		s.readersOpen++
		if err := pragmas(ctx, conn, readerPragmas); err != nil {
			return err
		}
	}
	return nil
}

// Connection settings beyond the DSN's.
var (
	// writerPragmas: savepoint journals in memory (a batch's journal
	// would otherwise spill to a temporary file, a write per page per
	// job), and a page cache that holds the hot pages of the indexes the
	// ledger appends to.
	//
	// No connection reads through a memory map (mmap_size): with one, a
	// transfer cost a fifth more CPU (the map is redone as the file grows,
	// and mapped pages are parsed afresh by every transaction) and the
	// server did 15-24% fewer transfers a second, for no gain on reads
	// (BENCHMARKS.md).
	writerPragmas = []string{"PRAGMA temp_store = MEMORY", "PRAGMA cache_size = -65536"}
	// readerPragmas: none beyond the DSN's.
	readerPragmas []string
)

func pragmas(ctx context.Context, conn *sql.Conn, list []string) error {
	for _, p := range list {
		if _, err := conn.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("sqlite: %s: %w", p, err)
		}
	}
	return nil
}

// closeConns closes the connections openConns took, waiting for every
// reader to come back from its View.
func (s *Store) closeConns() error {
	var errs []error
	if s.writeConn != nil {
		errs = append(errs, s.writeConn.close())
		s.writeConn = nil
	}
	for ; s.readersOpen > 0; s.readersOpen-- {
		errs = append(errs, (<-s.readers).close())
	}
	return errors.Join(errs...)
}

func uniqueViolation(err error) (string, bool) {
	var se sqlite3.Error
	if errors.As(err, &se) && (se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey) {
		return se.Error(), true
	}
	return "", false
}

// checkViolation is the Dialect's test for a CHECK-constraint violation;
// SQLite's message names the constraint.
func checkViolation(err error) (string, bool) {
	var se sqlite3.Error
	if errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintCheck {
		return se.Error(), true
	}
	return "", false
}

// unavailable reports whether err means the database refuses writes for
// now: a read-only or full disk, an I/O error, a lock held too long.
func unavailable(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case sqlite3.ErrReadonly, sqlite3.ErrFull, sqlite3.ErrIoErr, sqlite3.ErrBusy, sqlite3.ErrLocked, sqlite3.ErrCantOpen, sqlite3.ErrNotADB, sqlite3.ErrCorrupt, sqlite3.ErrProtocol:
		return true
	}
	return false
}

// classify turns a driver error into the domain's error for the caller.
func classify(err error) error {
	if err == nil || coffer.ErrorCode(err) != coffer.ErrInternal {
		return err
	}
	if unavailable(err) {
		return &coffer.Error{Code: coffer.ErrUnavailable, Detail: err.Error()}
	}
	return err
}

// Update implements coffer.Store: fn joins the next group commit.
func (s *Store) Update(ctx context.Context, fn func(coffer.Tx) error) error {
	j := &job{ctx: ctx, fn: fn, result: make(chan error, 1)}
	if err := s.enqueue(ctx, j); err != nil {
		return err
	}
	// Once queued, the job is always answered: waiting for it keeps the
	// caller from reporting failure for a payment that then commits.
	return <-j.result
}

// enqueue hands j to the writer without waiting: a full queue is
// ErrOverloaded, a closing store ErrUnavailable.
func (s *Store) enqueue(ctx context.Context, j *job) error {
	s.queueMu.RLock()
	defer s.queueMu.RUnlock()
	if s.closing {
		return &coffer.Error{Code: coffer.ErrUnavailable, Detail: "store closed"}
	}
	select {
	case s.queue <- j:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	default:
		return &coffer.Error{Code: coffer.ErrOverloaded, Detail: "write queue full"}
	}
}

// View implements coffer.Store with a read transaction on a pooled
// reader.
func (s *Store) View(ctx context.Context, fn func(coffer.ReadTx) error) error {
	return s.onReader(ctx, false, fn)
}

// ViewEach implements coffer.Store on a pooled reader. Its first
// statement runs alone, in a WAL snapshot of its own; a second begins a
// read transaction that the rest share, because a snapshot taken for each
// statement costs more than BEGIN and COMMIT once there are two of them
// (measured: BENCHMARKS.md, fifth round). A read of one statement, such as
// info's, then costs one statement.
func (s *Store) ViewEach(ctx context.Context, fn func(coffer.ReadTx) error) error {
	return s.onReader(ctx, true, fn)
}

// onReader runs fn on a pooled reader, in a read transaction begun at
// once or, when lazy, before fn's second statement.
func (s *Store) onReader(ctx context.Context, lazy bool, fn func(coffer.ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var r *stmtCache
	select {
	case r = <-s.readers:
	case <-s.done:
		return &coffer.Error{Code: coffer.ErrUnavailable, Detail: "store closed"}
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { s.readers <- r }()
	return r.within(func() error {
		if !r.dc.AutoCommit() {
			// Left in a transaction by a ROLLBACK that failed: its old
			// snapshot would answer a read of one statement, silently.
			r.Exec(ctx, "ROLLBACK")
			if !r.dc.AutoCommit() {
				return &coffer.Error{Code: coffer.ErrUnavailable, Detail: "a reader is stuck in a transaction"}
			}
		}
		q := &readTx{stmtCache: r, lazy: lazy}
		if !lazy {
			if err := q.begin(ctx); err != nil {
				return classify(err)
			}
		}
		committed := false
		defer func() {
			if q.began && !committed { // fn failed or panicked: end the transaction before the next read
				r.Exec(ctx, "ROLLBACK")
			}
		}()
		if err := fn(sqlstore.NewTx(q, s.dialect)); err != nil {
			return classify(err)
		}
		if q.began {
			if err := r.Exec(ctx, "COMMIT"); err != nil {
				return classify(err)
			}
		}
		committed = true
		return nil
	})
}

// readTx is a reader's Querier that begins its read transaction before
// its second statement when lazy, else when told to. It offers only
// Querier's methods, each counted: a Pipeliner or Deferrer added to
// stmtCache must be added here too.
type readTx struct {
	*stmtCache
	lazy       bool
	statements int
	began      bool
}

func (q *readTx) begin(ctx context.Context) error {
	if err := q.stmtCache.Exec(ctx, "BEGIN"); err != nil {
		return err
	}
	q.began = true
	return nil
}

// next counts a statement about to run, beginning the transaction first
// when it is a lazy one's second.
func (q *readTx) next(ctx context.Context) error {
	q.statements++
	if q.lazy && q.statements == 2 {
		return q.begin(ctx)
	}
	return nil
}

// Exec implements sqlstore.Querier.
func (q *readTx) Exec(ctx context.Context, query string, args ...any) error {
	if err := q.next(ctx); err != nil {
		return err
	}
	return q.stmtCache.Exec(ctx, query, args...)
}

// Query implements sqlstore.Querier.
func (q *readTx) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	if err := q.next(ctx); err != nil {
		return nil, err
	}
	return q.stmtCache.Query(ctx, query, args...)
}

// QueryRow implements sqlstore.Querier.
func (q *readTx) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	if err := q.next(ctx); err != nil {
		return &driverRow{err: err}
	}
	return q.stmtCache.QueryRow(ctx, query, args...)
}

// Close stops the writer after it has answered every queued job, waits
// for the Views in progress, then closes the database.
func (s *Store) Close() error {
	s.queueMu.Lock()
	if !s.closing {
		s.closing = true
		close(s.done)
	}
	s.queueMu.Unlock()
	<-s.closed
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	err0 := s.closeConns()
	err1 := s.read.Close()
	err2 := s.write.Close()
	return errors.Join(err0, err1, err2)
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

func (s *Store) writer() {
	defer close(s.closed)
	batch := make([]*job, 0, MaxBatch)
	for {
		select {
		case j := <-s.queue:
			batch = append(batch[:0], j)
		case <-s.done:
			for {
				select {
				case j := <-s.queue:
					s.commit([]*job{j})
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < MaxBatch {
			select {
			case j := <-s.queue:
				batch = append(batch, j)
			default:
				break fill
			}
		}
		s.commit(batch)
	}
}

// commit runs the batch in one transaction, each job in its own savepoint,
// and answers every job once the commit has succeeded or failed.
func (s *Store) commit(batch []*job) {
	results := make([]error, len(batch))
	err := s.runBatch(batch, results)
	for i, j := range batch {
		if err != nil && results[i] == nil {
			results[i] = err
		}
		j.result <- classify(results[i])
	}
}

func (s *Store) runBatch(batch []*job, results []error) error {
	return s.writeConn.within(func() error { return s.runBatchWithin(batch, results) })
}

func (s *Store) runBatchWithin(batch []*job, results []error) error {
	ctx := context.Background() // a job's own context may end; the batch must not
	conn := s.writeConn
	if err := conn.Exec(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	for i, j := range batch {
		if j.ctx.Err() != nil {
			results[i] = j.ctx.Err()
			continue
		}
		if err := conn.Exec(ctx, "SAVEPOINT job"); err != nil {
			conn.Exec(ctx, "ROLLBACK")
			return err
		}
		results[i] = runJob(j, sqlstore.NewTx(conn, s.dialect)) // a Tx of its own: nothing it remembers outlives a job rolled back
		if results[i] != nil {
			if err := conn.Exec(ctx, "ROLLBACK TO job"); err != nil {
				conn.Exec(ctx, "ROLLBACK")
				return err
			}
		}
		if err := conn.Exec(ctx, "RELEASE job"); err != nil {
			conn.Exec(ctx, "ROLLBACK")
			return err
		}
	}
	if err := conn.Exec(ctx, "COMMIT"); err != nil {
		conn.Exec(ctx, "ROLLBACK")
		return err
	}
	return nil
}

// runJob runs one job's function, turning a panic into an error so that
// one bad job cannot take the writer down with the batch.
func runJob(j *job, tx coffer.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("transaction panicked: %v", r)
		}
	}()
	return j.fn(tx)
}
