package pkcs11token

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/egate-bank/egate/devices/p11/p11test"
	"github.com/miekg/pkcs11"
)

// TestTokenPulledMidOperation makes SoftHSM2 answer as a U-shield pulled
// out (or a session the module forgot) at one PKCS#11 call of a token
// operation: the operation fails with ErrRemoved or ErrSessionLost, the
// module's return value reachable with errors.As, and the call is not
// repeated.
func TestTokenPulledMidOperation(t *testing.T) {
	ctx := context.Background()
	m, tok := needToken(t, tokenLabel)
	if err := tok.Login(ctx, []byte(userPIN)); err != nil {
		t.Fatal(err)
	}
	key, err := tok.GenerateKey(ctx, ECDSAP256, NewKeyID(), "fault-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The cases' Close logged the process out: log in again to remove the key.
		t2, err := m.OpenToken(ctx, tokenLabel)
		if err != nil {
			return
		}
		defer t2.Close()
		if t2.Login(ctx, []byte(userPIN)) == nil {
			if k, err := t2.Key(ctx, key.ID()); err == nil {
				k.Destroy(ctx)
			}
		}
	})
	digest := sha256.Sum256([]byte("Transfer 500.00 yuan\nChallenge: 00FF"))

	f := p11test.New(m.Ctx())
	fm := Wrap(f, m.Path())
	// Each case opens its own session on the faulty module: a call failed
	// by injection never reached SoftHSM2, which may still hold the
	// operation it began.
	var ftok *Token
	var fkey *Key
	cases := []struct {
		name   string
		method string
		rv     uint
		op     func() error
		want   error
	}{
		{"removed at C_Sign", "Sign", pkcs11.CKR_DEVICE_REMOVED, func() error {
			_, err := fkey.Sign(nil, digest[:], crypto.SHA256)
			return err
		}, ErrRemoved},
		{"removed at C_SignInit", "SignInit", pkcs11.CKR_DEVICE_REMOVED, func() error {
			_, err := fkey.Sign(nil, digest[:], crypto.SHA256)
			return err
		}, ErrRemoved},
		{"session lost at C_Sign", "Sign", pkcs11.CKR_SESSION_HANDLE_INVALID, func() error {
			_, err := fkey.Sign(nil, digest[:], crypto.SHA256)
			return err
		}, ErrSessionLost},
		{"token not present finding the key", "FindObjectsInit", pkcs11.CKR_TOKEN_NOT_PRESENT, func() error {
			_, err := ftok.Key(ctx, key.ID())
			return err
		}, ErrRemoved},
		{"session lost reading the certificate", "FindObjects", pkcs11.CKR_SESSION_HANDLE_INVALID, func() error {
			_, err := ftok.Certificate(ctx, key.ID())
			return err
		}, ErrSessionLost},
		{"removed generating a key", "GenerateKeyPair", pkcs11.CKR_DEVICE_REMOVED, func() error {
			_, err := ftok.GenerateKey(ctx, ECDSAP256, NewKeyID(), "fault-test-2")
			return err
		}, ErrRemoved},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ftok, err = fm.OpenToken(ctx, tokenLabel)
			if err != nil {
				t.Fatal(err)
			}
			defer ftok.Close()
			if err := ftok.Login(ctx, []byte(userPIN)); err != nil {
				t.Fatal(err)
			}
			if fkey, err = ftok.Key(ctx, key.ID()); err != nil {
				t.Fatal(err)
			}
			f.Inject(tc.method, tc.rv, 1)
			t.Cleanup(f.Clear)
			before := f.Calls(tc.method)
			err := tc.op()
			if !errors.Is(err, tc.want) {
				t.Fatalf("%s failing with %#x: %v, want %v", tc.method, tc.rv, err, tc.want)
			}
			var pe pkcs11.Error
			if !errors.As(err, &pe) || uint(pe) != tc.rv {
				t.Fatalf("the module's return value is not reachable: %v", err)
			}
			if f.Calls(tc.method) != before+1 {
				t.Fatalf("%s called %d times, want once (never retried)", tc.method, f.Calls(tc.method)-before)
			}
		})
	}
}
