package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/miekg/pkcs11"
)

// egate admin hsm rewrap-seeds on a database whose seeds are wrapped by
// egate-secrets-wrap (as before the seed-wrap key; made here with raw
// PKCS#11): every seed moves, a second run moves nothing, a plain AES key or
// a missing key as --wrap-key is refused in one line and changes nothing.
// Not parallel: it loads SoftHSM2 into the test process with the bench's
// SOFTHSM2_CONF (t.Setenv).
func TestAdminHSMRewrapSeeds(t *testing.T) {
	b := newAdminBench(t)
	plain := filepath.Join(b.dir, "plain.pskc")
	writePSKC(t, plain, "R", 3, pskc.WriterOptions{})
	if r := b.admin(t, "token", "import-pskc", plain); r.code != 0 {
		t.Fatalf("import: %+v", r)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: b.db})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	blobOf := func(serial string) []byte {
		var blob []byte
		if err := db.QueryRow(ctx, `SELECT wrapped FROM otp_tokens WHERE serial = ?`, serial).Scan(&blob); err != nil {
			t.Fatal(err)
		}
		return blob
	}
	seed1 := bytes.Repeat([]byte{1, 0x5a}, 10)
	// OpenSC's pkcs11-tool with the user PIN, against a seed under the
	// seed-wrap key: neither unwrapping it as extractable nor decrypting
	// with the wrap key works.
	attack := newP11Attacker(t, b)
	attack.refused(blobOf("R0001"))

	t.Setenv("SOFTHSM2_CONF", b.sh.ConfPath)
	blobs := map[string][]byte{}
	hsmtest.Raw(t, b.sh.Module, benchHSMToken, benchHSMPIN, func(c *pkcs11.Ctx, sh pkcs11.SessionHandle) {
		for i := 1; i <= 3; i++ {
			blobs[fmt.Sprintf("R%04d", i)] = hsmtest.LegacyWrapIn(t, c, sh, "egate-secrets-wrap", bytes.Repeat([]byte{byte(i), 0x5a}, 10))
		}
	})
	for serial, blob := range blobs {
		if _, err := db.Exec(ctx, `UPDATE otp_tokens SET wrap_label = 'egate-secrets-wrap', wrapped = ? WHERE serial = ?`, blob, serial); err != nil {
			t.Fatal(err)
		}
	}
	// The same tool reads a seed of the old setup (the test means something).
	attack.steals(blobOf("R0001"), seed1)

	under := func(label string) int {
		var n int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM otp_tokens WHERE wrap_label = ?`, label).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	hsmFlags := []string{"--module", b.sh.Module, "--token", benchHSMToken, "--pin-source", "env:EGATE_TEST_HSM_PIN", "--db", b.db}
	rewrap := func(args ...string) result {
		return b.run(t, append(append([]string{"admin", "hsm", "rewrap-seeds"}, hsmFlags...), args...)...)
	}
	for _, tc := range []struct {
		name     string
		args     []string
		mentions []string
	}{
		{"the sealing key as --wrap-key", []string{"--wrap-key", "egate-secrets-wrap"}, []string{`"egate-secrets-wrap" is not a seed-wrap key`, "egate admin hsm init"}},
		{"a missing --wrap-key", []string{"--wrap-key", "egate-no-such-key"}, []string{"egate-no-such-key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oneLine(t, rewrap(tc.args...), tc.mentions...)
			if n := under("egate-secrets-wrap"); n != 3 {
				t.Fatalf("%d seeds left under egate-secrets-wrap, want 3", n)
			}
		})
	}
	r := rewrap()
	if r.code != 0 || !strings.Contains(r.stdout, "moved 3 seeds under egate-otp-seed-wrap") || !strings.Contains(r.stdout, "moved from egate-secrets-wrap") {
		t.Fatalf("rewrap-seeds: %+v", r)
	}
	if n := under("egate-otp-seed-wrap"); n != 3 {
		t.Fatalf("%d seeds under egate-otp-seed-wrap, want 3", n)
	}
	if r := rewrap(); r.code != 0 || !strings.Contains(r.stdout, "moved 0 seeds") {
		t.Fatalf("second rewrap-seeds: %+v", r)
	}
	attack.refused(blobOf("R0001"))
}

// p11Attacker drives OpenSC's pkcs11-tool on the bench's token with the
// user PIN.
type p11Attacker struct {
	t          *testing.T
	tool, dir  string
	env        []string
	base       []string
	seedWrapID string // hex CKA_ID of egate-otp-seed-wrap
	sealID     string // hex CKA_ID of egate-secrets-wrap
	n          int
}

func newP11Attacker(t *testing.T, b *adminBench) *p11Attacker {
	t.Helper()
	a := &p11Attacker{t: t, tool: testenv.NeedCommand(t, "pkcs11-tool", "opensc"), dir: t.TempDir(), env: []string{b.sh.Env()},
		base: []string{"--module", b.sh.Module, "--token-label", benchHSMToken, "--login", "--pin", benchHSMPIN}}
	id := func(label string) string {
		r := b.run(t, "admin", "hsm", "keys", label, "--module", b.sh.Module, "--token", benchHSMToken, "--pin-source", "env:EGATE_TEST_HSM_PIN")
		m := regexp.MustCompile(`;id=((?:%[0-9A-F]{2})+)`).FindStringSubmatch(r.stdout)
		if r.code != 0 || m == nil {
			t.Fatalf("hsm keys %s: %+v", label, r)
		}
		return strings.ToLower(strings.ReplaceAll(m[1], "%", ""))
	}
	a.seedWrapID, a.sealID = id("egate-otp-seed-wrap"), id("egate-secrets-wrap")
	return a
}

func (a *p11Attacker) run(args ...string) (string, error) {
	a.t.Helper()
	cmd := exec.Command(a.tool, append(append([]string{}, a.base...), args...)...)
	cmd.Env = append(os.Environ(), a.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// file writes b to a fresh file and returns its path.
func (a *p11Attacker) file(b []byte) string {
	a.n++
	p := filepath.Join(a.dir, fmt.Sprintf("in%d", a.n))
	if err := os.WriteFile(p, b, 0o600); err != nil {
		a.t.Fatal(err)
	}
	return p
}

// unwrap asks the token to unwrap blob (egate's format byte stripped) with
// the key id as an extractable, non-sensitive generic secret labelled label.
func (a *p11Attacker) unwrap(id string, blob []byte, label string) (string, error) {
	return a.run("--unwrap", "-m", "0x210A" /* CKM_AES_KEY_WRAP_PAD */, "--id", id, "-i", a.file(blob[1:]),
		"--key-type", "GENERIC:0" /* no CKA_VALUE_LEN: SoftHSM2 refuses it in C_UnwrapKey */, "--extractable", "--label", label)
}

func (a *p11Attacker) refused(blob []byte) {
	a.t.Helper()
	if out, err := a.unwrap(a.seedWrapID, blob, "stolen-seed"); err == nil || !strings.Contains(out, "CKR_TEMPLATE_INCONSISTENT") {
		a.t.Errorf("pkcs11-tool --unwrap --extractable with egate-otp-seed-wrap: %v\n%s", err, out)
	}
	if out, err := a.run("--decrypt", "-m", "AES-ECB", "--id", a.seedWrapID, "-i", a.file(blob[1:17])); err == nil || !strings.Contains(out, "C_DecryptInit") {
		a.t.Errorf("pkcs11-tool --decrypt with egate-otp-seed-wrap: %v\n%s", err, out)
	}
}

// steals unwraps blob with egate-secrets-wrap as an extractable key:
// pkcs11-tool prints the new key's CKA_VALUE, which must start with seed.
func (a *p11Attacker) steals(blob, seed []byte) {
	a.t.Helper()
	out, err := a.unwrap(a.sealID, blob, "stolen-seed")
	if err != nil || !strings.Contains(out, "VALUE:      "+hex.EncodeToString(seed)) {
		a.t.Fatalf("pkcs11-tool --unwrap --extractable with egate-secrets-wrap did not print the seed: %v\n%s", err, out)
	}
}
