package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
)

// BenchmarkReadsBesideWrites: point reads by key from parallel goroutines
// while one goroutine keeps committing short transactions (a read-modify-
// write of two rows), on a SQLite file. reads/s is the reads' rate,
// writes/s the transactions' over the same time; cpu-µs/op the process's
// CPU per read (the writes' included).
//
// On SQLite's one connection every read queued behind the transactions;
// with readers beside the writer a read that finds it busy runs on a
// reader. On the shared 2-core machine (2026-12-03 evening, 6 runs each,
// benchstat): reads/s 50,400 -> 75,900 (+51%, p=0.002), CPU a read 14.4 ->
// 8.4 µs, and the writer's commits 12,900 -> 9,200 a second (-28%,
// p=0.015): the readers take cores from the writer. With 4 readers instead
// of 1 reads were no faster and the writer committed about half as often.
// docs/performance.md (issue 11) has the money path's figures.
func BenchmarkReadsBesideWrites(b *testing.B) {
	db := storetest.SQLite(b)
	ctx := context.Background()
	const keys = 1000
	err := db.InTx(ctx, func(tx *store.Tx) error {
		for i := range keys {
			if _, err := tx.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES (?, ?, ?)`, fmt.Sprint("b-", i), "0", 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := db.InTx(ctx, func(tx *store.Tx) error {
				var v string
				if err := tx.QueryRow(ctx, `SELECT v FROM kv WHERE k = ?`, fmt.Sprint("b-", i%keys)).Scan(&v); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `UPDATE kv SET v = ?, updated_ms = ? WHERE k = ?`, v+"1", i, fmt.Sprint("b-", i%keys)); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `UPDATE kv SET updated_ms = ? WHERE k = ?`, i, fmt.Sprint("b-", (i+1)%keys))
				return err
			})
			if err != nil {
				b.Error(err)
				return
			}
			writes.Add(1)
		}
	}()
	var seq atomic.Int64
	b.SetParallelism(2)
	b.ResetTimer()
	cpu0 := testenv.CPUTime()
	w0 := writes.Load()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var v string
			if err := db.QueryRow(ctx, `SELECT v FROM kv WHERE k = ?`, fmt.Sprint("b-", seq.Add(1)%keys)).Scan(&v); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	w := writes.Load() - w0
	cpu := testenv.CPUTime() - cpu0
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
	b.ReportMetric(float64(w)/b.Elapsed().Seconds(), "writes/s")
	b.ReportMetric(float64(cpu)/float64(b.N)/1e3, "cpu-µs/op")
}
