package ca

import (
	"context"
	"errors"
	"testing"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/internal/store/storetest"
)

func TestMain(m *testing.M) { hsmtest.Main(m) }

// TestHSMKeys runs the CA with its keys in SoftHSM2 through devices/hsm.
func TestHSMKeys(t *testing.T) {
	hsmSvc := hsmtest.Open(t, hsm.KeySpec{Label: RootKeyLabel, Type: hsm.KeyECDSAP256})
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
