package passport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

func newTestService(t testing.TB, db *store.DB, clk *fakeClock, hooks Hooks) *Service {
	t.Helper()
	s, err := New(db, Config{Argon2: cheap, AllowWeakArgon2: true}, testKey, clk.Now, hooks)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const goodPW = "Blue-Kite-47"

func register(t testing.TB, s *Service, name string) Customer {
	t.Helper()
	c, err := s.Register(context.Background(), NewCustomer{LoginName: name, Mobile: "13812345678", Birthday: "1990-05-21", ReservedMessage: "red lantern", Password: goodPW})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRegisterAndLookup(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &fakeClock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
		s := newTestService(t, db, clk, Hooks{})
		c := register(t, s, "Alice")
		if c.LoginName != "alice" {
			t.Fatalf("login name not normalized: %q", c.LoginName)
		}
		if _, err := s.Register(ctx, NewCustomer{LoginName: "alice ", ReservedMessage: "x", Password: "Other-Kite-48"}); !errors.Is(err, ErrLoginNameTaken) {
			t.Fatalf("duplicate: %v", err)
		}
		var we *WeakPasswordError
		if _, err := s.Register(ctx, NewCustomer{LoginName: "bob", ReservedMessage: "x", Password: "bob-password"}); !errors.As(err, &we) {
			t.Fatalf("weak password accepted: %v", err)
		}
		sub, err := s.Lookup(ctx, " ALICE")
		if err != nil || sub.PassportID != c.PassportID || sub.ReservedMessage != "red lantern" {
			t.Fatalf("lookup: %+v %v", sub, err)
		}
		d1, _ := s.Lookup(ctx, "nobody")
		d2, _ := s.Lookup(ctx, "Nobody")
		if d1.PassportID != "" || d1.ReservedMessage == "" || d1 != d2 {
			t.Fatalf("decoy not stable: %+v %+v", d1, d2)
		}
		d3, _ := s.Lookup(ctx, "somebody-else")
		if d3.ReservedMessage == d1.ReservedMessage && d3.Key == d1.Key {
			t.Fatal("decoys do not depend on the name")
		}
	})
}

func TestLockoutAndUnlock(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &fakeClock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
		var verifies atomic.Int64
		s := newTestService(t, db, clk, Hooks{OnVerify: func() { verifies.Add(1) }})
		c := register(t, s, "carol")
		sub, _ := s.Lookup(ctx, "carol")
		ghost, _ := s.Lookup(ctx, "ghost")

		for _, subj := range []Subject{sub, ghost} {
			if need, _ := s.CaptchaRequired(ctx, subj, ""); need {
				t.Fatal("captcha before any failure")
			}
			for i := range 6 {
				_, err := s.CheckPassword(ctx, subj, "wrong-"+string(rune('a'+i)), "")
				if !errors.Is(err, ErrBadCredentials) {
					t.Fatalf("attempt %d: %v", i, err)
				}
				if need, _ := s.CaptchaRequired(ctx, subj, ""); !need {
					t.Fatal("no captcha after a failure")
				}
			}
			// The 7th, even with the right password, is locked, and the
			// lock names the next midnight; known and unknown names alike.
			_, err := s.CheckPassword(ctx, subj, goodPW, "")
			var le *authn.LockedError
			if !errors.As(err, &le) || !le.Until.Equal(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)) || !errors.Is(err, authn.ErrLocked) {
				t.Fatalf("want lock until next day, got %v", err)
			}
		}
		if got := verifies.Load(); got != 12 {
			t.Fatalf("%d verifications, want 12", got)
		}
		// Operator unlock lifts the daily lock.
		if err := s.Unlock(ctx, c.PassportID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CheckPassword(ctx, sub, goodPW, ""); err != nil {
			t.Fatalf("after unlock: %v", err)
		}
		// A success gives its slot back; the next day starts from zero.
		for range 5 {
			s.CheckPassword(ctx, sub, "wrong", "")
		}
		if _, err := s.CheckPassword(ctx, sub, goodPW, ""); err != nil {
			t.Fatalf("6th attempt with 5 failures: %v", err)
		}
		s.CheckPassword(ctx, sub, "wrong", "")
		if _, err := s.CheckPassword(ctx, sub, goodPW, ""); !errors.Is(err, authn.ErrLocked) {
			t.Fatalf("want locked, got %v", err)
		}
		clk.Add(14 * time.Hour)
		if _, err := s.CheckPassword(ctx, sub, goodPW, ""); err != nil {
			t.Fatalf("next day: %v", err)
		}
		// Operator lock: only unlock lifts it, and it says so (no Until).
		s.Lock(ctx, c.PassportID)
		_, err := s.CheckPassword(ctx, sub, goodPW, "")
		var le *authn.LockedError
		if !errors.As(err, &le) || !le.Until.IsZero() {
			t.Fatalf("operator lock: %v", err)
		}
		s.Unlock(ctx, c.PassportID)
		if _, err := s.CheckPassword(ctx, sub, goodPW, ""); err != nil {
			t.Fatal(err)
		}
		// Password change needs the old password and the strength rules.
		if err := s.ChangePassword(ctx, c.PassportID, goodPW, "carol-2026-pw!", ""); err == nil {
			t.Fatal("weak new password accepted")
		}
		if err := s.ChangePassword(ctx, c.PassportID, goodPW, "Green-Fox-93", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CheckPassword(ctx, sub, "Green-Fox-93", ""); err != nil {
			t.Fatal(err)
		}
	})
}

func TestIPCountersAndFactorCounters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &fakeClock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
		s, err := New(db, Config{Argon2: cheap, AllowWeakArgon2: true, MaxIPFailures: 3}, testKey, clk.Now, Hooks{})
		if err != nil {
			t.Fatal(err)
		}
		c := register(t, s, "dave")
		other, _ := s.Lookup(ctx, "erin")
		s.CheckPassword(ctx, other, "x", "10.0.0.9")
		sub, _ := s.Lookup(ctx, "dave")
		if need, _ := s.CaptchaRequired(ctx, sub, "10.0.0.9"); !need {
			t.Fatal("captcha not required after a failure from this IP")
		}
		if need, _ := s.CaptchaRequired(ctx, sub, "10.0.0.10"); need {
			t.Fatal("captcha required from a clean IP for a clean name")
		}
		s.CheckPassword(ctx, other, "x", "10.0.0.9")
		s.CheckPassword(ctx, other, "x", "10.0.0.9")
		if _, err := s.CheckPassword(ctx, sub, goodPW, "10.0.0.9"); !errors.Is(err, ErrIPLimited) {
			t.Fatalf("want IP limit, got %v", err)
		}
		// Second-factor counters are apart from the password's.
		for range 6 {
			done, err := s.BeginFactor(ctx, c.PassportID, "otp")
			if err != nil {
				t.Fatal(err)
			}
			done(ctx, false, "")
		}
		if _, err := s.BeginFactor(ctx, c.PassportID, "otp"); !errors.Is(err, authn.ErrLocked) {
			t.Fatalf("otp not locked: %v", err)
		}
		if _, err := s.BeginFactor(ctx, c.PassportID, "sms"); err != nil {
			t.Fatalf("sms locked by otp failures: %v", err)
		}
		if n, _ := s.Failures(ctx, sub.Key, FactorPassword); n != 0 {
			t.Fatalf("password counter moved by otp failures: %d", n)
		}
	})
}

// TestParallelSprayingOneIP: wrong guesses in parallel from one IP, spread
// over many names so that no customer's own limit is reached, verify
// exactly MaxIPFailures passwords; the rest are refused as IP-limited
// without a verification. A right password from a clean IP still works.
func TestParallelSprayingOneIP(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &fakeClock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
		var verifies atomic.Int64
		const maxIP, names, perName = 10, 20, 2
		s, err := New(db, Config{Argon2: cheap, AllowWeakArgon2: true, MaxIPFailures: maxIP}, testKey, clk.Now, Hooks{OnVerify: func() { verifies.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		subs := make([]Subject, names)
		for i := range subs {
			name := fmt.Sprintf("spray%02d", i)
			register(t, s, name)
			if subs[i], err = s.Lookup(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		var bad, limited atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range names * perName {
			wg.Go(func() {
				<-start
				_, err := s.CheckPassword(ctx, subs[i%names], "Wrong-Guess-1", "198.51.100.7")
				switch {
				case errors.Is(err, ErrBadCredentials):
					bad.Add(1)
				case errors.Is(err, ErrIPLimited):
					limited.Add(1)
				default:
					t.Errorf("guess %d: %v", i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if verifies.Load() != maxIP || bad.Load() != maxIP || limited.Load() != names*perName-maxIP {
			t.Fatalf("%d verifications, %d wrong, %d IP-limited; want %d, %d, %d", verifies.Load(), bad.Load(), limited.Load(), maxIP, maxIP, names*perName-maxIP)
		}
		if n, _ := s.Failures(ctx, "ip:198.51.100.7", "any"); n != maxIP {
			t.Fatalf("IP counter %d, want %d", n, maxIP)
		}
		if _, err := s.CheckPassword(ctx, subs[0], goodPW, "198.51.100.8"); err != nil {
			t.Fatalf("right password from another IP: %v", err)
		}
		// A right password gives its IP slot back.
		if _, err := s.CheckPassword(ctx, subs[1], goodPW, "198.51.100.9"); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.Failures(ctx, "ip:198.51.100.9", "any"); n != 0 {
			t.Fatalf("a right password left the IP counter at %d", n)
		}
	})
}

// TestParallelGuessesTwoReplicas: 1,000 parallel wrong guesses spread over
// two replicas (two database handles, two services) on one PostgreSQL verify
// at most MaxFailures passwords.
func TestParallelGuessesTwoReplicas(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx := context.Background()
	clk := &fakeClock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	var verifies atomic.Int64
	hooks := Hooks{OnVerify: func() { verifies.Add(1) }}
	var replicas [2]*Service
	for i := range replicas {
		db, err := store.Open(ctx, store.Config{Driver: store.Postgres, DSN: dsn, MaxOpenConns: 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		replicas[i] = newTestService(t, db, clk, hooks)
	}
	register(t, replicas[0], "frank")
	var wg sync.WaitGroup
	var bad, locked, other atomic.Int64
	start := make(chan struct{})
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := replicas[i%2]
			<-start
			sub, err := s.Lookup(ctx, "frank")
			if err != nil {
				other.Add(1)
				return
			}
			_, err = s.CheckPassword(ctx, sub, "guess-"+string(rune('a'+i%26)), "")
			switch {
			case errors.Is(err, ErrBadCredentials):
				bad.Add(1)
			case errors.Is(err, authn.ErrLocked):
				locked.Add(1)
			default:
				other.Add(1)
				t.Errorf("guess %d: %v", i, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	max := int64(replicas[0].Config().MaxFailures)
	t.Logf("verifications=%d bad=%d locked=%d other=%d", verifies.Load(), bad.Load(), locked.Load(), other.Load())
	if verifies.Load() > max || bad.Load() != verifies.Load() || bad.Load()+locked.Load() != 1000 {
		t.Fatalf("%d verifications (max %d), %d bad, %d locked", verifies.Load(), max, bad.Load(), locked.Load())
	}
	if verifies.Load() != max {
		t.Fatalf("only %d of %d allowed verifications happened", verifies.Load(), max)
	}
}

// TestCaptchaAfterSuccessAndUnlock: a customer who mistyped and then signed
// in, or whom an operator unlocked, is not asked for a captcha again —
// neither by the name's counter nor by the failures the customer's own
// mistakes left on the address; another name's failures from that address
// and a new failure of the name still ask for one.
func TestCaptchaAfterSuccessAndUnlock(t *testing.T) {
	const ip = "10.1.1.1"
	for _, tc := range []struct {
		name  string
		clear func(ctx context.Context, s *Service, c Customer, sub Subject) error
	}{
		{"successful login", func(ctx context.Context, s *Service, _ Customer, sub Subject) error {
			_, err := s.CheckPassword(ctx, sub, goodPW, ip)
			return err
		}},
		{"operator unlock", func(ctx context.Context, s *Service, c Customer, _ Subject) error {
			return s.Unlock(ctx, c.PassportID)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				clk := &fakeClock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
				s := newTestService(t, db, clk, Hooks{})
				c := register(t, s, "frank")
				sub, _ := s.Lookup(ctx, "frank")
				for range 2 {
					if _, err := s.CheckPassword(ctx, sub, "wrong", ip); !errors.Is(err, ErrBadCredentials) {
						t.Fatal(err)
					}
				}
				if need, _ := s.CaptchaRequired(ctx, sub, ip); !need {
					t.Fatal("no captcha after failures")
				}
				if err := tc.clear(ctx, s, c, sub); err != nil {
					t.Fatal(err)
				}
				if need, err := s.CaptchaRequired(ctx, sub, ip); need || err != nil {
					t.Fatalf("captcha still asked: %v %v", need, err)
				}
				// Another name that fails from the address makes it ask again…
				ghost, _ := s.Lookup(ctx, "ghost")
				s.CheckPassword(ctx, ghost, "x", ip)
				if need, _ := s.CaptchaRequired(ctx, sub, ip); !need {
					t.Fatal("no captcha after another name failed from this address")
				}
				// …as does the name's own next failure, from anywhere.
				if need, _ := s.CaptchaRequired(ctx, sub, "10.1.1.2"); need {
					t.Fatal("captcha from a clean address")
				}
				s.CheckPassword(ctx, sub, "wrong", "10.1.1.3")
				if need, _ := s.CaptchaRequired(ctx, sub, "10.1.1.2"); !need {
					t.Fatal("no captcha after the name failed again")
				}
			})
		})
	}
}

// TestRemainingAttempts: each wrong password says how many are left, the
// one that takes the last says 0, and known and unknown names count alike.
func TestRemainingAttempts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &fakeClock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
		s := newTestService(t, db, clk, Hooks{})
		register(t, s, "gina")
		sub, _ := s.Lookup(ctx, "gina")
		ghost, _ := s.Lookup(ctx, "nobody-at-all")
		for _, subj := range []Subject{sub, ghost} {
			if n, err := s.RemainingAttempts(ctx, subj); n != 6 || err != nil {
				t.Fatalf("before: %d %v", n, err)
			}
			for i := range 6 {
				_, err := s.CheckPassword(ctx, subj, "wrong", "")
				var be *BadCredentialsError
				if !errors.As(err, &be) || be.Remaining != 5-i || err.Error() != ErrBadCredentials.Error() {
					t.Fatalf("attempt %d: %v", i, err)
				}
				if n, _ := s.RemainingAttempts(ctx, subj); n != 5-i {
					t.Fatalf("after attempt %d: %d left", i, n)
				}
			}
		}
	})
}

// TestFactorStates: an operator sees every factor's failures today, the
// limit and the lock with its end; factors asked for are listed at zero,
// another customer's and another day's counters are not counted, and
// Unlock clears them all.
func TestFactorStates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &fakeClock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
		s := newTestService(t, db, clk, Hooks{})
		c := register(t, s, "frank")
		other := register(t, s, "grace")
		sub, _ := s.Lookup(ctx, "frank")
		fail := func(pid, factor string, n int) {
			t.Helper()
			for range n {
				done, err := s.BeginFactor(ctx, pid, factor)
				if err != nil {
					t.Fatal(err)
				}
				done(ctx, false, "")
			}
		}
		// Yesterday's failures are not today's.
		fail(c.PassportID, "sms", 3)
		clk.Add(16 * time.Hour) // 2026-03-02 02:00
		for range 2 {
			s.CheckPassword(ctx, sub, "wrong", "")
		}
		// A right one after them leaves the captcha's marker, not a factor.
		if _, err := s.CheckPassword(ctx, sub, goodPW, ""); err != nil {
			t.Fatal(err)
		}
		fail(c.PassportID, "otp", 6)
		fail(c.PassportID, "piv", 1)
		fail(other.PassportID, "gridcard", 4)
		until := time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)
		got, err := s.FactorStates(ctx, c.PassportID, "sms", "gridcard", "otp")
		if err != nil {
			t.Fatal(err)
		}
		want := []FactorState{
			{Factor: "password", Failures: 2, Limit: 6},
			{Factor: "sms", Limit: 6},
			{Factor: "gridcard", Limit: 6},
			{Factor: "otp", Failures: 6, Limit: 6, Locked: true, Until: until},
			{Factor: "piv", Failures: 1, Limit: 6},
		}
		if len(got) != len(want) {
			t.Fatalf("FactorStates = %+v, want %+v", got, want)
		}
		for i := range want {
			if got[i].Factor != want[i].Factor || got[i].Failures != want[i].Failures || got[i].Limit != want[i].Limit ||
				got[i].Locked != want[i].Locked || !got[i].Until.Equal(want[i].Until) {
				t.Fatalf("FactorStates[%d] = %+v, want %+v", i, got[i], want[i])
			}
		}
		if _, err := s.FactorStates(ctx, "PNOSUCHCUSTOMER"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown customer: %v", err)
		}
		if err := s.Unlock(ctx, c.PassportID); err != nil {
			t.Fatal(err)
		}
		got, err = s.FactorStates(ctx, c.PassportID)
		if err != nil || len(got) != 1 || got[0].Failures != 0 || got[0].Locked {
			t.Fatalf("after unlock: %+v, %v", got, err)
		}
		if got, _ := s.FactorStates(ctx, other.PassportID); len(got) != 2 || got[1].Factor != "gridcard" || got[1].Failures != 4 {
			t.Fatalf("the other customer's counters: %+v", got)
		}
	})
}
