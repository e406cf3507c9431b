// Package hsmtest gives tests of other packages a devices/hsm.Service on
// SoftHSM2 holding the bank's standard keys (what egate admin hsm init
// makes).
//
// SoftHSM2 reads SOFTHSM2_CONF and its token directory once, at
// C_Initialize: a token created after the module is loaded is not seen by
// this process. So each test binary gets one SoftHSM2 directory, made on
// first use with every token this package hands out, and each call opens a
// new Service on one of those tokens, closed when the test ends. A package
// that uses hsmtest removes the directory with
//
//	func TestMain(m *testing.M) { hsmtest.Main(m) }
//
// Without SoftHSM2 the tests skip, or fail under EGATE_TEST_STRICT=1
// (internal/testenv).
package hsmtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/simulators/softhsm"
	"github.com/egate-bank/egate/simulators/softhsm/softhsmtest"
)

const (
	// Token holds the standard keys and the extra keys tests asked for.
	Token = "egate-test"
	// EmptyToken holds no key; tests must not create any there.
	EmptyToken = "egate-test-empty"
	// UShieldToken plays a customer's U-shield (devices/pkcs11token) in the
	// same SoftHSM2, for tests that enroll one beside the bank's HSM: open
	// it with pkcs11token.Open(Config(tb).Module) after the HSM is open.
	UShieldToken = "egate-test-ushield"
	// PIN is the user PIN of both tokens, SOPIN their security officer's.
	PIN   = "1234"
	SOPIN = "5678"
)

var env struct {
	once sync.Once
	sh   softhsmtest.Tokens
	dir  *softhsm.Dir
	pin  string // file holding PIN
	err  error
	keys sync.Mutex // EnsureKey finds, then generates: one caller at a time
}

// setup makes the directory, the tokens (before anything loads the module)
// and the standard keys.
func setup() error {
	env.sh = softhsmtest.Tokens{Labels: []string{Token, EmptyToken, UShieldToken}, SOPIN: SOPIN, PIN: PIN}
	if err := env.sh.Provision(); err != nil {
		return err
	}
	root, d := env.sh.Root, env.sh.Dir
	ctx := context.Background()
	pin := filepath.Join(root, "pin")
	if err := os.WriteFile(pin, []byte(PIN+"\n"), 0o600); err != nil {
		return err
	}
	// Only tests that use TrustedWrapKey need it (NeedTrustedWrapKey); it
	// cannot be made if this process loaded the module already.
	trustedErr = createTrustedKey(d.Module, Token, SOPIN)
	env.dir, env.pin = d, pin
	s, err := hsm.Open(ctx, config(Token))
	if err != nil {
		return err
	}
	defer s.Close()
	_, err = s.InitStandardKeys(ctx)
	return err
}

func config(token string) hsm.Config {
	return hsm.Config{Module: env.dir.Module, Token: token, PINSource: "file:" + env.pin}
}

func open(tb testing.TB, token string) *hsm.Service {
	tb.Helper()
	env.once.Do(func() { env.err = setup() })
	if env.err != nil {
		testenv.Missing(tb, "SoftHSM2", fmt.Sprintf("apt-get install softhsm2 (%v)", env.err))
	}
	s, err := hsm.Open(context.Background(), config(token))
	if err != nil {
		tb.Fatalf("opening SoftHSM2 token %q: %v", token, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Open returns a Service on Token, which holds the standard keys and, made
// now if missing, the extra keys. It is closed when tb ends.
func Open(tb testing.TB, extra ...hsm.KeySpec) *hsm.Service {
	tb.Helper()
	s := open(tb, Token)
	env.keys.Lock()
	defer env.keys.Unlock()
	for _, spec := range extra {
		if _, _, err := s.EnsureKey(context.Background(), spec); err != nil {
			tb.Fatalf("key %q in SoftHSM2: %v", spec.Label, err)
		}
	}
	return s
}

// Config returns the hsm section that opens Token (standard keys made), for
// tests of code that opens the HSM itself from egate's config. It keeps no
// Service open.
func Config(tb testing.TB) hsm.Config {
	tb.Helper()
	env.once.Do(func() { env.err = setup() })
	if env.err != nil {
		testenv.Missing(tb, "SoftHSM2", fmt.Sprintf("apt-get install softhsm2 (%v)", env.err))
	}
	return config(Token)
}

// Unreachable makes this test binary's SoftHSM2 token directory
// unreachable (it is renamed, as an HSM outage looks to SoftHSM2) until the
// returned restore is called, or tb ends. Every Service of the binary sees
// the outage, so the test must not run in parallel with others using
// hsmtest; and a Service recovers from it only when it is the module's only
// user in the process (SoftHSM2 must be initialised again to see the
// token), so the test must keep no other Service open.
func Unreachable(tb testing.TB) (restore func()) {
	tb.Helper()
	Config(tb)
	gone := env.dir.TokenDir + ".unreachable"
	if err := os.Rename(env.dir.TokenDir, gone); err != nil {
		tb.Fatalf("making the SoftHSM2 token directory unreachable: %v", err)
	}
	var once sync.Once
	restore = func() {
		once.Do(func() {
			if err := os.Rename(gone, env.dir.TokenDir); err != nil {
				tb.Errorf("restoring the SoftHSM2 token directory: %v", err)
			}
		})
	}
	tb.Cleanup(restore)
	return restore
}

// OpenEmpty returns a Service on EmptyToken, which holds no key. It is
// closed when tb ends.
func OpenEmpty(tb testing.TB) *hsm.Service {
	tb.Helper()
	return open(tb, EmptyToken)
}

// Main runs the tests, then removes the SoftHSM2 directory (every Service
// is closed by then) and exits with the tests' code.
func Main(m *testing.M) {
	code := m.Run()
	env.sh.Remove()
	os.Exit(code)
}
