package ca

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/simulators/softhsm"
)

var (
	hsmSvc *hsm.Service
	hsmErr error
)

func TestMain(m *testing.M) {
	dir, _ := os.MkdirTemp("", "egate-ca-")
	hsmSvc, hsmErr = setupHSM(dir)
	code := m.Run()
	if hsmSvc != nil {
		hsmSvc.Close()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func setupHSM(dir string) (*hsm.Service, error) {
	d, err := softhsm.New(filepath.Join(dir, "softhsm"))
	if err != nil {
		return nil, err
	}
	if err := d.Activate(); err != nil {
		return nil, err
	}
	ctx := context.Background()
	if _, _, err := d.InitToken(ctx, "egate", "5678", "1234"); err != nil {
		return nil, err
	}
	pin := filepath.Join(dir, "pin")
	if err := os.WriteFile(pin, []byte("1234\n"), 0o600); err != nil {
		return nil, err
	}
	s, err := hsm.Open(ctx, hsm.Config{Module: d.Module, Token: "egate", PINSource: "file:" + pin})
	if err != nil {
		return nil, err
	}
	for _, l := range []string{RootKeyLabel, IssuingKeyLabel} {
		if _, _, err := s.EnsureKey(ctx, hsm.KeySpec{Label: l, Type: hsm.KeyECDSAP256}); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// TestHSMKeys runs the CA with its keys in SoftHSM2 through devices/hsm.
func TestHSMKeys(t *testing.T) {
	if hsmSvc == nil {
		testenv.Missing(t, "SoftHSM2", fmt.Sprintf("apt-get install softhsm2 (%v)", hsmErr))
	}
	ctx := context.Background()
	root, err := hsmSvc.Signer(ctx, RootKeyLabel)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := hsmSvc.Signer(ctx, IssuingKeyLabel)
	if err != nil {
		t.Fatal(err)
	}
	db := storetest.SQLite(t)
	c, err := Init(ctx, db, root, iss, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	cert, err := c.Issue(ctx, IssueRequest{Kind: KindToken, Owner: "p-hsm", CSR: csrFor(t, k), TokenKey: k.Public()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(ctx, cert); err != nil {
		t.Fatal(err)
	}
	// Reopen from the database with the HSM key, as another replica would.
	c2, err := Load(ctx, db, iss, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Revoke(ctx, SerialHex(cert.SerialNumber), ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(ctx, cert); !errors.Is(err, ErrCertRevoked) {
		t.Fatalf("revoked on one replica, the other says %v", err)
	}
	if _, err := c2.CRL(ctx); err != nil {
		t.Fatal(err)
	}
	// The root key cannot stand in for the issuing key.
	if _, err := Load(ctx, db, root, nil); err == nil {
		t.Fatal("Load accepted the root key as the issuing key")
	}
}
