package hsm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// PINKeyPrefix starts the label of an ATM PIN pad's key (a terminal PIN
// key): PINKeyPrefix + the ATM id.
const PINKeyPrefix = "egate-atm-tpk-"

// PINKeyLabel is the label of the PIN pad key of an ATM.
func PINKeyLabel(atmID string) string { return PINKeyPrefix + atmID }

// ImportPINKey stores an ATM PIN pad's AES key (16, 24 or 32 bytes) as a
// token object named label: sensitive, never extractable, unmodifiable,
// decrypt only (ECB, for ISO 9564 format 4 blocks). The same key is loaded
// into the PIN pad at installation (the key ceremony); from then on only
// the HSM holds the host's copy. A key already under label is kept and
// returned as it is (its value cannot be read to compare): replacing an
// ATM's key is deleting it first.
func (s *Service) ImportPINKey(ctx context.Context, label string, key []byte) (Key, error) {
	if n := len(key); n != 16 && n != 24 && n != 32 {
		return Key{}, fmt.Errorf("%w: a PIN pad key is an AES key of 16, 24 or 32 bytes, not %d", ErrKeyType, n)
	}
	if label == "" {
		return Key{}, fmt.Errorf("%w: a PIN pad key needs a label", ErrKeyType)
	}
	var out Key
	err := s.do(ctx, func(sh pkcs11.SessionHandle) error {
		if _, err := s.handle(sh, pkcs11.CKO_SECRET_KEY, label); err == nil {
			k, err := s.describeByLabel(sh, label)
			out = k
			return err
		} else if !isNotFound(err) {
			return err
		}
		id := make([]byte, 16)
		rand.Read(id)
		_, err := s.p.CreateObject(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
			pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
			pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, key),
		})
		if err != nil {
			return err
		}
		out = s.keyOf(label, id, KeyAES256)
		return nil
	})
	if err != nil {
		return Key{}, fmt.Errorf("importing PIN pad key %q: %w", label, err)
	}
	return out, nil
}

// ErrPINBlockKey is a PIN block that the named key cannot open (another
// key, a damaged block). It never carries the block or a digit.
var ErrPINBlockKey = errors.New("the PIN block does not open under this PIN pad key")

// DecipherPINBlock4 opens an ISO 9564-1 format 4 PIN block in the HSM:
// AES-ECB decryption under the PIN pad key keyRef, XOR of panField (the
// account's format 4 PAN field, atm.PANField4), decryption again. It
// returns the plain PIN field (atm.ParsePINField4 reads it); the caller
// clears it as soon as the PIN is checked. The key never leaves the HSM.
func (s *Service) DecipherPINBlock4(ctx context.Context, keyRef string, block, panField [16]byte) ([16]byte, error) {
	var f [16]byte
	m := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_ECB, nil)}
	err := s.do(ctx, func(sh pkcs11.SessionHandle) error {
		h, err := s.refHandle(sh, keyRef, pkcs11.CKO_SECRET_KEY, "PIN pad key")
		if err != nil {
			return err
		}
		if err := s.p.DecryptInit(sh, m, h); err != nil {
			return err
		}
		x, err := s.p.Decrypt(sh, block[:])
		if err != nil {
			return err
		}
		if len(x) != 16 {
			return ErrPINBlockKey
		}
		for i := range x {
			x[i] ^= panField[i]
		}
		if err := s.p.DecryptInit(sh, m, h); err != nil {
			return err
		}
		y, err := s.p.Decrypt(sh, x)
		clear(x)
		if err != nil {
			return err
		}
		if len(y) != 16 {
			return ErrPINBlockKey
		}
		copy(f[:], y)
		clear(y)
		return nil
	})
	if err != nil {
		return f, fmt.Errorf("opening a PIN block with %q: %w", keyRef, err)
	}
	return f, nil
}
