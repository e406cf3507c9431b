package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"hash"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/devices/p11"
	"github.com/egate-bank/egate/devices/pin"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/miekg/pkcs11"
)

// rawSession opens a session of our own on the service's slot, through the
// library directly (not through the service's code).
func rawSession(t testing.TB, s *Service) (*pkcs11.Ctx, pkcs11.SessionHandle) {
	t.Helper()
	c := s.mod.Ctx().(*pkcs11.Ctx)
	sh, err := c.OpenSession(s.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseSession(sh) })
	return c, sh
}

func TestStandardKeysAttributes(t *testing.T) {
	s := openTest(t, testConfig(testToken))
	ctx := context.Background()
	first, err := s.InitStandardKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.EnsureKey(ctx, KeySpec{"egate-test-rsa", KeyRSA2048}); err != nil {
		t.Fatal(err)
	}
	second, err := s.InitStandardKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != len(StandardKeys()) {
		t.Fatalf("InitStandardKeys returned %d keys", len(first))
	}
	for i := range first {
		if first[i].URI != second[i].URI || !bytes.Equal(first[i].ID, second[i].ID) || first[i].Type != second[i].Type {
			t.Errorf("second run changed key %d: %+v then %+v", i, first[i], second[i])
		}
		if !strings.HasPrefix(first[i].URI, "pkcs11:token="+testToken+";object="+first[i].Label+";type=") {
			t.Errorf("URI %q", first[i].URI)
		}
	}
	c, sh := rawSession(t, s)
	specs := append(StandardKeys(), KeySpec{"egate-test-rsa", KeyRSA2048})
	for _, spec := range specs {
		t.Run(spec.Label, func(t *testing.T) {
			class := uint(pkcs11.CKO_SECRET_KEY)
			if spec.Type.asymmetric() {
				class = pkcs11.CKO_PRIVATE_KEY
			}
			if err := c.FindObjectsInit(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class), pkcs11.NewAttribute(pkcs11.CKA_LABEL, spec.Label)}); err != nil {
				t.Fatal(err)
			}
			hs, _, err := c.FindObjects(sh, 10)
			c.FindObjectsFinal(sh)
			if err != nil || len(hs) != 1 {
				t.Fatalf("found %d objects labelled %q (%v), want 1", len(hs), spec.Label, err)
			}
			want := map[uint]bool{
				pkcs11.CKA_TOKEN: true, pkcs11.CKA_SENSITIVE: true, pkcs11.CKA_EXTRACTABLE: false,
				pkcs11.CKA_NEVER_EXTRACTABLE: true, pkcs11.CKA_ALWAYS_SENSITIVE: true, pkcs11.CKA_LOCAL: true, pkcs11.CKA_PRIVATE: true,
			}
			// Usages: only what the key is for (SoftHSM2 defaults unset
			// ones such as CKA_WRAP to true).
			usages := map[KeyType]map[uint]bool{
				KeyECDSAP256: {pkcs11.CKA_SIGN: true, pkcs11.CKA_DECRYPT: false, pkcs11.CKA_UNWRAP: false, pkcs11.CKA_DERIVE: false},
				KeyRSA2048:   {pkcs11.CKA_SIGN: true, pkcs11.CKA_DECRYPT: false, pkcs11.CKA_UNWRAP: false, pkcs11.CKA_DERIVE: false},
				KeyRSA2048Decrypt: {pkcs11.CKA_DECRYPT: true, pkcs11.CKA_SIGN: false, pkcs11.CKA_SIGN_RECOVER: false, pkcs11.CKA_UNWRAP: false,
					pkcs11.CKA_DERIVE: false, pkcs11.CKA_MODIFIABLE: false},
				KeyAES256: {pkcs11.CKA_ENCRYPT: true, pkcs11.CKA_DECRYPT: true, pkcs11.CKA_WRAP: true, pkcs11.CKA_UNWRAP: true,
					pkcs11.CKA_SIGN: false, pkcs11.CKA_VERIFY: false, pkcs11.CKA_DERIVE: false},
				KeyHMAC: {pkcs11.CKA_SIGN: true, pkcs11.CKA_VERIFY: true, pkcs11.CKA_ENCRYPT: false, pkcs11.CKA_DECRYPT: false,
					pkcs11.CKA_WRAP: false, pkcs11.CKA_UNWRAP: false, pkcs11.CKA_DERIVE: false},
				KeySeedWrap: {pkcs11.CKA_WRAP: true, pkcs11.CKA_UNWRAP: true, pkcs11.CKA_ENCRYPT: false, pkcs11.CKA_DECRYPT: false,
					pkcs11.CKA_SIGN: false, pkcs11.CKA_VERIFY: false, pkcs11.CKA_DERIVE: false, pkcs11.CKA_MODIFIABLE: false},
			}
			for typ, v := range usages[spec.Type] {
				want[typ] = v
			}
			for typ, v := range want {
				a, err := c.GetAttributeValue(sh, hs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(typ, nil)})
				if err != nil {
					t.Fatalf("attribute %#x: %v", typ, err)
				}
				if got := len(a[0].Value) == 1 && a[0].Value[0] == 1; got != v {
					t.Errorf("attribute %#x = %v, want %v", typ, a[0].Value, v)
				}
			}
			// A sensitive key refuses to give its value.
			if _, err := c.GetAttributeValue(sh, hs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)}); !p11.IsRV(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE) && !spec.Type.asymmetric() {
				t.Errorf("reading CKA_VALUE: %v, want CKR_ATTRIBUTE_SENSITIVE", err)
			}
		})
	}
	keys, err := s.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byLabel := map[string]Key{}
	for _, k := range keys {
		byLabel[k.Label] = k
	}
	for _, k := range first {
		if got := byLabel[k.Label]; got.URI != k.URI || got.Type != k.Type {
			t.Errorf("Keys has %+v, want %+v", got, k)
		}
	}
}

func TestEnsureKeyTypeMismatch(t *testing.T) {
	s := openTest(t, testConfig(testToken))
	ctx := context.Background()
	if _, _, err := s.EnsureKey(ctx, KeySpec{"egate-test-mismatch", KeyAES256}); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.EnsureKey(ctx, KeySpec{"egate-test-mismatch", KeyECDSAP256})
	if !errors.Is(err, ErrKeyType) {
		t.Fatalf("EnsureKey with another type: %v, want ErrKeyType", err)
	}
	if _, err := s.Signer(ctx, "egate-test-mismatch"); !errors.Is(err, ErrKeyType) {
		t.Fatalf("Signer on an AES key: %v, want ErrKeyType", err)
	}
}

func TestSignVerify(t *testing.T) {
	s := openTest(t, testConfig(testToken))
	ctx := context.Background()
	ec, _, err := s.EnsureKey(ctx, KeySpec{"egate-test-ec", KeyECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.EnsureKey(ctx, KeySpec{"egate-test-rsa", KeyRSA2048}); err != nil {
		t.Fatal(err)
	}
	msg := []byte("transfer 100000 fen to 6222 0000 1111")
	d256 := sha256.Sum256(msg)
	d512 := sha512.Sum512(msg)
	cases := []struct {
		name   string
		ref    string
		digest []byte
		opts   crypto.SignerOpts
	}{
		{"ecdsa sha256 by label", "egate-test-ec", d256[:], crypto.SHA256},
		{"ecdsa sha256 by URI", ec.URI, d256[:], crypto.SHA256},
		{"ecdsa sha512", "egate-test-ec", d512[:], crypto.SHA512},
		{"rsa pkcs1v15 sha256", "egate-test-rsa", d256[:], crypto.SHA256},
		{"rsa pkcs1v15 sha512", "egate-test-rsa", d512[:], crypto.SHA512},
		{"rsa pss sha256", "egate-test-rsa", d256[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}},
		{"rsa pss auto salt", "egate-test-rsa", d256[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: crypto.SHA256}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sg, err := s.Signer(ctx, tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := sg.Sign(rand.Reader, tc.digest, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			switch pub := sg.Public().(type) {
			case *ecdsa.PublicKey:
				if !ecdsa.VerifyASN1(pub, tc.digest, sig) {
					t.Fatal("ECDSA signature does not verify")
				}
			case *rsa.PublicKey:
				if pss, ok := tc.opts.(*rsa.PSSOptions); ok {
					err = rsa.VerifyPSS(pub, tc.opts.HashFunc(), tc.digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: pss.Hash})
				} else {
					err = rsa.VerifyPKCS1v15(pub, tc.opts.HashFunc(), tc.digest, sig)
				}
				if err != nil {
					t.Fatalf("RSA signature does not verify: %v", err)
				}
				if pub.N.BitLen() != 2048 {
					t.Fatalf("modulus is %d bits", pub.N.BitLen())
				}
			default:
				t.Fatalf("public key %T", pub)
			}
			// A tampered digest must not verify (the check above can fail).
			bad := bytes.Clone(tc.digest)
			bad[0] ^= 1
			if pub, ok := sg.Public().(*ecdsa.PublicKey); ok && ecdsa.VerifyASN1(pub, bad, sig) {
				t.Fatal("signature verifies over another digest")
			}
		})
	}
	sg, _ := s.Signer(ctx, "egate-test-ec")
	if _, err := sg.Sign(rand.Reader, d256[:20], crypto.SHA256); err == nil {
		t.Fatal("signing a digest of the wrong length succeeded")
	}
}

func TestPKCS11ToolSeesKeys(t *testing.T) {
	need(t)
	tool := testenv.NeedCommand(t, "pkcs11-tool", "opensc")
	s := openTest(t, testConfig(testToken))
	keys, err := s.InitStandardKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tool, "--module", env.dir.Module, "--token-label", testToken, "--login", "--pin", testPIN, "--list-objects")
	cmd.Env = append(os.Environ(), env.dir.Env())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool: %v\n%s", err, out)
	}
	// Split the listing into one block per object.
	blocks := strings.Split(string(out), "\n")
	var objs []string
	for _, l := range blocks {
		if !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "\t") && strings.Contains(l, "Object;") {
			objs = append(objs, l)
			continue
		}
		if len(objs) > 0 {
			objs[len(objs)-1] += "\n" + l
		}
	}
	for _, k := range keys {
		found := false
		for _, o := range objs {
			if strings.Contains(o, "label:      "+k.Label+"\n") && (strings.HasPrefix(o, "Private Key Object") || strings.HasPrefix(o, "Secret Key Object")) {
				found = true
				if !strings.Contains(o, "never extract") {
					t.Errorf("pkcs11-tool does not report %q as never extractable:\n%s", k.Label, o)
				}
				if !strings.Contains(o, "sensitive") {
					t.Errorf("pkcs11-tool does not report %q as sensitive:\n%s", k.Label, o)
				}
			}
		}
		if !found {
			t.Errorf("pkcs11-tool does not list key %q:\n%s", k.Label, out)
		}
	}
}

func TestSealUnseal(t *testing.T) {
	s := openTest(t, testConfig(testToken))
	ctx := context.Background()
	for _, l := range []string{"egate-test-seal", "egate-test-seal2"} {
		if _, _, err := s.EnsureKey(ctx, KeySpec{l, KeyAES256}); err != nil {
			t.Fatal(err)
		}
	}
	pt := []byte("grid card 0417: A1=37 B2=91 ...")
	aad := []byte("customer:42")
	sealed, err := s.Seal(ctx, "egate-test-seal", pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, pt) {
		t.Fatal("sealed blob contains the plaintext")
	}
	got, err := s.Unseal(ctx, "egate-test-seal", sealed, aad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Unseal = %q, %v", got, err)
	}
	again, _ := s.Seal(ctx, "egate-test-seal", pt, aad)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals are identical (IV reused)")
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-20] ^= 1
	cases := []struct {
		name, key string
		blob, aad []byte
	}{
		{"tampered", "egate-test-seal", tampered, aad},
		{"other aad", "egate-test-seal", sealed, []byte("customer:43")},
		{"other key", "egate-test-seal2", sealed, aad},
		{"truncated", "egate-test-seal", sealed[:10], aad},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Unseal(ctx, tc.key, tc.blob, tc.aad); !errors.Is(err, ErrSealed) {
				t.Fatalf("Unseal: %v, want ErrSealed", err)
			}
		})
	}
	if _, err := s.Seal(ctx, "egate-test-no-such-key", pt, nil); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Seal with a missing key: %v, want ErrKeyNotFound", err)
	}
}

// RFC 4226 Appendix D: the HOTP test seed and the HOTP values for counters 0..9.
var rfc4226Seed = []byte("12345678901234567890")
var rfc4226HOTP = []uint32{755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489}

func TestHMACWrapped(t *testing.T) {
	s := openTest(t, testConfig(testToken))
	ctx := context.Background()
	if _, _, err := s.EnsureKey(ctx, KeySpec{LabelSeedWrap, KeySeedWrap}); err != nil {
		t.Fatal(err)
	}
	wrapped, err := s.WrapSeed(ctx, rfc4226Seed)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(wrapped, rfc4226Seed) {
		t.Fatal("wrapped seed contains the seed")
	}
	var msgs [][]byte
	for c := uint64(0); c < 10; c++ {
		msgs = append(msgs, binary.BigEndian.AppendUint64(nil, c))
	}
	cases := []struct {
		name string
		h    crypto.Hash
		new  func() hash.Hash
	}{
		{"sha1", crypto.SHA1, sha1.New},
		{"sha256", crypto.SHA256, sha256.New},
		{"sha512", crypto.SHA512, sha512.New},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			macs, err := s.HMACWrapped(ctx, LabelSeedWrap, wrapped, tc.h, msgs)
			if err != nil {
				t.Fatal(err)
			}
			for i, m := range msgs {
				ref := hmac.New(tc.new, rfc4226Seed)
				ref.Write(m)
				if !hmac.Equal(macs[i], ref.Sum(nil)) {
					t.Fatalf("counter %d: HSM HMAC %x, crypto/hmac %x", i, macs[i], ref.Sum(nil))
				}
				if tc.h == crypto.SHA1 {
					off := macs[i][19] & 0xf
					code := binary.BigEndian.Uint32(macs[i][off:]) & 0x7fffffff % 1000000
					if code != rfc4226HOTP[i] {
						t.Fatalf("counter %d: HOTP %06d, RFC 4226 says %06d", i, code, rfc4226HOTP[i])
					}
				}
			}
		})
	}
	// The temporary session keys are gone; the one seed stays live.
	if left, live := leftBehind(t, s); left != 0 || live != 1 {
		t.Fatalf("%d session secret keys left behind, %d kept live (want 0 and 1)", left, live)
	}
	// Wrapped by another key, or altered: refused.
	if _, _, err := s.EnsureKey(ctx, KeySpec{"egate-test-seed-wrap2", KeySeedWrap}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HMACWrapped(ctx, "egate-test-seed-wrap2", wrapped, crypto.SHA1, msgs[:1]); !errors.Is(err, ErrSealed) {
		t.Fatalf("HMACWrapped with another wrapping key: %v, want ErrSealed", err)
	}
	altered := bytes.Clone(wrapped)
	altered[len(altered)-1] ^= 1
	if _, err := s.HMACWrapped(ctx, LabelSeedWrap, altered, crypto.SHA1, msgs[:1]); !errors.Is(err, ErrSealed) {
		t.Fatalf("HMACWrapped of an altered blob: %v, want ErrSealed", err)
	}
	if _, err := s.HMACWrapped(ctx, LabelSeedWrap, wrapped, crypto.MD5, msgs[:1]); err == nil {
		t.Fatal("HMACWrapped with MD5 succeeded")
	}
}

func TestHMACTokenKey(t *testing.T) {
	s := openTest(t, testConfig(testToken))
	ctx := context.Background()
	if _, _, err := s.EnsureKey(ctx, KeySpec{LabelHMAC, KeyHMAC}); err != nil {
		t.Fatal(err)
	}
	a, err := s.HMAC(ctx, LabelHMAC, []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := s.HMAC(ctx, LabelHMAC, []byte("a"))
	b, _ := s.HMAC(ctx, LabelHMAC, []byte("b"))
	if len(a) != 32 || !bytes.Equal(a, a2) || bytes.Equal(a, b) {
		t.Fatalf("HMAC a=%x a'=%x b=%x", a, a2, b)
	}
}

// loginCounter counts the C_Login calls the service asks for (each one
// is a crypto11.Configure with a PIN, which logs in exactly once).
type loginCounter struct{ n atomic.Int32 }

func (c *loginCounter) hook() func() { return func() { c.n.Add(1) } }

func TestSessionRecovery(t *testing.T) {
	need(t)
	cp := &loginCounter{}
	s, err := open(context.Background(), testConfig(testToken), cp.hook())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, _, err := s.EnsureKey(ctx, KeySpec{"egate-test-ec", KeyECDSAP256}); err != nil {
		t.Fatal(err)
	}
	sg, err := s.Signer(ctx, "egate-test-ec")
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("before"))
	if _, err := sg.Sign(nil, d[:], crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	loginsBefore := cp.n.Load()
	// The module loses every session of the application (as after an HSM
	// failover): the login state goes with them.
	if err := s.mod.Ctx().CloseAllSessions(s.slot); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		sig, err := sg.Sign(nil, d[:], crypto.SHA256)
		if err != nil {
			t.Fatalf("sign %d after the sessions were lost: %v", i, err)
		}
		if !ecdsa.VerifyASN1(sg.Public().(*ecdsa.PublicKey), d[:], sig) {
			t.Fatal("signature after recovery does not verify")
		}
	}
	if got := cp.n.Load() - loginsBefore; got != 1 {
		t.Fatalf("logged in %d times to recover, want exactly 1", got)
	}
	// Seal, HMAC and listing recover too.
	s.mod.Ctx().CloseAllSessions(s.slot)
	if _, err := s.Keys(ctx); err != nil {
		t.Fatalf("Keys after loss: %v", err)
	}
}

// TestSessionRecoveryConcurrent loses every session while goroutines sign
// and list keys: all of them recover, sharing one login.
func TestSessionRecoveryConcurrent(t *testing.T) {
	need(t)
	cp := &loginCounter{}
	s, err := open(context.Background(), testConfig(testToken), cp.hook())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, _, err := s.EnsureKey(ctx, KeySpec{"egate-test-ec", KeyECDSAP256}); err != nil {
		t.Fatal(err)
	}
	sg, err := s.Signer(ctx, "egate-test-ec")
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("concurrent"))
	// Fill both pools with sessions that are about to die.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); sg.Sign(nil, d[:], crypto.SHA256); s.Keys(ctx) }()
	}
	wg.Wait()
	before := cp.n.Load()
	if err := s.mod.Ctx().CloseAllSessions(s.slot); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if g%4 == 0 {
				if _, err := s.Keys(ctx); err != nil {
					errs <- err
				}
				return
			}
			sig, err := sg.Sign(nil, d[:], crypto.SHA256)
			if err != nil {
				errs <- err
				return
			}
			if !ecdsa.VerifyASN1(sg.Public().(*ecdsa.PublicKey), d[:], sig) {
				errs <- errors.New("signature after recovery does not verify")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := cp.n.Load() - before; got != 1 {
		t.Fatalf("logged in %d times to recover 16 callers, want exactly 1", got)
	}
}

func TestWrongPINNeverRetried(t *testing.T) {
	need(t)
	ctx := context.Background()
	cfg := testConfig(pinToken)
	cfg.PINSource = "file:" + env.badPIN
	cp := &loginCounter{}
	_, err := open(ctx, cfg, cp.hook())
	if !errors.Is(err, ErrPINIncorrect) {
		t.Fatalf("Open with a wrong PIN: %v, want ErrPINIncorrect", err)
	}
	var pe *pin.Error
	if !errors.As(err, &pe) || !strings.Contains(pe.Device, pinToken) || pe.Locked {
		t.Fatalf("error %v is not a *pin.Error for %q", err, pinToken)
	}
	if strings.Contains(err.Error(), "9999") {
		t.Fatal("error contains the PIN")
	}
	if n := cp.n.Load(); n != 1 {
		t.Fatalf("%d C_Login calls for one Open, want 1", n)
	}

	// A PIN that turns wrong while running (changed pin file) is tried once
	// at the next re-login and never again.
	pinPath := env.root + "/changing-pin"
	if err := os.WriteFile(pinPath, []byte(testPIN), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.PINSource = "file:" + pinPath
	cp = &loginCounter{}
	s, err := open(ctx, cfg, cp.hook())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.EnsureKey(ctx, KeySpec{"egate-test-pin-ec", KeyECDSAP256}); err != nil {
		t.Fatal(err)
	}
	sg, err := s.Signer(ctx, "egate-test-pin-ec")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pinPath, []byte("0000"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := cp.n.Load()
	d := sha256.Sum256(nil)
	// Both paths: the miekg/pkcs11 one (Keys) and crypto11's (Sign).
	calls := []func() error{
		func() error { _, err := sg.Sign(nil, d[:], crypto.SHA256); return err },
		func() error { _, err := s.Keys(ctx); return err },
	}
	for i := range 6 {
		s.mod.Ctx().CloseAllSessions(s.slot)
		if err := calls[i%2](); !errors.Is(err, ErrPINIncorrect) {
			t.Fatalf("call %d after the PIN changed: %v, want ErrPINIncorrect", i, err)
		}
	}
	if n := cp.n.Load() - base; n != 1 {
		t.Fatalf("%d C_Login calls with the wrong PIN, want 1", n)
	}
}

func TestBadInput(t *testing.T) {
	need(t)
	ctx := context.Background()
	notALib := env.root + "/not-a-library.so"
	os.WriteFile(notALib, []byte("not ELF"), 0o644)
	good := testConfig(testToken)
	with := func(f func(*Config)) Config { c := good; f(&c); return c }
	cases := []struct {
		name   string
		cfg    Config
		want   error
		msgHas string
	}{
		{"wrong module path", with(func(c *Config) { c.Module = "/nonexistent/libpkcs11.so" }), ErrModuleNotFound, "/nonexistent/libpkcs11.so"},
		{"module is not a library", with(func(c *Config) { c.Module = notALib }), ErrModuleNotFound, "cannot be loaded"},
		{"module is a directory", with(func(c *Config) { c.Module = env.root }), ErrModuleNotFound, "directory"},
		{"missing token", with(func(c *Config) { c.Token = "no-such-token" }), ErrTokenNotFound, `"egate-test"`},
		{"empty module", with(func(c *Config) { c.Module = "" }), ErrBadConfig, "hsm.module"},
		{"empty token", with(func(c *Config) { c.Token = "" }), ErrBadConfig, "hsm.token"},
		{"inline pin", with(func(c *Config) { c.PINSource = "1234" }), ErrBadConfig, "pin-source"},
		{"missing pin file", with(func(c *Config) { c.PINSource = "file:/nonexistent/pin" }), nil, "cannot open"},
		{"negative pool", with(func(c *Config) { c.Pool = -1 }), ErrBadConfig, "pool-size"},
	}
	tokensBefore, _ := env.dir.Tokens(ctx)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(ctx, tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msgHas) {
				t.Fatalf("error %q does not mention %q", err, tc.msgHas)
			}
			if strings.Contains(err.Error(), testPIN) {
				t.Fatalf("error %q contains the PIN", err)
			}
		})
	}
	if tokensAfter, _ := env.dir.Tokens(ctx); len(tokensAfter) != len(tokensBefore) {
		t.Fatalf("tokens changed: %v → %v", tokensBefore, tokensAfter)
	}

	s := openTest(t, good)
	before, err := s.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	refs := []struct {
		name, ref string
		want      error
	}{
		{"malformed URI", "pkcs11:objcet=egate-passport-signing", ErrBadURI},
		{"pin-value URI", "pkcs11:object=x?pin-value=1234", ErrBadURI},
		{"URI without object", "pkcs11:token=" + testToken, ErrBadURI},
		{"URI of another token", "pkcs11:token=other;object=egate-test-ec", ErrTokenNotFound},
		{"missing key", "egate-no-such-key", ErrKeyNotFound},
		{"missing key by URI", "pkcs11:token=" + testToken + ";object=egate-no-such-key;type=private", ErrKeyNotFound},
		{"empty label", "", ErrKeyNotFound},
	}
	for _, tc := range refs {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Signer(ctx, tc.ref); !errors.Is(err, tc.want) {
				t.Fatalf("Signer(%q): %v, want %v", tc.ref, err, tc.want)
			} else if strings.Contains(err.Error(), testPIN) {
				t.Fatalf("error %q contains the PIN", err)
			}
		})
	}
	if _, _, err := s.EnsureKey(ctx, KeySpec{"x", "dsa-1024"}); !errors.Is(err, ErrKeyType) {
		t.Fatalf("EnsureKey with an unknown type: %v", err)
	}
	after, _ := s.Keys(ctx)
	if len(after) != len(before) {
		t.Fatalf("bad input created keys: %d → %d", len(before), len(after))
	}
}

func TestResolveKeyChecksID(t *testing.T) {
	s := openTest(t, testConfig(testToken))
	ctx := context.Background()
	k, _, err := s.EnsureKey(ctx, KeySpec{"egate-test-ec", KeyECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ResolveKey(ctx, k.URI)
	if err != nil || got.URI != k.URI {
		t.Fatalf("ResolveKey(%q) = %+v, %v", k.URI, got, err)
	}
	other := "pkcs11:token=" + testToken + ";object=egate-test-ec;id=%00"
	if _, err := s.ResolveKey(ctx, other); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("ResolveKey with another id: %v", err)
	}
	if _, err := s.ResolveKey(ctx, "pkcs11:object=egate-test-ec;type=secret-key"); !errors.Is(err, ErrKeyType) {
		t.Fatalf("ResolveKey with the wrong type: %v", err)
	}
}

func TestClose(t *testing.T) {
	need(t)
	ctx := context.Background()
	s, err := Open(ctx, testConfig(testToken))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.EnsureKey(ctx, KeySpec{"egate-test-ec", KeyECDSAP256}); err != nil {
		t.Fatal(err)
	}
	sg, err := s.Signer(ctx, "egate-test-ec")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	d := sha256.Sum256(nil)
	calls := map[string]func() error{
		"Sign":             func() error { _, err := sg.Sign(nil, d[:], crypto.SHA256); return err },
		"Keys":             func() error { _, err := s.Keys(ctx); return err },
		"EnsureKey":        func() error { _, _, err := s.EnsureKey(ctx, KeySpec{"x", KeyAES256}); return err },
		"Seal":             func() error { _, err := s.Seal(ctx, LabelSecretsWrap, nil, nil); return err },
		"HMAC":             func() error { _, err := s.HMAC(ctx, LabelHMAC, nil); return err },
		"WrapSecret":       func() error { _, err := s.WrapSecret(ctx, LabelSeedWrap, []byte("x")); return err },
		"InitStandardKeys": func() error { _, err := s.InitStandardKeys(ctx); return err },
	}
	for name, f := range calls {
		if err := f(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

func TestConcurrentSigningSmallPool(t *testing.T) {
	cfg := testConfig(testToken)
	cfg.Pool = 2
	s := openTest(t, cfg)
	ctx := context.Background()
	if _, _, err := s.EnsureKey(ctx, KeySpec{"egate-test-ec", KeyECDSAP256}); err != nil {
		t.Fatal(err)
	}
	sg, err := s.Signer(ctx, "egate-test-ec")
	if err != nil {
		t.Fatal(err)
	}
	pub := sg.Public().(*ecdsa.PublicKey)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				d := sha256.Sum256([]byte{byte(g), byte(i)})
				sig, err := sg.Sign(nil, d[:], crypto.SHA256)
				if err != nil {
					errs <- err
					return
				}
				if !ecdsa.VerifyASN1(pub, d[:], sig) {
					errs <- errors.New("signature does not verify")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Never more miekg/pkcs11 sessions than the pool allows (crypto11's
	// pool is capped by its own MaxSessions, Pool+1; SoftHSM2 does not
	// report a session count to check it from outside).
	if n := len(s.idle); n > cfg.Pool {
		t.Fatalf("%d idle sessions for a pool of %d", n, cfg.Pool)
	}
}

func TestContextCancelWhileWaiting(t *testing.T) {
	cfg := testConfig(testToken)
	cfg.Pool = 1
	s := openTest(t, cfg)
	ctx := context.Background()
	sh, err := s.get(ctx) // hold the only session
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Keys(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Keys with a cancelled context and no free session: %v", err)
	}
	s.put(sh)
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"good", Config{Module: "/m.so", Token: "t", PINSource: "env:PIN"}, true},
		{"good pool", Config{Module: "/m.so", Token: "t", PINSource: "file:/p", Pool: 16}, true},
		{"no module", Config{Token: "t", PINSource: "env:PIN"}, false},
		{"no token", Config{Module: "/m.so", PINSource: "env:PIN"}, false},
		{"long token", Config{Module: "/m.so", Token: strings.Repeat("t", 33), PINSource: "env:PIN"}, false},
		{"no pin source", Config{Module: "/m.so", Token: "t"}, false},
		{"inline pin", Config{Module: "/m.so", Token: "t", PINSource: "pin:1234"}, false},
		{"pool too big", Config{Module: "/m.so", Token: "t", PINSource: "env:PIN", Pool: MaxPoolSize + 1}, false},
		{"good backoff", Config{Module: "/m.so", Token: "t", PINSource: "env:PIN", RetryMin: time.Second, RetryMax: time.Minute}, true},
		{"only retry-min", Config{Module: "/m.so", Token: "t", PINSource: "env:PIN", RetryMin: time.Minute}, true},
		{"negative retry-min", Config{Module: "/m.so", Token: "t", PINSource: "env:PIN", RetryMin: -time.Second}, false},
		{"retry-min above retry-max", Config{Module: "/m.so", Token: "t", PINSource: "env:PIN", RetryMin: time.Minute, RetryMax: time.Second}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && (!errors.Is(err, ErrBadConfig) || strings.Contains(err.Error(), "1234")) {
				t.Fatalf("error %q", err)
			}
		})
	}
}
