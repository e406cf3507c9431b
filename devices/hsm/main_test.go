package hsm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/simulators/softhsm"
	"github.com/egate-bank/egate/simulators/softhsm/softhsmtest"
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

// softHSM provisions both tokens before anything loads the module.
var softHSM = softhsmtest.Tokens{Labels: []string{testToken, pinToken}, SOPIN: testSOPIN, PIN: testPIN}

func TestMain(m *testing.M) {
	env.err = softHSM.Provision()
	if env.err == nil {
		env.err = setup(softHSM.Root)
	}
	code := m.Run()
	softHSM.Remove()
	os.Exit(code)
}

func setup(root string) error {
	env.root = root
	d := softHSM.Dir
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
