package hsm

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/egate-bank/egate/devices/p11"
	"github.com/miekg/pkcs11"
)

// Transport keys: a vendor encrypts token seeds to the bank (PSKC, RFC 6030
// §6.1 with a pre-shared AES key, §6.3 with the bank's RSA public key). With
// the transport key in the HSM, ImportSecret unwraps each seed there
// (C_UnwrapKey), checks the file's MAC there, and lets it out only wrapped
// by the storage key: the seed is never in egate's memory in clear.
//
// The unwrapped seed is a session object that is sensitive and
// extractable only under a trusted key (CKA_WRAP_WITH_TRUSTED): the storage
// key must be a seed-wrap key (KeySeedWrap, seed.go: its unwrap template
// lets the seed back in only as a sensitive, never extractable, sign-only
// key) that carries CKA_TRUSTED, which only the token's security officer
// can set (TrustedSeedWrapKeyAttributes). On SoftHSM2 the security officer
// can create only public objects, so there the trusted seed-wrap key is a
// public object (see hsmtest).
//
// What SoftHSM2 2.6 can do: C_UnwrapKey with CKM_RSA_PKCS and
// CKM_RSA_PKCS_OAEP, but not with CKM_AES_CBC_PAD (CKR_MECHANISM_INVALID):
// there an AES-encrypted file cannot be unwrapped in the HSM, and
// ImportSecret says so (ErrTransportUnsupported).

// TransportAlg is how a value was encrypted to the transport key.
type TransportAlg int

// Transport algorithms (xmlenc names in the comments).
const (
	TransportAESCBC   TransportAlg = iota + 1 // aes128-cbc, aes192-cbc, aes256-cbc: IV ‖ ciphertext, PKCS#7 padding
	TransportRSAPKCS1                         // rsa-1_5
	TransportRSAOAEP                          // rsa-oaep-mgf1p: OAEP with SHA-1 and MGF1-SHA-1
)

func (a TransportAlg) String() string {
	switch a {
	case TransportAESCBC:
		return "AES-CBC"
	case TransportRSAPKCS1:
		return "RSA PKCS#1 v1.5"
	case TransportRSAOAEP:
		return "RSA-OAEP"
	}
	return fmt.Sprintf("TransportAlg(%d)", int(a))
}

// Errors of the transport path.
var (
	// ErrTransportUnsupported: the HSM cannot unwrap with the mechanism
	// the file needs.
	ErrTransportUnsupported = errors.New("the HSM cannot unwrap this transport encryption")
	// ErrTransportDecrypt: the HSM refused the ciphertext (wrong transport
	// key or damaged value).
	ErrTransportDecrypt = errors.New("the transport key does not decrypt the value")
	// ErrTransportMAC: the value's MAC does not match.
	ErrTransportMAC = errors.New("the value MAC does not match (checked in the HSM)")
	// ErrUntrustedWrapKey: the storage key may not wrap seeds unwrapped in
	// the HSM because it is not CKA_TRUSTED.
	ErrUntrustedWrapKey = errors.New("the storage wrap key is not trusted (CKA_TRUSTED)")
)

// TransportValue is one encrypted value of a vendor file.
type TransportValue struct {
	Alg        TransportAlg
	Ciphertext []byte // AES-CBC: IV ‖ ciphertext; RSA: the RSA block
	// MACKey is the file's MAC key, encrypted like the value (nil: no MAC
	// to check); MAC is the value's MAC over Ciphertext with MACHash.
	MACKey  []byte
	MACHash crypto.Hash
	MAC     []byte
}

// ImportedSecret is a seed unwrapped in the HSM, as it leaves it.
type ImportedSecret struct {
	// Wrapped is the seed wrapped by the storage key, in WrapSecret's
	// format (HMACWrapped uses it).
	Wrapped []byte
	// Len is the seed's length in bytes when LenExact; otherwise the HSM
	// did not report CKA_VALUE_LEN of the unwrapped key (SoftHSM2 does
	// not) and Len is its length rounded up to 8 bytes (RFC 5649), an
	// upper bound.
	Len      int
	LenExact bool
}

// ImportSecret unwraps v with the transport key transportRef (a label or a
// pkcs11: URI naming a secret key for AES-CBC, a private key for RSA)
// inside the HSM, checks its MAC there when v has one, and returns it
// wrapped by the AES key storageLabel.
func (s *Service) ImportSecret(ctx context.Context, transportRef, storageLabel string, v TransportValue) (ImportedSecret, error) {
	var out ImportedSecret
	mech, class, err := transportMech(v.Alg, v.Ciphertext)
	if err != nil {
		return out, err
	}
	err = s.do(ctx, func(sh pkcs11.SessionHandle) error {
		tk, err := s.transportHandle(sh, transportRef, class)
		if err != nil {
			return err
		}
		sk, err := s.seedWrapKey(sh, storageLabel)
		if err != nil {
			return err
		}
		if len(v.MACKey) > 0 {
			if err := s.checkTransportMAC(sh, tk, v); err != nil {
				return err
			}
		}
		m, body, err := transportMechanism(mech, v.Ciphertext)
		if err != nil {
			return err
		}
		seed, err := s.p.UnwrapKey(sh, m, tk, body, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP_WITH_TRUSTED, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
			pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
		})
		if err != nil {
			return transportError(err, v.Alg, "unwrapping the value")
		}
		defer s.p.DestroyObject(sh, seed)
		a, err := s.p.GetAttributeValue(sh, seed, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, nil)})
		if err != nil {
			return fmt.Errorf("reading the unwrapped value's length: %w", err)
		}
		out.Len = int(bytesToUint(a[0].Value))
		out.LenExact = out.Len > 0
		w, err := s.p.WrapKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}, sk, seed)
		if p11.IsRV(err, pkcs11.CKR_KEY_NOT_WRAPPABLE) {
			return fmt.Errorf("%w: %q may not wrap a seed that was unwrapped in the HSM (CKA_WRAP_WITH_TRUSTED): the token's security officer must make a seed-wrap key with CKA_TRUSTED (hsm.TrustedSeedWrapKeyAttributes) and the import name it", ErrUntrustedWrapKey, storageLabel)
		}
		if err != nil {
			return fmt.Errorf("wrapping the value with %q: %w", storageLabel, err)
		}
		out.Wrapped = append([]byte{wrapV1KeyWrapPad}, w...)
		if !out.LenExact && len(w) >= 16 {
			out.Len = len(w) - 8 // RFC 5649: 8-byte integrity block, then the padded key
		}
		return nil
	})
	if err != nil {
		return ImportedSecret{}, fmt.Errorf("importing a secret with transport key %q: %w", transportRef, err)
	}
	return out, nil
}

// DecryptTransport decrypts a value that is not a seed (a PIN, a counter)
// with the transport key (C_Decrypt; the key needs CKA_DECRYPT), checking
// its MAC in the HSM first when v has one.
func (s *Service) DecryptTransport(ctx context.Context, transportRef string, v TransportValue) ([]byte, error) {
	mech, class, err := transportMech(v.Alg, v.Ciphertext)
	if err != nil {
		return nil, err
	}
	var pt []byte
	err = s.do(ctx, func(sh pkcs11.SessionHandle) error {
		tk, err := s.transportHandle(sh, transportRef, class)
		if err != nil {
			return err
		}
		if len(v.MACKey) > 0 {
			if err := s.checkTransportMAC(sh, tk, v); err != nil {
				return err
			}
		}
		m, body, err := transportMechanism(mech, v.Ciphertext)
		if err != nil {
			return err
		}
		if err := s.p.DecryptInit(sh, m, tk); err != nil {
			return transportError(err, v.Alg, "decrypting the value")
		}
		pt, err = s.p.Decrypt(sh, body)
		if err != nil {
			return transportError(err, v.Alg, "decrypting the value")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("decrypting with transport key %q: %w", transportRef, err)
	}
	return pt, nil
}

// checkTransportMAC unwraps the file's MAC key (encrypted like the value)
// into a session key that can only verify, and checks the value's MAC
// with it: the MAC key never leaves the HSM either.
func (s *Service) checkTransportMAC(sh pkcs11.SessionHandle, tk pkcs11.ObjectHandle, v TransportValue) error {
	hm, ok := hmacMechs[v.MACHash]
	if !ok {
		return fmt.Errorf("%w: MAC hash %v (want SHA-1, SHA-256 or SHA-512)", ErrTransportUnsupported, v.MACHash)
	}
	mech, _, err := transportMech(v.Alg, v.MACKey)
	if err != nil {
		return err
	}
	m, body, err := transportMechanism(mech, v.MACKey)
	if err != nil {
		return err
	}
	mk, err := s.p.UnwrapKey(sh, m, tk, body, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP_WITH_TRUSTED, true),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
	})
	if err != nil {
		return transportError(err, v.Alg, "unwrapping the MAC key")
	}
	defer s.p.DestroyObject(sh, mk)
	vm := []*pkcs11.Mechanism{pkcs11.NewMechanism(hm, nil)}
	if vp, ok := s.p.(verifier); ok {
		if err := vp.VerifyInit(sh, vm, mk); err != nil {
			return fmt.Errorf("checking the value MAC: %w", err)
		}
		err := vp.Verify(sh, v.Ciphertext, v.MAC)
		if p11.IsRV(err, pkcs11.CKR_SIGNATURE_INVALID) || p11.IsRV(err, pkcs11.CKR_SIGNATURE_LEN_RANGE) {
			return ErrTransportMAC
		}
		if err != nil {
			return fmt.Errorf("checking the value MAC: %w", err)
		}
		return nil
	}
	return fmt.Errorf("%w: the PKCS#11 binding has no C_Verify", ErrTransportUnsupported)
}

// verifier is the part of miekg/pkcs11 that checks a MAC in the HSM.
type verifier interface {
	VerifyInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, o pkcs11.ObjectHandle) error
	Verify(sh pkcs11.SessionHandle, data []byte, signature []byte) error
}

// transportMech checks the shape of a ciphertext and names the mechanism
// and the class of the key that opens it.
func transportMech(a TransportAlg, ct []byte) (uint, uint, error) {
	switch a {
	case TransportAESCBC:
		if len(ct) < 32 || len(ct)%16 != 0 {
			return 0, 0, fmt.Errorf("%w: AES-CBC value of %d bytes (want the IV and whole blocks)", ErrTransportDecrypt, len(ct))
		}
		return pkcs11.CKM_AES_CBC_PAD, pkcs11.CKO_SECRET_KEY, nil
	case TransportRSAPKCS1, TransportRSAOAEP:
		if len(ct) < 64 {
			return 0, 0, fmt.Errorf("%w: RSA value of %d bytes", ErrTransportDecrypt, len(ct))
		}
		if a == TransportRSAOAEP {
			return pkcs11.CKM_RSA_PKCS_OAEP, pkcs11.CKO_PRIVATE_KEY, nil
		}
		return pkcs11.CKM_RSA_PKCS, pkcs11.CKO_PRIVATE_KEY, nil
	}
	return 0, 0, fmt.Errorf("%w: %v", ErrTransportUnsupported, a)
}

// transportMechanism builds the mechanism (with the IV or the OAEP
// parameters) and the bytes the HSM is given.
func transportMechanism(mech uint, ct []byte) ([]*pkcs11.Mechanism, []byte, error) {
	switch mech {
	case pkcs11.CKM_AES_CBC_PAD:
		return []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, ct[:16])}, ct[16:], nil
	case pkcs11.CKM_RSA_PKCS_OAEP:
		return []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, pkcs11.NewOAEPParams(pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, pkcs11.CKZ_DATA_SPECIFIED, nil))}, ct, nil
	}
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, ct, nil
}

// transportError names what the HSM refused.
func transportError(err error, a TransportAlg, what string) error {
	switch {
	case p11.IsRV(err, pkcs11.CKR_MECHANISM_INVALID), p11.IsRV(err, pkcs11.CKR_MECHANISM_PARAM_INVALID):
		return fmt.Errorf("%w: %s: this HSM does not unwrap with %v (SoftHSM2 2.6 cannot with AES-CBC): ask the vendor for an RSA-encrypted file (RFC 6030 §6.3), or import without the HSM transport key", ErrTransportUnsupported, what, a)
	case p11.IsRV(err, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED), p11.IsRV(err, pkcs11.CKR_KEY_TYPE_INCONSISTENT):
		return fmt.Errorf("%w: %s: the transport key may not do this (%v): it needs CKA_UNWRAP (seeds) and CKA_DECRYPT (PINs, counters)", ErrTransportUnsupported, what, err)
	case p11.IsRV(err, pkcs11.CKR_WRAPPED_KEY_INVALID), p11.IsRV(err, pkcs11.CKR_WRAPPED_KEY_LEN_RANGE), p11.IsRV(err, pkcs11.CKR_ENCRYPTED_DATA_INVALID),
		p11.IsRV(err, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE), p11.IsRV(err, pkcs11.CKR_GENERAL_ERROR), p11.IsRV(err, pkcs11.CKR_DATA_LEN_RANGE):
		return fmt.Errorf("%w: %s: wrong transport key, or the value was altered", ErrTransportDecrypt, what)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// transportHandle finds the transport key: by label, or by a pkcs11: URI's
// object (and id, when the URI has one) on this service's token.
func (s *Service) transportHandle(sh pkcs11.SessionHandle, ref string, class uint) (pkcs11.ObjectHandle, error) {
	return s.refHandle(sh, ref, class, "transport key")
}

// TransportPublicKey is the RSA public key of the transport private key
// ref, to compare with the certificate a vendor encrypted to.
func (s *Service) TransportPublicKey(ctx context.Context, ref string) (*rsa.PublicKey, error) {
	var pub *rsa.PublicKey
	err := s.do(ctx, func(sh pkcs11.SessionHandle) error {
		h, err := s.transportHandle(sh, ref, pkcs11.CKO_PRIVATE_KEY)
		if err != nil {
			return err
		}
		a, err := s.p.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil), pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil)})
		if err != nil {
			return fmt.Errorf("reading the transport key's modulus: %w", err)
		}
		e := new(big.Int).SetBytes(a[1].Value)
		if !e.IsInt64() || e.Int64() > 1<<31 {
			return fmt.Errorf("%w: transport key exponent", ErrKeyType)
		}
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(a[0].Value), E: int(e.Int64())}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("transport key %q: %w", ref, err)
	}
	return pub, nil
}

// transportUnwrapAttrs are what every key a transport key unwraps must be
// (its CKA_UNWRAP_TEMPLATE): a sensitive secret that may leave the HSM only
// wrapped by a trusted key (the SO's seed-wrap key), that derives nothing
// and whose attributes cannot change. So the PIN holder cannot unwrap a
// seed from a vendor file as a readable or freely extractable key.
// ImportSecret's templates agree with it.
func transportUnwrapAttrs() []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP_WITH_TRUSTED, true),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
	}
}

// GenerateTransportKey makes an RSA-2048 key pair for vendors to encrypt
// token seeds to (RFC 6030 §6.3) and returns its public key. The private
// half is sensitive, never extractable, and unwraps only into keys of
// transportUnwrapAttrs (CKA_UNWRAP_TEMPLATE). allowDecrypt gives it
// CKA_DECRYPT too, for files whose PINs or counters are encrypted: C_Decrypt
// then also opens a seed encrypted to it, for anyone holding the HSM PIN,
// so without it such values are refused and the key only unwraps. An
// existing key of that label is an error.
func (s *Service) GenerateTransportKey(ctx context.Context, label string, allowDecrypt bool) (*rsa.PublicKey, error) {
	if err := checkLabel(label); err != nil {
		return nil, err
	}
	tmpl, release, err := attrArray(pkcs11.CKA_UNWRAP_TEMPLATE, transportUnwrapAttrs())
	if err != nil {
		return nil, err
	}
	defer release()
	g, ok := s.p.(interface {
		GenerateKeyPair(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, public, private []*pkcs11.Attribute) (pkcs11.ObjectHandle, pkcs11.ObjectHandle, error)
	})
	if !ok {
		return nil, fmt.Errorf("%w: the PKCS#11 binding cannot generate key pairs", ErrTransportUnsupported)
	}
	err = s.do(ctx, func(sh pkcs11.SessionHandle) error {
		if _, err := s.handle(sh, pkcs11.CKO_PRIVATE_KEY, label); err == nil {
			return fmt.Errorf("%w: a private key labelled %q already exists", ErrKeyType, label)
		} else if !errors.Is(err, ErrKeyNotFound) {
			return err
		}
		s.handles.Delete(handleKey{pkcs11.CKO_PRIVATE_KEY, label})
		_, _, err := g.GenerateKeyPair(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
				pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, 2048),
				pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
				pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
				pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
				pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
			},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
				pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
				pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
				pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
				pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, allowDecrypt),
				pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
				pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
				pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
				tmpl,
			})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("generating transport key %q: %w", label, err)
	}
	return s.TransportPublicKey(ctx, label)
}

// TrustedSeedWrapKeyAttributes is the template of a seed-wrap key (the
// attributes of KeySeedWrap, with its unwrap template) that carries
// CKA_TRUSTED, for the token's security officer to generate (C_GenerateKey,
// CKM_AES_KEY_GEN) under label: the storage key of ImportSecret. private
// is CKA_PRIVATE (SoftHSM2 lets the SO make public objects only). Call
// release after C_GenerateKey returns.
func TrustedSeedWrapKeyAttributes(label string, private bool) (attrs []*pkcs11.Attribute, release func(), err error) {
	base, release, err := seedWrapKeyAttrs()
	if err != nil {
		return nil, nil, err
	}
	return append([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, private),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_TRUSTED, true),
	}, base...), release, nil
}
