package pivcard_test

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-piv/piv-go/v2/piv"

	"github.com/egate-bank/egate/simulators/pivcard"
	"github.com/egate-bank/egate/simulators/pivcard/pivtest"
)

var mk = piv.DefaultManagementKey

func TestPIVGoGenerateSign(t *testing.T) {
	yk, _, _ := openPIV(t)
	cases := []struct {
		name string
		slot piv.Slot
		alg  piv.Algorithm
	}{
		{"p256 in 9a", piv.SlotAuthentication, piv.AlgorithmEC256},
		{"p384 in 9c", piv.SlotSignature, piv.AlgorithmEC384},
		{"ed25519 in 9e", piv.SlotCardAuthentication, piv.AlgorithmEd25519},
		{"rsa1024 in 82", retired(t, 0x82), piv.AlgorithmRSA1024},
		{"rsa2048 in 9d", piv.SlotKeyManagement, piv.AlgorithmRSA2048},
		{"p256 in 95", retired(t, 0x95), piv.AlgorithmEC256},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := yk.GenerateKey(mk, tc.slot, piv.Key{Algorithm: tc.alg, PINPolicy: piv.PINPolicyOnce, TouchPolicy: piv.TouchPolicyNever})
			if err != nil {
				t.Fatalf("GenerateKey: %v", err)
			}
			priv, err := yk.PrivateKey(tc.slot, pub, piv.KeyAuth{PIN: piv.DefaultPIN})
			if err != nil {
				t.Fatalf("PrivateKey: %v", err)
			}
			signer := priv.(crypto.Signer)
			msg := []byte("transfer 100000 fen to account 6222")
			digest := sha256.Sum256(msg)
			switch p := pub.(type) {
			case *ecdsa.PublicKey:
				sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				if !ecdsa.VerifyASN1(p, digest[:], sig) {
					t.Error("ECDSA signature does not verify")
				}
				// ECDH against a software key.
				peer, _ := ecdsa.GenerateKey(p.Curve, rand.Reader)
				shared, err := priv.(*piv.ECDSAPrivateKey).SharedKey(&peer.PublicKey)
				if err != nil {
					t.Fatalf("SharedKey: %v", err)
				}
				pe, _ := peer.ECDH()
				pp, _ := p.ECDH()
				want, _ := pe.ECDH(pp)
				if !bytes.Equal(shared, want) {
					t.Error("ECDH secret differs from the software computation")
				}
			case ed25519.PublicKey:
				sig, err := signer.Sign(rand.Reader, msg, crypto.Hash(0))
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				if !ed25519.Verify(p, msg, sig) {
					t.Error("Ed25519 signature does not verify")
				}
			case *rsa.PublicKey:
				sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				if err := rsa.VerifyPKCS1v15(p, crypto.SHA256, digest[:], sig); err != nil {
					t.Errorf("PKCS#1 v1.5 signature: %v", err)
				}
				pss, err := signer.Sign(rand.Reader, digest[:], &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: rsa.PSSSaltLengthEqualsHash})
				if err != nil {
					t.Fatalf("Sign PSS: %v", err)
				}
				if err := rsa.VerifyPSS(p, crypto.SHA256, digest[:], pss, nil); err != nil {
					t.Errorf("PSS signature: %v", err)
				}
				ct, _ := rsa.EncryptPKCS1v15(rand.Reader, p, []byte("session key"))
				pt, err := priv.(crypto.Decrypter).Decrypt(rand.Reader, ct, nil)
				if err != nil || string(pt) != "session key" {
					t.Errorf("Decrypt = %q, %v", pt, err)
				}
			default:
				t.Fatalf("unexpected public key %T", pub)
			}
			info, err := yk.KeyInfo(tc.slot)
			if err != nil {
				t.Fatalf("KeyInfo: %v", err)
			}
			if info.Algorithm != tc.alg || info.PINPolicy != piv.PINPolicyOnce || info.TouchPolicy != piv.TouchPolicyNever || info.Origin != piv.OriginGenerated {
				t.Errorf("KeyInfo = %+v", info)
			}
		})
	}
	t.Run("x25519 ecdh in 9d", func(t *testing.T) {
		pub, err := yk.GenerateKey(mk, piv.SlotKeyManagement, piv.Key{Algorithm: piv.AlgorithmX25519, PINPolicy: piv.PINPolicyNever, TouchPolicy: piv.TouchPolicyNever})
		if err != nil {
			t.Fatalf("GenerateKey: %v", err)
		}
		priv, err := yk.PrivateKey(piv.SlotKeyManagement, pub, piv.KeyAuth{})
		if err != nil {
			t.Fatal(err)
		}
		peer, _ := ecdh.X25519().GenerateKey(rand.Reader)
		got, err := priv.(*piv.X25519PrivateKey).ECDH(peer.PublicKey())
		if err != nil {
			t.Fatalf("ECDH: %v", err)
		}
		want, _ := peer.ECDH(pub.(*ecdh.PublicKey))
		if !bytes.Equal(got, want) {
			t.Error("X25519 secret differs from the software computation")
		}
	})
}

func retired(t *testing.T, k uint32) piv.Slot {
	s, ok := piv.RetiredKeyManagementSlot(k)
	if !ok {
		t.Fatalf("no retired slot %x", k)
	}
	return s
}

func TestPIVGoPIN(t *testing.T) {
	yk, _, _ := openPIV(t)
	var ae piv.AuthErr
	steps := []struct {
		name  string
		do    func() error
		check func(err error) bool
	}{
		{"default PIN verifies", func() error { return yk.VerifyPIN("123456") }, func(err error) bool { return err == nil }},
		{"wrong PIN leaves 2", func() error { return yk.VerifyPIN("000000") }, func(err error) bool { return errors.As(err, &ae) && ae.Retries == 2 }},
		{"Retries says 2", func() error {
			n, err := yk.Retries()
			if err != nil || n != 2 {
				return errors.New("unexpected")
			}
			return nil
		}, func(err error) bool { return err == nil }},
		{"right PIN restores the counter", func() error { return yk.VerifyPIN("123456") }, func(err error) bool { return err == nil }},
		{"change PIN with wrong old PIN", func() error { return yk.SetPIN("999999", "654321") }, func(err error) bool { return errors.As(err, &ae) && ae.Retries == 2 }},
		{"change PIN", func() error { return yk.SetPIN("123456", "654321") }, func(err error) bool { return err == nil }},
		{"new PIN verifies", func() error { return yk.VerifyPIN("654321") }, func(err error) bool { return err == nil }},
		{"block: 1st wrong", func() error { return yk.VerifyPIN("111111") }, func(err error) bool { return errors.As(err, &ae) && ae.Retries == 2 }},
		{"block: 2nd wrong", func() error { return yk.VerifyPIN("111111") }, func(err error) bool { return errors.As(err, &ae) && ae.Retries == 1 }},
		{"block: 3rd wrong", func() error { return yk.VerifyPIN("111111") }, func(err error) bool { return errors.As(err, &ae) && ae.Retries == 0 }},
		{"blocked PIN refuses the right PIN", func() error { return yk.VerifyPIN("654321") }, func(err error) bool { return errors.As(err, &ae) && ae.Retries == 0 }},
		{"unblock with wrong PUK", func() error { return yk.Unblock("00000000", "222222") }, func(err error) bool { return errors.As(err, &ae) && ae.Retries == 2 }},
		{"unblock with PUK", func() error { return yk.Unblock("12345678", "222222") }, func(err error) bool { return err == nil }},
		{"unblocked PIN verifies", func() error { return yk.VerifyPIN("222222") }, func(err error) bool { return err == nil }},
		{"change PUK", func() error { return yk.SetPUK("12345678", "87654321") }, func(err error) bool { return err == nil }},
		{"PIN too short refused", func() error { return yk.SetPIN("222222", "12") }, func(err error) bool { return err != nil && !errors.As(err, &ae) }},
		{"set retries 5/4", func() error { return yk.SetRetries(mk, "222222", 5, 4) }, func(err error) bool { return err == nil }},
		{"retries reset PIN to default", func() error { return yk.VerifyPIN("222222") }, func(err error) bool { return errors.As(err, &ae) && ae.Retries == 4 }},
		{"default PIN after set retries", func() error { return yk.VerifyPIN("123456") }, func(err error) bool { return err == nil }},
	}
	for _, s := range steps {
		err := s.do()
		if !s.check(err) {
			t.Fatalf("%s: unexpected result %v", s.name, err)
		}
	}
}

func TestPIVGoManagementKey(t *testing.T) {
	yk, _, _ := openPIV(t)
	gen := func(key []byte) error {
		_, err := yk.GenerateKey(key, piv.SlotAuthentication, piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyNever, TouchPolicy: piv.TouchPolicyNever})
		return err
	}
	wrong := bytes.Repeat([]byte{7}, 24)
	if err := gen(wrong); err == nil {
		t.Fatal("GenerateKey with a wrong 3DES management key succeeded")
	}
	cur := mk
	for _, tc := range []struct {
		name string
		key  []byte
	}{
		{"aes128", bytes.Repeat([]byte{0x11}, 16)},
		{"aes192", bytes.Repeat([]byte{0x22}, 24)},
		{"aes256", bytes.Repeat([]byte{0x33}, 32)},
		{"3des", bytes.Repeat([]byte{0x0e, 0x1f}, 12)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := yk.SetManagementKey(cur, tc.key); err != nil {
				t.Fatalf("SetManagementKey: %v", err)
			}
			if err := gen(cur); err == nil {
				t.Error("old management key still works")
			}
			cur = tc.key
			if err := gen(cur); err != nil {
				t.Errorf("GenerateKey with the new key: %v", err)
			}
		})
	}
}

func TestPIVGoPolicies(t *testing.T) {
	pivtest.NeedPCSC(t)
	v := pivtest.Vendor(t)
	var touched atomic.Int32
	card, err := pivcard.Open(pivcard.Config{Path: filepath.Join(t.TempDir(), "c.json"), Vendor: v, Touch: func(slot byte) bool {
		return touched.Add(1)%2 == 1 // every other touch is "not touched"
	}})
	if err != nil {
		t.Fatal(err)
	}
	in := pivtest.Insert(t, pivtest.TakeReader(t), card)
	yk := openReader(t, in.Reader)
	digest := sha256.Sum256([]byte("m"))

	pub, err := yk.GenerateKey(mk, piv.SlotSignature, piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyAlways, TouchPolicy: piv.TouchPolicyNever})
	if err != nil {
		t.Fatal(err)
	}
	noPIN, _ := yk.PrivateKey(piv.SlotSignature, pub, piv.KeyAuth{PINPolicy: piv.PINPolicyNever})
	if _, err := noPIN.(crypto.Signer).Sign(rand.Reader, digest[:], crypto.SHA256); err == nil {
		t.Error("PIN-always key signed without a PIN")
	}
	if err := yk.VerifyPIN(piv.DefaultPIN); err != nil {
		t.Fatal(err)
	}
	if _, err := noPIN.(crypto.Signer).Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
		t.Errorf("PIN-always key after VERIFY: %v", err)
	}
	if _, err := noPIN.(crypto.Signer).Sign(rand.Reader, digest[:], crypto.SHA256); err == nil {
		t.Error("PIN-always key signed twice on one VERIFY")
	}
	withPIN, _ := yk.PrivateKey(piv.SlotSignature, pub, piv.KeyAuth{PIN: piv.DefaultPIN})
	for i := 0; i < 2; i++ {
		if _, err := withPIN.(crypto.Signer).Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
			t.Errorf("sign %d with PIN: %v", i, err)
		}
	}

	pub, err = yk.GenerateKey(mk, piv.SlotAuthentication, piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyNever, TouchPolicy: piv.TouchPolicyAlways})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := yk.PrivateKey(piv.SlotAuthentication, pub, piv.KeyAuth{})
	if _, err := k.(crypto.Signer).Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
		t.Errorf("touched: %v", err)
	}
	if _, err := k.(crypto.Signer).Sign(rand.Reader, digest[:], crypto.SHA256); err == nil {
		t.Error("signed although the touch was refused")
	}
	if n := touched.Load(); n != 2 {
		t.Errorf("touch asked %d times, want 2", n)
	}
}

func openReader(t *testing.T, reader string) *piv.YubiKey {
	t.Helper()
	var yk *piv.YubiKey
	if err := pivtest.Until(10*time.Second, func() (err error) {
		yk, err = piv.Open(reader)
		return err
	}); err != nil {
		t.Fatalf("opening %s: %v", reader, err)
	}
	t.Cleanup(func() { yk.Close() })
	return yk
}

func TestPIVGoCertificatesAttestation(t *testing.T) {
	yk, in, v := openPIV(t)
	pub, err := yk.GenerateKey(mk, piv.SlotAuthentication, piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyOnce, TouchPolicy: piv.TouchPolicyCached})
	if err != nil {
		t.Fatal(err)
	}

	// Attestation chains to the vendor root.
	attCert, err := yk.AttestationCertificate()
	if err != nil {
		t.Fatalf("AttestationCertificate: %v", err)
	}
	slotCert, err := yk.Attest(piv.SlotAuthentication)
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(v.Cert)
	att, err := (&piv.Verifier{Roots: roots}).Verify(attCert, slotCert)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := piv.Attestation{Version: piv.Version{Major: 5, Minor: 7, Patch: 1}, Serial: in.Card.Serial(), Formfactor: piv.FormfactorUSBAKeychain,
		PINPolicy: piv.PINPolicyOnce, TouchPolicy: piv.TouchPolicyCached, Slot: piv.SlotAuthentication}
	if *att != want {
		t.Errorf("attestation = %+v, want %+v", *att, want)
	}
	if !publicEqual(slotCert.PublicKey, pub) {
		t.Error("attested key is not the generated key")
	}
	other := x509.NewCertPool()
	other.AddCert(pivtest.Vendor(t).Cert)
	if _, err := (&piv.Verifier{Roots: other}).Verify(attCert, slotCert); err == nil {
		t.Error("attestation verified against a foreign root")
	}
	if _, err := yk.Attest(piv.SlotSignature); !errors.Is(err, piv.ErrNotFound) {
		t.Errorf("Attest(empty slot) = %v, want ErrNotFound", err)
	}

	// A certificate larger than one short APDU goes out chained and comes back through GET RESPONSE.
	ca, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "customer 42", Organization: []string{string(bytes.Repeat([]byte("o"), 600))}},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, ca)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	if err := yk.SetCertificate(mk, piv.SlotAuthentication, cert); err != nil {
		t.Fatalf("SetCertificate: %v", err)
	}
	got, err := yk.Certificate(piv.SlotAuthentication)
	if err != nil {
		t.Fatalf("Certificate: %v", err)
	}
	if !bytes.Equal(got.Raw, der) {
		t.Error("certificate read back differs")
	}
	if _, err := yk.Certificate(piv.SlotSignature); !errors.Is(err, piv.ErrNotFound) {
		t.Errorf("Certificate(empty) = %v, want ErrNotFound", err)
	}
	if err := yk.SetCertificate(bytes.Repeat([]byte{9}, 24), piv.SlotSignature, cert); err == nil {
		t.Error("SetCertificate with a wrong management key succeeded")
	}

	// Protected metadata (PIN-protected object 5FC109).
	newKey := bytes.Repeat([]byte{0x42}, 24)
	if err := yk.SetMetadata(mk, &piv.Metadata{ManagementKey: &newKey}); err != nil {
		t.Fatalf("SetMetadata: %v", err)
	}
	md, err := yk.Metadata(piv.DefaultPIN)
	if err != nil || md.ManagementKey == nil || !bytes.Equal(*md.ManagementKey, newKey) {
		t.Errorf("Metadata = %+v, %v", md, err)
	}
}

func publicEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

func TestPIVGoResetAndRestart(t *testing.T) {
	pivtest.NeedPCSC(t)
	v := pivtest.Vendor(t)
	path := filepath.Join(t.TempDir(), "card.json")
	card, err := pivcard.Open(pivcard.Config{Path: path, Vendor: v})
	if err != nil {
		t.Fatal(err)
	}
	slot := pivtest.TakeReader(t)
	in := pivtest.Insert(t, slot, card)
	yk, err := openUntil(in.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := yk.GenerateKey(mk, piv.SlotAuthentication, piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyNever, TouchPolicy: piv.TouchPolicyNever})
	if err != nil {
		t.Fatal(err)
	}
	if err := yk.SetPIN(piv.DefaultPIN, "24680135"); err != nil {
		t.Fatal(err)
	}
	yk.Close()
	in.Remove()

	// A new process opens the same state file: the key and PIN survive.
	card2, err := pivcard.Open(pivcard.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	in2 := pivtest.Insert(t, slot, card2)
	yk2, err := openUntil(in2.Reader)
	if err != nil {
		t.Fatal(err)
	}
	defer yk2.Close()
	info, err := yk2.KeyInfo(piv.SlotAuthentication)
	if err != nil || !publicEqual(info.PublicKey, pub) {
		t.Fatalf("key after restart: %+v, %v", info, err)
	}
	if err := yk2.VerifyPIN("24680135"); err != nil {
		t.Fatalf("PIN after restart: %v", err)
	}
	// piv-go's Reset blocks PIN and PUK, then resets.
	if err := yk2.Reset(); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if _, err := yk2.KeyInfo(piv.SlotAuthentication); err == nil {
		t.Error("key survived the reset")
	}
	if err := yk2.VerifyPIN(piv.DefaultPIN); err != nil {
		t.Errorf("default PIN after reset: %v", err)
	}
	if _, err := yk2.AttestationCertificate(); err != nil {
		t.Errorf("attestation certificate lost by reset: %v", err)
	}
}

func openUntil(reader string) (*piv.YubiKey, error) {
	var yk *piv.YubiKey
	err := pivtest.Until(10*time.Second, func() (err error) {
		yk, err = piv.Open(reader)
		return err
	})
	return yk, err
}
