package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestChainHashReference recomputes a hash by hand with crypto/sha256.
func TestChainHashReference(t *testing.T) {
	t.Parallel()
	rec := Record{Seq: 1, AtMS: 5, Kind: "k", Fields: map[string]string{"b": "2", "a": "1"}}
	canon := rec.Canonical()
	if string(canon) != `{"seq":1,"at_ms":5,"kind":"k","fields":{"a":"1","b":"2"}}` {
		t.Fatalf("canonical form changed: %s", canon)
	}
	sum := sha256.Sum256(append(make([]byte, 32), canon...))
	got, err := ChainHash(Genesis, canon)
	if err != nil || got != hex.EncodeToString(sum[:]) {
		t.Fatalf("ChainHash = %s, %v", got, err)
	}
}

func TestAppendVerifyTamper(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := New(db, func() time.Time { return time.UnixMilli(1700000000000) })
		for i := range 5 {
			if _, err := l.Append(ctx, "login.password", map[string]string{"n": string(rune('0' + i))}); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := l.Verify(ctx); err != nil || n != 5 {
			t.Fatalf("Verify = %d, %v", n, err)
		}
		for _, tc := range []struct {
			name    string
			tamper  string
			restore string
			seq     int64
		}{
			{"edited record", `UPDATE audit_log SET record = REPLACE(record, '"n":"2"', '"n":"9"') WHERE seq = 3`, `UPDATE audit_log SET record = REPLACE(record, '"n":"9"', '"n":"2"') WHERE seq = 3`, 3},
			{"edited kind", `UPDATE audit_log SET kind = 'x' WHERE seq = 2`, `UPDATE audit_log SET kind = 'login.password' WHERE seq = 2`, 2},
			{"dropped record", `UPDATE audit_log SET seq = 100 WHERE seq = 4`, `UPDATE audit_log SET seq = 4 WHERE seq = 100`, 4},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := db.Exec(ctx, tc.tamper); err != nil {
					t.Fatal(err)
				}
				_, err := l.Verify(ctx)
				var be *BrokenError
				if !errors.As(err, &be) || be.Seq != tc.seq || !errors.Is(err, ErrBroken) {
					t.Fatalf("Verify after tamper = %v, want break at %d", err, tc.seq)
				}
				if _, err := db.Exec(ctx, tc.restore); err != nil {
					t.Fatal(err)
				}
				if _, err := l.Verify(ctx); err != nil {
					t.Fatalf("after restore: %v", err)
				}
			})
		}
	})
}

// engines opens one database of each engine; a test opens its config twice
// to have two replicas on one database.
var engines = []struct {
	name string
	cfg  func(t *testing.T) store.Config
}{
	{"sqlite", func(t *testing.T) store.Config {
		return store.Config{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "egate.db")}
	}},
	{"postgres", func(t *testing.T) store.Config {
		return store.Config{Driver: store.Postgres, DSN: storetest.PostgresDSN(t)}
	}},
}

// replicas opens cfg twice and returns a *Log on each connection pool.
func replicas(t *testing.T, cfg store.Config) [2]*Log {
	t.Helper()
	var logs [2]*Log
	for i := range logs {
		db, err := store.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		logs[i] = New(db, nil)
	}
	return logs
}

// holdLock takes the append lock on l's database as another replica would
// mid-append, and returns the function that releases it.
func holdLock(t *testing.T, l *Log) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := l.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lock, unlock := `BEGIN IMMEDIATE`, `ROLLBACK`
	if l.db.Driver() == store.Postgres {
		lock, unlock = `SELECT pg_advisory_lock(`+strconv.FormatInt(LockKey, 10)+`)`, `SELECT pg_advisory_unlock(`+strconv.FormatInt(LockKey, 10)+`)`
	}
	if _, err := conn.ExecContext(ctx, lock); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := conn.ExecContext(ctx, unlock); err != nil {
			t.Error(err)
		}
		conn.Close()
	}
}

// TestAppendWaitsForLock checks that an Append waits while another replica
// holds the append lock, gives up when its context ends (leaving its
// connection usable, not mid-transaction), and succeeds once the lock is
// free.
func TestAppendWaitsForLock(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			logs := replicas(t, eng.cfg(t))
			release := holdLock(t, logs[1])
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			seq, err := logs[0].Append(ctx, "login.password", map[string]string{"secret-looking": "hunter2"})
			cancel()
			if err == nil {
				t.Fatalf("Append while another replica holds the lock = %d, nil; want it to wait and time out", seq)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Append while another replica holds the lock: %v; want it to wait until the deadline", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error carries a field value: %v", err)
			}
			release()
			ctx = context.Background()
			for want := int64(1); want <= 3; want++ {
				seq, err := logs[0].Append(ctx, "login.password", nil)
				if err != nil || seq != want {
					t.Fatalf("Append after the lock is free = %d, %v; want %d", seq, err, want)
				}
			}
			if n, err := logs[1].Verify(ctx); err != nil || n != 3 {
				t.Fatalf("Verify = %d, %v; want 3", n, err)
			}
		})
	}
}

// TestConcurrentAppendTwoReplicas runs two replicas (two *Log over two
// connections pools to one database) appending in parallel on both engines:
// every append must succeed, the positions they return must be exactly
// 1..N, the table must hold N records without gaps, and the chain must
// verify.
func TestConcurrentAppendTwoReplicas(t *testing.T) {
	const (
		workers   = 8
		perWorker = 60
		total     = workers * perWorker
	)
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			ctx := context.Background()
			logs := replicas(t, eng.cfg(t))
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				seqs  = make(chan int64, total)
				errs  = make(chan error, total)
			)
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for i := range perWorker {
						seq, err := logs[w%2].Append(ctx, "login.password", map[string]string{"w": strconv.Itoa(w), "i": strconv.Itoa(i)})
						if err != nil {
							errs <- err
							continue
						}
						seqs <- seq
					}
				}()
			}
			close(start)
			wg.Wait()
			close(seqs)
			close(errs)
			nerr := 0
			for err := range errs {
				if nerr < 3 {
					t.Errorf("Append: %v", err)
				}
				nerr++
			}
			if nerr > 0 {
				t.Fatalf("%d of %d appends failed", nerr, total)
			}
			seen := make([]bool, total+1)
			for seq := range seqs {
				if seq < 1 || seq > total || seen[seq] {
					t.Fatalf("Append returned position %d twice or outside 1..%d", seq, total)
				}
				seen[seq] = true
			}
			var n, lo, hi int64
			if err := logs[1].db.QueryRow(ctx, `SELECT COUNT(*), MIN(seq), MAX(seq) FROM audit_log`).Scan(&n, &lo, &hi); err != nil {
				t.Fatal(err)
			}
			if n != total || lo != 1 || hi != total {
				t.Fatalf("audit_log holds %d records, seq %d..%d; want %d, 1..%d", n, lo, hi, total, total)
			}
			for i, l := range logs {
				if n, err := l.Verify(ctx); err != nil || n != total {
					t.Fatalf("replica %d: Verify = %d, %v; want %d", i, n, err, total)
				}
				if c := l.conflicts.Load(); c != 0 {
					t.Errorf("replica %d retried %d position conflicts; the lock should leave none", i, c)
				}
			}
		})
	}
}

// BenchmarkAppend measures serialised appends from parallel goroutines on
// one replica of each engine.
func BenchmarkAppend(b *testing.B) {
	for _, eng := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		b.Run(eng.name, func(b *testing.B) {
			l := New(eng.open(b), nil)
			ctx := context.Background()
			fields := map[string]string{"subject": "pid:1", "ip": "192.0.2.1"}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Append(ctx, "login.password", fields); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestVerifyHeadAndTail: the head is the last record's hash, recomputed here
// from the records; a log cut short verifies but shows another head, which
// is what an operator who wrote the head down compares; Tail returns the
// last records oldest first.
func TestVerifyHeadAndTail(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := New(db, func() time.Time { return time.UnixMilli(1700000000000) })
		if n, head, err := l.VerifyHead(ctx); err != nil || n != 0 || head != Genesis {
			t.Fatalf("empty log: %d %s %v", n, head, err)
		}
		if recs, err := l.Tail(ctx, 3); err != nil || len(recs) != 0 {
			t.Fatalf("tail of an empty log: %v %v", recs, err)
		}
		want := Genesis
		hashes := []string{Genesis} // hashes[k] is record k's hash
		for i := range 5 {
			f := map[string]string{"n": strconv.Itoa(i + 1)}
			seq, err := l.Append(ctx, "login.password", f)
			if err != nil {
				t.Fatal(err)
			}
			want, err = ChainHash(want, Record{Seq: seq, AtMS: 1700000000000, Kind: "login.password", Fields: f}.Canonical())
			if err != nil {
				t.Fatal(err)
			}
			hashes = append(hashes, want)
		}
		n, head, err := l.VerifyHead(ctx)
		if err != nil || n != 5 || head != want {
			t.Fatalf("VerifyHead = %d %s %v, want 5 %s", n, head, err, want)
		}
		for _, tc := range []struct {
			n    int
			seqs []int64
		}{{3, []int64{3, 4, 5}}, {10, []int64{1, 2, 3, 4, 5}}, {0, nil}} {
			recs, err := l.Tail(ctx, tc.n)
			if err != nil || len(recs) != len(tc.seqs) {
				t.Fatalf("Tail(%d) = %v, %v", tc.n, recs, err)
			}
			for i, r := range recs {
				if r.Seq != tc.seqs[i] || r.Fields["n"] != strconv.FormatInt(tc.seqs[i], 10) ||
					r.Hash != hashes[r.Seq] || r.PrevHash != hashes[r.Seq-1] {
					t.Fatalf("Tail(%d)[%d] = %+v", tc.n, i, r)
				}
			}
		}
		for _, tc := range []struct {
			from int64
			n    int
			seqs []int64
		}{{2, 2, []int64{2, 3}}, {4, 10, []int64{4, 5}}, {6, 3, nil}, {1, 0, nil}} {
			got, err := l.Range(ctx, tc.from, tc.n)
			if err != nil || len(got) != len(tc.seqs) {
				t.Fatalf("Range(%d, %d) = %v, %v", tc.from, tc.n, got, err)
			}
			for i, e := range got {
				if e.Seq != tc.seqs[i] || e.Hash != hashes[e.Seq] {
					t.Fatalf("Range(%d, %d)[%d] = %+v", tc.from, tc.n, i, e)
				}
			}
		}
		if _, err := db.Exec(ctx, `DELETE FROM audit_log WHERE seq = 5`); err != nil {
			t.Fatal(err)
		}
		n, cut, err := l.VerifyHead(ctx)
		if err != nil || n != 4 || cut == head {
			t.Fatalf("after cutting the last record: %d %s %v (head was %s)", n, cut, err, head)
		}
	})
}

// TestAppendOperator: an operator's action is recorded with the operator's
// name, which a field named "operator" cannot replace; without a name
// nothing is appended.
func TestAppendOperator(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := New(db, func() time.Time { return time.UnixMilli(1700000000000) })
		tests := []struct {
			name     string
			operator string
			fields   map[string]string
			err      error
			want     map[string]string
		}{
			{"named operator", "wang.li", map[string]string{"serial": "H0001"}, nil, map[string]string{"serial": "H0001", "operator": "wang.li"}},
			{"no fields", "wang.li", nil, nil, map[string]string{"operator": "wang.li"}},
			{"a field cannot replace the operator", "wang.li", map[string]string{"operator": "someone-else"}, nil, map[string]string{"operator": "wang.li"}},
			{"empty operator", "", map[string]string{"serial": "H0001"}, ErrNoOperator, nil},
			{"blank operator", "  \t", map[string]string{"serial": "H0001"}, ErrNoOperator, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before, _ := l.Verify(ctx)
				in := map[string]string{}
				for k, v := range tc.fields {
					in[k] = v
				}
				seq, err := l.AppendOperator(ctx, "admin.token.unlock", tc.operator, tc.fields)
				if !errors.Is(err, tc.err) {
					t.Fatalf("AppendOperator = %v, want %v", err, tc.err)
				}
				if len(tc.fields) != len(in) {
					t.Fatal("AppendOperator changed the caller's map")
				}
				for k, v := range in {
					if tc.fields[k] != v {
						t.Fatal("AppendOperator changed the caller's map")
					}
				}
				after, err2 := l.Verify(ctx)
				if err2 != nil {
					t.Fatal(err2)
				}
				if tc.err != nil {
					if after != before {
						t.Fatalf("a refused record was appended: %d → %d", before, after)
					}
					return
				}
				recs, err := l.Tail(ctx, 1)
				if err != nil || len(recs) != 1 || recs[0].Seq != seq || recs[0].Kind != "admin.token.unlock" || len(recs[0].Fields) != len(tc.want) {
					t.Fatalf("Tail = %+v, %v", recs, err)
				}
				for k, v := range tc.want {
					if recs[0].Fields[k] != v {
						t.Fatalf("field %s = %q, want %q", k, recs[0].Fields[k], v)
					}
				}
			})
		}
	})
}
