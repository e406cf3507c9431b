package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/egate-bank/egate/devices/p11"
	"github.com/miekg/pkcs11"
)

// cbcPadUnwrapHSM is SoftHSM2 with the one mechanism it lacks: C_UnwrapKey
// with CKM_AES_CBC_PAD, done here as C_Decrypt then C_CreateObject with the
// caller's template, both in SoftHSM. Everything else (the IV taken from
// the value, the MAC key unwrapped the same way and used by C_Verify, the
// trusted re-wrap) is SoftHSM's own. Test only: it brings the value out.
type cbcPadUnwrapHSM struct{ p11.Ctx }

func (h cbcPadUnwrapHSM) UnwrapKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, key pkcs11.ObjectHandle, wrapped []byte, tmpl []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	if len(m) != 1 || m[0].Mechanism != pkcs11.CKM_AES_CBC_PAD {
		return h.Ctx.UnwrapKey(sh, m, key, wrapped, tmpl)
	}
	if err := h.Ctx.DecryptInit(sh, m, key); err != nil {
		return 0, err
	}
	pt, err := h.Ctx.Decrypt(sh, wrapped)
	if err != nil {
		return 0, err
	}
	defer clear(pt)
	return h.Ctx.CreateObject(sh, append(tmpl[:len(tmpl):len(tmpl)], pkcs11.NewAttribute(pkcs11.CKA_VALUE, pt)))
}

// openssl runs openssl with args, stdin in, and returns its output.
func openssl(t *testing.T, in []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %v: %v", args, err)
	}
	return out
}

// TestImportSecretAESCBC: a seed and a MAC key encrypted by openssl
// (aes-128-cbc, PKCS#7 padding) under a pre-shared key held in SoftHSM,
// with an openssl HMAC-SHA1 over IV ‖ ciphertext (RFC 6030 §6.1.1), go
// through ImportSecret's AES path on an HSM that can unwrap with
// CKM_AES_CBC_PAD: the MAC is checked with C_Verify in the HSM before the
// seed is unwrapped, and the re-wrapped seed gives the seed's HMACs.
func TestImportSecretAESCBC(t *testing.T) {
	s := openTest(t, testConfig(testToken))
	ctx := context.Background()
	s.p = cbcPadUnwrapHSM{s.mod.Ctx()}
	transport := mustDecodeHex(t, "000102030405060708090a0b0c0d0e0f")
	const label = "pskc-transport-aes-known"
	if err := s.do(ctx, func(sh pkcs11.SessionHandle) error {
		_, err := s.p.CreateObject(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, transport),
		})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	seed := []byte("12345678901234567890")
	macKey := mustDecodeHex(t, "1122334455667788990011223344556677889900")
	enc := func(pt []byte, iv string) []byte {
		return append(mustDecodeHex(t, iv), openssl(t, pt, "enc", "-aes-128-cbc", "-K", hex.EncodeToString(transport), "-iv", iv)...)
	}
	seedCT := enc(seed, "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf")
	macKeyCT := enc(macKey, "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf")
	dir := t.TempDir()
	ctPath := filepath.Join(dir, "ct")
	os.WriteFile(ctPath, seedCT, 0o600)
	mac := openssl(t, nil, "dgst", "-sha1", "-binary", "-mac", "HMAC", "-macopt", "hexkey:"+hex.EncodeToString(macKey), ctPath)
	bad := append([]byte(nil), mac...)
	bad[0] ^= 1
	for _, tc := range []struct {
		name string
		v    TransportValue
		want error
	}{
		{"with its MAC", TransportValue{Alg: TransportAESCBC, Ciphertext: seedCT, MACKey: macKeyCT, MACHash: crypto.SHA1, MAC: mac}, nil},
		{"altered MAC", TransportValue{Alg: TransportAESCBC, Ciphertext: seedCT, MACKey: macKeyCT, MACHash: crypto.SHA1, MAC: bad}, ErrTransportMAC},
		{"MAC of another value", TransportValue{Alg: TransportAESCBC, Ciphertext: macKeyCT, MACKey: macKeyCT, MACHash: crypto.SHA1, MAC: mac}, ErrTransportMAC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is, err := s.ImportSecret(ctx, label, trustedWrapLabel, tc.v)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("error = %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.HMACWrapped(ctx, trustedWrapLabel, is.Wrapped, crypto.SHA1, [][]byte{{0, 0, 0, 0, 0, 0, 0, 0}})
			if err != nil {
				t.Fatal(err)
			}
			m := hmac.New(crypto.SHA1.New, seed)
			m.Write([]byte{0, 0, 0, 0, 0, 0, 0, 0})
			if !bytes.Equal(got[0], m.Sum(nil)) {
				t.Fatal("the imported seed's HMAC differs")
			}
		})
	}
	pin, err := s.DecryptTransport(ctx, label, TransportValue{Alg: TransportAESCBC, Ciphertext: enc([]byte("4711"), "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf")})
	if err != nil || string(pin) != "4711" {
		t.Fatalf("DecryptTransport = %q, %v", pin, err)
	}
}

func mustDecodeHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
