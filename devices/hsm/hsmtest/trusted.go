package hsmtest

import (
	"testing"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/p11"
	"github.com/egate-bank/egate/devices/p11/p11test"
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
	return p11test.Session(module, token, pkcs11.CKU_SO, soPIN, func(c p11.Ctx, sh pkcs11.SessionHandle) error {
		return hsm.GenerateTrustedSeedWrapKey(c, sh, TrustedWrapKey, false)
	})
}
