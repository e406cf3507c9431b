// Package authntest holds checks that every authn.Factor's tests share.
package authntest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
)

// VerifyConcurrently sends the same right answer to f from n goroutines at
// once and counts the outcomes: ok accepted, used told authn.ErrUsed. Any
// other error fails t. A single-use challenge gives ok == 1, used == n-1.
func VerifyConcurrently(ctx context.Context, t testing.TB, f authn.Factor, req authn.VerifyRequest, n int) (ok, used int) {
	t.Helper()
	var wg sync.WaitGroup
	var okN, usedN atomic.Int32
	for range n {
		wg.Go(func() {
			_, err := f.Verify(ctx, req)
			switch {
			case err == nil:
				okN.Add(1)
			case errors.Is(err, authn.ErrUsed):
				usedN.Add(1)
			default:
				t.Errorf("Verify: %v", err)
			}
		})
	}
	wg.Wait()
	return int(okN.Load()), int(usedN.Load())
}

// RightConcurrently sends every request (each a right answer, to its own
// challenge) to f at once and counts those accepted. Any error fails t:
// right answers in flight together must not be refused for each other's
// sake (a lockout counter that reserved attempts before checking did).
func RightConcurrently(ctx context.Context, t testing.TB, f authn.Factor, reqs []authn.VerifyRequest) (ok int) {
	t.Helper()
	var wg sync.WaitGroup
	var okN atomic.Int32
	for _, req := range reqs {
		wg.Go(func() {
			if _, err := f.Verify(ctx, req); err != nil {
				t.Errorf("Verify of a right answer among %d at once: %v", len(reqs), err)
				return
			}
			okN.Add(1)
		})
	}
	wg.Wait()
	return int(okN.Load())
}

// WrongConcurrently sends every request (each a wrong answer) to f at once
// and counts the outcomes: wrong told authn.ErrWrongAnswer, locked told
// authn.ErrLocked. Any other error fails t. A lockout after N failures gives
// wrong == N and locked == len(reqs)-N.
func WrongConcurrently(ctx context.Context, t testing.TB, f authn.Factor, reqs []authn.VerifyRequest) (wrong, locked int) {
	t.Helper()
	var wg sync.WaitGroup
	var wrongN, lockedN atomic.Int32
	for _, req := range reqs {
		wg.Go(func() {
			_, err := f.Verify(ctx, req)
			switch {
			case errors.Is(err, authn.ErrWrongAnswer):
				wrongN.Add(1)
			case errors.Is(err, authn.ErrLocked):
				lockedN.Add(1)
			default:
				t.Errorf("Verify: %v", err)
			}
		})
	}
	wg.Wait()
	return int(wrongN.Load()), int(lockedN.Load())
}

// Clock is the wall clock moved by Advance (negative to go back), safe for
// concurrent use: the factors' tests step past TTLs and lockouts with it.
//
// It runs at the wall clock's pace (stored rows keep distinct, ordered
// times), but from a start that keeps it clear of the next hour boundary
// for the test's run: when the first reading falls in the last quarter of
// an hour, the clock starts a minute past the next hour instead. Fixed
// windows (the SMS send limits count per clock hour) and local days (whose
// boundaries are hour boundaries) then only turn over where a test Advances
// the clock, not when the test happens to run at 10:59:59.
type Clock struct {
	once  sync.Once
	shift time.Duration // from the wall clock to the start, set at the first reading
	off   atomic.Int64  // the Advances so far, in nanoseconds
}

// Now is the wall clock, shifted clear of an hour boundary, plus the
// advance so far.
func (c *Clock) Now() time.Time {
	c.once.Do(func() { c.shift = clearOfHour(time.Now()) })
	return time.Now().Add(c.shift + time.Duration(c.off.Load()))
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// clearOfHour is how far to move now so that at least 15 minutes of the
// hour it falls in are left: zero in the first 45 minutes of an hour,
// otherwise to a minute past the next hour (at most 16 minutes ahead).
func clearOfHour(now time.Time) time.Duration {
	hour := now.Truncate(time.Hour)
	if now.Sub(hour) < 45*time.Minute {
		return 0
	}
	return hour.Add(time.Hour + time.Minute).Sub(now)
}
