package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // OAEPHash's probe
	_ "crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"

	"github.com/egate-bank/egate/devices/p11"
	"github.com/miekg/pkcs11"
)

// ErrDecrypt: the HSM did not decrypt the ciphertext (it was made for
// another key, or altered). The message never says which, so that no
// caller becomes a padding oracle. It matches rsa.ErrDecryption, as the
// standard library's keys fail.
var ErrDecrypt = fmt.Errorf("%w: the HSM key does not decrypt this ciphertext", rsa.ErrDecryption)

// ErrOAEPHash: the HSM does not do RSA-OAEP with the hash asked for
// (SoftHSM2 2.6 does SHA-1 only).
var ErrOAEPHash = errors.New("the HSM does not do RSA-OAEP with this hash")

// Decrypter is an HSM decryption key (KeyRSA2048Decrypt): RSA-OAEP
// computed in the HSM through C_Decrypt, the private key never out of it.
// It is a crypto.Decrypter, safe for concurrent use; each Decrypt borrows
// one session.
type Decrypter struct {
	s   *Service
	key Key
	pub *rsa.PublicKey
	// oaep is the OAEP hash the HSM does, found once by OAEPHash.
	oaepMu sync.Mutex
	oaep   crypto.Hash
}

var _ crypto.Decrypter = (*Decrypter)(nil)

// Decrypter returns the decryption key named by ref (a label or a pkcs11:
// URI), which must be a KeyRSA2048Decrypt key.
func (s *Service) Decrypter(ctx context.Context, ref string) (*Decrypter, error) {
	k, err := s.ResolveKey(ctx, ref)
	if err != nil {
		return nil, err
	}
	if k.Type != KeyRSA2048Decrypt {
		return nil, fmt.Errorf("%w: key %q is %s, not %s: egate admin hsm init makes %s", ErrKeyType, k.Label, typeName(k.Type), KeyRSA2048Decrypt, LabelTxEncryption)
	}
	d := &Decrypter{s: s, key: k}
	err = s.do(ctx, func(sh pkcs11.SessionHandle) error {
		h, err := s.refHandle(sh, ref, pkcs11.CKO_PRIVATE_KEY, "decryption key")
		if err != nil {
			return err
		}
		a, err := s.p.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil), pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil)})
		if err != nil {
			return fmt.Errorf("reading the public key: %w", err)
		}
		e := new(big.Int).SetBytes(a[1].Value)
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31 {
			return fmt.Errorf("%w: the public exponent of %q", ErrKeyType, k.Label)
		}
		d.pub = &rsa.PublicKey{N: new(big.Int).SetBytes(a[0].Value), E: int(e.Int64())}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading decryption key %q: %w", k.Label, err)
	}
	return d, nil
}

// Public returns the public half, an *rsa.PublicKey.
func (d *Decrypter) Public() crypto.PublicKey { return d.pub }

// Key describes the key (label, id, type, URI).
func (d *Decrypter) Key() Key { return d.key }

// Decrypt implements crypto.Decrypter. opts must be *rsa.OAEPOptions with
// SHA-256 or SHA-1 (MGF1 with the same hash) and no label; rand is
// ignored. OAEPHash says which of the two the HSM does.
func (d *Decrypter) Decrypt(_ io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	return d.DecryptContext(context.Background(), msg, opts)
}

// DecryptContext is Decrypt with a context that bounds the wait for a
// session.
func (d *Decrypter) DecryptContext(ctx context.Context, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	o, ok := opts.(*rsa.OAEPOptions)
	if !ok || (o.Hash != crypto.SHA256 && o.Hash != crypto.SHA1) || (o.MGFHash != 0 && o.MGFHash != o.Hash) || len(o.Label) > 0 {
		return nil, fmt.Errorf("%w: key %q decrypts RSA-OAEP with SHA-256 or SHA-1 only (got %T)", ErrKeyType, d.key.Label, opts)
	}
	params := pkcs11.NewOAEPParams(pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, pkcs11.CKZ_DATA_SPECIFIED, nil)
	if o.Hash == crypto.SHA1 {
		params = pkcs11.NewOAEPParams(pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, pkcs11.CKZ_DATA_SPECIFIED, nil)
	}
	if len(msg) != (d.pub.N.BitLen()+7)/8 {
		return nil, fmt.Errorf("%w: %d bytes, not one RSA block of %q", ErrDecrypt, len(msg), d.key.Label)
	}
	var pt []byte
	s := d.s
	err := s.do(ctx, func(sh pkcs11.SessionHandle) error {
		h, err := s.refHandle(sh, d.key.URI, pkcs11.CKO_PRIVATE_KEY, "decryption key")
		if err != nil {
			return err
		}
		m := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP, params)}
		err = s.p.DecryptInit(sh, m, h)
		if p11.IsRV(err, pkcs11.CKR_ARGUMENTS_BAD, pkcs11.CKR_MECHANISM_PARAM_INVALID) {
			return fmt.Errorf("%w: %v (%v)", ErrOAEPHash, o.Hash, err)
		}
		if err != nil {
			return fmt.Errorf("C_DecryptInit with %q: %w", d.key.Label, err)
		}
		pt, err = s.p.Decrypt(sh, msg)
		if badCiphertext(err) {
			// The value's verdict, not a fault: the return value is left
			// out so that the recovery asks the token whether it still
			// answers (a general error is also what a failed padding
			// check gives on some modules) instead of reopening it.
			return fmt.Errorf("%w: %q", ErrDecrypt, d.key.Label)
		}
		if err != nil {
			return fmt.Errorf("C_Decrypt with %q: %w", d.key.Label, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pt, nil
}

// OAEPHash is the hash of the RSA-OAEP the HSM does with this key:
// crypto.SHA256 when it can, else crypto.SHA1 (SoftHSM2 2.6). It asks the
// HSM once, decrypting a random value encrypted to the key, and remembers
// the answer.
func (d *Decrypter) OAEPHash(ctx context.Context) (crypto.Hash, error) {
	d.oaepMu.Lock()
	defer d.oaepMu.Unlock()
	if d.oaep != 0 {
		return d.oaep, nil
	}
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA1} {
		probe := make([]byte, 32)
		rand.Read(probe)
		ct, err := rsa.EncryptOAEP(h.New(), rand.Reader, d.pub, probe, nil)
		if err != nil {
			return 0, err
		}
		pt, err := d.DecryptContext(ctx, ct, &rsa.OAEPOptions{Hash: h})
		if errors.Is(err, ErrOAEPHash) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if !bytes.Equal(pt, probe) {
			return 0, fmt.Errorf("%w: the HSM decrypted a probe wrongly with %q", ErrDecrypt, d.key.Label)
		}
		d.oaep = h
		return h, nil
	}
	return 0, fmt.Errorf("%w: neither SHA-256 nor SHA-1 with %q", ErrOAEPHash, d.key.Label)
}

// badCiphertext reports the return values of C_Decrypt that a ciphertext
// made for another key, or altered, gives.
func badCiphertext(err error) bool {
	return p11.IsRV(err, pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE,
		pkcs11.CKR_DATA_LEN_RANGE, pkcs11.CKR_DATA_INVALID, pkcs11.CKR_GENERAL_ERROR)
}

// isDecryptOnly reports whether the RSA private key h decrypts and neither
// signs nor unwraps (KeyRSA2048Decrypt; a transport key unwraps, a signing
// key signs).
func (s *Service) isDecryptOnly(sh pkcs11.SessionHandle, h pkcs11.ObjectHandle) bool {
	a, err := s.p.GetAttributeValue(sh, h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, nil),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, nil),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, nil),
	})
	if err != nil {
		return false
	}
	on := func(v []byte) bool { return len(v) == 1 && v[0] == 1 }
	return on(a[0].Value) && !on(a[1].Value) && !on(a[2].Value)
}
