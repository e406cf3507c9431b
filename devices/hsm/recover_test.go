package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/devices/p11/p11test"
	"github.com/miekg/pkcs11"
)

// fakeClock is the service's clock in tests of the backoff.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openFaulty opens a service whose miekg/pkcs11 calls go through a
// p11test.Faulty and whose clock is a fakeClock.
func openFaulty(t *testing.T) (*Service, *p11test.Faulty, *fakeClock, *loginCounter) {
	t.Helper()
	need(t)
	lc := &loginCounter{}
	cfg := testConfig(testToken)
	cfg.RetryMin, cfg.RetryMax = time.Second, 4*time.Second
	s, err := open(context.Background(), cfg, lc.hook())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	fp := p11test.New(s.p)
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	s.p, s.now = fp, clk.Now
	ctx := context.Background()
	for _, k := range []KeySpec{{"egate-test-hmac", KeyHMAC}, {"egate-test-aes", KeyAES256}} {
		if _, _, err := s.EnsureKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	return s, fp, clk, lc
}

// TestInjectedFaultsRecover: a module error that means a session, the
// device or the module failed is cured on the same call (a fresh session
// for a lost one; reopening the module and logging in again once for a
// removed device or a general error), and the caller sees success.
func TestInjectedFaultsRecover(t *testing.T) {
	ctx := context.Background()
	hmacOp := func(s *Service) error { _, err := s.HMAC(ctx, "egate-test-hmac", []byte("m")); return err }
	sealOp := func(s *Service) error { _, err := s.Seal(ctx, "egate-test-aes", []byte("p"), nil); return err }
	for _, tc := range []struct {
		name       string
		method     string
		rv         uint
		times      int // calls that fail
		op         func(*Service) error
		wantReopen int64
	}{
		// A fresh session cures one lost session, or a device that
		// answered again at once.
		{"session handle invalid once on HMAC", "Sign", pkcs11.CKR_SESSION_HANDLE_INVALID, 1, hmacOp, 0},
		{"device removed once on seal", "Encrypt", pkcs11.CKR_DEVICE_REMOVED, 1, sealOp, 0},
		// Otherwise the module is reopened and the login made again.
		{"session handle invalid twice on HMAC", "Sign", pkcs11.CKR_SESSION_HANDLE_INVALID, 2, hmacOp, 1},
		{"device removed twice on seal", "Encrypt", pkcs11.CKR_DEVICE_REMOVED, 2, sealOp, 1},
		{"token not present twice on seal", "Encrypt", pkcs11.CKR_TOKEN_NOT_PRESENT, 2, sealOp, 1},
		{"general error on HMAC", "Sign", pkcs11.CKR_GENERAL_ERROR, 1, hmacOp, 1},
		{"general error on seal", "Encrypt", pkcs11.CKR_GENERAL_ERROR, 1, sealOp, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, fp, _, lc := openFaulty(t)
			logins := lc.n.Load()
			fp.Inject(tc.method, tc.rv, tc.times)
			if err := tc.op(s); err != nil {
				t.Fatalf("call with one injected %s: %v", pkcs11.Error(tc.rv), err)
			}
			if got := s.Reopened(); got != tc.wantReopen {
				t.Fatalf("module reopened %d times, want %d", got, tc.wantReopen)
			}
			if got := int64(lc.n.Load() - logins); got != tc.wantReopen {
				t.Fatalf("logged in %d times, want %d (once per reopening)", got, tc.wantReopen)
			}
			if err := s.Check(ctx); err != nil {
				t.Fatalf("Check after recovery: %v", err)
			}
		})
	}
}

// TestInjectedOutageBackoff: while the token is gone every call fails
// with ErrUnavailable; calls before the next attempt is due fail at once
// without touching the module, the wait doubles up to RetryMax, and the
// first call after the token came back and the wait ran out succeeds.
func TestInjectedOutageBackoff(t *testing.T) {
	s, fp, clk, _ := openFaulty(t)
	ctx := context.Background()
	fp.Inject("Sign", pkcs11.CKR_DEVICE_REMOVED, -1)
	fp.Inject("GetTokenInfo", pkcs11.CKR_TOKEN_NOT_PRESENT, -1)
	_, err := s.HMAC(ctx, "egate-test-hmac", []byte("m"))
	var ue *UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("HMAC with the token gone: %v, want ErrUnavailable", err)
	}
	if ue.RetryAfter != time.Second {
		t.Fatalf("first wait %v, want RetryMin (1s)", ue.RetryAfter)
	}
	signs := fp.Calls("Sign")
	for range 3 {
		if _, err := s.HMAC(ctx, "egate-test-hmac", []byte("m")); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("HMAC during the wait: %v, want ErrUnavailable", err)
		}
	}
	if err := s.Check(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Check during the wait: %v, want ErrUnavailable", err)
	}
	if got := fp.Calls("Sign"); got != signs {
		t.Fatalf("%d calls reached the module during the wait, want none", got-signs)
	}
	for _, want := range []time.Duration{2 * time.Second, 4 * time.Second, 4 * time.Second} {
		clk.Add(ue.RetryAfter)
		_, err := s.HMAC(ctx, "egate-test-hmac", []byte("m"))
		if !errors.As(err, &ue) {
			t.Fatalf("HMAC with the token still gone: %v", err)
		}
		if ue.RetryAfter != want {
			t.Fatalf("wait %v, want %v", ue.RetryAfter, want)
		}
	}
	fp.Clear()
	if _, err := s.HMAC(ctx, "egate-test-hmac", []byte("m")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("HMAC before the wait ran out: %v, want ErrUnavailable", err)
	}
	clk.Add(ue.RetryAfter)
	if _, err := s.HMAC(ctx, "egate-test-hmac", []byte("m")); err != nil {
		t.Fatalf("HMAC after the token came back: %v", err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check after recovery: %v", err)
	}
	// A new outage starts with RetryMin again.
	fp.Inject("Sign", pkcs11.CKR_DEVICE_REMOVED, -1)
	fp.Inject("GetTokenInfo", pkcs11.CKR_TOKEN_NOT_PRESENT, -1)
	if _, err := s.HMAC(ctx, "egate-test-hmac", []byte("m")); !errors.As(err, &ue) || ue.RetryAfter != time.Second {
		t.Fatalf("second outage: %v, want a wait of RetryMin", err)
	}
}

// TestSoftHSMOutage makes SoftHSM2's token directory unreachable while
// goroutines sign, seal and compute HMACs with wrapped secrets, then puts
// it back. During the outage calls fail with ErrUnavailable (never as a
// missing key or a tampered blob) and Check fails; after the directory is
// back the service reopens the module by itself (SoftHSM2 reads its tokens
// only when initialised), logs in once per reopening, Check passes, and
// no call fails from then on.
func TestSoftHSMOutage(t *testing.T) {
	need(t)
	lc := &loginCounter{}
	cfg := testConfig(testToken)
	cfg.RetryMin, cfg.RetryMax = 10*time.Millisecond, 100*time.Millisecond
	s, err := open(context.Background(), cfg, lc.hook())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, k := range []KeySpec{{"egate-test-ec", KeyECDSAP256}, {"egate-test-aes", KeyAES256}, {LabelSeedWrap, KeySeedWrap}} {
		if _, _, err := s.EnsureKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	sg, err := s.Signer(ctx, "egate-test-ec")
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := s.WrapSecret(ctx, LabelSeedWrap, []byte("12345678901234567890"))
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("outage"))
	ops := []func() error{
		func() error {
			sig, err := sg.SignContext(ctx, d[:], crypto.SHA256)
			if err == nil && !ecdsa.VerifyASN1(sg.Public().(*ecdsa.PublicKey), d[:], sig) {
				return errors.New("signature does not verify")
			}
			return err
		},
		func() error {
			_, err := s.HMACWrapped(ctx, LabelSeedWrap, wrapped, crypto.SHA1, [][]byte{[]byte("12345678")})
			return err
		},
		func() error {
			b, err := s.Seal(ctx, "egate-test-aes", []byte("p"), nil)
			if err == nil {
				_, err = s.Unseal(ctx, "egate-test-aes", b, nil)
			}
			return err
		},
	}

	// phase: 0 before the outage, 1 from the rename until Check passes
	// again, 2 after.
	var phase atomic.Int32
	var okAfter [3]atomic.Int32
	unavailable := make(chan struct{}, 1)
	progress := make(chan struct{}, 64)
	stop := make(chan struct{})
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op := ops[g%len(ops)]
			for {
				select {
				case <-stop:
					return
				default:
				}
				p := phase.Load()
				err := op()
				if err != nil && phase.Load() != p {
					// In flight when the outage began or ended.
					p = 1
				}
				switch {
				case err == nil:
					okAfter[p].Add(1)
					select {
					case progress <- struct{}{}:
					default:
					}
				case p == 0:
					errs <- fmt.Errorf("before the outage: %w", err)
					return
				case p == 1 && errors.Is(err, ErrUnavailable):
					select {
					case unavailable <- struct{}{}:
					default:
					}
				case p == 1:
					errs <- fmt.Errorf("during the outage, not ErrUnavailable: %w", err)
					return
				default:
					errs <- fmt.Errorf("after recovery: %w", err)
					return
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	waitOK := func(p int, n int32) {
		t.Helper()
		for okAfter[p].Load() < n {
			select {
			case <-progress:
			case err := <-errs:
				t.Fatal(err)
			case <-ctx.Done():
				t.Fatalf("phase %d: %d calls succeeded, want %d", p, okAfter[p].Load(), n)
			}
		}
	}
	waitOK(0, 30)

	logins := lc.n.Load()
	gone := env.dir.TokenDir + ".gone"
	phase.Store(1)
	if err := os.Rename(env.dir.TokenDir, gone); err != nil {
		t.Fatal(err)
	}
	restored := false
	defer func() {
		if !restored {
			os.Rename(gone, env.dir.TokenDir)
		}
	}()
	select {
	case <-unavailable:
	case err := <-errs:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("no call failed with ErrUnavailable while the token directory was gone")
	}
	if err := s.Check(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Check while the token directory is gone: %v, want ErrUnavailable", err)
	}
	if err := os.Rename(gone, env.dir.TokenDir); err != nil {
		t.Fatal(err)
	}
	restored = true
	// Check reopens the module once its wait (at most RetryMax) runs out.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for s.Check(ctx) != nil {
		select {
		case <-tick.C:
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("Check still fails after the token directory came back")
		}
	}
	phase.Store(2)
	waitOK(2, 30)
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if s.Reopened() < 1 {
		t.Fatal("the module was never reopened")
	}
	// egate asks for a login only when it reopens the module, once per
	// attempt (an attempt while the token is gone fails before C_Login).
	if got := int64(lc.n.Load() - logins); got != s.attempts.Load() {
		t.Fatalf("asked to log in %d times for %d attempts to reopen the module, want one each", got, s.attempts.Load())
	}
}
