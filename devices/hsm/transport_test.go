package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/egate-bank/egate/devices/p11"
	"github.com/egate-bank/egate/devices/p11/p11test"
	"github.com/miekg/pkcs11"
)

// trustedWrapLabel is the storage key the security officer marked
// CKA_TRUSTED (made by createTrustedKey before the module is loaded).
const trustedWrapLabel = "egate-test-trusted-wrap"

// createTrustedKey makes, as the token's security officer, a seed-wrap key
// with CKA_TRUSTED. SoftHSM2 lets only the SO set CKA_TRUSTED and lets the
// SO create only public objects, so the key is public (CKA_PRIVATE false),
// sensitive and never extractable. It loads the module, so it runs
// before this process opens any Service (SOFTHSM2_CONF is read once).
func createTrustedKey(module, token, soPIN, label string) error {
	return p11test.Session(module, token, pkcs11.CKU_SO, soPIN, func(c p11.Ctx, sh pkcs11.SessionHandle) error {
		return GenerateTrustedSeedWrapKey(c, sh, label, false)
	})
}

// opensslEncrypt encrypts pt to pub with openssl (an independent RSA
// implementation), OAEP (SHA-1, MGF1-SHA-1) or PKCS#1 v1.5.
func opensslEncrypt(t *testing.T, pub *rsa.PublicKey, pt []byte, oaep bool) []byte {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed to make the RSA test values")
	}
	dir := t.TempDir()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pubPath, in, out := filepath.Join(dir, "pub.pem"), filepath.Join(dir, "in"), filepath.Join(dir, "out")
	os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	os.WriteFile(in, pt, 0o600)
	pad := "pkcs1"
	if oaep {
		pad = "oaep"
	}
	if b, err := exec.Command("openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", pubPath, "-pkeyopt", "rsa_padding_mode:"+pad, "-in", in, "-out", out).CombinedOutput(); err != nil {
		t.Fatalf("openssl pkeyutl: %v\n%s", err, b)
	}
	ct, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

// TestImportSecretRSA: seeds encrypted by openssl to an RSA transport key
// generated in SoftHSM are unwrapped there, re-wrapped by the trusted
// storage key and give the HMACs of the clear seed; a MAC is checked in the
// HSM; what SoftHSM cannot do or the keys may not do is refused by name.
func TestImportSecretRSA(t *testing.T) {
	s := openTest(t, testConfig(testToken))
	ctx := context.Background()
	pub, err := s.GenerateTransportKey(ctx, "pskc-transport-rsa", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GenerateTransportKey(ctx, "pskc-transport-rsa", true); err == nil {
		t.Fatal("a second transport key of the same label was made")
	}
	if _, _, err := s.EnsureKey(ctx, KeySpec{Label: "pskc-transport-aes", Type: KeyAES256}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []KeySpec{{Label: LabelSecretsWrap, Type: KeyAES256}, {Label: LabelSeedWrap, Type: KeySeedWrap}} {
		if _, _, err := s.EnsureKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	const uri = "pkcs11:token=egate-test;object=pskc-transport-rsa;type=private"
	seed := make([]byte, 20)
	rand.Read(seed)
	macKey := make([]byte, 20)
	rand.Read(macKey)
	oaepCT := opensslEncrypt(t, pub, seed, true)
	pkcs1CT := opensslEncrypt(t, pub, seed, false)
	mac := hmac.New(crypto.SHA1.New, macKey)
	mac.Write(oaepCT)
	goodMAC := mac.Sum(nil)
	encMACKey := opensslEncrypt(t, pub, macKey, true)
	cases := []struct {
		name    string
		ref     string
		storage string
		v       TransportValue
		want    error
	}{
		{"OAEP", uri, trustedWrapLabel, TransportValue{Alg: TransportRSAOAEP, Ciphertext: oaepCT}, nil},
		{"PKCS#1 v1.5 by label", "pskc-transport-rsa", trustedWrapLabel, TransportValue{Alg: TransportRSAPKCS1, Ciphertext: pkcs1CT}, nil},
		{"OAEP with its MAC", uri, trustedWrapLabel, TransportValue{Alg: TransportRSAOAEP, Ciphertext: oaepCT, MACKey: encMACKey, MACHash: crypto.SHA1, MAC: goodMAC}, nil},
		{"altered MAC", uri, trustedWrapLabel, TransportValue{Alg: TransportRSAOAEP, Ciphertext: oaepCT, MACKey: encMACKey, MACHash: crypto.SHA1, MAC: append([]byte{goodMAC[0] ^ 1}, goodMAC[1:]...)}, ErrTransportMAC},
		{"PKCS#1 value read as OAEP", uri, trustedWrapLabel, TransportValue{Alg: TransportRSAOAEP, Ciphertext: pkcs1CT}, ErrTransportDecrypt},
		{"untrusted seed-wrap key", uri, LabelSeedWrap, TransportValue{Alg: TransportRSAOAEP, Ciphertext: oaepCT}, ErrUntrustedWrapKey},
		{"storage key not a seed-wrap key", uri, LabelSecretsWrap, TransportValue{Alg: TransportRSAOAEP, Ciphertext: oaepCT}, ErrKeyType},
		{"another token in the URI", "pkcs11:token=other;object=pskc-transport-rsa", trustedWrapLabel, TransportValue{Alg: TransportRSAOAEP, Ciphertext: oaepCT}, ErrTokenNotFound},
		{"no such transport key", "pkcs11:object=nope", trustedWrapLabel, TransportValue{Alg: TransportRSAOAEP, Ciphertext: oaepCT}, ErrKeyNotFound},
		{"AES-CBC on SoftHSM2", "pskc-transport-aes", trustedWrapLabel, TransportValue{Alg: TransportAESCBC, Ciphertext: make([]byte, 48)}, ErrTransportUnsupported},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is, err := s.ImportSecret(ctx, tc.ref, tc.storage, tc.v)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("error = %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w := is.Wrapped
			// SoftHSM2 does not report CKA_VALUE_LEN of an unwrapped
			// generic secret: then the length is known to 8 bytes.
			if is.LenExact && is.Len != len(seed) || !is.LenExact && is.Len != 24 || bytes.Contains(w, seed) {
				t.Fatalf("length %d (exact %v, want %d) or the seed is in the blob", is.Len, is.LenExact, len(seed))
			}
			msg := []byte("00000001")
			got, err := s.HMACWrapped(ctx, tc.storage, w, crypto.SHA1, [][]byte{msg})
			if err != nil {
				t.Fatal(err)
			}
			m := hmac.New(crypto.SHA1.New, seed)
			m.Write(msg)
			if !bytes.Equal(got[0], m.Sum(nil)) {
				t.Fatal("the HSM's HMAC with the imported seed differs from the seed's")
			}
		})
	}
	t.Run("DecryptTransport", func(t *testing.T) {
		pin, err := s.DecryptTransport(ctx, uri, TransportValue{Alg: TransportRSAOAEP, Ciphertext: opensslEncrypt(t, pub, []byte("4711"), true)})
		if err != nil || string(pin) != "4711" {
			t.Fatalf("DecryptTransport = %q, %v", pin, err)
		}
	})
	t.Run("unwrap-only key", func(t *testing.T) {
		pub2, err := s.GenerateTransportKey(ctx, "pskc-transport-unwrap-only", false)
		if err != nil {
			t.Fatal(err)
		}
		ct := opensslEncrypt(t, pub2, seed, true)
		if _, err := s.ImportSecret(ctx, "pskc-transport-unwrap-only", trustedWrapLabel, TransportValue{Alg: TransportRSAOAEP, Ciphertext: ct}); err != nil {
			t.Fatalf("ImportSecret: %v", err)
		}
		if _, err := s.DecryptTransport(ctx, "pskc-transport-unwrap-only", TransportValue{Alg: TransportRSAOAEP, Ciphertext: ct}); !errors.Is(err, ErrTransportUnsupported) {
			t.Fatalf("C_Decrypt of a seed with an unwrap-only key: %v", err)
		}
		// A PIN holder asking the HSM for the seed as a readable key, or as
		// one extractable under any key, is refused by the unwrap template.
		for name, attrs := range map[string][]*pkcs11.Attribute{
			"readable":              {pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true)},
			"extractable untrusted": {pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true), pkcs11.NewAttribute(pkcs11.CKA_WRAP_WITH_TRUSTED, false)},
		} {
			err := s.do(ctx, func(sh pkcs11.SessionHandle) error {
				tk, err := s.transportHandle(sh, "pskc-transport-unwrap-only", pkcs11.CKO_PRIVATE_KEY)
				if err != nil {
					return err
				}
				m, body, _ := transportMechanism(pkcs11.CKM_RSA_PKCS_OAEP, ct)
				h, err := s.p.UnwrapKey(sh, m, tk, body, append([]*pkcs11.Attribute{
					pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
					pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
					pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
				}, attrs...))
				if err == nil {
					s.p.DestroyObject(sh, h)
				}
				return err
			})
			if !p11.IsRV(err, pkcs11.CKR_TEMPLATE_INCONSISTENT) {
				t.Errorf("unwrapping the seed %s: %v, want CKR_TEMPLATE_INCONSISTENT", name, err)
			}
		}
	})
	t.Run("TransportPublicKey", func(t *testing.T) {
		got, err := s.TransportPublicKey(ctx, uri)
		if err != nil || !got.Equal(pub) {
			t.Fatalf("TransportPublicKey = %v, %v", got, err)
		}
	})
}
