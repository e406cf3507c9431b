package hsmtest

import (
	"testing"

	"github.com/egate-bank/egate/devices/p11"
	"github.com/egate-bank/egate/devices/p11/p11test"
	"github.com/miekg/pkcs11"
)

// LegacyWrap wraps seed the way egate did before the seed-wrap key
// existed: by the plain aes-256 key label (egate-secrets-wrap), through raw
// PKCS#11 (C_CreateObject, C_WrapKey) on Token, in the blob format
// hsm.HMACWrapped reads. devices/hsm no longer makes such blobs; tests of
// the migration (hsm.RewrapSecret, authsvc/oath's RewrapSeeds) need them as
// a database from before would hold them. Call it while a Service from Open
// is alive (it shares that Service's login).
func LegacyWrap(tb testing.TB, label string, seed []byte) []byte {
	tb.Helper()
	env.once.Do(func() { env.err = setup() })
	if env.err != nil {
		tb.Fatalf("SoftHSM2: %v", env.err)
	}
	var out []byte
	Raw(tb, env.dir.Module, Token, PIN, func(c *pkcs11.Ctx, sh pkcs11.SessionHandle) {
		out = LegacyWrapIn(tb, c, sh, label, seed)
	})
	return out
}

// Raw runs f on a raw PKCS#11 session (miekg/pkcs11, read-write) on the
// token labelled token of module, logged in as the user with pin, as an
// attacker or an older egate would. If the module is not initialised in
// this process yet, Raw initialises it and finalises it afterwards (so
// that a later hsm.Open initialises it afresh); if a Service holds it, Raw
// shares that Service's login and leaves the module alone.
func Raw(tb testing.TB, module, token, pin string, f func(c *pkcs11.Ctx, sh pkcs11.SessionHandle)) {
	tb.Helper()
	err := p11test.Session(module, token, pkcs11.CKU_USER, pin, func(c p11.Ctx, sh pkcs11.SessionHandle) error {
		f(c.(*pkcs11.Ctx), sh)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// FindSecretKey is the handle of the one secret key labelled label.
func FindSecretKey(tb testing.TB, c *pkcs11.Ctx, sh pkcs11.SessionHandle, label string) pkcs11.ObjectHandle {
	tb.Helper()
	h, err := p11test.FindOne(c, sh, pkcs11.CKO_SECRET_KEY, label)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// LegacyWrapIn is LegacyWrap on a session of Raw's. The seed is
// zero-extended to 64 bytes, as WrapSecret does.
func LegacyWrapIn(tb testing.TB, c *pkcs11.Ctx, sh pkcs11.SessionHandle, label string, seed []byte) []byte {
	tb.Helper()
	padded := make([]byte, max(64, len(seed)))
	copy(padded, seed)
	w, err := p11test.WrapValue(c, sh, FindSecretKey(tb, c, sh, label), padded)
	if err != nil {
		tb.Fatal(err)
	}
	return append([]byte{0x01}, w...)
}
