package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"io"
)

// Signer is an HSM signing key: crypto11's crypto.Signer for the key pair,
// behind egate's checks, context and session recovery. It is safe for
// concurrent use; each Sign borrows one session of crypto11's pool.
type Signer struct {
	s   *Service
	key Key
	pub crypto.PublicKey
}

var _ crypto.Signer = (*Signer)(nil)

// Signer returns the signing key named by ref (a label or a pkcs11: URI).
func (s *Service) Signer(ctx context.Context, ref string) (*Signer, error) {
	k, err := s.ResolveKey(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !k.Type.asymmetric() {
		return nil, fmt.Errorf("%w: key %q is %s, not a signing key", ErrKeyType, k.Label, typeName(k.Type))
	}
	sg := &Signer{s: s, key: k}
	err = s.c11do(ctx, func(g *c11gen) error {
		cs, err := g.signer(s.token, k)
		if err != nil {
			return err
		}
		sg.pub = cs.Public()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading signing key %q: %w", k.Label, err)
	}
	switch pub := sg.pub.(type) {
	case *ecdsa.PublicKey:
		if k.Type != KeyECDSAP256 || pub.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: public key of %q is not on P-256", ErrKeyType, k.Label)
		}
	case *rsa.PublicKey:
		if k.Type != KeyRSA2048 {
			return nil, fmt.Errorf("%w: public key of %q is RSA", ErrKeyType, k.Label)
		}
	default:
		return nil, fmt.Errorf("%w: public key of %q is %T", ErrKeyType, k.Label, pub)
	}
	return sg, nil
}

// Public returns the public half (*ecdsa.PublicKey or *rsa.PublicKey).
func (k *Signer) Public() crypto.PublicKey { return k.pub }

// Key describes the key (label, id, type, URI).
func (k *Signer) Key() Key { return k.key }

// URI returns the key's pkcs11: URI.
func (k *Signer) URI() string { return k.key.URI }

// Sign implements crypto.Signer. The rand argument is ignored: the HSM draws
// its own randomness.
func (k *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.SignContext(context.Background(), digest, opts)
}

// SignContext is Sign with a context that bounds the wait for a session.
// An ECDSA signature is ASN.1 DER (as crypto/ecdsa makes); an RSA one is
// PKCS#1 v1.5, or PSS when opts is *rsa.PSSOptions.
func (k *Signer) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil {
		opts = crypto.SHA256
	}
	if h := opts.HashFunc(); h != 0 && len(digest) != h.Size() {
		return nil, fmt.Errorf("signing with %q: digest is %d bytes, %v wants %d", k.key.Label, len(digest), h, h.Size())
	}
	if k.key.Type == KeyRSA2048 {
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			o, err := pssOptions(pss, opts.HashFunc(), k.pub.(*rsa.PublicKey))
			if err != nil {
				return nil, fmt.Errorf("signing with %q: %w", k.key.Label, err)
			}
			opts = o
		} else if _, ok := digestInfoPrefix[opts.HashFunc()]; !ok {
			return nil, fmt.Errorf("signing with %q: hash %v is not supported for RSA PKCS#1 v1.5", k.key.Label, opts.HashFunc())
		}
	}
	var sig []byte
	err := k.s.c11do(ctx, func(g *c11gen) error {
		cs, err := g.signer(k.s.token, k.key)
		if err != nil {
			return err
		}
		sig, err = cs.Sign(nil, digest, opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("signing with %q: %w", k.key.Label, err)
	}
	return sig, nil
}

var digestInfoPrefix = map[crypto.Hash][]byte{
	0:             {},
	crypto.SHA1:   {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
	crypto.SHA224: {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c},
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

var pssHashes = map[crypto.Hash]bool{crypto.SHA1: true, crypto.SHA224: true, crypto.SHA256: true, crypto.SHA384: true, crypto.SHA512: true}

// pssOptions resolves the salt length to the number crypto11 wants (it
// refuses rsa.PSSSaltLengthAuto): Auto is the largest salt the key allows,
// as crypto/rsa signs it.
func pssOptions(o *rsa.PSSOptions, h crypto.Hash, pub *rsa.PublicKey) (*rsa.PSSOptions, error) {
	if !pssHashes[h] {
		return nil, fmt.Errorf("hash %v is not supported for RSA-PSS", h)
	}
	salt := o.SaltLength
	switch salt {
	case rsa.PSSSaltLengthEqualsHash:
		salt = h.Size()
	case rsa.PSSSaltLengthAuto:
		salt = (pub.N.BitLen()-1+7)/8 - 2 - h.Size()
	}
	if salt < 0 {
		return nil, fmt.Errorf("bad PSS salt length %d", o.SaltLength)
	}
	return &rsa.PSSOptions{SaltLength: salt, Hash: h}, nil
}
