package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// openBatched opens a SQLite file, whose writer runs jobs in batches.
func openBatched(t *testing.T) (*DB, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	db, err := Open(ctx, Config{Driver: SQLite, DSN: filepath.Join(t.TempDir(), "egate.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if db.batch == nil {
		t.Fatal("a SQLite database has no batcher")
	}
	return db, ctx
}

var holders atomic.Int64

// holdWriter starts a job that holds the batcher until release is
// called, so that the jobs given meanwhile share the next batch.
func holdWriter(t *testing.T, db *DB, ctx context.Context) (release func()) {
	t.Helper()
	started, free := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.InTx(ctx, func(tx *Tx) error {
			close(started)
			<-free
			_, err := tx.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES (?, '', 0)`, fmt.Sprint("holder-", holders.Add(1)))
			return err
		})
	}()
	<-started
	return func() {
		close(free)
		if err := <-done; err != nil {
			t.Errorf("the holding job: %v", err)
		}
	}
}

// waitQueued waits until n jobs are queued or running.
func waitQueued(t *testing.T, db *DB, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for db.batch.pending.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs queued, want %d", db.batch.pending.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func count(t *testing.T, db *DB, ctx context.Context, like string) int {
	t.Helper()
	var n int
	if err := db.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM kv WHERE k LIKE ?`, like).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBatchKeepsEachJobsOutcome: jobs that share a batch each keep what
// they did when they succeed and leave nothing when they fail, whatever
// their neighbours did, and each caller hears its own outcome; a job sees
// the writes of the jobs before it in the batch; a panic reaches its own
// caller only; single writes (Exec) join batches too.
func TestBatchKeepsEachJobsOutcome(t *testing.T) {
	t.Parallel()
	db, ctx := openBatched(t)
	errNo := errors.New("the job refuses")
	type result struct {
		i     int
		err   error
		panic any
	}
	const jobs = 24
	release := holdWriter(t, db, ctx)
	results := make(chan result, jobs)
	var wg sync.WaitGroup
	for i := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := result{i: i}
			defer func() {
				r.panic = recover()
				results <- r
			}()
			k := fmt.Sprintf("job-%02d", i)
			switch i % 4 {
			case 0: // succeeds
				r.err = db.InTx(ctx, func(tx *Tx) error {
					_, err := tx.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES (?, '', 0)`, k)
					return err
				})
			case 1: // writes, then fails: nothing of it stays
				r.err = db.InTx(ctx, func(tx *Tx) error {
					if _, err := tx.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES (?, '', 0)`, k); err != nil {
						return err
					}
					return errNo
				})
			case 2: // a single write
				_, r.err = db.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES (?, '', 0)`, k)
			case 3: // writes, then panics
				r.err = db.InTx(ctx, func(tx *Tx) error {
					tx.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES (?, '', 0)`, k)
					panic("job " + k)
				})
			}
		}()
	}
	waitQueued(t, db, jobs+1)
	release()
	wg.Wait()
	close(results)
	for r := range results {
		k := fmt.Sprintf("job-%02d", r.i)
		var want error
		switch r.i % 4 {
		case 1:
			want = errNo
		case 3:
			if r.panic != "job "+k {
				t.Errorf("%s: panic %v reached its caller, want its own", k, r.panic)
			}
			continue
		}
		if r.panic != nil || !errors.Is(r.err, want) || (want == nil && r.err != nil) {
			t.Errorf("%s: %v, panic %v; want %v", k, r.err, r.panic, want)
		}
		kept := count(t, db, ctx, k) == 1
		if wantKept := r.i%4 == 0 || r.i%4 == 2; kept != wantKept {
			t.Errorf("%s: kept %v, want %v", k, kept, wantKept)
		}
	}
	if n := count(t, db, ctx, "job-%"); n != jobs/2 {
		t.Errorf("%d jobs' rows kept, want %d", n, jobs/2)
	}

	// The jobs of one batch run in turn, each seeing those before it.
	release = holdWriter(t, db, ctx)
	seen := make(chan int, 2)
	var wg2 sync.WaitGroup
	for i := range 2 {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			if err := db.InTx(ctx, func(tx *Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES (?, '', 0)`, fmt.Sprint("turn-", i)); err != nil {
					return err
				}
				var n int
				err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM kv WHERE k LIKE 'turn-%'`).Scan(&n)
				seen <- n
				return err
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	waitQueued(t, db, 3)
	release()
	wg2.Wait()
	close(seen)
	var got []int
	for n := range seen {
		got = append(got, n)
	}
	if len(got) != 2 || got[0]+got[1] != 3 {
		t.Errorf("the two jobs of a batch saw %v rows of the batch, want 1 and 2", got)
	}
}

// TestBatchThatBreaksKeepsNothing: a job that ends the shared
// transaction itself (here a bare ROLLBACK through the embedded *sql.Tx,
// as an I/O error or a full disk would in SQLite) takes the jobs before it
// in the batch with it: every job of the batch is told it failed, none is
// told it succeeded, and nothing of the batch is kept; the next batch
// works.
func TestBatchThatBreaksKeepsNothing(t *testing.T) {
	t.Parallel()
	db, ctx := openBatched(t)
	release := holdWriter(t, db, ctx)
	const jobs = 6
	errs := make([]error, jobs)
	var wg sync.WaitGroup
	for i := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.InTx(ctx, func(tx *Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES (?, '', 0)`, fmt.Sprint("broken-", i)); err != nil {
					return err
				}
				if i == jobs/2 {
					if _, err := tx.Tx.Exec(`ROLLBACK`); err != nil {
						return err
					}
				}
				return nil
			})
		}()
		waitQueued(t, db, int64(i+2)) // in this order
	}
	release()
	wg.Wait()
	if n := count(t, db, ctx, "broken-%"); n != 0 {
		t.Errorf("%d rows of the broken batch kept, want 0", n)
	}
	for i, err := range errs {
		if i <= jobs/2 && err == nil {
			t.Errorf("job %d of the broken batch was told it succeeded", i)
		}
		if err == nil {
			// A job after the break may have run in a batch of its own.
			if count(t, db, ctx, fmt.Sprint("broken-", i)) != 1 {
				t.Errorf("job %d succeeded but its row is gone", i)
			}
		}
	}
	if err := db.InTx(ctx, func(tx *Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES ('after', '', 0)`)
		return err
	}); err != nil || count(t, db, ctx, "after") != 1 {
		t.Fatalf("the batch after a broken one: %v", err)
	}
}

// TestBatchJobRules: a caller that gives up while its job is queued hears
// at once and its job never runs; a job may not commit or roll back the
// shared transaction; a closed database refuses jobs.
func TestBatchJobRules(t *testing.T) {
	t.Parallel()
	t.Run("given up while queued", func(t *testing.T) {
		t.Parallel()
		db, ctx := openBatched(t)
		release := holdWriter(t, db, ctx)
		jctx, cancel := context.WithCancel(ctx)
		ran := make(chan struct{}, 1)
		done := make(chan error, 1)
		go func() {
			done <- db.InTx(jctx, func(tx *Tx) error {
				ran <- struct{}{}
				_, err := tx.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES ('gave-up', '', 0)`)
				return err
			})
		}()
		waitQueued(t, db, 2)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("a job given up while queued: %v, want context.Canceled", err)
		}
		release()
		if err := db.InTx(ctx, func(*Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ran:
			t.Error("a job given up while queued ran")
		default:
		}
		if n := count(t, db, ctx, "gave-up"); n != 0 {
			t.Errorf("a job given up while queued wrote %d rows", n)
		}
	})
	t.Run("commit and rollback are InTx's", func(t *testing.T) {
		t.Parallel()
		db, ctx := openBatched(t)
		err := db.InTx(ctx, func(tx *Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES ('own-commit', '', 0)`); err != nil {
				return err
			}
			if err := tx.Commit(); !errors.Is(err, errInBatch) {
				return fmt.Errorf("Commit in a job: %v, want errInBatch", err)
			}
			if err := tx.Rollback(); !errors.Is(err, errInBatch) {
				return fmt.Errorf("Rollback in a job: %v, want errInBatch", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, ctx, "own-commit"); n != 1 {
			t.Errorf("the job's row: %d, want 1", n)
		}
	})
	t.Run("closed", func(t *testing.T) {
		t.Parallel()
		db, ctx := openBatched(t)
		db.Close()
		if err := db.InTx(ctx, func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
			t.Errorf("InTx on a closed database: %v, want ErrClosed", err)
		}
	})
}

// TestIsWrite: the statements Exec gives the batcher.
func TestIsWrite(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		q    string
		want bool
	}{
		{"INSERT INTO kv VALUES (1)", true},
		{"  update kv SET v = 1", true},
		{"\nDELETE FROM kv", true},
		{"REPLACE INTO kv VALUES (1)", true},
		{"INSERTED", false},
		{"PRAGMA wal_checkpoint(TRUNCATE)", false},
		{"CREATE TABLE x (y)", false},
		{"VACUUM", false},
		{"SELECT 1", false},
		{"WITH x AS (SELECT 1) INSERT INTO kv SELECT * FROM x", false},
		{"", false},
	} {
		if got := isWrite(c.q); got != c.want {
			t.Errorf("isWrite(%q) = %v, want %v", strings.TrimSpace(c.q), got, c.want)
		}
	}
}
