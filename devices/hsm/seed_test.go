package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/egate-bank/egate/devices/p11"
	"github.com/egate-bank/egate/devices/p11/p11test"
	"github.com/miekg/pkcs11"
)

// legacyWrap wraps seed the way egate did before the seed-wrap key: with
// an aes-256 key (encrypt, decrypt, wrap, unwrap, no unwrap template),
// through raw PKCS#11, so that tests hold a blob of the old setup.
func legacyWrap(t *testing.T, s *Service, label string, seed []byte) []byte {
	t.Helper()
	c, sh := rawSession(t, s)
	padded := make([]byte, hmacPadLen)
	copy(padded, seed)
	w, err := p11test.WrapValue(c, sh, findRaw(t, c, sh, label), padded)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{wrapV1KeyWrapPad}, w...)
}

func findRaw(t *testing.T, c *pkcs11.Ctx, sh pkcs11.SessionHandle, label string) pkcs11.ObjectHandle {
	t.Helper()
	h, err := p11test.FindOne(c, sh, pkcs11.CKO_SECRET_KEY, label)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// unwrapWithDecrypt recovers what an RFC 5649 blob wraps using only the
// wrapping key's C_Decrypt (CKM_AES_ECB, one block at a time): RFC 3394's
// unwrap is AES decryption plus XORs that anyone can finish in software.
func unwrapWithDecrypt(c *pkcs11.Ctx, sh pkcs11.SessionHandle, key pkcs11.ObjectHandle, blob []byte) ([]byte, error) {
	dec := func(in []byte) ([]byte, error) {
		if err := c.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_ECB, nil)}, key); err != nil {
			return nil, err
		}
		return c.Decrypt(sh, in)
	}
	n := len(blob)/8 - 1
	a := append([]byte{}, blob[:8]...)
	r := make([][]byte, n)
	for i := range r {
		r[i] = append([]byte{}, blob[8*(i+1):8*(i+2)]...)
	}
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			tv := binary.BigEndian.Uint64(a) ^ uint64(n*j+i)
			b, err := dec(append(binary.BigEndian.AppendUint64(nil, tv), r[i-1]...))
			if err != nil {
				return nil, err
			}
			a, r[i-1] = b[:8], b[8:]
		}
	}
	if !bytes.Equal(a[:4], []byte{0xa6, 0x59, 0x59, 0xa6}) {
		return nil, errors.New("integrity check failed")
	}
	out := bytes.Join(r, nil)
	return out[:binary.BigEndian.Uint32(a[4:])], nil
}

// TestSeedCannotLeaveTheHSM plays someone who holds the HSM user PIN and a
// wrapped seed from the database, with raw PKCS#11 calls. Against the old
// setup (seeds wrapped by a plain aes-256 key) both attacks read the seed;
// against the seed-wrap key both fail, and so do the ways around them.
func TestSeedCannotLeaveTheHSM(t *testing.T) {
	s := openTest(t, testConfig(testToken))
	ctx := context.Background()
	const oldLabel, newLabel = "egate-test-legacy-wrap", "egate-test-seed-attack"
	for _, spec := range []KeySpec{{oldLabel, KeyAES256}, {newLabel, KeySeedWrap}} {
		if _, _, err := s.EnsureKey(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	padded := make([]byte, hmacPadLen)
	copy(padded, rfc4226Seed)
	newBlob, err := s.WrapSecret(ctx, newLabel, rfc4226Seed)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, label string
		blob        []byte
		leaks       bool
	}{
		{"old aes-256 wrap key", oldLabel, legacyWrap(t, s, oldLabel, rfc4226Seed), true},
		{"seed-wrap key", newLabel, newBlob, false},
	}
	kwp := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, sh := rawSession(t, s)
			wk := findRaw(t, c, sh, tc.label)
			blob := tc.blob[1:]

			// 1. Unwrap the seed as an extractable, non-sensitive key and read it.
			got, err := func() ([]byte, error) {
				k, err := c.UnwrapKey(sh, kwp, wk, blob, []*pkcs11.Attribute{
					pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
					pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
					pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
					pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
					pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
					pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
				})
				if err != nil {
					return nil, err
				}
				defer c.DestroyObject(sh, k)
				a, err := c.GetAttributeValue(sh, k, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
				if err != nil {
					return nil, err
				}
				return a[0].Value, nil
			}()
			switch {
			case tc.leaks && !bytes.Equal(got, padded):
				t.Errorf("unwrap as extractable: %x, %v; the old setup should give the seed away", got, err)
			case !tc.leaks && (err == nil || !p11.IsRV(err, pkcs11.CKR_TEMPLATE_INCONSISTENT)):
				t.Errorf("unwrap as extractable: value %x, err %v; want CKR_TEMPLATE_INCONSISTENT", got, err)
			}

			// 2. Decrypt the stored blob with the wrap key.
			got, err = unwrapWithDecrypt(c, sh, wk, blob)
			switch {
			case tc.leaks && !bytes.Equal(got, padded):
				t.Errorf("C_Decrypt with the wrap key: %x, %v; the old setup should give the seed away", got, err)
			case !tc.leaks && (err == nil || !p11.IsRV(err, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED)):
				t.Errorf("C_Decrypt with the wrap key: %x, %v; want CKR_KEY_FUNCTION_NOT_PERMITTED", got, err)
			}
			if tc.leaks {
				return
			}

			// 3. Ways around it on the seed-wrap key: give itself decrypt, or
			// drop its unwrap template.
			for name, a := range map[string]*pkcs11.Attribute{
				"decrypt":         pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
				"unwrap template": {Type: pkcs11.CKA_UNWRAP_TEMPLATE},
			} {
				if err := c.SetAttributeValue(sh, wk, []*pkcs11.Attribute{a}); err == nil {
					t.Errorf("changing the seed-wrap key's %s succeeded", name)
				}
			}
			// Another mechanism than RFC 5649 key wrap (AES-CBC unwrap is a
			// decryption oracle).
			if _, err := c.UnwrapKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_CBC_PAD, make([]byte, 16))}, wk, blob[:32], unwrappedSeedTemplate()); err == nil {
				t.Error("unwrapping with AES-CBC succeeded")
			}
			// Unwrap as the template wants, then loosen the key: derive,
			// extract or copy it with other usages.
			k, err := c.UnwrapKey(sh, kwp, wk, blob, unwrappedSeedTemplate())
			if err != nil {
				t.Fatalf("unwrapping with the template: %v", err)
			}
			defer c.DestroyObject(sh, k)
			for _, a := range []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
				pkcs11.NewAttribute(pkcs11.CKA_DERIVE, true),
				pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			} {
				if err := c.SetAttributeValue(sh, k, []*pkcs11.Attribute{a}); err == nil {
					t.Errorf("setting attribute %#x on an unwrapped seed succeeded", a.Type)
				}
				if cp, err := c.CopyObject(sh, k, []*pkcs11.Attribute{a}); err == nil {
					c.DestroyObject(sh, cp)
					t.Errorf("copying an unwrapped seed with attribute %#x succeeded", a.Type)
				}
			}
			if _, err := c.GetAttributeValue(sh, k, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)}); !p11.IsRV(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
				t.Errorf("reading an unwrapped seed: %v, want CKR_ATTRIBUTE_SENSITIVE", err)
			}
			if _, err := c.WrapKey(sh, kwp, findRaw(t, c, sh, oldLabel), k); !p11.IsRV(err, pkcs11.CKR_KEY_UNEXTRACTABLE) {
				t.Errorf("wrapping an unwrapped seed under another key: %v, want CKR_KEY_UNEXTRACTABLE", err)
			}
			// What it may do: HMAC, the RFC 4226 value for counter 0.
			if err := c.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA_1_HMAC, nil)}, k); err != nil {
				t.Fatal(err)
			}
			mac, err := c.Sign(sh, make([]byte, 8))
			ref := hmac.New(sha1.New, rfc4226Seed)
			ref.Write(make([]byte, 8))
			if err != nil || !hmac.Equal(mac, ref.Sum(nil)) {
				t.Errorf("HMAC with the unwrapped seed: %x, %v", mac, err)
			}
		})
	}
}

func TestWrapSecretRefusesPlainAESKey(t *testing.T) {
	s := openTest(t, testConfig(testToken))
	ctx := context.Background()
	if _, _, err := s.EnsureKey(ctx, KeySpec{"egate-test-plain-aes", KeyAES256}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WrapSecret(ctx, "egate-test-plain-aes", rfc4226Seed); !errors.Is(err, ErrKeyType) {
		t.Fatalf("WrapSecret under a plain aes-256 key: %v, want ErrKeyType", err)
	}
	// EnsureKey does not take a plain AES key for a seed-wrap key.
	if _, _, err := s.EnsureKey(ctx, KeySpec{"egate-test-plain-aes", KeySeedWrap}); !errors.Is(err, ErrKeyType) {
		t.Fatalf("EnsureKey(seed-wrap) over a plain aes-256 key: %v, want ErrKeyType", err)
	}
	k, err := s.FindKey(ctx, "egate-test-plain-aes")
	if err != nil || k.Type != KeyAES256 {
		t.Fatalf("FindKey: %+v, %v; want aes-256", k, err)
	}
}

func TestRewrapSecret(t *testing.T) {
	s := openTest(t, testConfig(testToken))
	ctx := context.Background()
	const oldLabel, oldLabel2, otherSeedKey = "egate-test-legacy-rewrap", "egate-test-legacy-rewrap2", "egate-test-seed-rewrap2"
	for _, spec := range []KeySpec{{oldLabel, KeyAES256}, {oldLabel2, KeyAES256}, {LabelSeedWrap, KeySeedWrap}, {otherSeedKey, KeySeedWrap}} {
		if _, _, err := s.EnsureKey(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	old := legacyWrap(t, s, oldLabel, rfc4226Seed)
	moved, err := s.RewrapSecret(ctx, oldLabel, LabelSeedWrap, old)
	if err != nil {
		t.Fatal(err)
	}
	msgs := [][]byte{make([]byte, 8), binary.BigEndian.AppendUint64(nil, 9)}
	macs, err := s.HMACWrapped(ctx, LabelSeedWrap, moved, crypto.SHA1, msgs)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []uint32{rfc4226HOTP[0], rfc4226HOTP[9]} {
		off := macs[i][19] & 0xf
		if code := binary.BigEndian.Uint32(macs[i][off:]) & 0x7fffffff % 1000000; code != want {
			t.Fatalf("HOTP after rewrapping: %06d, want %06d", code, want)
		}
	}
	altered := bytes.Clone(old)
	altered[5] ^= 1
	cases := []struct {
		name     string
		from, to string
		blob     []byte
		want     error
	}{
		{"from a seed-wrap key", LabelSeedWrap, otherSeedKey, moved, ErrOneWay},
		{"to a plain AES key", oldLabel, oldLabel, old, ErrKeyType},
		{"altered blob", oldLabel, LabelSeedWrap, altered, ErrSealed},
		{"wrong source key", oldLabel2, LabelSeedWrap, old, ErrSealed},
		{"not a blob", oldLabel, LabelSeedWrap, []byte{9, 9}, ErrSealed},
		{"missing key", "egate-test-no-such-key", LabelSeedWrap, old, ErrKeyNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.RewrapSecret(ctx, tc.from, tc.to, tc.blob); !errors.Is(err, tc.want) {
				t.Fatalf("RewrapSecret: %v, want %v", err, tc.want)
			}
		})
	}
	// No session key is left behind but the seed HMACWrapped keeps live.
	if left, live := leftBehind(t, s); left != 0 || live != 1 {
		t.Fatalf("%d session secret keys left behind, %d kept live (want 0 and 1)", left, live)
	}
}
