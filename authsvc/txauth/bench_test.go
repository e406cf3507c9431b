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
//
// Figures (2026-12-03, the 2-core machine at load average ~12, -count 3,
// -benchtime 2s, before and after in the same run): SQLite 216–303/s at
// 1,920–2,080 cpu-µs/op (before the statement cache and the one-transaction
// decisions: 189–237/s at 2,370–2,520); PostgreSQL 199–236/s at
// 2,480–2,670 cpu-µs/op (before: 125–190/s at 2,960–3,120; the server's
// own CPU is not in it).
//
// The goal of 2,000/s is not reached. It needs at most 1,000 µs of CPU a
// movement with both cores given to this process; a movement costs about
// 2,000 µs on SQLite, which the profile (-cpuprofile, top -cum) splits as:
// SQLite executing the statements and committing its WAL ~570 µs (28%; its
// commit path alone ~220 µs, 11%), SoftHSM2's HMAC over the HOTP window in
// otp.Verify ~320 µs (16%; otp.Verify as a whole ~375 µs), the rest of
// Authorize (limits and risk-feature reads, rules, JSON) ~200 µs,
// HTTP client and server for the four calls ~260 µs (13%), allocation and
// GC ~160 µs (8%), syscalls for the WAL and the loopback sockets in the
// rest. Reaching the goal takes all of: the HMAC in long-lived HSM
// sessions (under way in devices/hsm and authsvc/oath), fewer commits per
// movement (the challenge's two inserts and the OTP verify's updates
// are their own transactions), and one core's worth less of HTTP and
// SQLite than here.
func BenchmarkTxRoundTrip(b *testing.B) {
	for _, e := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		// One service and its customers for all rounds of the
		// sub-benchmark (b.N grows from 1): the profile and the figures
		// are of the round trips, not of setting up a database, SoftHSM2
		// and 64 token imports once per round.
		var (
			setup sync.Once
			r     *rig
			ds    []*driver
			seq   atomic.Int64 // across rounds: every intent is new
		)
		b.Run(e.name, func(sb *testing.B) {
			setup.Do(func() { r, ds = benchRig(b, e.open(b)) })
			b := sb
			customers := int64(len(ds))
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
					// A failure unlocks the customer as it stops the
					// benchmark (Fatal under the lock would leave the other
					// goroutines waiting for it for ever).
					func() {
						d.mu.Lock()
						defer d.mu.Unlock()
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
					}()
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

// driver is one customer of the benchmark with an HOTP token; one
// movement of theirs at a time (the token's codes are taken in order).
type driver struct {
	mu      sync.Mutex
	c       *customer
	seed    []byte
	counter uint64
}

// benchRig is the benchmark's service on db with 64 customers, each with
// an HOTP token whose seed is wrapped in SoftHSM2.
func benchRig(b *testing.B, db *store.DB) (*rig, []*driver) {
	// The real clock: HOTP codes do not depend on it, and every
	// movement's usage falls in the day it is made.
	r := newRig(b, db, rigOpt{clk: &clock{t: time.Now()}})
	r.svc.now = time.Now
	ds := make([]*driver, 64)
	for i := range ds {
		seed := make([]byte, 20)
		rand.Read(seed)
		c := r.customer(b)
		r.importKey(b, c.pid, devotp.Params{Kind: devotp.KindHOTP, Hash: crypto.SHA1, Digits: 6}, seed)
		ds[i] = &driver{c: c, seed: seed}
	}
	return r, ds
}

func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
