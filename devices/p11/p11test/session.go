package p11test

import (
	"fmt"

	"github.com/egate-bank/egate/devices/p11"
	"github.com/miekg/pkcs11"
)

// Session runs fn on a read-write session of its own on the token labelled
// token of the library at module, logged in as userType (pkcs11.CKU_USER or
// pkcs11.CKU_SO) with pin: what a test does as an attacker, an older egate
// or the token's security officer, outside egate's code. The library is
// loaded through p11.Load, so a module this process already holds (an
// open hsm.Service) is shared, and a login it holds is used and left in
// place; a library Session initialised itself is finalised afterwards, so
// that a later user initialises it afresh. The session is closed, and a
// login Session made is logged out, when fn returns.
func Session(module, token string, userType uint, pin string, fn func(c p11.Ctx, sh pkcs11.SessionHandle) error) error {
	m, err := p11.Load(module)
	if err != nil {
		return err
	}
	defer m.Close()
	c := m.Ctx()
	slot, _, err := p11.FindToken(c, token)
	if err != nil {
		return fmt.Errorf("%s: %w", module, err)
	}
	sh, err := c.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return err
	}
	defer c.CloseSession(sh)
	switch err := c.Login(sh, userType, pin); {
	case err == nil:
		defer c.Logout(sh)
	case p11.IsRV(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN):
	default:
		return fmt.Errorf("logging in to token %q: %w", token, err)
	}
	return fn(c, sh)
}

// FindOne is the handle of the one object of class labelled label; none,
// several or a failed search is an error.
func FindOne(c p11.Ctx, sh pkcs11.SessionHandle, class uint, label string) (pkcs11.ObjectHandle, error) {
	hs, err := p11.FindObjects(c, sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}, 2)
	if err != nil {
		return 0, err
	}
	if len(hs) != 1 {
		return 0, fmt.Errorf("found %d objects of class %#x labelled %q, want 1", len(hs), class, label)
	}
	return hs[0], nil
}

// WrapValue brings value into the token as a session generic secret
// (sensitive, extractable, may sign), wraps it by the key wk with RFC 5649
// key wrap (CKM_AES_KEY_WRAP_PAD) and destroys it: how anybody holding the
// user PIN, an older egate for one, makes a wrapped secret.
func WrapValue(c p11.Ctx, sh pkcs11.SessionHandle, wk pkcs11.ObjectHandle, value []byte) ([]byte, error) {
	obj, err := c.CreateObject(sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, value),
	})
	if err != nil {
		return nil, err
	}
	defer c.DestroyObject(sh, obj)
	return c.WrapKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}, wk, obj)
}
