// Package jwe opens transaction instructions that a platform encrypted to
// the bank: a compact JWE (RFC 7516) whose content key is wrapped with
// RSA-OAEP to a key the HSM holds, and whose content is A256GCM. The
// format is go-jose's (github.com/go-jose/go-jose/v4); the private-key
// operation is the Key's (hsm.Decrypter: C_Decrypt in the HSM), reached
// through go-jose's OpaqueKeyDecrypter, so the private key never leaves the
// HSM and only the content key is in egate's memory, for one call.
//
// Only one key algorithm (RSA-OAEP-256, or RSA-OAEP where the HSM does
// OAEP with SHA-1 only, as SoftHSM2 2.6) and one content encryption
// (A256GCM) are accepted; no compression, no critical headers, the compact
// serialization only, and the header's kid must name the published key.
// A content key that does not unwrap and a content that does not decrypt
// give the same error (ErrUndecryptable), so nobody learns which failed.
//
// An Opener is safe for concurrent use.
package jwe

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// ContentType is the media type of a compact JWE body (RFC 7515 §9.2.1).
const ContentType = "application/jose"

// The algorithms.
const (
	AlgRSAOAEP256 = string(jose.RSA_OAEP_256)
	AlgRSAOAEP    = string(jose.RSA_OAEP)
	EncA256GCM    = string(jose.A256GCM)
)

// Errors of Open; every error it returns wraps one of them.
var (
	// ErrMalformed: the body is not a compact JWE.
	ErrMalformed = errors.New("not a compact JWE")
	// ErrNotAllowed: the JWE uses an algorithm, an encryption or a header
	// that is not accepted.
	ErrNotAllowed = errors.New("JWE algorithm not accepted")
	// ErrWrongKey: the JWE names another key (kid), or none.
	ErrWrongKey = errors.New("JWE for another key")
	// ErrUndecryptable: the content key did not unwrap or the content did
	// not decrypt: encrypted to another key, or altered.
	ErrUndecryptable = errors.New("JWE does not decrypt")
	// ErrKey: the key failed for another reason than the ciphertext (the
	// HSM is unavailable, the context ended); try again.
	ErrKey = errors.New("the decryption key failed")
)

// Key is the private key: a crypto.Decrypter whose Decrypt takes
// *rsa.OAEPOptions and fails with an error matching rsa.ErrDecryption on a
// ciphertext it does not open (hsm.Decrypter; *rsa.PrivateKey).
type Key = crypto.Decrypter

// ContextKey is a Key whose decryption honours a context (hsm.Decrypter).
type ContextKey interface {
	DecryptContext(ctx context.Context, msg []byte, opts crypto.DecrypterOpts) ([]byte, error)
}

// Opener opens JWEs encrypted to one key.
type Opener struct {
	key  Key
	pub  *rsa.PublicKey
	kid  string
	alg  string
	hash crypto.Hash
}

// New returns an Opener for key (RSA, at least 2048 bits) with the key
// algorithm alg (AlgRSAOAEP256 or AlgRSAOAEP). The key's kid is its RFC
// 7638 thumbprint.
func New(key Key, alg string) (*Opener, error) {
	pub, ok := key.Public().(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: the key is %T, not RSA", ErrNotAllowed, key.Public())
	}
	if pub.N.BitLen() < 2048 {
		return nil, fmt.Errorf("%w: an RSA key of %d bits (want 2048 or more)", ErrNotAllowed, pub.N.BitLen())
	}
	o := &Opener{key: key, pub: pub, alg: alg}
	switch alg {
	case AlgRSAOAEP256:
		o.hash = crypto.SHA256
	case AlgRSAOAEP:
		o.hash = crypto.SHA1
	default:
		return nil, fmt.Errorf("%w: key algorithm %q (want %s or %s)", ErrNotAllowed, alg, AlgRSAOAEP256, AlgRSAOAEP)
	}
	kid, err := Thumbprint(pub)
	if err != nil {
		return nil, err
	}
	o.kid = kid
	return o, nil
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of pub, base64url: the kid
// egate gives the key.
func Thumbprint(pub *rsa.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// KID is the key's id, as the JWKS publishes it.
func (o *Opener) KID() string { return o.kid }

// Alg is the key algorithm accepted.
func (o *Opener) Alg() string { return o.alg }

// JWKS is the public key as a JSON Web Key Set: one RSA key with use
// "enc", the alg accepted and the kid.
func (o *Opener) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: o.pub, KeyID: o.kid, Use: "enc", Algorithm: o.alg}}}
}

// maxCompact bounds a compact JWE (the HTTP body limit bounds it first).
const maxCompact = 256 << 10

// Open decrypts a compact JWE and returns its plaintext.
func (o *Opener) Open(ctx context.Context, compact []byte) ([]byte, error) {
	s := strings.TrimSpace(string(compact))
	if len(s) > maxCompact {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxCompact)
	}
	h, err := o.header(s)
	if err != nil {
		return nil, err
	}
	if h.Alg != o.alg {
		return nil, fmt.Errorf("%w: alg %q (this key takes %s only)", ErrNotAllowed, h.Alg, o.alg)
	}
	if h.Enc != EncA256GCM {
		return nil, fmt.Errorf("%w: enc %q (want %s)", ErrNotAllowed, h.Enc, EncA256GCM)
	}
	if h.Zip != nil {
		return nil, fmt.Errorf("%w: compressed content (zip) is not accepted", ErrNotAllowed)
	}
	if h.Crit != nil {
		return nil, fmt.Errorf("%w: critical header parameters (crit) are not accepted", ErrNotAllowed)
	}
	if h.KID == "" {
		return nil, fmt.Errorf("%w: the JWE header names no kid; encrypt to the key published at /keys/encryption and name its kid %s", ErrWrongKey, o.kid)
	}
	if h.KID != o.kid {
		return nil, fmt.Errorf("%w: the JWE is encrypted to kid %q, not to egate's key %s (published at /keys/encryption)", ErrWrongKey, clip(h.KID), o.kid)
	}
	obj, err := jose.ParseEncryptedCompact(s, []jose.KeyAlgorithm{jose.KeyAlgorithm(o.alg)}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, joseProblem(err))
	}
	u := &unwrapper{o: o, ctx: ctx}
	pt, err := obj.Decrypt(u)
	if u.err != nil && !errors.Is(u.err, rsa.ErrDecryption) {
		return nil, fmt.Errorf("%w: %w", ErrKey, u.err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: it was encrypted to another key, or altered", ErrUndecryptable)
	}
	return pt, nil
}

// header is the protected header, read before go-jose parses the whole, to
// name what is wrong.
type header struct {
	Alg  string          `json:"alg"`
	Enc  string          `json:"enc"`
	KID  string          `json:"kid"`
	Zip  json.RawMessage `json:"zip"`
	Crit json.RawMessage `json:"crit"`
}

func (o *Opener) header(s string) (header, error) {
	var h header
	if strings.HasPrefix(s, "{") {
		return h, fmt.Errorf("%w: the JSON serialization is not accepted; send the compact one", ErrMalformed)
	}
	parts := strings.Split(s, ".")
	if len(parts) != 5 {
		return h, fmt.Errorf("%w: %d parts separated by dots (a compact JWE has 5; a JWS has 3)", ErrMalformed, len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return h, fmt.Errorf("%w: the protected header is not base64url", ErrMalformed)
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return h, fmt.Errorf("%w: the protected header is not a JSON object with string alg, enc and kid", ErrMalformed)
	}
	return h, nil
}

// unwrapper is go-jose's OpaqueKeyDecrypter for one Open: it unwraps the
// content key with the Key, and keeps the Key's error, which go-jose
// flattens.
type unwrapper struct {
	o   *Opener
	ctx context.Context
	err error
}

var _ jose.OpaqueKeyDecrypter = (*unwrapper)(nil)

func (u *unwrapper) DecryptKey(encryptedKey []byte, h jose.Header) ([]byte, error) {
	if h.Algorithm != u.o.alg {
		u.err = fmt.Errorf("%w: alg %q", rsa.ErrDecryption, h.Algorithm)
		return nil, u.err
	}
	opts := &rsa.OAEPOptions{Hash: u.o.hash}
	var cek []byte
	if ck, ok := u.o.key.(ContextKey); ok {
		cek, u.err = ck.DecryptContext(u.ctx, encryptedKey, opts)
	} else {
		cek, u.err = u.o.key.Decrypt(rand.Reader, encryptedKey, opts)
	}
	return cek, u.err
}

func joseProblem(err error) string {
	s := strings.TrimPrefix(err.Error(), "go-jose/go-jose: ")
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Seal encrypts plaintext to the public key jwk (as /keys/encryption
// publishes it: RSA, use "enc", alg RSA-OAEP-256 or RSA-OAEP, a kid) with
// A256GCM, and returns the compact JWE, kid in its header.
func Seal(jwk jose.JSONWebKey, plaintext []byte) (string, error) {
	pub, ok := jwk.Key.(*rsa.PublicKey)
	if !ok {
		return "", fmt.Errorf("%w: the key is %T, not an RSA public key", ErrNotAllowed, jwk.Key)
	}
	if jwk.Use != "" && jwk.Use != "enc" {
		return "", fmt.Errorf("%w: the key's use is %q, not enc", ErrNotAllowed, jwk.Use)
	}
	if jwk.Algorithm != AlgRSAOAEP256 && jwk.Algorithm != AlgRSAOAEP {
		return "", fmt.Errorf("%w: the key's alg is %q (want %s or %s)", ErrNotAllowed, jwk.Algorithm, AlgRSAOAEP256, AlgRSAOAEP)
	}
	if jwk.KeyID == "" {
		return "", fmt.Errorf("%w: the key has no kid", ErrWrongKey)
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.KeyAlgorithm(jwk.Algorithm), Key: pub, KeyID: jwk.KeyID}, nil)
	if err != nil {
		return "", err
	}
	obj, err := enc.Encrypt(plaintext)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}
