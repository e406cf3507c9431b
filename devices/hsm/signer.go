package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/miekg/pkcs11"
)

// Signer is an HSM signing key. It is safe for concurrent use; each Sign
// borrows one session of the Service's pool.
type Signer struct {
	s    *Service
	key  Key
	pub  crypto.PublicKey
	mech []*pkcs11.Mechanism // CKM_ECDSA or CKM_RSA_PKCS; read only
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
	err = s.do(ctx, func(sh pkcs11.SessionHandle) error {
		h, err := s.handle(sh, pkcs11.CKO_PUBLIC_KEY, k.Label)
		if err != nil {
			return err
		}
		if k.Type == KeyECDSAP256 {
			a, err := s.p.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
			if err != nil {
				return err
			}
			pt := a[0].Value
			var inner []byte
			if rest, err := asn1.Unmarshal(pt, &inner); err == nil && len(rest) == 0 {
				pt = inner
			}
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
			if err != nil {
				return fmt.Errorf("public key of %q: %w", k.Label, err)
			}
			sg.pub = pub
			sg.mech = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}
			return nil
		}
		a, err := s.p.GetAttributeValue(sh, h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
		})
		if err != nil {
			return err
		}
		e := new(big.Int).SetBytes(a[1].Value)
		if !e.IsInt64() || e.Int64() > 1<<31 {
			return fmt.Errorf("public key of %q: exponent too large", k.Label)
		}
		sg.pub = &rsa.PublicKey{N: new(big.Int).SetBytes(a[0].Value), E: int(e.Int64())}
		sg.mech = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading signing key %q: %w", k.Label, err)
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
func (k *Signer) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil {
		opts = crypto.SHA256
	}
	if h := opts.HashFunc(); h != 0 && len(digest) != h.Size() {
		return nil, fmt.Errorf("signing with %q: digest is %d bytes, %v wants %d", k.key.Label, len(digest), h, h.Size())
	}
	mech := k.mech
	input := digest
	if k.key.Type == KeyRSA2048 {
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			m, err := pssMechanism(pss, opts.HashFunc(), k.pub.(*rsa.PublicKey))
			if err != nil {
				return nil, fmt.Errorf("signing with %q: %w", k.key.Label, err)
			}
			mech = m
		} else {
			prefix, ok := digestInfoPrefix[opts.HashFunc()]
			if !ok {
				return nil, fmt.Errorf("signing with %q: hash %v is not supported for RSA PKCS#1 v1.5", k.key.Label, opts.HashFunc())
			}
			input = append(append(make([]byte, 0, len(prefix)+len(digest)), prefix...), digest...)
		}
	}
	var sig []byte
	err := k.s.do(ctx, func(sh pkcs11.SessionHandle) error {
		h, err := k.s.handle(sh, pkcs11.CKO_PRIVATE_KEY, k.key.Label)
		if err != nil {
			return err
		}
		if err := k.s.p.SignInit(sh, mech, h); err != nil {
			return err
		}
		sig, err = k.s.p.Sign(sh, input)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("signing with %q: %w", k.key.Label, err)
	}
	if k.key.Type == KeyECDSAP256 {
		return ecdsaDER(sig)
	}
	return sig, nil
}

// ecdsaDER turns the PKCS#11 r||s into the ASN.1 SEQUENCE { r, s INTEGER }
// that crypto/ecdsa uses, encoded directly (it is on every signature's path).
func ecdsaDER(raw []byte) ([]byte, error) {
	if len(raw) == 0 || len(raw)%2 != 0 || len(raw) > 120 {
		return nil, errors.New("HSM returned a malformed ECDSA signature")
	}
	n := len(raw) / 2
	r, s := derUint(raw[:n]), derUint(raw[n:])
	body := 2 + len(r) + 2 + len(s)
	out := make([]byte, 0, 2+body)
	out = append(out, 0x30, byte(body), 0x02, byte(len(r)))
	out = append(out, r...)
	out = append(out, 0x02, byte(len(s)))
	return append(out, s...), nil
}

// derUint is the content octets of a DER INTEGER holding the unsigned
// big-endian b: minimal, with a leading zero when the top bit is set.
func derUint(b []byte) []byte {
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	if len(b) > 0 && b[0]&0x80 != 0 {
		return append([]byte{0}, b...)
	}
	if len(b) == 0 {
		return []byte{0}
	}
	return b
}

var digestInfoPrefix = map[crypto.Hash][]byte{
	0:             {},
	crypto.SHA1:   {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
	crypto.SHA224: {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c},
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

var pssHash = map[crypto.Hash][2]uint{
	crypto.SHA1:   {pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1},
	crypto.SHA224: {pkcs11.CKM_SHA224, pkcs11.CKG_MGF1_SHA224},
	crypto.SHA256: {pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256},
	crypto.SHA384: {pkcs11.CKM_SHA384, pkcs11.CKG_MGF1_SHA384},
	crypto.SHA512: {pkcs11.CKM_SHA512, pkcs11.CKG_MGF1_SHA512},
}

func pssMechanism(o *rsa.PSSOptions, h crypto.Hash, pub *rsa.PublicKey) ([]*pkcs11.Mechanism, error) {
	hm, ok := pssHash[h]
	if !ok {
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
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, pkcs11.NewPSSParams(hm[0], hm[1], uint(salt)))}, nil
}
