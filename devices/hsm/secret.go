package hsm

import (
	"context"
	"crypto"
	"crypto/rand"
	"fmt"

	"github.com/egate-bank/egate/devices/p11"
	"github.com/miekg/pkcs11"
)

// Sealed and wrapped blobs start with a format byte so that the format can
// change without guessing.
const (
	sealV1GCM        = 0x01 // 0x01 || 12-byte IV || AES-256-GCM ciphertext || 16-byte tag
	wrapV1KeyWrapPad = 0x01 // 0x01 || RFC 5649 AES key wrap with padding
	gcmIVLen         = 12
	gcmTagBits       = 128
	hmacPadLen       = 64 // the smallest block size of SHA-1, SHA-256, SHA-512
)

// Seal encrypts plaintext with AES-256-GCM under the HSM key keyRef (a
// label or a pkcs11: URI; see ResolveKey), computed in the HSM, binding
// aad (which must be given again to Unseal).
func (s *Service) Seal(ctx context.Context, keyRef string, plaintext, aad []byte) ([]byte, error) {
	iv := make([]byte, gcmIVLen)
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	fullAAD := append([]byte{sealV1GCM}, aad...)
	var ct []byte
	err := s.do(ctx, func(sh pkcs11.SessionHandle) error {
		h, err := s.refHandle(sh, keyRef, pkcs11.CKO_SECRET_KEY, "key")
		if err != nil {
			return err
		}
		params := pkcs11.NewGCMParams(iv, fullAAD, gcmTagBits)
		defer params.Free()
		if err := s.p.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
			return err
		}
		ct, err = s.p.Encrypt(sh, plaintext)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sealing with %q: %w", keyRef, err)
	}
	out := make([]byte, 0, 1+gcmIVLen+len(ct))
	out = append(append(append(out, sealV1GCM), iv...), ct...)
	return out, nil
}

// Unseal reverses Seal. Tampered data, another key or another aad yield
// ErrSealed.
func (s *Service) Unseal(ctx context.Context, keyRef string, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 1+gcmIVLen+gcmTagBits/8 || sealed[0] != sealV1GCM {
		return nil, fmt.Errorf("%w: unsealing with %q: not a sealed blob of a known format", ErrSealed, keyRef)
	}
	iv := sealed[1 : 1+gcmIVLen]
	fullAAD := append([]byte{sealV1GCM}, aad...)
	var pt []byte
	err := s.do(ctx, func(sh pkcs11.SessionHandle) error {
		h, err := s.refHandle(sh, keyRef, pkcs11.CKO_SECRET_KEY, "key")
		if err != nil {
			return err
		}
		params := pkcs11.NewGCMParams(iv, fullAAD, gcmTagBits)
		defer params.Free()
		if err := s.p.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
			return err
		}
		pt, err = s.p.Decrypt(sh, sealed[1+gcmIVLen:])
		// SoftHSM2 reports a failed GCM tag check as CKR_GENERAL_ERROR.
		if p11.IsRV(err, pkcs11.CKR_ENCRYPTED_DATA_INVALID) || p11.IsRV(err, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE) || p11.IsRV(err, pkcs11.CKR_GENERAL_ERROR) {
			return fmt.Errorf("%w: authentication failed (tampered data, another key or another context)", ErrSealed)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("unsealing with %q: %w", keyRef, err)
	}
	return pt, nil
}

// MaxSecretLen bounds a wrapped secret (an OTP seed is 16 to 64 bytes).
const MaxSecretLen = 4096

// WrapSecret brings secret into the HSM as a temporary session key and lets
// it out only wrapped (RFC 5649 AES key wrap with padding, C_WrapKey) by
// wrapKeyRef (a label or a pkcs11: URI), which must be a seed-wrap key
// (KeySeedWrap; otherwise ErrKeyType, and nothing is wrapped). The result can be stored anywhere:
// the seed-wrap key's unwrap template lets it back into the HSM only as a
// sensitive, non-extractable, sign-only key, which is what HMACWrapped
// makes of it.
//
// Why this path: the seed must enter the HSM once, in the clear, and C_WrapKey
// is the only way a module lets a key out encrypted under a key that
// cannot decrypt. The session key is created sensitive (its CKA_VALUE is
// never readable again) and extractable only because C_WrapKey needs it;
// it is a session object of this process's session, destroyed before
// WrapSecret returns.
//
// The secret is an HMAC key. One shorter than 64 bytes is zero-extended to
// 64 bytes before it enters the HSM: HMAC itself pads a short key with zeros
// to the hash's block size (64 bytes for SHA-1 and SHA-256, 128 for
// SHA-512), so every HMAC-SHA-1/256/512 value is unchanged, and HSMs such as
// SoftHSM2 refuse HMAC keys shorter than the hash output (a 20-byte RFC 4226
// seed under HMAC-SHA-256, for instance).
func (s *Service) WrapSecret(ctx context.Context, wrapKeyRef string, secret []byte) ([]byte, error) {
	if len(secret) == 0 || len(secret) > MaxSecretLen {
		return nil, fmt.Errorf("wrapping a secret with %q: length %d, want 1 to %d bytes", wrapKeyRef, len(secret), MaxSecretLen)
	}
	if len(secret) < hmacPadLen {
		padded := make([]byte, hmacPadLen)
		copy(padded, secret)
		defer clear(padded)
		secret = padded
	}
	var wrapped []byte
	err := s.do(ctx, func(sh pkcs11.SessionHandle) error {
		wk, err := s.seedWrapKey(sh, wrapKeyRef)
		if err != nil {
			return err
		}
		obj, err := s.p.CreateObject(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, secret),
		})
		if err != nil {
			return err
		}
		defer s.p.DestroyObject(sh, obj)
		wrapped, err = s.p.WrapKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}, wk, obj)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("wrapping a secret with %q: %w", wrapKeyRef, err)
	}
	return append([]byte{wrapV1KeyWrapPad}, wrapped...), nil
}

var hmacMechs = map[crypto.Hash]uint{
	crypto.SHA1:   pkcs11.CKM_SHA_1_HMAC,
	crypto.SHA256: pkcs11.CKM_SHA256_HMAC,
	crypto.SHA512: pkcs11.CKM_SHA512_HMAC,
}

// HMACWrapped computes HMAC-h of every msg in the HSM with a secret made
// by WrapSecret. The secret is unwrapped into a session key with exactly
// the seed-wrap key's unwrap template (sensitive, never extractable, sign
// only, unmodifiable) and kept live in that pooled session for the next
// call with the same blob (Config.LiveSeeds per session, evicted
// least-recently-used and destroyed; gone with its session), so a repeated
// verification is HMACs only. The cache is keyed by a SHA-256 of the
// wrap-key reference, its object handle and the blob: no seed is kept in Go
// memory. A key found stale, or lost with a dead session, is unwrapped
// again. The same template serves a secret still wrapped by an older plain
// AES key (before RewrapSecret moved it). h is crypto.SHA1, SHA256 or
// SHA512. The i-th result is the MAC of msgs[i].
func (s *Service) HMACWrapped(ctx context.Context, wrapKeyRef string, wrapped []byte, h crypto.Hash, msgs [][]byte) ([][]byte, error) {
	return s.HMACWrappedUntil(ctx, wrapKeyRef, wrapped, h, msgs, nil)
}

// HMACWrappedUntil is HMACWrapped computing the MACs in order and stopping
// after the first for which stop (called in the HSM's session, so it must
// be quick) reports true: the result then holds the MACs of msgs[:i+1]
// only. A nil stop computes them all. The caller that checks a code
// against a window orders the window's most likely message first and pays
// one HMAC instead of the window's when it is right (authsvc/oath).
func (s *Service) HMACWrappedUntil(ctx context.Context, wrapKeyRef string, wrapped []byte, h crypto.Hash, msgs [][]byte, stop func(i int, mac []byte) bool) ([][]byte, error) {
	mech, ok := hmacMechs[h]
	if !ok {
		return nil, fmt.Errorf("HMAC with a wrapped secret: hash %v is not supported (want SHA-1, SHA-256 or SHA-512)", h)
	}
	if len(wrapped) < 2 || wrapped[0] != wrapV1KeyWrapPad {
		return nil, fmt.Errorf("%w: HMAC with a secret wrapped by %q: not a wrapped secret of a known format", ErrSealed, wrapKeyRef)
	}
	m := []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}
	var out [][]byte
	sign := func(sh pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
		out = out[:0]
		for i, msg := range msgs {
			if err := s.p.SignInit(sh, m, key); err != nil {
				return err
			}
			mac, err := s.p.Sign(sh, msg)
			if err != nil {
				return err
			}
			out = append(out, mac)
			if stop != nil && stop(i, mac) {
				break
			}
		}
		return nil
	}
	err := s.do(ctx, func(sh pkcs11.SessionHandle) error {
		wk, err := s.refHandle(sh, wrapKeyRef, pkcs11.CKO_SECRET_KEY, "key")
		if err != nil {
			return err
		}
		var live *liveSeeds
		var lk liveKey
		if s.cfg.liveSeeds() > 0 {
			live, lk = s.liveFor(sh), liveKeyOf(wrapKeyRef, wk, wrapped)
			if key, ok := live.get(lk); ok {
				err := sign(sh, key)
				if !staleHandle(err) {
					return err
				}
				live.remove(lk) // destroyed behind our back: unwrap again
			}
		}
		key, err := s.p.UnwrapKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}, wk, wrapped[1:], unwrappedSeedTemplate())
		if err != nil {
			// SoftHSM2 reports a failed key-wrap integrity check as CKR_GENERAL_ERROR.
			if p11.IsRV(err, pkcs11.CKR_WRAPPED_KEY_INVALID) || p11.IsRV(err, pkcs11.CKR_WRAPPED_KEY_LEN_RANGE) || p11.IsRV(err, pkcs11.CKR_GENERAL_ERROR) {
				return fmt.Errorf("%w: the secret was not wrapped by %q or was altered", ErrSealed, wrapKeyRef)
			}
			return err
		}
		if err := sign(sh, key); err != nil || live == nil {
			_ = s.p.DestroyObject(sh, key)
			return err
		}
		for _, old := range live.add(lk, key) {
			_ = s.p.DestroyObject(sh, old)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("HMAC with a secret wrapped by %q: %w", wrapKeyRef, err)
	}
	return out, nil
}

// HMAC computes HMAC-SHA-256 of msg with the token HMAC key keyRef (a
// label or a pkcs11: URI).
func (s *Service) HMAC(ctx context.Context, keyRef string, msg []byte) ([]byte, error) {
	m := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil)}
	var mac []byte
	err := s.do(ctx, func(sh pkcs11.SessionHandle) error {
		h, err := s.refHandle(sh, keyRef, pkcs11.CKO_SECRET_KEY, "key")
		if err != nil {
			return err
		}
		if err := s.p.SignInit(sh, m, h); err != nil {
			return err
		}
		mac, err = s.p.Sign(sh, msg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("HMAC with %q: %w", keyRef, err)
	}
	return mac, nil
}
