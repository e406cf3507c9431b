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
