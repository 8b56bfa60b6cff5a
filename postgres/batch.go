package postgres

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"coffer"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Batching: an Update whose function needs no answer before it ends (a
// transfer or a top-up: every statement held back, see sqlstore.Deferrer)
// is not run in a transaction of its own. Its statements wait in a queue,
// and one goroutine posts every Update waiting there in one transaction,
// sent in one pipeline, with one Sync:
//
//	BEGIN; SET LOCAL lock_timeout; <take the rows>; <first's>; <second's>; ...; COMMIT    Sync
//
// When every statement succeeds, which is almost always (an Update's
// function read what it needs first, and its statements only guard
// against what changed since), the batch pays for one round trip and one
// commit (one flush to disk) between all its Updates, and PostgreSQL for
// no subtransaction. When one fails, PostgreSQL skips the rest up to the
// Sync and the transaction rolls back, undoing what the Updates before it
// did: the batch runs again, each Update in a section of its own:
//
//	BEGIN; SET LOCAL lock_timeout; <take the rows>; SAVEPOINT item    Sync
//	ROLLBACK TO SAVEPOINT item; <first's>; RELEASE SAVEPOINT item; SAVEPOINT item    Sync
//	ROLLBACK TO SAVEPOINT item; <second's>; RELEASE SAVEPOINT item; SAVEPOINT item   Sync
//	...
//	ROLLBACK TO SAVEPOINT item; COMMIT             Sync
//
// After a statement fails there, PostgreSQL skips the rest of its section
// up to the Sync, and leaves the transaction aborted; the next section's
// ROLLBACK TO then undoes what the failed one did, and nothing else, and
// ends the abort. After a section that succeeded, ROLLBACK TO goes back to
// the savepoint just set, which undoes nothing. So each Update succeeds or
// fails alone, as in a transaction of its own. The Update whose statement
// failed the whole run does not run in the sections when it was the first
// of the batch (no other's statement came before it: its failure stands)
// or when it met a conflict, a lock not taken in time or a deadlock (it
// reports the conflict, and Update runs it again alone).
//
// Before any Update's statements, a batch of several Updates takes the
// rows that their statements lock (sqlstore.LockPlanner): users by id,
// then accounts in AccountKey.Less order, as a transaction of its own
// takes them. So two batches, of one server or of several on one
// database, never wait on each other in a cycle, which PostgreSQL would
// break only after deadlock_timeout (a second by default) by failing one
// of them.

// errNeedsConn is what a recording txConn (one without a connection)
// answers a statement whose answer the function waits for: such a
// function cannot join a batch, and runs in a transaction of its own.
var errNeedsConn = errors.New("postgres: the statement needs a connection")

// errStoreClosed is the answer to an Update queued for a batch when the
// store closes before the batch ran.
var errStoreClosed = errors.New("postgres: the store is closed")

// Bounds of batching.
const (
	// maxBatchItems bounds the Updates of one batch. When a batch runs in
	// sections, each section that writes is a subtransaction with an id of
	// its own, which PostgreSQL caches for 64 subtransactions of a
	// transaction; past that, every snapshot taken meanwhile costs more.
	maxBatchItems = 32
	// batchQueueLen bounds the Updates waiting for a batch; past it, an
	// Update waits to be queued (or for its context to end).
	batchQueueLen = 4 * maxBatchItems
	// batchTimeout bounds one batch, from taking a connection to COMMIT's
	// answer. Its Updates wait for it whatever their own contexts say, as
	// an Update waits for its COMMIT: the outcome is not known before.
	batchTimeout = 30 * time.Second
)

// The statements that take a batch's rows first: users by id, then
// accounts in AccountKey.Less order (its strings compared byte by byte,
// as COLLATE "C" does). PostgreSQL locks the rows of SELECT ... ORDER BY
// ... FOR UPDATE in the order it returns them.
const (
	sqlLockUsers    = "SELECT 1 FROM users WHERE id = ANY($1) ORDER BY id FOR UPDATE"
	sqlLockAccounts = `SELECT 1 FROM accounts a
JOIN unnest(CAST($1 AS BIGINT[]), CAST($2 AS TEXT[]), CAST($3 AS TEXT[]), CAST($4 AS TEXT[]), CAST($5 AS BIGINT[])) AS k (user_id, kind, asset, product, lot)
ON a.user_id = k.user_id AND a.kind = k.kind AND a.asset = k.asset AND a.product = k.product AND a.lot = k.lot
ORDER BY a.user_id, a.kind COLLATE "C", a.asset COLLATE "C", a.product COLLATE "C", a.lot
FOR UPDATE OF a`
)

// batchLockTimeout bounds how long a batch's statement waits for a row
// (SET LOCAL lock_timeout): a row held long by another transaction (a day's
// interest, an operator's command) would hold up every payment of the
// server behind one batch. Past it the statement fails with 55P03, and
// what it failed (every payment of the batch, when the rows taken first
// time out) runs again, each in a transaction of its own, without a
// timeout (see Update). Batches wait on each other for a commit, a few
// milliseconds.
const batchLockTimeout = 500 * time.Millisecond

// sqlLockTimeout sets batchLockTimeout for the batch's transaction.
var sqlLockTimeout = fmt.Sprintf("SET LOCAL lock_timeout = %d", batchLockTimeout.Milliseconds())

// The statements that frame a batch's sections.
const (
	sqlSavepoint  = "SAVEPOINT item"
	sqlRollbackTo = "ROLLBACK TO SAVEPOINT item"
	sqlRelease    = "RELEASE SAVEPOINT item"
	sqlCommit     = "COMMIT"
	sqlRollback   = "ROLLBACK"
)

// batchItem is one Update's held-back statements, waiting for a batch.
type batchItem struct {
	ctx          context.Context // the Update's: a batch skips an item whose context ended before the batch began
	later        []queued
	lockUsers    []coffer.UserID // rows its statements lock (sqlstore.LockPlanner)
	lockAccounts []coffer.AccountKey
	result       chan batchResult // buffered: the batcher never waits on it
}

// newBatchItem is the item of what t, a recording txConn, held back.
func newBatchItem(ctx context.Context, t *txConn) *batchItem {
	return &batchItem{ctx: ctx, later: t.later, lockUsers: t.lockUsers, lockAccounts: t.lockAccounts, result: make(chan batchResult, 1)}
}

// batchResult is an item's outcome, as updateOnce reports it.
type batchResult struct {
	err        error
	committing bool // err came from the batch's COMMIT, or after it was sent: the outcome is not known
}

// batcher runs the batches of one Store.
type batcher struct {
	conns   *liveConns
	items   chan *batchItem
	stop    chan struct{} // closed by close
	done    chan struct{} // closed by run as it ends, every item it took answered
	closing sync.Once
	batches atomic.Int64 // batches run
	batched atomic.Int64 // Updates in them
	split   atomic.Int64 // batches whose one transaction failed, run again in sections
}

func newBatcher(conns *liveConns) *batcher {
	b := &batcher{conns: conns, items: make(chan *batchItem, batchQueueLen), stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

// close stops the goroutine once its batch is done; the Updates still
// queued, and those that come after, fail with errStoreClosed, and
// nothing of them ran. Closing again does nothing.
func (b *batcher) close() {
	b.closing.Do(func() { close(b.stop) })
	<-b.done
}

// post queues the statements an Update held back on t and waits for the
// batch that carries them; its answer is updateOnce's.
func (b *batcher) post(ctx context.Context, t *txConn) (committing bool, err error) {
	it := newBatchItem(ctx, t)
	select {
	case <-b.stop:
		return false, errStoreClosed
	default:
	}
	select {
	case b.items <- it:
	case <-ctx.Done():
		return false, ctx.Err()
	case <-b.stop:
		return false, errStoreClosed
	}
	select {
	case r := <-it.result:
		return r.committing, r.err
	case <-b.done: // queued after run's last look at the queue, or answered just now
		select {
		case r := <-it.result:
			return r.committing, r.err
		default:
			return false, errStoreClosed
		}
	}
}

func (b *batcher) run() {
	defer close(b.done)
	for {
		select {
		case <-b.stop: // first: a select picks at random among what is ready
			b.refuseQueued()
			return
		default:
		}
		var first *batchItem
		select {
		case first = <-b.items:
		case <-b.stop:
			b.refuseQueued()
			return
		}
		batch := []*batchItem{first}
	drain:
		for len(batch) < maxBatchItems {
			select {
			case it := <-b.items:
				batch = append(batch, it)
			default:
				break drain
			}
		}
		b.runBatch(batch)
	}
}

// refuseQueued answers the items left in the queue at close.
func (b *batcher) refuseQueued() {
	for {
		select {
		case it := <-b.items:
			it.result <- batchResult{err: errStoreClosed}
		default:
			return
		}
	}
}

// runBatch posts batch's items, those whose context has not ended, and
// answers every item.
func (b *batcher) runBatch(batch []*batchItem) {
	live := batch[:0:0]
	for _, it := range batch {
		if err := it.ctx.Err(); err != nil {
			it.result <- batchResult{err: err}
			continue
		}
		live = append(live, it)
	}
	if len(live) == 0 {
		return
	}
	b.batches.Add(1)
	b.batched.Add(int64(len(live)))
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	results := make([]batchResult, len(live))
	err := b.withConn(ctx, func(conn *pgx.Conn) {
		defer func() {
			// A panic (in pgx, or in an item's callback) would end the
			// process from this goroutine, which no handler recovers; the
			// batch's outcome is then unknown, and its connection closed.
			if v := recover(); v != nil {
				setAll(results, batchResult{err: fmt.Errorf("postgres: panic in a batch: %v\n%s", v, debug.Stack()), committing: true})
				conn.Close(context.WithoutCancel(ctx))
			}
		}()
		if postBatch(ctx, conn, live, results) {
			b.split.Add(1)
		}
	})
	for i, it := range live {
		if err != nil { // no connection: nothing was sent
			results[i] = batchResult{err: &unstartedError{err}}
		}
		it.result <- results[i]
	}
}

// withConn runs fn on a connection of the pool, and closes the
// connection afterwards if fn left it in a transaction or in doubt.
func (b *batcher) withConn(ctx context.Context, fn func(*pgx.Conn)) error {
	c, err := b.conns.take(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return rawConn(c, func(conn *pgx.Conn) error {
		fn(conn)
		pc := conn.PgConn()
		if (pc.IsBusy() || pc.TxStatus() != 'I') && !conn.IsClosed() {
			conn.Close(context.WithoutCancel(ctx))
		}
		return nil
	})
}

// postBatch runs the batch's items on conn, whole and, if a statement
// failed, again in sections (see the comment at the top of this file), and
// sets each one's result. Every result starts as "not run, run again": an
// item succeeds only when its statements and the COMMIT after them were
// answered without an error. split reports that items ran again in
// sections.
func postBatch(ctx context.Context, conn *pgx.Conn, batch []*batchItem, results []batchResult) (split bool) {
	for i := range results { // never seen: every path below sets its results
		results[i] = batchResult{err: &unstartedError{errNotRun}}
	}
	// Prepare what this connection has not prepared yet (one round trip
	// each, the first time only), and encode the arguments. A statement
	// that PostgreSQL refuses to prepare, or an argument that cannot be
	// encoded, fails its item alone; a lost connection, the batch, and
	// nothing was sent.
	frames := make(map[string]*pgconn.StatementDescription, 6)
	for _, q := range []string{beginUpdate, sqlLockTimeout, sqlSavepoint, sqlRollbackTo, sqlRelease, sqlCommit} {
		sd, err := conn.Prepare(ctx, q, q)
		if err != nil {
			setAll(results, batchResult{err: &unstartedError{err}})
			return false
		}
		frames[q] = sd
	}
	state := make([]itemState, len(batch))
	values := make([][]encoded, len(batch))
	for i, it := range batch {
		v, err := encode(ctx, conn, it.later)
		switch {
		case err == nil:
			values[i], state[i] = v, itemSent
		case statementError(err) || errors.Is(err, errEncode):
			results[i] = batchResult{err: onErrorOf(it.later[len(v)], err)}
		default:
			setAll(results, batchResult{err: &unstartedError{err}})
			return false
		}
	}
	if !slices.Contains(state, itemSent) {
		return false
	}
	sent := &sentBatch{ctx: ctx, conn: conn, frames: frames, items: batch, values: values, state: state, results: results}
	if !sent.postWhole() || !slices.Contains(state, itemSent) {
		return false
	}
	// The sections are a run of their own: batchTimeout again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	defer cancel()
	sent.ctx = ctx
	sent.postSections()
	return true
}

// sentBatch is a batch on its way: its items, their statements prepared
// and encoded, and where each item is.
type sentBatch struct {
	ctx     context.Context
	conn    *pgx.Conn
	frames  map[string]*pgconn.StatementDescription // BEGIN, SAVEPOINT and the others, prepared
	items   []*batchItem
	values  [][]encoded // each item's statements
	state   []itemState
	results []batchResult
}

// lost sets the result of every item whose statements went with COMMIT
// and were not seen to fail, when the connection fails: unknown, for
// COMMIT may have run, or "run again" when nothing ran.
func (b *sentBatch) lost(err error, nothingRan bool) {
	r := batchResult{err: err, committing: true}
	if nothingRan {
		r = batchResult{err: &unstartedError{err}}
	}
	for i := range b.items {
		if b.state[i] == itemSent || b.state[i] == itemPassed {
			b.results[i] = r
		}
	}
}

// begin starts a pipeline on b's connection and sends on it BEGIN, the
// lock timeout and the statements that take the rows of the items to send
// (state itemSent): framed statements in all. frame sends one of b's
// frames on p. On an error nothing was sent, and p is nil.
func (b *sentBatch) begin() (p *pgconn.Pipeline, frame func(q string), framed int, err error) {
	locks, err := encode(b.ctx, b.conn, lockStatements(b.items, b.state))
	if err != nil {
		return nil, nil, 0, err
	}
	p = b.conn.PgConn().StartPipeline(b.ctx)
	frame = func(q string) { sendStatement(p, encoded{sd: b.frames[q]}) }
	frame(beginUpdate)
	frame(sqlLockTimeout)
	for _, e := range locks {
		sendStatement(p, e)
	}
	return p, frame, 2 + len(locks), nil
}

// postWhole sends the items to send (state itemSent) in one transaction
// without savepoints, with one Sync, and reads the answers. It reports
// rerun when a statement of an item failed in the database: the
// transaction then rolled back, and the items left in state itemSent are
// to run again in sections.
func (b *sentBatch) postWhole() (rerun bool) {
	p, frame, framed, err := b.begin()
	if err != nil {
		b.lost(err, true) // nothing was sent
		return false
	}
	defer p.Close()
	// answers lists, in order, whose each answer is: an item's statement,
	// or the frame's (item -1).
	type answer struct {
		item int
		q    *queued
	}
	answers := make([]answer, 0, framed+1+8*len(b.items))
	for range framed {
		answers = append(answers, answer{item: -1})
	}
	for i, it := range b.items {
		if b.state[i] != itemSent {
			continue
		}
		for k, e := range b.values[i] {
			sendStatement(p, e)
			answers = append(answers, answer{item: i, q: &it.later[k]})
		}
	}
	frame(sqlCommit)
	answers = append(answers, answer{item: -1})
	p.SendPipelineSync()
	if err := p.Flush(); err != nil {
		b.lost(err, pgconn.SafeToRetry(err)) // safe: nothing was written
		return false
	}
	scanErrs := make([]error, len(b.items))
	var tag pgconn.CommandTag
	for n, a := range answers {
		var err error
		tag, err = readAnswer(p, b.conn, a.q)
		switch {
		case err == nil:
		case errors.Is(err, errScan): // the statement ran: its item commits with the rest
			if scanErrs[a.item] == nil {
				scanErrs[a.item] = onErrorOf(*a.q, err)
			}
		case !statementError(err):
			// PostgreSQL answers in order, and a FATAL error is its last
			// answer: in place of an answer before COMMIT's, it means that
			// COMMIT did not run.
			b.lost(err, n < len(answers)-1 && nothingRan(err))
			return false
		default:
			return b.abortWhole(p, a.item, a.q, err)
		}
	}
	// COMMIT was answered: the Sync's answer, or its failure, changes
	// nothing (a connection left busy is closed by withConn).
	_, _ = p.GetResults()
	outcome := batchResult{}
	if tag.String() != "COMMIT" { // ROLLBACK: never seen without a failure first
		outcome = batchResult{err: errCommitRolledBack}
	}
	for i := range b.items {
		switch {
		case b.state[i] != itemSent:
		case scanErrs[i] != nil:
			b.results[i], b.state[i] = batchResult{err: scanErrs[i], committing: true}, itemFailed
		default:
			b.results[i], b.state[i] = outcome, itemPassed
		}
	}
	return false
}

// abortWhole ends a batch sent whole after its statement q, of the item
// numbered item (-1: the frame's), failed with err in the database,
// which then skipped the rest, COMMIT too, and aborted the transaction.
// It rolls the transaction back, and reports rerun as postWhole does.
func (b *sentBatch) abortWhole(p *pgconn.Pipeline, item int, q *queued, err error) (rerun bool) {
	r, syncErr := p.GetResults()
	if _, ok := r.(*pgconn.PipelineSync); !ok && syncErr == nil {
		syncErr = fmt.Errorf("postgres: a batch's answers after a failure ended without their sync (%T)", r)
	}
	if syncErr == nil {
		syncErr = p.Close()
	}
	if syncErr == nil && b.conn.PgConn().TxStatus() != 'I' { // not after a failed COMMIT, which ended it
		syncErr = b.conn.PgConn().Exec(b.ctx, sqlRollback).Close()
	}
	if syncErr != nil {
		// An aborted transaction never commits: nothing of it ran.
		b.lost(syncErr, true)
		return false
	}
	if item < 0 {
		// BEGIN, taking the rows (a deadlock with a transaction of its
		// own, say) or COMMIT failed: so would every item, in sections.
		for i := range b.items {
			if b.state[i] == itemSent {
				b.results[i], b.state[i] = batchResult{err: err}, itemFailed
			}
		}
		return false
	}
	// The first item's statements met no other item's: its failure is the
	// one it would meet in a section. After a conflict (a lock not taken in
	// time, a deadlock, a key taken meanwhile) Update runs the item again
	// alone, rather than the sections wait for the same lock again. Any
	// other item runs again in its section: its failure may have come from
	// an item before it, now rolled back.
	if err := onErrorOf(*q, err); item == slices.Index(b.state, itemSent) || conflict(err) {
		b.results[item], b.state[item] = batchResult{err: err}, itemFailed
	}
	return true
}

// readAnswer reads the answer of the next statement of p, scanning its row
// into q's destinations as readResult does.
func readAnswer(p *pgconn.Pipeline, conn *pgx.Conn, q *queued) (pgconn.CommandTag, error) {
	r, err := p.GetResults()
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	rr, ok := r.(*pgconn.ResultReader)
	if !ok { // a Sync, or nothing: never before the statements' answers
		return pgconn.CommandTag{}, fmt.Errorf("postgres: a batch's answers ended early (%T)", r)
	}
	return readResult(rr, conn, q)
}

// postSections sends the items to send (state itemSent) in one
// transaction, each in a section of its own (see the comment at the top of
// this file), and reads the answers.
func (b *sentBatch) postSections() {
	batch, state, values, results := b.items, b.state, b.values, b.results
	p, frame, _, err := b.begin()
	if err != nil {
		b.lost(err, true) // nothing was sent
		return
	}
	defer p.Close()
	conn := b.conn
	frame(sqlSavepoint)
	p.SendPipelineSync()
	for i := range batch {
		if state[i] != itemSent {
			continue
		}
		frame(sqlRollbackTo)
		for _, e := range values[i] {
			sendStatement(p, e)
		}
		frame(sqlRelease)
		frame(sqlSavepoint)
		p.SendPipelineSync()
	}
	frame(sqlRollbackTo)
	frame(sqlCommit)
	p.SendPipelineSync()
	if err := p.Flush(); err != nil {
		b.lost(err, pgconn.SafeToRetry(err)) // safe: nothing was written
		return
	}
	// A FATAL error first means that nothing ran (see nothingRan). A
	// statement of the first section that failed (taking the rows: a
	// deadlock with a transaction of its own, say) fails every item, and
	// COMMIT rolls back.
	if _, failed, err := readSection(p, conn, nil); err != nil {
		if failed {
			for i := range batch {
				if state[i] == itemSent {
					results[i], state[i] = batchResult{err: err}, itemFailed
				}
			}
		} else {
			b.lost(err, nothingRan(err))
		}
		return
	}
	for i, it := range batch {
		if state[i] != itemSent {
			continue
		}
		_, failed, err := readSection(p, conn, it.later)
		switch {
		case failed: // rolled back to its savepoint, whatever COMMIT does
			results[i], state[i] = batchResult{err: err}, itemFailed
		case errors.Is(err, errScan): // ran whole: it commits with the rest
			results[i], state[i] = batchResult{err: err, committing: true}, itemFailed
		case err != nil:
			// PostgreSQL answers in order, and a FATAL error is its last
			// answer: in place of this section's, it means that COMMIT,
			// further on, did not run.
			b.lost(err, isFatal(err))
			return
		default:
			state[i] = itemPassed
		}
	}
	tag, failed, err := readSection(p, conn, nil) // ROLLBACK TO, COMMIT
	outcome := batchResult{}
	switch {
	case err != nil:
		outcome = batchResult{err: err, committing: !failed}
	case tag.String() != "COMMIT": // ROLLBACK: the transaction was aborted
		outcome = batchResult{err: errCommitRolledBack}
	}
	for i := range batch {
		if state[i] == itemPassed {
			results[i] = outcome
		}
	}
}

// itemState is where an item of a batch is.
type itemState int

const (
	itemNotSent itemState = iota // failed before the pipeline, or skipped
	itemSent                     // its statements are in the pipeline
	itemFailed                   // its section failed, or its answer could not be read
	itemPassed                   // its section succeeded: it waits for COMMIT
)

// errNotRun is the result of an item that the batch did not run.
var errNotRun = errors.New("postgres: the batch did not run")

// setAll sets every result to r.
func setAll(results []batchResult, r batchResult) {
	for i := range results {
		results[i] = r
	}
}

// errEncode marks an argument that pgx could not encode: the item's
// fault, not the connection's.
var errEncode = errors.New("postgres: cannot encode an argument")

// encoded is a statement ready to send: prepared, its arguments encoded.
type encoded struct {
	sd            *pgconn.StatementDescription
	params        [][]byte
	paramFormats  []int16
	resultFormats []int16
}

// encode prepares later's statements on conn (a round trip for each that
// conn has not prepared before) and encodes their arguments. On failure it
// returns those done before the one that failed.
func encode(ctx context.Context, conn *pgx.Conn, later []queued) ([]encoded, error) {
	done := make([]encoded, 0, len(later))
	for _, q := range later {
		sd, err := conn.Prepare(ctx, q.query, q.query)
		if err != nil {
			return done, err
		}
		var eqb pgx.ExtendedQueryBuilder // one each: its slices are reused by the next Build
		if err := eqb.Build(conn.TypeMap(), sd, q.args); err != nil {
			return done, fmt.Errorf("%w: %w", errEncode, err)
		}
		done = append(done, encoded{sd: sd, params: eqb.ParamValues, paramFormats: eqb.ParamFormats, resultFormats: eqb.ResultFormats})
	}
	return done, nil
}

// sendStatement queues a prepared statement on p.
func sendStatement(p *pgconn.Pipeline, e encoded) {
	// By name, with a Describe each time: SendQueryStatement would skip the
	// Describe, but pgconn then misreads the answers after a section that
	// failed (it keeps the skipped statements' descriptions queued).
	p.SendQueryPrepared(e.sd.Name, e.params, e.paramFormats, e.resultFormats)
}

// onErrorOf is the error an Update reports for its statement q's failure.
func onErrorOf(q queued, err error) error {
	if q.onError != nil {
		return q.onError(err)
	}
	return fmt.Errorf("postgres: a statement of the batch: %w", err)
}

// statementError reports whether err is PostgreSQL's answer that a
// statement failed, and not that the connection ends (a FATAL error).
func statementError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && !isFatal(err)
}

// isFatal reports whether err is PostgreSQL's FATAL (or PANIC) error, after
// which the backend ends the connection.
func isFatal(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Severity == "FATAL" || pe.Severity == "PANIC")
}

// readSection reads one section's answers, up to its Sync: ROLLBACK TO,
// later's statements (scanning their rows), RELEASE, SAVEPOINT; or, for
// the first and the last section (later nil), the frame's statements, and
// then tag is the last one's (COMMIT's). failed reports that a statement
// of the section failed in the database, which skipped the rest, err then
// being that failure as its Update reports it. err without failed is the
// connection's, or a row that could not be scanned (errScan) in a section
// that the database ran whole (see Deferrer.QueryRowLater).
func readSection(p *pgconn.Pipeline, conn *pgx.Conn, later []queued) (tag pgconn.CommandTag, failed bool, err error) {
	var first, scanErr error
	for n := 0; ; n++ { // n: the answer's place in the section
		var q *queued
		if n >= 1 && n <= len(later) {
			q = &later[n-1]
		}
		r, err := p.GetResults()
		if err == nil {
			switch r := r.(type) {
			case *pgconn.PipelineSync:
				if first != nil {
					return tag, true, first
				}
				return tag, false, scanErr
			case *pgconn.ResultReader:
				tag, err = readResult(r, conn, q)
			default: // nil: no more answers, before the Sync
				return tag, false, errors.New("postgres: a batch's pipeline ended before its sync")
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, errScan):
			if scanErr == nil {
				scanErr = onErrorOf(*q, err)
			}
		case !statementError(err):
			return tag, false, err // the connection: PostgreSQL's answers end here
		case first == nil:
			first = err
			if q != nil {
				first = onErrorOf(*q, err)
			}
		}
	}
}

// errScan marks a row that could not be scanned: the statement's fault,
// not the connection's.
var errScan = errors.New("postgres: cannot scan a row")

// readResult reads a statement's answer, and scans its one row into q's
// destinations when q has them (then runs q's done), as QueryRowLater
// asks; q is nil for the frame's statements.
func readResult(r *pgconn.ResultReader, conn *pgx.Conn, q *queued) (pgconn.CommandTag, error) {
	if q == nil || q.dests == nil {
		return r.Close()
	}
	var scanErr error
	got := r.NextRow()
	if got {
		scanErr = pgx.ScanRow(conn.TypeMap(), r.FieldDescriptions(), r.Values(), q.dests...)
	}
	tag, err := r.Close()
	switch {
	case err != nil:
		return tag, err
	case !got:
		return tag, fmt.Errorf("%w: %w", errScan, pgx.ErrNoRows)
	case scanErr != nil:
		return tag, fmt.Errorf("%w: %w", errScan, scanErr)
	}
	if q.done != nil {
		q.done()
	}
	return tag, nil
}

// lockStatements returns the statements that take the rows of the items
// to send, in one order, before any item's own; none for one item, whose
// statements take its rows in that order themselves.
func lockStatements(batch []*batchItem, state []itemState) []queued {
	var users []coffer.UserID
	var accounts []coffer.AccountKey
	items := 0
	for i, it := range batch {
		if state[i] == itemSent {
			users = append(users, it.lockUsers...)
			accounts = append(accounts, it.lockAccounts...)
			items++
		}
	}
	if items < 2 {
		return nil
	}
	var qs []queued
	if len(users) > 0 {
		slices.Sort(users)
		ids := make([]int64, 0, len(users))
		for _, u := range slices.Compact(users) {
			ids = append(ids, int64(u))
		}
		qs = append(qs, queued{query: sqlLockUsers, args: []any{ids}})
	}
	if len(accounts) > 0 {
		slices.SortFunc(accounts, func(a, b coffer.AccountKey) int {
			switch {
			case a.Less(b):
				return -1
			case b.Less(a):
				return 1
			}
			return 0
		})
		accounts = slices.Compact(accounts)
		n := len(accounts)
		owners, kinds, assets, products, lots := make([]int64, n), make([]string, n), make([]string, n), make([]string, n), make([]int64, n)
		for i, k := range accounts {
			owners[i], kinds[i], assets[i], products[i], lots[i] = int64(k.User), string(k.Kind), string(k.Asset), k.Product, k.Lot
		}
		qs = append(qs, queued{query: sqlLockAccounts, args: []any{owners, kinds, assets, products, lots}})
	}
	return qs
}
