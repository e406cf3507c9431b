package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// Group commit on SQLite's one writer.
//
// Every transaction (InTx) and every single write (Exec of an INSERT,
// UPDATE, DELETE or REPLACE) of a SQLite database is a job for one
// goroutine, the batcher, which owns the writer while it works. It takes
// all the jobs queued when it starts a batch and runs them, in the order
// they came, in one SQLite transaction: each job in its own SAVEPOINT,
// rolled back to it when the job fails, so a failed job leaves nothing and
// the others keep what they did. Then it commits once and only then tells
// each job's caller how its job ended. A job that returned nil is durable
// when InTx returns nil, exactly as before; if the commit fails, every job
// of the batch gets the commit's error, as a transaction of its own would
// have.
//
// Why: with the writer taken in turn by each request's goroutine, it sat
// idle between two holders (the next one had to be woken and scheduled,
// behind whatever the releasing goroutine still had to do on the same
// core), and each transaction paid its own commit: the WAL frames of every
// page it touched, the WAL index's locks. One goroutine that always has
// the next job at hand keeps the writer busy, and one commit writes a page
// that several jobs changed (an index's right edge, the audit chain's
// head) once. A job alone in its batch (an idle writer) runs without a
// savepoint, exactly as a transaction of its own did.
//
// What a job sees: the committed database and the writes of the jobs
// before it in its batch, which commit or fail together with its own. No
// caller hears of a job's outcome before the batch is committed, so
// nothing a job read from another's uncommitted write is acted on unless
// that write is durable too. Isolation between requests is what it was on
// one connection: jobs run one after the other, never interleaved.
//
// What a job must not do: call Commit or Rollback on its Tx (InTx does,
// for the whole batch; the Tx refuses), or use the DB's writer outside
// its Tx (it would wait for itself, as it always did on one connection).
// A job's statements run without its context's cancellation: a statement
// interrupted inside a SQLite transaction can roll back the whole
// transaction, the other jobs' work with it. A caller whose context is
// done before its job starts gets the context's error and its job never
// runs; once started, a job runs to its end (the writer's jobs are short
// statements).
//
// Plain reads keep their way (readers.go): on the writer between batches,
// on a reader while a batch holds it. Direct uses of the embedded *sql.DB
// (db.DB, Begin, QueryRow of a write) still take the writer through its
// pool, between batches.

// maxBatch bounds the jobs of one batch: a job queued behind a long batch
// waits for all of it.
const maxBatch = 64

// ErrClosed reports a job given to a database that is closed.
var ErrClosed = errors.New("store: the database is closed")

// errInBatch refuses a job's own Commit or Rollback.
var errInBatch = errors.New("store: Commit and Rollback belong to InTx, which ends the transaction")

// job is one InTx call waiting for, or run by, the batcher.
type job struct {
	ctx   context.Context
	f     func(*Tx) error
	state atomic.Int32 // queued, then started (by the batcher) or dropped (by its caller)
	err   error
	panic any // what f panicked with, re-raised in the caller
	ok    bool
	done  chan struct{}
}

// A job's states: its caller and the batcher each try to move it out of
// queued; the one that wins decides whether it runs.
const (
	jobQueued int32 = iota
	jobStarted
	jobDropped
)

// batcher runs the jobs of a SQLite database's writer.
type batcher struct {
	db     *DB
	mu     sync.Mutex
	queue  []*job
	spare  []*job
	closed bool
	// pending counts the jobs queued or running: while there are any,
	// plain reads go to the readers (readers.go), not between two batches.
	pending atomic.Int64
	wake    chan struct{} // 1-buffered: there may be jobs
	exited  chan struct{}
}

func startBatcher(db *DB) *batcher {
	b := &batcher{db: db, wake: make(chan struct{}, 1), exited: make(chan struct{})}
	go b.loop()
	return b
}

// do queues f and waits for its batch to end.
func (b *batcher) do(ctx context.Context, f func(*Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j := &job{ctx: ctx, f: f, done: make(chan struct{})}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.queue = append(b.queue, j)
	b.pending.Add(1)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	select {
	case <-j.done:
	case <-ctx.Done():
		if j.state.CompareAndSwap(jobQueued, jobDropped) {
			return ctx.Err() // never to run
		}
		<-j.done // running: it runs to its end
	}
	if j.panic != nil {
		panic(j.panic)
	}
	return j.err
}

// busy reports whether jobs are queued or running.
func (b *batcher) busy() bool { return b != nil && b.pending.Load() > 0 }

// stop runs what is queued, refuses what comes after and waits for the
// batcher to end.
func (b *batcher) stop() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	<-b.exited
}

func (b *batcher) loop() {
	defer close(b.exited)
	for {
		b.mu.Lock()
		queued, closed := b.queue, b.closed
		b.queue, b.spare = b.spare, nil
		b.mu.Unlock()
		if len(queued) == 0 {
			if closed {
				return
			}
			<-b.wake
			continue
		}
		for jobs := queued; len(jobs) > 0; {
			n := min(len(jobs), maxBatch)
			b.run(jobs[:n])
			jobs = jobs[n:]
		}
		clear(queued)
		b.mu.Lock()
		b.spare = queued[:0]
		b.mu.Unlock()
	}
}

// run runs one batch and tells its callers.
func (b *batcher) run(jobs []*job) {
	defer func() {
		b.pending.Add(-int64(len(jobs)))
		for _, j := range jobs {
			j.ctx, j.f = nil, nil
			close(j.done)
		}
	}()
	// The write lock first (another process on the file may hold it):
	// a caller may still give up meanwhile.
	sqlTx, err := b.db.DB.BeginTx(context.Background(), nil)
	// Jobs whose callers gave up before they started are not run.
	live := jobs[:0:0]
	for _, j := range jobs {
		if j.ctx.Err() == nil && j.state.CompareAndSwap(jobQueued, jobStarted) {
			live = append(live, j)
		} else if j.err = j.ctx.Err(); j.err == nil {
			j.err = context.Canceled
		}
	}
	switch {
	case err != nil:
		for _, j := range live {
			j.err = err
		}
		return
	case len(live) == 0:
		sqlTx.Rollback()
		return
	}
	tx := &Tx{Tx: sqlTx, db: b.db, batched: true}
	defer tx.prepareMissed()
	if len(live) == 1 {
		j := live[0]
		j.err, j.panic = call(j.f, tx)
		if j.err != nil || j.panic != nil {
			tx.Tx.Rollback()
			return
		}
		j.err = tx.Tx.Commit()
		return
	}
	var broken error
	for _, j := range live {
		if _, err := tx.Tx.Exec(`SAVEPOINT egate_job`); err != nil {
			broken = err
			break
		}
		j.err, j.panic = call(j.f, tx)
		if j.err != nil || j.panic != nil {
			if _, err := tx.Tx.Exec(`ROLLBACK TO egate_job`); err != nil {
				// SQLite rolled the whole transaction back (an I/O
				// error, a full disk): the jobs before it are gone too.
				broken = err
				break
			}
		} else {
			j.ok = true
		}
		if _, err := tx.Tx.Exec(`RELEASE egate_job`); err != nil {
			broken = err
			break
		}
	}
	if broken != nil {
		tx.Tx.Rollback()
		for _, j := range live {
			if j.ok || (j.err == nil && j.panic == nil) {
				j.ok = false
				j.err = fmt.Errorf("store: the transaction this one shared failed, nothing of it was kept: %w", broken)
			}
		}
		return
	}
	cerr := tx.Tx.Commit()
	for _, j := range live {
		if j.ok {
			j.err = cerr
		}
	}
}

// call runs f, catching a panic to re-raise in the caller's goroutine.
func call(f func(*Tx) error, tx *Tx) (err error, p any) {
	defer func() {
		if r := recover(); r != nil {
			p = r
		}
	}()
	return f(tx), nil
}

// isWrite reports whether q is a write that Exec batches: its first
// keyword is INSERT, UPDATE, DELETE or REPLACE. Anything else (PRAGMA,
// DDL, VACUUM, WITH …) runs on the writer as it is, outside any batch:
// some of it cannot run in a transaction.
func isWrite(q string) bool {
	q = strings.TrimLeft(q, " \t\r\n\f")
	for _, kw := range [...]string{"INSERT", "UPDATE", "DELETE", "REPLACE"} {
		if len(q) > len(kw) && strings.EqualFold(q[:len(kw)], kw) {
			c := q[len(kw)]
			if c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' {
				return true
			}
		}
	}
	return false
}
