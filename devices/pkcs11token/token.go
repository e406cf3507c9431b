package pkcs11token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"io"
	"math/big"
	"sync"

	"github.com/egate-bank/egate/devices/p11"
	"github.com/egate-bank/egate/devices/pkcs11uri"
	"github.com/miekg/pkcs11"
)

// Token is an open session on one token. Its methods are safe for concurrent
// use and run one at a time.
type Token struct {
	m    *Module
	info TokenInfo

	mu       sync.Mutex
	sh       pkcs11.SessionHandle
	closed   bool
	loggedIn bool
}

// Info returns what the token said when it was opened.
func (t *Token) Info() TokenInfo { return t.info }

// Close ends the session (and the login).
func (t *Token) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	if t.loggedIn {
		t.m.c.Logout(t.sh)
	}
	return t.m.c.CloseSession(t.sh)
}

// fail wraps a module error of an operation on the token: what names the
// operation ("signing on"). A token pulled out (CKR_DEVICE_REMOVED,
// CKR_TOKEN_NOT_PRESENT) matches ErrRemoved, a session the module forgot
// (CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED) ErrSessionLost; the
// module's return value stays reachable with errors.As.
func (t *Token) fail(what string, err error) error {
	switch {
	case p11.Removed(err):
		return fmt.Errorf("%s token %q: %w: %w", what, t.info.Label, ErrRemoved, err)
	case p11.IsRV(err, pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED):
		return fmt.Errorf("%s token %q: %w: %w", what, t.info.Label, ErrSessionLost, err)
	}
	return fmt.Errorf("%s token %q: %w", what, t.info.Label, err)
}

func (t *Token) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// Login logs the user in with pin, once. The caller obtained the PIN from
// the person holding the token (a prompt or a pin-source) and wipes it
// afterwards; the Token does not keep it. A wrong PIN returns a *pin.Error
// carrying the token's retry status; Login never tries again by itself.
func (t *Token) Login(ctx context.Context, pin []byte) error {
	if err := t.lock(ctx); err != nil {
		return err
	}
	defer t.mu.Unlock()
	if t.loggedIn {
		return nil
	}
	err := t.m.c.Login(t.sh, pkcs11.CKU_USER, string(pin))
	switch {
	case err == nil, p11.IsRV(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN):
		t.loggedIn = true
		return nil
	case p11.IsRV(err, pkcs11.CKR_PIN_INCORRECT), p11.IsRV(err, pkcs11.CKR_PIN_LOCKED), p11.IsRV(err, pkcs11.CKR_PIN_LEN_RANGE):
		st := PINCountLow
		if p11.IsRV(err, pkcs11.CKR_PIN_LOCKED) {
			st = PINLocked
		}
		if ti, ierr := t.m.c.GetTokenInfo(t.info.Slot); ierr == nil {
			if s := pinStatus(ti.Flags); s != PINOK || st != PINLocked {
				st = s
			}
		}
		return pinError(t.info.Label, st, err)
	default:
		return t.fail("logging in to", err)
	}
}

// Algorithm of a generated key.
type Algorithm string

const (
	ECDSAP256 Algorithm = "ecdsa-p256"
	RSA2048   Algorithm = "rsa-2048"
)

// oidP256 is the CKA_EC_PARAMS of a P-256 key.
var oidP256 = p11.ECParamsP256()

// GenerateKey makes a key pair on the token: the private key is a token
// object, private, sensitive and not extractable, usable only for signing.
func (t *Token) GenerateKey(ctx context.Context, alg Algorithm, id []byte, label string) (*Key, error) {
	if err := t.lock(ctx); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	if !t.loggedIn {
		return nil, ErrNotLoggedIn
	}
	common := func(class uint) []*pkcs11.Attribute {
		return []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		}
	}
	pub := common(pkcs11.CKO_PUBLIC_KEY)
	priv := append(common(pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
	)
	pub = append(pub, pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false), pkcs11.NewAttribute(pkcs11.CKA_WRAP, false))
	var mech *pkcs11.Mechanism
	switch alg {
	case ECDSAP256:
		mech = pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)
		pub = append(pub, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC), pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, oidP256), pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true))
		priv = append(priv, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC))
	case RSA2048:
		mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)
		pub = append(pub, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA), pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, 2048),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}), pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true))
		priv = append(priv, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA))
	default:
		return nil, fmt.Errorf("%w: key algorithm %q", ErrUnsupported, alg)
	}
	pubH, privH, err := t.m.c.GenerateKeyPair(t.sh, []*pkcs11.Mechanism{mech}, pub, priv)
	if err != nil {
		return nil, t.fail("generating a "+string(alg)+" key on", err)
	}
	pk, err := t.publicKey(pubH)
	if err != nil {
		t.m.c.DestroyObject(t.sh, privH)
		t.m.c.DestroyObject(t.sh, pubH)
		return nil, err
	}
	return &Key{t: t, priv: privH, pubH: pubH, pub: pk, id: append([]byte(nil), id...), label: label}, nil
}

// publicKey reads a public key object. Caller holds t.mu.
func (t *Token) publicKey(h pkcs11.ObjectHandle) (crypto.PublicKey, error) {
	attrs, err := t.m.c.GetAttributeValue(t.sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil)})
	if err != nil {
		return nil, fmt.Errorf("reading the public key: %w", err)
	}
	switch p11.Uint(attrs[0].Value) {
	case pkcs11.CKK_EC:
		a, err := t.m.c.GetAttributeValue(t.sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil), pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
		if err != nil {
			return nil, fmt.Errorf("reading the EC public key: %w", err)
		}
		if string(a[0].Value) != string(oidP256) {
			return nil, fmt.Errorf("%w: EC curve other than P-256", ErrUnsupported)
		}
		var point []byte
		if rest, err := asn1.Unmarshal(a[1].Value, &point); err != nil || len(rest) != 0 {
			point = a[1].Value // some modules store the raw point
		}
		pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
		if err != nil {
			return nil, fmt.Errorf("the token's EC point: %w", err)
		}
		return pk, nil
	case pkcs11.CKK_RSA:
		a, err := t.m.c.GetAttributeValue(t.sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil), pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil)})
		if err != nil {
			return nil, fmt.Errorf("reading the RSA public key: %w", err)
		}
		e := new(big.Int).SetBytes(a[1].Value)
		if !e.IsInt64() || e.Int64() > 1<<31 {
			return nil, fmt.Errorf("%w: RSA exponent", ErrUnsupported)
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(a[0].Value), E: int(e.Int64())}, nil
	}
	return nil, fmt.Errorf("%w: key type", ErrUnsupported)
}

func (t *Token) find(tmpl []*pkcs11.Attribute, max int) ([]pkcs11.ObjectHandle, error) {
	return p11.FindObjects(t.m.c, t.sh, tmpl, max)
}

// Key finds the key pair with this CKA_ID.
func (t *Token) Key(ctx context.Context, id []byte) (*Key, error) {
	if err := t.lock(ctx); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	return t.keyLocked(id, "")
}

// FindKey finds the key pair named by ref: an RFC 7512 pkcs11: URI naming
// it by id= and/or object= (its CKA_ID, its CKA_LABEL), whose token=, when
// present, must be this token and type=, when present, private (the URI
// Key.URI returns, for one); or a plain label. A name that fits no key,
// or more than one, is ErrKeyNotFound.
func (t *Token) FindKey(ctx context.Context, ref string) (*Key, error) {
	label, id := ref, []byte(nil)
	if isURI(ref) {
		u, err := pkcs11uri.Parse(ref)
		if err != nil {
			return nil, fmt.Errorf("naming a key: %w", err)
		}
		switch {
		case u.Object == "" && u.ID == nil:
			return nil, fmt.Errorf("%w: the key URI has neither object= nor id=", ErrBadURI)
		case u.Type != "" && u.Type != pkcs11uri.TypePrivate:
			return nil, fmt.Errorf("%w: type=%s; a U-shield key is type=private", ErrBadURI, u.Type)
		case u.Token != "" && u.Token != t.info.Label:
			return nil, fmt.Errorf("%w: the key URI names token %q, this is %q", ErrKeyNotFound, u.Token, t.info.Label)
		}
		label, id = u.Object, u.ID
	} else if ref == "" {
		return nil, fmt.Errorf("%w: no key named", ErrKeyNotFound)
	}
	if err := t.lock(ctx); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	return t.keyLocked(id, label)
}

// keyLocked finds the key pair whose private key has id and label (either
// may be empty, not both) and whose public key has the same CKA_ID. Caller
// holds t.mu.
func (t *Token) keyLocked(id []byte, label string) (*Key, error) {
	if !t.loggedIn {
		return nil, ErrNotLoggedIn
	}
	name := fmt.Sprintf("id %x", id)
	tmpl := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY)}
	if id != nil {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_ID, id))
	}
	if label != "" {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_LABEL, label))
		name = fmt.Sprintf("label %q", label)
		if id != nil {
			name += fmt.Sprintf(", id %x", id)
		}
	}
	privs, err := t.find(tmpl, 2)
	if err != nil {
		return nil, t.fail("finding the key on", err)
	}
	if len(privs) != 1 {
		return nil, fmt.Errorf("%w: %d private keys with %s on token %q", ErrKeyNotFound, len(privs), name, t.info.Label)
	}
	a, err := t.m.c.GetAttributeValue(t.sh, privs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil), pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
	if err != nil {
		return nil, t.fail("reading the key on", err)
	}
	id, label = a[0].Value, string(a[1].Value)
	pubs, err := t.find([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY), pkcs11.NewAttribute(pkcs11.CKA_ID, id)}, 2)
	if err != nil {
		return nil, t.fail("finding the key on", err)
	}
	if len(pubs) != 1 {
		return nil, fmt.Errorf("%w: %d public keys with id %x on token %q", ErrKeyNotFound, len(pubs), id, t.info.Label)
	}
	pk, err := t.publicKey(pubs[0])
	if err != nil {
		return nil, err
	}
	return &Key{t: t, priv: privs[0], pubH: pubs[0], pub: pk, id: append([]byte(nil), id...), label: label}, nil
}

// KeyIDs lists the CKA_IDs of the token's private keys.
func (t *Token) KeyIDs(ctx context.Context) ([][]byte, error) {
	if err := t.lock(ctx); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	hs, err := t.find([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY)}, 64)
	if err != nil {
		return nil, t.fail("listing keys on", err)
	}
	var ids [][]byte
	for _, h := range hs {
		a, err := t.m.c.GetAttributeValue(t.sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
		if err != nil {
			return nil, err
		}
		ids = append(ids, a[0].Value)
	}
	return ids, nil
}

// WriteCertificate stores cert on the token as a public CKO_CERTIFICATE
// object with the key's CKA_ID and label, replacing a certificate with that
// id. The certificate's key must be the key with that id.
func (t *Token) WriteCertificate(ctx context.Context, id []byte, label string, cert *x509.Certificate) error {
	if err := t.lock(ctx); err != nil {
		return err
	}
	defer t.mu.Unlock()
	if !t.loggedIn {
		return ErrNotLoggedIn
	}
	serial, err := asn1.Marshal(cert.SerialNumber)
	if err != nil {
		return err
	}
	old, err := t.find([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE), pkcs11.NewAttribute(pkcs11.CKA_ID, id)}, 8)
	if err != nil {
		return t.fail("looking for an old certificate on", err)
	}
	_, err = t.m.c.CreateObject(t.sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE),
		pkcs11.NewAttribute(pkcs11.CKA_CERTIFICATE_TYPE, pkcs11.CKC_X_509),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_SUBJECT, cert.RawSubject),
		pkcs11.NewAttribute(pkcs11.CKA_ISSUER, cert.RawIssuer),
		pkcs11.NewAttribute(pkcs11.CKA_SERIAL_NUMBER, serial),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, cert.Raw),
	})
	if err != nil {
		return t.fail("writing the certificate to", err)
	}
	for _, h := range old {
		t.m.c.DestroyObject(t.sh, h)
	}
	return nil
}

// Certificate reads the certificate stored under id.
func (t *Token) Certificate(ctx context.Context, id []byte) (*x509.Certificate, error) {
	if err := t.lock(ctx); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	hs, err := t.find([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE), pkcs11.NewAttribute(pkcs11.CKA_ID, id)}, 2)
	if err != nil {
		return nil, t.fail("finding the certificate on", err)
	}
	if len(hs) != 1 {
		return nil, fmt.Errorf("%w: no single certificate with id %x on token %q", ErrKeyNotFound, id, t.info.Label)
	}
	a, err := t.m.c.GetAttributeValue(t.sh, hs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
	if err != nil {
		return nil, fmt.Errorf("reading the certificate: %w", err)
	}
	return x509.ParseCertificate(a[0].Value)
}

// Key is a key pair on the token; it is a crypto.Signer whose private half
// never leaves the token.
type Key struct {
	t          *Token
	priv, pubH pkcs11.ObjectHandle
	pub        crypto.PublicKey
	id         []byte
	label      string
}

var _ crypto.Signer = (*Key)(nil)

// ID returns the key's CKA_ID.
func (k *Key) ID() []byte { return append([]byte(nil), k.id...) }

// URI names the key as an RFC 7512 pkcs11: URI (token, object label,
// type=private, id), which FindKey takes back.
func (k *Key) URI() string {
	u := pkcs11uri.URI{Token: k.t.info.Label, Object: k.label, Type: pkcs11uri.TypePrivate, ID: k.id}
	return u.String()
}

// Public returns the public key read from the token.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Destroy deletes the key pair from the token (enrollment undoes a failed
// attempt with it).
func (k *Key) Destroy(ctx context.Context) error {
	if err := k.t.lock(ctx); err != nil {
		return err
	}
	defer k.t.mu.Unlock()
	err1 := k.t.m.c.DestroyObject(k.t.sh, k.priv)
	err2 := k.t.m.c.DestroyObject(k.t.sh, k.pubH)
	if err1 != nil {
		return err1
	}
	return err2
}

// DigestInfo prefixes for RSA PKCS#1 v1.5 (RFC 8017 §9.2 note 1).
var digestInfo = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// Sign signs a digest on the token: ECDSA (ASN.1 signature) or RSA PKCS#1
// v1.5. RSA-PSS is not offered.
func (k *Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts != nil && opts.HashFunc() != 0 && len(digest) != opts.HashFunc().Size() {
		return nil, fmt.Errorf("digest length %d does not match %v", len(digest), opts.HashFunc())
	}
	var mech *pkcs11.Mechanism
	msg := digest
	switch k.pub.(type) {
	case *ecdsa.PublicKey:
		mech = pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)
	case *rsa.PublicKey:
		if _, pss := opts.(*rsa.PSSOptions); pss {
			return nil, fmt.Errorf("%w: RSA-PSS", ErrUnsupported)
		}
		prefix, ok := digestInfo[opts.HashFunc()]
		if !ok {
			return nil, fmt.Errorf("%w: hash %v", ErrUnsupported, opts.HashFunc())
		}
		mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)
		msg = append(append([]byte{}, prefix...), digest...)
	}
	if err := k.t.lock(context.Background()); err != nil {
		return nil, err
	}
	defer k.t.mu.Unlock()
	if !k.t.loggedIn {
		return nil, ErrNotLoggedIn
	}
	if err := k.t.m.c.SignInit(k.t.sh, []*pkcs11.Mechanism{mech}, k.priv); err != nil {
		return nil, k.t.fail("signing on", err)
	}
	sig, err := k.t.m.c.Sign(k.t.sh, msg)
	if err != nil {
		return nil, k.t.fail("signing on", err)
	}
	if _, ok := k.pub.(*ecdsa.PublicKey); ok {
		if len(sig) != 64 {
			return nil, fmt.Errorf("token %q returned a %d-byte ECDSA signature", k.t.info.Label, len(sig))
		}
		return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
	}
	return sig, nil
}

// NewKeyID returns a random 8-byte CKA_ID.
func NewKeyID() []byte {
	b := make([]byte, 8)
	rand.Read(b)
	return b
}
