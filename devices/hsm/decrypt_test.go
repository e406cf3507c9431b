package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/egate-bank/egate/devices/p11"
	"github.com/miekg/pkcs11"
)

// TestDecrypterOAEP: the transaction-encryption key decrypts RSA-OAEP
// (with SHA-256 where the HSM can, SHA-1 on SoftHSM2 2.6) made by the
// standard library and by openssl in the HSM; a
// ciphertext for another key or altered is ErrDecrypt and leaves the HSM
// up; other paddings are refused, by egate and by the HSM itself
// (CKA_ALLOWED_MECHANISMS), and the key cannot sign.
func TestDecrypterOAEP(t *testing.T) {
	s := openTest(t, testConfig(testToken))
	ctx := context.Background()
	if _, _, err := s.EnsureKey(ctx, KeySpec{LabelTxEncryption, KeyRSA2048Decrypt}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Decrypter(ctx, LabelTxEncryption)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := s.FindKey(ctx, LabelTxEncryption); err != nil || k.Type != KeyRSA2048Decrypt {
		t.Fatalf("FindKey: %+v, %v", k, err)
	}
	pub := d.Public().(*rsa.PublicKey)
	if pub.N.BitLen() != 2048 {
		t.Fatalf("modulus of %d bits", pub.N.BitLen())
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	h, err := d.OAEPHash(ctx)
	if err != nil {
		t.Fatal(err)
	}
	otherHash := crypto.SHA1
	if h == crypto.SHA1 {
		otherHash = crypto.SHA256
	}
	t.Logf("the HSM does RSA-OAEP with %v", h)
	cek := []byte("0123456789abcdef0123456789abcdef")
	oaep := func(pub *rsa.PublicKey) []byte {
		ct, err := rsa.EncryptOAEP(h.New(), rand.Reader, pub, cek, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	good := oaep(pub)
	tampered := bytes.Clone(good)
	tampered[100] ^= 1
	v15, err := rsa.EncryptPKCS1v15(rand.Reader, pub, cek)
	if err != nil {
		t.Fatal(err)
	}
	otherct, err := rsa.EncryptOAEP(otherHash.New(), rand.Reader, pub, cek, nil)
	if err != nil {
		t.Fatal(err)
	}
	hopts := &rsa.OAEPOptions{Hash: h}
	cases := []struct {
		name string
		ct   []byte
		opts crypto.DecrypterOpts
		want error
	}{
		{"oaep", good, hopts, nil},
		{"openssl oaep", opensslOAEP(t, pub, h, cek), hopts, nil},
		{"another key", oaep(&other.PublicKey), hopts, ErrDecrypt},
		{"altered", tampered, hopts, ErrDecrypt},
		{"pkcs1 v1.5 ciphertext", v15, hopts, ErrDecrypt},
		{"oaep ciphertext with the other hash", otherct, hopts, ErrDecrypt},
		{"short", good[:100], hopts, ErrDecrypt},
		{"pkcs1 v1.5 asked", v15, &rsa.PKCS1v15DecryptOptions{}, ErrKeyType},
		{"oaep sha-512 asked", good, &rsa.OAEPOptions{Hash: crypto.SHA512}, ErrKeyType},
		{"oaep label asked", good, &rsa.OAEPOptions{Hash: h, Label: []byte("x")}, ErrKeyType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := d.Decrypt(nil, tc.ct, tc.opts)
			if tc.want == nil {
				if err != nil || !bytes.Equal(pt, cek) {
					t.Fatalf("Decrypt = %x, %v", pt, err)
				}
				return
			}
			if !errors.Is(err, tc.want) || pt != nil {
				t.Fatalf("Decrypt = %x, %v; want %v", pt, err, tc.want)
			}
			if errors.Is(err, ErrUnavailable) {
				t.Fatalf("a bad ciphertext marked the HSM down: %v", err)
			}
		})
	}
	// The HSM was never taken for down: a good one still decrypts.
	if pt, err := d.DecryptContext(ctx, good, hopts); err != nil || !bytes.Equal(pt, cek) {
		t.Fatalf("after the bad ones: %x, %v", pt, err)
	}
	// The key itself refuses what egate never asks: PKCS#1 v1.5
	// decryption (a padding oracle) and signing.
	c, sh := rawSession(t, s)
	obj, err := s.findObjects(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), pkcs11.NewAttribute(pkcs11.CKA_LABEL, LabelTxEncryption)}, 2)
	if err != nil || len(obj) != 1 {
		t.Fatalf("finding the key: %v %v", obj, err)
	}
	err = c.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)}, obj[0])
	if err == nil {
		if _, err = c.Decrypt(sh, v15); err == nil {
			t.Fatal("the key decrypts PKCS#1 v1.5")
		}
	}
	if !p11.IsRV(err, pkcs11.CKR_MECHANISM_INVALID) && !p11.IsRV(err, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED) {
		t.Errorf("PKCS#1 v1.5 decryption: %v, want CKR_MECHANISM_INVALID", err)
	}
	if err := c.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256_RSA_PKCS, nil)}, obj[0]); err == nil {
		t.Error("the key may sign")
	}
	if _, err := s.Signer(ctx, LabelTxEncryption); !errors.Is(err, ErrKeyType) {
		t.Errorf("Signer of the decryption key: %v, want ErrKeyType", err)
	}
	if _, _, err := s.EnsureKey(ctx, KeySpec{"egate-test-rsa", KeyRSA2048}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Decrypter(ctx, "egate-test-rsa"); !errors.Is(err, ErrKeyType) {
		t.Errorf("Decrypter of an RSA signing key: %v, want ErrKeyType", err)
	}
}

// opensslOAEP encrypts pt to pub with openssl, RSA-OAEP with h and MGF1
// with h (JWE's RSA-OAEP-256 or RSA-OAEP).
func opensslOAEP(t *testing.T, pub *rsa.PublicKey, h crypto.Hash, pt []byte) []byte {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed to make the RSA test values")
	}
	md := "sha1"
	if h == crypto.SHA256 {
		md = "sha256"
	}
	dir := t.TempDir()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pubPath, in, out := filepath.Join(dir, "pub.pem"), filepath.Join(dir, "in"), filepath.Join(dir, "out")
	os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	os.WriteFile(in, pt, 0o600)
	if b, err := exec.Command("openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", pubPath, "-pkeyopt", "rsa_padding_mode:oaep",
		"-pkeyopt", "rsa_oaep_md:"+md, "-pkeyopt", "rsa_mgf1_md:"+md, "-in", in, "-out", out).CombinedOutput(); err != nil {
		t.Fatalf("openssl pkeyutl: %v\n%s", err, b)
	}
	ct, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}
