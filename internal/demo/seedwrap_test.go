package demo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/simulators/softhsm"
	"github.com/miekg/pkcs11"
)

// TestDemoMovesSeedsOfAnOldVar: a ./var made before the seed-wrap key (no
// egate-otp-seed-wrap on the token, alice's TOTP seed wrapped by
// egate-secrets-wrap: made here from a fresh var with raw PKCS#11) starts:
// the demo creates the key, prints it, moves the seed under it inside the
// HSM, and alice's token still gives valid codes (through the OTP API).
func TestDemoMovesSeedsOfAnOldVar(t *testing.T) {
	testenv.NeedCommand(t, "softhsm2-util", "softhsm2")
	varDir := t.TempDir()
	_, _, stop := startDemo(t, varDir)
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// Turn the var into one from before.
	f, err := os.Open(filepath.Join(varDir, totpFile))
	if err != nil {
		t.Fatal(err)
	}
	k, err := pskc.NewReader(f, pskc.Options{}).Next()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	seed := bytes.Clone(k.Secret)
	module, err := softhsm.ModulePath()
	if err != nil {
		t.Fatal(err)
	}
	pin, err := os.ReadFile(filepath.Join(varDir, "hsm-user-pin"))
	if err != nil {
		t.Fatal(err)
	}
	var legacy []byte
	hsmtest.Raw(t, module, config.Defaults().HSM.Token, strings.TrimSpace(string(pin)), func(c *pkcs11.Ctx, sh pkcs11.SessionHandle) {
		legacy = hsmtest.LegacyWrapIn(t, c, sh, hsm.LabelSecretsWrap, seed)
		if err := c.DestroyObject(sh, hsmtest.FindSecretKey(t, c, sh, hsm.LabelSeedWrap)); err != nil {
			t.Fatal(err)
		}
	})
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: filepath.Join(varDir, "egate.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(ctx, `UPDATE otp_tokens SET wrap_label = ?, wrapped = ? WHERE serial = ?`, hsm.LabelSecretsWrap, legacy, k.Serial); err != nil {
		t.Fatal(err)
	}

	_, out, stop := startDemo(t, varDir)
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	if !strings.Contains(out.String(), "key      egate-otp-seed-wrap") {
		t.Fatalf("the demo does not print the seed-wrap key:\n%s", out.String())
	}
	var label string
	if err := db.QueryRow(ctx, `SELECT wrap_label FROM otp_tokens WHERE serial = ?`, k.Serial).Scan(&label); err != nil || label != hsm.LabelSeedWrap {
		t.Fatalf("alice's token after the restart is wrapped by %q (%v), want %q", label, err, hsm.LabelSeedWrap)
	}
	// The moved seed verifies through the OTP API, as the demo prints it.
	callOTPAPIAsPrinted(t, out.String())
}
