package hsm

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"sort"
	"strings"

	"github.com/ThalesGroup/crypto11"
	"github.com/egate-bank/egate/devices/p11"
	"github.com/egate-bank/egate/devices/pkcs11uri"
	"github.com/miekg/pkcs11"
)

// KeyType is the kind of a key egate keeps in the HSM.
type KeyType string

const (
	KeyECDSAP256 KeyType = "ecdsa-p256" // signing, crypto.Signer
	KeyRSA2048   KeyType = "rsa-2048"   // signing, crypto.Signer
	KeyAES256    KeyType = "aes-256"    // sealing (AES-GCM) and wrapping
	KeyHMAC      KeyType = "hmac"       // generic secret, 32 bytes, HMAC-SHA-256
	// KeySeedWrap is an AES-256 key that wraps and unwraps OTP seeds and
	// does nothing else (see seed.go): no encrypt or decrypt, RFC 5649 key
	// wrap only, a CKA_UNWRAP_TEMPLATE that makes every key it unwraps a
	// sensitive, never extractable, sign-only HMAC key, and no attribute
	// modifiable.
	KeySeedWrap KeyType = "aes-256-seed-wrap"
	// KeyRSA2048Decrypt is an RSA-2048 key pair whose private half decrypts
	// (RSA-OAEP with SHA-256 only, CKA_ALLOWED_MECHANISMS) and does nothing
	// else: no signing, no unwrapping, not modifiable. Clients encrypt
	// transaction instructions to its public half (decrypt.go).
	KeyRSA2048Decrypt KeyType = "rsa-2048-decrypt"
)

func (t KeyType) valid() bool {
	switch t {
	case KeyECDSAP256, KeyRSA2048, KeyAES256, KeyHMAC, KeySeedWrap, KeyRSA2048Decrypt:
		return true
	}
	return false
}

func (t KeyType) asymmetric() bool {
	return t == KeyECDSAP256 || t == KeyRSA2048 || t == KeyRSA2048Decrypt
}

// KeySpec asks for a key by label and type.
type KeySpec struct {
	Label string
	Type  KeyType
}

// Key describes a key in the HSM.
type Key struct {
	Label string
	ID    []byte  // CKA_ID (shared by a key pair's two halves)
	Type  KeyType // "" for an object egate does not know
	URI   string  // pkcs11:token=…;object=…;type=private|secret-key;id=…
}

// The bank's standard keys (and LabelSeedWrap, in seed.go).
const (
	LabelPassportSigning = "egate-passport-signing"
	LabelCAIssuing       = "egate-ca-issuing"
	// LabelSecretsWrap seals secrets at rest (grid cards) with AES-GCM. It
	// used to wrap OTP seeds too; those are moved under LabelSeedWrap
	// (RewrapSecret; authsvc/oath's RewrapSeeds).
	LabelSecretsWrap     = "egate-secrets-wrap"
	LabelAuditCheckpoint = "egate-audit-checkpoint"
	LabelHMAC            = "egate-hmac"
	LabelATMPIN          = "egate-atm-pin"
	// LabelTxEncryption decrypts transaction instructions (intents, proofs)
	// that platforms send as JWE encrypted to its public half
	// (authsvc/txauth, GET /keys/encryption).
	LabelTxEncryption = "egate-tx-encryption"
)

// StandardKeys returns the bank's standard keys (a fresh slice each call).
func StandardKeys() []KeySpec {
	return []KeySpec{
		{LabelPassportSigning, KeyECDSAP256},
		{LabelCAIssuing, KeyECDSAP256},
		{LabelSecretsWrap, KeyAES256},
		{LabelSeedWrap, KeySeedWrap},
		{LabelAuditCheckpoint, KeyECDSAP256},
		{LabelHMAC, KeyHMAC},
		{LabelATMPIN, KeyAES256},
		{LabelTxEncryption, KeyRSA2048Decrypt},
	}
}

// InitStandardKeys generates whichever standard keys are missing and returns
// all of them; a second run finds the same keys with the same ids.
func (s *Service) InitStandardKeys(ctx context.Context) ([]Key, error) {
	var out []Key
	for _, spec := range StandardKeys() {
		k, _, err := s.EnsureKey(ctx, spec)
		if err != nil {
			return out, err
		}
		out = append(out, k)
	}
	return out, nil
}

// oidP256 is the CKA_EC_PARAMS of a P-256 key.
var oidP256 = p11.ECParamsP256()

// EnsureKey finds the key labelled spec.Label, or generates it inside the
// HSM (sensitive, never extractable, on the token) if there is none. It
// reports whether it generated the key. A key with that label but another
// type is ErrKeyType.
func (s *Service) EnsureKey(ctx context.Context, spec KeySpec) (Key, bool, error) {
	if !spec.Type.valid() {
		return Key{}, false, fmt.Errorf("%w: unknown key type %q (want ecdsa-p256, rsa-2048, rsa-2048-decrypt, aes-256, aes-256-seed-wrap or hmac)", ErrKeyType, spec.Type)
	}
	if err := checkLabel(spec.Label); err != nil {
		return Key{}, false, err
	}
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	var key Key
	found := false
	err := s.do(ctx, func(sh pkcs11.SessionHandle) error {
		k, err := s.describeByLabel(sh, spec.Label)
		if err == nil {
			if k.Type != spec.Type {
				return fmt.Errorf("%w: key %q on token %q is %s, not %s: choose another label", ErrKeyType, spec.Label, s.token, typeName(k.Type), spec.Type)
			}
			key, found = k, true
			return nil
		}
		if !isNotFound(err) {
			return err
		}
		return nil
	})
	if err != nil || found {
		return key, false, err
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return Key{}, false, err
	}
	err = s.c11do(ctx, func(g *c11gen) error { return s.generate(g.ctx, spec, id) })
	if err != nil {
		return Key{}, false, fmt.Errorf("generating %s key %q on token %q: %w", spec.Type, spec.Label, s.token, err)
	}
	return s.keyOf(spec.Label, id, spec.Type), true, nil
}

// generate makes the key inside the HSM through crypto11, with explicit
// templates: on the token, private, sensitive, never extractable, labelled
// and with the id shared by a pair's halves, and only the usages egate needs.
func (s *Service) generate(c *crypto11.Context, spec KeySpec, id []byte) error {
	set := func(kv ...any) (crypto11.AttributeSet, error) {
		a := crypto11.NewAttributeSet()
		for i := 0; i < len(kv); i += 2 {
			if err := a.Set(crypto11.AttributeType(kv[i].(int)), kv[i+1]); err != nil {
				return nil, err
			}
		}
		return a, nil
	}
	common := []any{
		pkcs11.CKA_TOKEN, true,
		pkcs11.CKA_LABEL, spec.Label,
		pkcs11.CKA_ID, id,
	}
	secret := append(append([]any{}, common...),
		pkcs11.CKA_PRIVATE, true,
		pkcs11.CKA_SENSITIVE, true,
		pkcs11.CKA_EXTRACTABLE, false,
		pkcs11.CKA_DERIVE, false,
	)
	// Every usage is set, to what the key is for: modules (SoftHSM2 among
	// them) default unset usages such as CKA_WRAP to true.
	switch spec.Type {
	case KeyECDSAP256, KeyRSA2048:
		pub, err := set(append(append([]any{}, common...),
			pkcs11.CKA_PRIVATE, false,
			pkcs11.CKA_VERIFY, true,
			pkcs11.CKA_ENCRYPT, false,
			pkcs11.CKA_WRAP, false,
			pkcs11.CKA_DERIVE, false)...)
		if err != nil {
			return err
		}
		priv, err := set(append(secret,
			pkcs11.CKA_SIGN, true,
			pkcs11.CKA_DECRYPT, false,
			pkcs11.CKA_UNWRAP, false)...)
		if err != nil {
			return err
		}
		if spec.Type == KeyECDSAP256 {
			_, err = c.GenerateECDSAKeyPairWithAttributes(pub, priv, elliptic.P256())
		} else {
			_, err = c.GenerateRSAKeyPairWithAttributes(pub, priv, 2048)
		}
		return err
	case KeyRSA2048Decrypt:
		pub, err := set(append(append([]any{}, common...),
			pkcs11.CKA_PRIVATE, false,
			pkcs11.CKA_ENCRYPT, true,
			pkcs11.CKA_VERIFY, false,
			pkcs11.CKA_WRAP, false,
			pkcs11.CKA_DERIVE, false)...)
		if err != nil {
			return err
		}
		priv, err := set(append(secret,
			pkcs11.CKA_DECRYPT, true,
			pkcs11.CKA_SIGN, false,
			pkcs11.CKA_SIGN_RECOVER, false,
			pkcs11.CKA_UNWRAP, false,
			pkcs11.CKA_MODIFIABLE, false)...)
		if err != nil {
			return err
		}
		// OAEP only: PKCS#1 v1.5 decryption would be a padding oracle.
		priv[crypto11.AttributeType(pkcs11.CKA_ALLOWED_MECHANISMS)] = pkcs11.NewAttribute(pkcs11.CKA_ALLOWED_MECHANISMS, ulongs(pkcs11.CKM_RSA_PKCS_OAEP))
		_, err = c.GenerateRSAKeyPairWithAttributes(pub, priv, 2048)
		return err
	case KeyAES256:
		t, err := set(append(secret,
			pkcs11.CKA_ENCRYPT, true,
			pkcs11.CKA_DECRYPT, true,
			pkcs11.CKA_WRAP, true,
			pkcs11.CKA_UNWRAP, true,
			pkcs11.CKA_SIGN, false,
			pkcs11.CKA_VERIFY, false)...)
		if err != nil {
			return err
		}
		_, err = c.GenerateSecretKeyWithAttributes(t, 256, crypto11.CipherAES)
		return err
	case KeySeedWrap:
		attrs, release, err := seedWrapKeyAttrs()
		if err != nil {
			return err
		}
		defer release()
		t, err := set(secret...)
		if err != nil {
			return err
		}
		for _, a := range attrs {
			t[crypto11.AttributeType(a.Type)] = a
		}
		_, err = c.GenerateSecretKeyWithAttributes(t, 256, crypto11.CipherAES)
		return err
	case KeyHMAC:
		t, err := set(append(secret,
			pkcs11.CKA_SIGN, true,
			pkcs11.CKA_VERIFY, true,
			pkcs11.CKA_ENCRYPT, false,
			pkcs11.CKA_DECRYPT, false,
			pkcs11.CKA_WRAP, false,
			pkcs11.CKA_UNWRAP, false)...)
		if err != nil {
			return err
		}
		_, err = c.GenerateSecretKeyWithAttributes(t, 256, crypto11.CipherGeneric)
		return err
	}
	return fmt.Errorf("%w: %q", ErrKeyType, spec.Type)
}

func typeName(t KeyType) string {
	if t == "" {
		return "a key egate does not know"
	}
	return string(t)
}

func checkLabel(l string) error {
	if l == "" {
		return fmt.Errorf("%w: empty key label", ErrKeyNotFound)
	}
	if len(l) > 128 {
		return fmt.Errorf("%w: key label longer than 128 bytes", ErrKeyNotFound)
	}
	return nil
}

func isNotFound(err error) bool {
	_, ok := err.(*KeyNotFoundError)
	return ok
}

func (s *Service) keyOf(label string, id []byte, t KeyType) Key {
	typ := pkcs11uri.TypeSecretKey
	if t.asymmetric() {
		typ = pkcs11uri.TypePrivate
	}
	u := pkcs11uri.URI{Token: s.token, Object: label, ID: id, Type: typ}
	return Key{Label: label, ID: id, Type: t, URI: u.String()}
}

// describeByLabel finds a private or secret key by label and says what it is.
func (s *Service) describeByLabel(sh pkcs11.SessionHandle, label string) (Key, error) {
	for _, class := range []uint{pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_SECRET_KEY} {
		h, err := s.handle(sh, class, label)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return Key{}, err
		}
		return s.describe(sh, h, class)
	}
	return Key{}, &KeyNotFoundError{Token: s.token, Label: label}
}

func (s *Service) describe(sh pkcs11.SessionHandle, h pkcs11.ObjectHandle, class uint) (Key, error) {
	attrs, err := s.p.GetAttributeValue(sh, h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
		pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil),
	})
	if err != nil {
		return Key{}, err
	}
	label, id := string(attrs[0].Value), attrs[1].Value
	ktype := bytesToUint(attrs[2].Value)
	var t KeyType
	switch {
	case class == pkcs11.CKO_PRIVATE_KEY && ktype == pkcs11.CKK_EC:
		// The private half of SoftHSM keys carries CKA_EC_PARAMS too.
		if a, err := s.p.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil)}); err == nil && bytes.Equal(a[0].Value, oidP256) {
			t = KeyECDSAP256
		}
	case class == pkcs11.CKO_PRIVATE_KEY && ktype == pkcs11.CKK_RSA:
		if a, err := s.p.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil)}); err == nil && len(trimZeros(a[0].Value)) == 256 {
			t = KeyRSA2048
			if s.isDecryptOnly(sh, h) {
				t = KeyRSA2048Decrypt
			}
		}
	case class == pkcs11.CKO_SECRET_KEY && ktype == pkcs11.CKK_AES:
		if a, err := s.p.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, nil)}); err == nil && bytesToUint(a[0].Value) == 32 {
			t = KeyAES256
			if s.isSeedWrapKey(sh, h) {
				t = KeySeedWrap
			}
		}
	case class == pkcs11.CKO_SECRET_KEY && ktype == pkcs11.CKK_GENERIC_SECRET:
		t = KeyHMAC
	}
	k := s.keyOf(label, id, t)
	if t == "" && class == pkcs11.CKO_PRIVATE_KEY {
		k.URI = strings.Replace(k.URI, "type=secret-key", "type=private", 1)
	}
	return k, nil
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// bytesToUint decodes a CK_ULONG attribute.
func bytesToUint(b []byte) uint { return p11.Uint(b) }

// FindKey describes the key labelled label, or returns ErrKeyNotFound.
func (s *Service) FindKey(ctx context.Context, label string) (Key, error) {
	if err := checkLabel(label); err != nil {
		return Key{}, err
	}
	var k Key
	err := s.do(ctx, func(sh pkcs11.SessionHandle) error {
		var err error
		k, err = s.describeByLabel(sh, label)
		return err
	})
	return k, err
}

// Keys lists the private and secret keys on the token, sorted by label.
func (s *Service) Keys(ctx context.Context) ([]Key, error) {
	var out []Key
	err := s.do(ctx, func(sh pkcs11.SessionHandle) error {
		out = out[:0]
		for _, class := range []uint{pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_SECRET_KEY} {
			hs, err := s.findObjects(sh, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			}, 10000)
			if err != nil {
				return err
			}
			for _, h := range hs {
				k, err := s.describe(sh, h, class)
				if err != nil {
					return err
				}
				out = append(out, k)
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Label < out[j].Label })
	return out, err
}

// A key reference (ref) names one key of the Service's token: a plain
// label (CKA_LABEL, as egate's config has always named keys), or an RFC
// 7512 pkcs11: URI with object= (the label) and optionally token= (which
// must be this token), id= (which must be the key's CKA_ID) and type=
// (private or secret-key). Every method that takes a key accepts both:
// "egate-hmac" and "pkcs11:token=egate;object=egate-hmac;type=secret-key"
// name the same key. Key.URI is the full form.

// parseKeyRef splits a reference into the label and, for a URI, the parsed
// URI (nil for a plain label). what names the key in messages.
func (s *Service) parseKeyRef(ref, what string) (string, *pkcs11uri.URI, error) {
	if !strings.HasPrefix(strings.ToLower(ref), pkcs11uri.Scheme) {
		return ref, nil, nil
	}
	u, err := pkcs11uri.Parse(ref)
	if err != nil {
		return "", nil, err
	}
	if u.Object == "" {
		return "", nil, fmt.Errorf("%w: the %s URI has no object= attribute; egate names keys by label", ErrBadURI, what)
	}
	if u.Token != "" && u.Token != s.token {
		return "", nil, fmt.Errorf("%w: the %s URI names token %q but the HSM service uses token %q", ErrTokenNotFound, what, u.Token, s.token)
	}
	if u.Type != "" && u.Type != pkcs11uri.TypePrivate && u.Type != pkcs11uri.TypeSecretKey {
		return "", nil, fmt.Errorf("%w: type=%s names no key egate uses (want private or secret-key)", ErrBadURI, u.Type)
	}
	return u.Object, u, nil
}

// refHandle finds the object of class named by ref (a label or a pkcs11:
// URI, see parseKeyRef) on a session, through the handle cache. A URI's
// type= must agree with class and its id= with the key's CKA_ID. what
// names the key in messages ("key", "transport key").
func (s *Service) refHandle(sh pkcs11.SessionHandle, ref string, class uint, what string) (pkcs11.ObjectHandle, error) {
	label, u, err := s.parseKeyRef(ref, what)
	if err != nil {
		return 0, err
	}
	if u != nil {
		want := map[uint]string{pkcs11.CKO_SECRET_KEY: pkcs11uri.TypeSecretKey, pkcs11.CKO_PRIVATE_KEY: pkcs11uri.TypePrivate}[class]
		if u.Type != "" && u.Type != want {
			return 0, fmt.Errorf("%w: %s %q must be a %s but the URI says type=%s", ErrKeyType, what, label, className(class), u.Type)
		}
	}
	h, err := s.handle(sh, class, label)
	if err != nil || u == nil || u.ID == nil {
		return h, err
	}
	a, err := s.p.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
	if err != nil {
		return 0, err
	}
	if !bytes.Equal(a[0].Value, u.ID) {
		return 0, fmt.Errorf("%w: %s %q exists but its id differs from the URI's id=: the key was replaced; update the URI", ErrKeyNotFound, what, label)
	}
	return h, nil
}

// ResolveKey turns a key reference (a label, or a pkcs11: URI naming this
// token's key by object label and optionally id and type) into a Key.
func (s *Service) ResolveKey(ctx context.Context, ref string) (Key, error) {
	label, u, err := s.parseKeyRef(ref, "key")
	if err != nil || u == nil {
		if err != nil {
			return Key{}, err
		}
		return s.FindKey(ctx, ref)
	}
	k, err := s.FindKey(ctx, label)
	if err != nil {
		return Key{}, err
	}
	if u.ID != nil && !bytes.Equal(u.ID, k.ID) {
		return Key{}, fmt.Errorf("%w: key %q exists but its id differs from the URI's id=: the key was replaced; update the URI", ErrKeyNotFound, label)
	}
	if (u.Type == pkcs11uri.TypePrivate) != k.Type.asymmetric() && u.Type != "" {
		return Key{}, fmt.Errorf("%w: key %q is %s but the URI says type=%s", ErrKeyType, label, typeName(k.Type), u.Type)
	}
	return k, nil
}
