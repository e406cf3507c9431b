package oidcop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// signingKey turns any crypto.Signer holding a P-256 key (an HSM key in
// production) into the ES256 key the provider signs ID and access tokens
// with. The private key never leaves the signer: go-jose sees it as an
// OpaqueSigner.
type signingKey struct {
	signer crypto.Signer
	pub    *ecdsa.PublicKey
	kid    string
}

var (
	_                    op.SigningKey     = (*signingKey)(nil)
	_                    jose.OpaqueSigner = (*opaque)(nil)
	_                    op.Key            = (*publicKey)(nil)
	errNotP256                             = errors.New("the signing key must be an ECDSA P-256 key (ES256)")
	errSignatureEncoding                   = errors.New("signer returned a malformed ECDSA signature")
)

func newSigningKey(s crypto.Signer, kid string) (*signingKey, error) {
	if s == nil {
		return nil, errors.New("no signing key")
	}
	pub, ok := s.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errNotP256
	}
	if kid == "" {
		return nil, errors.New("the signing key needs a key id")
	}
	return &signingKey{signer: s, pub: pub, kid: kid}, nil
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k *signingKey) Key() any                                    { return &opaque{k} }
func (k *signingKey) ID() string                                  { return k.kid }

type opaque struct{ k *signingKey }

func (o *opaque) Public() *jose.JSONWebKey {
	return &jose.JSONWebKey{Key: o.k.pub, KeyID: o.k.kid, Algorithm: string(jose.ES256), Use: "sig"}
}
func (o *opaque) Algs() []jose.SignatureAlgorithm { return []jose.SignatureAlgorithm{jose.ES256} }

// SignPayload signs SHA-256(payload) and returns the JWS form r || s.
func (o *opaque) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if alg != jose.ES256 {
		return nil, fmt.Errorf("algorithm %s not supported", alg)
	}
	d := sha256.Sum256(payload)
	der, err := o.k.signer.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing token: %w", err)
	}
	var sig struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) != 0 || sig.R == nil || sig.S == nil {
		return nil, errSignatureEncoding
	}
	out := make([]byte, 64)
	if sig.R.BitLen() > 256 || sig.S.BitLen() > 256 {
		return nil, errSignatureEncoding
	}
	sig.R.FillBytes(out[:32])
	sig.S.FillBytes(out[32:])
	return out, nil
}

type publicKey struct{ k *signingKey }

func (p *publicKey) ID() string                         { return p.k.kid }
func (p *publicKey) Algorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (p *publicKey) Use() string                        { return "sig" }
func (p *publicKey) Key() any                           { return p.k.pub }
