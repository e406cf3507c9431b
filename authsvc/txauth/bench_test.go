package txauth

import (
	"context"
	"crypto"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	devotp "github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// BenchmarkTxRoundTrip: one money movement's whole path through HTTP, as
// a platform drives it: authorize (limits, risk features from the
// database, rules), begin an OTP challenge, prove it with an HOTP code
// verified in SoftHSM2 (the grant), and execute (the grant consumed).
// Goroutines drive their own customers in parallel; roundtrips/s is the
// number of whole movements a second.
func BenchmarkTxRoundTrip(b *testing.B) {
	for _, e := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		b.Run(e.name, func(b *testing.B) {
			db := e.open(b)
			// The real clock: HOTP codes do not depend on it, and every
			// movement's usage falls in the day it is made.
			r := newRig(b, db, rigOpt{clk: &clock{t: time.Now()}})
			r.svc.now = time.Now
			type driver struct {
				mu      sync.Mutex
				c       *customer
				seed    []byte
				counter uint64
			}
			const customers = 64
			ds := make([]*driver, customers)
			for i := range ds {
				seed := make([]byte, 20)
				rand.Read(seed)
				c := r.customer(b)
				r.importKey(b, c.pid, devotp.Params{Kind: devotp.KindHOTP, Hash: crypto.SHA1, Digits: 6}, seed)
				ds[i] = &driver{c: c, seed: seed}
			}
			var seq atomic.Int64
			ctx := context.Background()
			b.SetParallelism(4)
			b.ResetTimer()
			cpu0 := cpuNanos()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					// Customers in turn (about 500 movements of theirs fit a
					// day at level 3); one movement of a customer at a time,
					// as the HOTP counter is theirs.
					n := seq.Add(1)
					d := ds[n%customers]
					d.mu.Lock()
					in := d.c.intent(1_000*yuan+1, fmt.Sprint("bench-", n))
					dec, err := r.c.Authorize(ctx, in)
					if err != nil || dec.Level != 3 {
						b.Fatalf("%+v %v", dec, err)
					}
					ch, err := r.c.Challenge(ctx, dec.Intent, txclient.ChallengeRequest{Factor: "otp"})
					if err != nil {
						b.Fatal(err)
					}
					code, err := devotp.HOTP(ctx, devotp.SoftwareMAC{Key: d.seed}, crypto.SHA1, d.counter, 6)
					if err != nil {
						b.Fatal(err)
					}
					d.counter++
					g, err := r.c.Proof(ctx, dec.Intent, txclient.ProofRequest{ChallengeID: ch.ID, Response: code})
					if err != nil {
						b.Fatal(err)
					}
					if _, err := r.c.Execute(ctx, g.Token, in); err != nil {
						b.Fatal(err)
					}
					d.mu.Unlock()
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "roundtrips/s")
			// The process's CPU time a movement costs (client, server,
			// SQLite and SoftHSM2 are all in it): what the machine's cores
			// could do if nothing else ran on them.
			b.ReportMetric(float64(cpuNanos()-cpu0)/float64(b.N)/1e3, "cpu-µs/op")
		})
	}
}

func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
