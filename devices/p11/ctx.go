// Package p11 is egate's one PKCS#11 core, shared by devices/hsm (the
// bank's HSM) and devices/pkcs11token (customers' U-shields):
//
//   - Ctx, the narrow slice of github.com/miekg/pkcs11 those packages call,
//     declared as an interface (letsencrypt/boulder's PKCtx is the model).
//     *pkcs11.Ctx satisfies it; so does package p11test's Faulty, which
//     wraps a real module and makes any call answer a chosen return value
//     (CKR_DEVICE_REMOVED, CKR_SESSION_HANDLE_INVALID, …), and so can a
//     simulator standing in for a vendor's module.
//   - Load and Module.Close: a library is loaded once per path in the
//     process and shared by every Module on that path; the last Close
//     finalises it if a Module initialised it. A library another component
//     initialised first (crypto11, for the HSM) is left to that component.
//   - IsRV and the classes of return values callers act on (Removed,
//     SessionLost), FindToken, FindObjects and Uint (CK_ULONG attributes).
//
// Keys and tokens are named by RFC 7512 pkcs11: URIs, parsed by package
// pkcs11uri; PIN refusals are package pin's *pin.Error.
//
// Concurrency: a Module and its Ctx may be used by any number of
// goroutines (PKCS#11 libraries are initialised for OS locking); a session
// handle must be used by one goroutine at a time, which is the callers'
// business (hsm's session pool, pkcs11token's per-token mutex).
package p11

import (
	"errors"

	"github.com/miekg/pkcs11"
)

// Ctx is the slice of PKCS#11 egate uses. *pkcs11.Ctx satisfies it.
type Ctx interface {
	GetSlotList(tokenPresent bool) ([]uint, error)
	GetSlotInfo(slotID uint) (pkcs11.SlotInfo, error)
	GetTokenInfo(slotID uint) (pkcs11.TokenInfo, error)
	OpenSession(slotID uint, flags uint) (pkcs11.SessionHandle, error)
	CloseSession(sh pkcs11.SessionHandle) error
	CloseAllSessions(slotID uint) error
	GetSessionInfo(sh pkcs11.SessionHandle) (pkcs11.SessionInfo, error)
	Login(sh pkcs11.SessionHandle, userType uint, pin string) error
	Logout(sh pkcs11.SessionHandle) error
	FindObjectsInit(sh pkcs11.SessionHandle, temp []*pkcs11.Attribute) error
	FindObjects(sh pkcs11.SessionHandle, max int) ([]pkcs11.ObjectHandle, bool, error)
	FindObjectsFinal(sh pkcs11.SessionHandle) error
	GetAttributeValue(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, a []*pkcs11.Attribute) ([]*pkcs11.Attribute, error)
	CreateObject(sh pkcs11.SessionHandle, temp []*pkcs11.Attribute) (pkcs11.ObjectHandle, error)
	DestroyObject(sh pkcs11.SessionHandle, oh pkcs11.ObjectHandle) error
	GenerateKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, temp []*pkcs11.Attribute) (pkcs11.ObjectHandle, error)
	GenerateKeyPair(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, public, private []*pkcs11.Attribute) (pkcs11.ObjectHandle, pkcs11.ObjectHandle, error)
	SignInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, o pkcs11.ObjectHandle) error
	Sign(sh pkcs11.SessionHandle, message []byte) ([]byte, error)
	VerifyInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, key pkcs11.ObjectHandle) error
	Verify(sh pkcs11.SessionHandle, data []byte, signature []byte) error
	EncryptInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, o pkcs11.ObjectHandle) error
	Encrypt(sh pkcs11.SessionHandle, message []byte) ([]byte, error)
	DecryptInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, o pkcs11.ObjectHandle) error
	Decrypt(sh pkcs11.SessionHandle, cypher []byte) ([]byte, error)
	WrapKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, wrappingkey, key pkcs11.ObjectHandle) ([]byte, error)
	UnwrapKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, unwrappingkey pkcs11.ObjectHandle, wrappedkey []byte, a []*pkcs11.Attribute) (pkcs11.ObjectHandle, error)
}

var _ Ctx = (*pkcs11.Ctx)(nil)

// IsRV reports whether err is (or wraps) a PKCS#11 return value among rvs.
func IsRV(err error, rvs ...uint) bool {
	var pe pkcs11.Error
	if !errors.As(err, &pe) {
		return false
	}
	for _, rv := range rvs {
		if uint(pe) == rv {
			return true
		}
	}
	return false
}

// Removed reports return values that say the device or the token is gone
// (pulled out, or the reader lost it): nothing more can be done on it until
// it is back.
func Removed(err error) bool {
	return IsRV(err, pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED)
}

// SessionLost reports return values after which the session (or the login
// it carried) is gone and a fresh session may succeed.
func SessionLost(err error) bool {
	return IsRV(err, pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_DEVICE_REMOVED,
		pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_USER_NOT_LOGGED_IN,
		pkcs11.CKR_SESSION_COUNT)
}

// Uint decodes a CK_ULONG attribute value (host byte order, little-endian
// on every platform egate runs on, as miekg/pkcs11 encodes it).
func Uint(b []byte) uint {
	var v uint
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint(b[i])
	}
	return v
}

// ECParamsP256 is the DER of the OID of NIST P-256 (1.2.840.10045.3.1.7),
// the CKA_EC_PARAMS of a P-256 key. A fresh slice each call.
func ECParamsP256() []byte {
	return []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
}
