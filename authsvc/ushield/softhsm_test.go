package ushield

import (
	"context"
	"errors"
	"testing"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/devices/pkcs11token"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/simulators/softhsm/softhsmtest"
)

var hsm = softhsmtest.Tokens{Labels: []string{"ushield-a"}, SOPIN: "87654321", PIN: "123456"}

func TestMain(m *testing.M) { softhsmtest.Main(m, &hsm) }

// TestEnrollSoftHSM enrolls a SoftHSM2 token as a customer's U-shield and
// proves a login with a signature made on the token.
func TestEnrollSoftHSM(t *testing.T) {
	dir := hsm.Need(t)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := newRig(t, db)
		mod, err := pkcs11token.Open(dir.Module)
		if err != nil {
			t.Fatal(err)
		}
		defer mod.Close()
		tok, err := mod.OpenToken(ctx, "ushield-a")
		if err != nil {
			t.Fatal(err)
		}
		defer tok.Close()
		if err := tok.Login(ctx, []byte("123456")); err != nil {
			t.Fatal(err)
		}
		b, err := r.svc.Enroll(ctx, tok, "dave", 1, pkcs11token.EnrollOptions{})
		if err != nil {
			t.Fatal(err)
		}
		k, err := tok.Key(ctx, b.KeyID)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tok.Certificate(ctx, b.KeyID)
		if err != nil {
			t.Fatal(err)
		}
		f := r.svc.Factor(1)
		prove := func() error {
			ch, err := f.Begin(ctx, authn.BeginRequest{PassportID: "dave", Purpose: authn.PurposeLogin})
			if err != nil {
				return err
			}
			p, err := pkcs11token.SignProof(k, cert, ch.Data, false)
			if err != nil {
				return err
			}
			_, err = f.Verify(ctx, authn.VerifyRequest{PassportID: "dave", ChallengeID: ch.ID, Response: p})
			return err
		}
		if err := prove(); err != nil {
			t.Fatalf("login with the token: %v", err)
		}
		if err := r.svc.ReportLost(ctx, "dave", b.CertSerial); err != nil {
			t.Fatal(err)
		}
		if err := prove(); !errors.Is(err, authn.ErrNotEnrolled) {
			t.Fatalf("after ReportLost: %v, want ErrNotEnrolled at Begin", err)
		}
	})
}
