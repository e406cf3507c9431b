package hsmtest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/miekg/pkcs11"
)

// TrustedWrapKey is a seed-wrap key (hsm.KeySeedWrap) on Token that the
// security officer made with CKA_TRUSTED: the storage key for seeds
// unwrapped in the HSM (devices/hsm ImportSecret), which may leave it only
// wrapped by a trusted key. SoftHSM2 lets only the SO set CKA_TRUSTED, and
// the SO may create only public objects, so this key is public (CKA_PRIVATE
// false), sensitive and never extractable.
const TrustedWrapKey = "egate-test-trusted-wrap"

// trustedErr is why TrustedWrapKey could not be made (set once, by setup).
var trustedErr error

// NeedTrustedWrapKey fails tb unless TrustedWrapKey was made. Call it
// after Open.
func NeedTrustedWrapKey(tb testing.TB) {
	tb.Helper()
	if trustedErr != nil {
		tb.Fatalf("SoftHSM2: the security officer could not make %s: %v", TrustedWrapKey, trustedErr)
	}
}

// createTrustedKey makes TrustedWrapKey as the SO. It loads the module and
// unloads it, so it runs before anything in this process opens a Service.
func createTrustedKey(module, token, soPIN string) error {
	p := pkcs11.New(module)
	if p == nil {
		return fmt.Errorf("cannot load %s", module)
	}
	defer p.Destroy()
	if err := p.Initialize(); err != nil {
		return err
	}
	defer p.Finalize()
	slots, err := p.GetSlotList(true)
	if err != nil {
		return err
	}
	for _, sl := range slots {
		ti, err := p.GetTokenInfo(sl)
		if err != nil || strings.TrimRight(ti.Label, " \x00") != token {
			continue
		}
		sh, err := p.OpenSession(sl, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			return err
		}
		defer p.CloseSession(sh)
		if err := p.Login(sh, pkcs11.CKU_SO, soPIN); err != nil {
			return err
		}
		defer p.Logout(sh)
		attrs, release, err := hsm.TrustedSeedWrapKeyAttributes(TrustedWrapKey, false)
		if err != nil {
			return err
		}
		_, err = p.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, attrs)
		release()
		return err
	}
	return fmt.Errorf("token %q not found", token)
}
