package hsm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/simulators/softhsm"
)

// One SoftHSM2 directory per test binary: SOFTHSM2_CONF is read once per
// process, when the module is first initialised.
var env struct {
	err     error
	dir     *softhsm.Dir
	root    string
	pinFile string // file: source with testPIN
	badPIN  string // file: source with a wrong PIN
}

const (
	testToken = "egate-test"
	pinToken  = "egate-pin-test" // wrong-PIN tests run here, never on testToken
	testPIN   = "1234"
	testSOPIN = "5678"
)

func TestMain(m *testing.M) {
	root, err := os.MkdirTemp("", "egate-hsm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	env.root = root
	env.err = setup(root)
	code := m.Run()
	os.RemoveAll(root)
	os.Exit(code)
}

func setup(root string) error {
	d, err := softhsm.New(filepath.Join(root, "softhsm"))
	if err != nil {
		return err
	}
	if err := d.Activate(); err != nil {
		return err
	}
	ctx := context.Background()
	for _, l := range []string{testToken, pinToken} {
		if _, _, err := d.InitToken(ctx, l, testSOPIN, testPIN); err != nil {
			return err
		}
	}
	if err := createTrustedKey(d.Module, testToken, testSOPIN, trustedWrapLabel); err != nil {
		return err
	}
	env.dir = d
	env.pinFile = filepath.Join(root, "pin")
	env.badPIN = filepath.Join(root, "bad-pin")
	if err := os.WriteFile(env.pinFile, []byte(testPIN+"\n"), 0o600); err != nil {
		return err
	}
	return os.WriteFile(env.badPIN, []byte("9999\n"), 0o600)
}

// need skips (or, under EGATE_TEST_STRICT=1, fails) without SoftHSM2.
func need(t testing.TB) {
	t.Helper()
	if env.err != nil {
		testenv.Missing(t, "SoftHSM2", fmt.Sprintf("apt-get install softhsm2 (%v)", env.err))
	}
}

func testConfig(token string) Config {
	return Config{Module: env.dir.Module, Token: token, PINSource: "file:" + env.pinFile, Pool: 4}
}

func openTest(t testing.TB, cfg Config) *Service {
	t.Helper()
	need(t)
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
