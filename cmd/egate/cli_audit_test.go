package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egate-bank/egate/authsvc/audit"
	"github.com/egate-bank/egate/authsvc/audit/audittest"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/simulators/softhsm"
)

// TestAdminAuditCheckpoints: checkpoints signed by the HSM's audit key are
// checked by egate admin audit verify with the key read from the HSM or from
// the PEM egate admin audit public-key prints; a chain rewritten with every
// hash recomputed passes the hash walk but not the signature, and verify
// names the checkpoint in one line with exit 1.
func TestAdminAuditCheckpoints(t *testing.T) {
	testenv.NeedCommand(t, "softhsm2-util", "softhsm2")
	ctx := context.Background()
	dir := t.TempDir()
	sh, err := softhsm.New(filepath.Join(dir, "softhsm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := sh.InitToken(ctx, "egate-audit", "87654321", "12345678"); err != nil {
		t.Fatal(err)
	}
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte("12345678"), 0o600); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "egate.db")
	cfg := filepath.Join(dir, "egate.yaml")
	conf := fmt.Sprintf("hsm:\n  module: %s\n  token: egate-audit\n  pin-source: file:%s\n  module-env: [%s]\ndatabase:\n  driver: sqlite\n  dsn: %s\n", sh.Module, pinFile, sh.Env(), dbPath)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(t, dir, nil, "admin", "hsm", "init", "--config", cfg); r.code != 0 {
		t.Fatalf("hsm init: %+v", r)
	}

	// Records and two checkpoints, signed in the HSM by this process.
	if err := sh.Activate(); err != nil {
		t.Fatal(err)
	}
	h, err := hsm.Open(ctx, hsm.Config{Module: sh.Module, Token: "egate-audit", PINSource: "file:" + pinFile})
	if err != nil {
		t.Fatal(err)
	}
	key, err := h.Signer(ctx, hsm.LabelAuditCheckpoint)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	l := audit.New(db, nil)
	for i := range 6 {
		if _, err := l.Append(ctx, "login.password", map[string]string{"n": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		if i == 2 || i == 4 {
			if _, err := l.Checkpoint(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.Close()

	r := run(t, dir, nil, "admin", "audit", "verify", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "audit log intact: 6 records") || !strings.Contains(r.stdout, "signed checkpoints: 2, all valid; records 1–5 signed, 1 after it not yet") {
		t.Fatalf("verify with the HSM: %+v", r)
	}
	pub := run(t, dir, nil, "admin", "audit", "public-key", "--config", cfg)
	if pub.code != 0 || !strings.Contains(pub.stdout, "BEGIN PUBLIC KEY") || !strings.Contains(pub.stdout, "object=egate-audit-checkpoint") {
		t.Fatalf("public-key: %+v", pub)
	}
	pemFile := filepath.Join(dir, "audit.pem")
	if err := os.WriteFile(pemFile, []byte(pub.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	// An auditor without the HSM: the database and the PEM.
	r = run(t, dir, []string{"SOFTHSM2_CONF=/nonexistent"}, "admin", "audit", "verify", "--db", dbPath, "--public-key", pemFile)
	if r.code != 0 || !strings.Contains(r.stdout, "signed checkpoints: 2, all valid") {
		t.Fatalf("verify with --public-key: %+v", r)
	}
	oneLine(t, run(t, dir, nil, "admin", "audit", "verify", "--db", dbPath, "--public-key", cfg), "not a PEM PUBLIC KEY")

	// Record 2 changed and every hash after it recomputed: the chain walks,
	// the first checkpoint (at record 3) does not.
	audittest.RewriteChain(t, db, 2, map[string]string{"n": "forged"})
	db.Close()
	r = run(t, dir, nil, "admin", "audit", "verify", "--db", dbPath, "--public-key", pemFile)
	oneLine(t, r, "audit checkpoint at record 3 does not verify", "may have been rewritten")
	// Without a key only the chain is walked, and it says what it did not check.
	r = run(t, dir, nil, "admin", "audit", "verify", "--db", dbPath)
	if r.code != 0 || !strings.Contains(r.stdout, "checkpoints not checked") {
		t.Fatalf("verify without a key: %+v", r)
	}
}
