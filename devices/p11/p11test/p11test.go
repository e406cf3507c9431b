// Package p11test makes a PKCS#11 module fail on purpose: Faulty wraps a
// p11.Ctx (a real module, SoftHSM2 in egate's tests) and answers any call
// with a chosen return value, so a test shows what egate does when a token
// is pulled out mid-signature (CKR_DEVICE_REMOVED) or a session vanishes
// (CKR_SESSION_HANDLE_INVALID) at exactly that call. Session, FindOne and
// WrapValue do raw PKCS#11 on a token outside egate's code, as a security
// officer, an attacker holding the PIN or an older egate would.
package p11test

import (
	"sync"

	"github.com/egate-bank/egate/devices/p11"
	"github.com/miekg/pkcs11"
)

// Faulty is a p11.Ctx whose calls fail on demand. It is safe for
// concurrent use.
type Faulty struct {
	p11.Ctx
	mu     sync.Mutex
	faults map[string]*fault
	calls  map[string]int
}

type fault struct {
	rv uint
	n  int
}

var _ p11.Ctx = (*Faulty)(nil)

// New wraps c; no call fails until Inject says so.
func New(c p11.Ctx) *Faulty {
	return &Faulty{Ctx: c, faults: map[string]*fault{}, calls: map[string]int{}}
}

// Inject makes the next n calls of method (its Go name: "Sign",
// "OpenSession", …) fail with rv without reaching the module; n < 0: every
// call until Clear.
func (f *Faulty) Inject(method string, rv uint, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[method] = &fault{rv, n}
}

// Clear removes every injected fault.
func (f *Faulty) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.faults)
}

// Calls is how many times method was called, failed calls included.
func (f *Faulty) Calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *Faulty) fail(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[method]++
	ft := f.faults[method]
	if ft == nil || ft.n == 0 {
		return nil
	}
	if ft.n > 0 {
		ft.n--
	}
	return pkcs11.Error(ft.rv)
}

func (f *Faulty) GetSlotList(tokenPresent bool) ([]uint, error) {
	if err := f.fail("GetSlotList"); err != nil {
		return nil, err
	}
	return f.Ctx.GetSlotList(tokenPresent)
}

func (f *Faulty) GetSlotInfo(slotID uint) (pkcs11.SlotInfo, error) {
	if err := f.fail("GetSlotInfo"); err != nil {
		return pkcs11.SlotInfo{}, err
	}
	return f.Ctx.GetSlotInfo(slotID)
}

func (f *Faulty) GetTokenInfo(slotID uint) (pkcs11.TokenInfo, error) {
	if err := f.fail("GetTokenInfo"); err != nil {
		return pkcs11.TokenInfo{}, err
	}
	return f.Ctx.GetTokenInfo(slotID)
}

func (f *Faulty) OpenSession(slotID uint, flags uint) (pkcs11.SessionHandle, error) {
	if err := f.fail("OpenSession"); err != nil {
		return 0, err
	}
	return f.Ctx.OpenSession(slotID, flags)
}

func (f *Faulty) CloseSession(sh pkcs11.SessionHandle) error {
	if err := f.fail("CloseSession"); err != nil {
		return err
	}
	return f.Ctx.CloseSession(sh)
}

func (f *Faulty) CloseAllSessions(slotID uint) error {
	if err := f.fail("CloseAllSessions"); err != nil {
		return err
	}
	return f.Ctx.CloseAllSessions(slotID)
}

func (f *Faulty) GetSessionInfo(sh pkcs11.SessionHandle) (pkcs11.SessionInfo, error) {
	if err := f.fail("GetSessionInfo"); err != nil {
		return pkcs11.SessionInfo{}, err
	}
	return f.Ctx.GetSessionInfo(sh)
}

func (f *Faulty) Login(sh pkcs11.SessionHandle, userType uint, pin string) error {
	if err := f.fail("Login"); err != nil {
		return err
	}
	return f.Ctx.Login(sh, userType, pin)
}

func (f *Faulty) Logout(sh pkcs11.SessionHandle) error {
	if err := f.fail("Logout"); err != nil {
		return err
	}
	return f.Ctx.Logout(sh)
}

func (f *Faulty) FindObjectsInit(sh pkcs11.SessionHandle, temp []*pkcs11.Attribute) error {
	if err := f.fail("FindObjectsInit"); err != nil {
		return err
	}
	return f.Ctx.FindObjectsInit(sh, temp)
}

func (f *Faulty) FindObjects(sh pkcs11.SessionHandle, max int) ([]pkcs11.ObjectHandle, bool, error) {
	if err := f.fail("FindObjects"); err != nil {
		return nil, false, err
	}
	return f.Ctx.FindObjects(sh, max)
}

func (f *Faulty) FindObjectsFinal(sh pkcs11.SessionHandle) error {
	if err := f.fail("FindObjectsFinal"); err != nil {
		return err
	}
	return f.Ctx.FindObjectsFinal(sh)
}

func (f *Faulty) GetAttributeValue(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, a []*pkcs11.Attribute) ([]*pkcs11.Attribute, error) {
	if err := f.fail("GetAttributeValue"); err != nil {
		return nil, err
	}
	return f.Ctx.GetAttributeValue(sh, o, a)
}

func (f *Faulty) CreateObject(sh pkcs11.SessionHandle, temp []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	if err := f.fail("CreateObject"); err != nil {
		return 0, err
	}
	return f.Ctx.CreateObject(sh, temp)
}

func (f *Faulty) DestroyObject(sh pkcs11.SessionHandle, oh pkcs11.ObjectHandle) error {
	if err := f.fail("DestroyObject"); err != nil {
		return err
	}
	return f.Ctx.DestroyObject(sh, oh)
}

func (f *Faulty) GenerateKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, temp []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	if err := f.fail("GenerateKey"); err != nil {
		return 0, err
	}
	return f.Ctx.GenerateKey(sh, m, temp)
}

func (f *Faulty) GenerateKeyPair(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, public, private []*pkcs11.Attribute) (pkcs11.ObjectHandle, pkcs11.ObjectHandle, error) {
	if err := f.fail("GenerateKeyPair"); err != nil {
		return 0, 0, err
	}
	return f.Ctx.GenerateKeyPair(sh, m, public, private)
}

func (f *Faulty) SignInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, o pkcs11.ObjectHandle) error {
	if err := f.fail("SignInit"); err != nil {
		return err
	}
	return f.Ctx.SignInit(sh, m, o)
}

func (f *Faulty) Sign(sh pkcs11.SessionHandle, message []byte) ([]byte, error) {
	if err := f.fail("Sign"); err != nil {
		return nil, err
	}
	return f.Ctx.Sign(sh, message)
}

func (f *Faulty) VerifyInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, key pkcs11.ObjectHandle) error {
	if err := f.fail("VerifyInit"); err != nil {
		return err
	}
	return f.Ctx.VerifyInit(sh, m, key)
}

func (f *Faulty) Verify(sh pkcs11.SessionHandle, data []byte, signature []byte) error {
	if err := f.fail("Verify"); err != nil {
		return err
	}
	return f.Ctx.Verify(sh, data, signature)
}

func (f *Faulty) EncryptInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, o pkcs11.ObjectHandle) error {
	if err := f.fail("EncryptInit"); err != nil {
		return err
	}
	return f.Ctx.EncryptInit(sh, m, o)
}

func (f *Faulty) Encrypt(sh pkcs11.SessionHandle, message []byte) ([]byte, error) {
	if err := f.fail("Encrypt"); err != nil {
		return nil, err
	}
	return f.Ctx.Encrypt(sh, message)
}

func (f *Faulty) DecryptInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, o pkcs11.ObjectHandle) error {
	if err := f.fail("DecryptInit"); err != nil {
		return err
	}
	return f.Ctx.DecryptInit(sh, m, o)
}

func (f *Faulty) Decrypt(sh pkcs11.SessionHandle, cypher []byte) ([]byte, error) {
	if err := f.fail("Decrypt"); err != nil {
		return nil, err
	}
	return f.Ctx.Decrypt(sh, cypher)
}

func (f *Faulty) WrapKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, wrappingkey, key pkcs11.ObjectHandle) ([]byte, error) {
	if err := f.fail("WrapKey"); err != nil {
		return nil, err
	}
	return f.Ctx.WrapKey(sh, m, wrappingkey, key)
}

func (f *Faulty) UnwrapKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, unwrappingkey pkcs11.ObjectHandle, wrappedkey []byte, a []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	if err := f.fail("UnwrapKey"); err != nil {
		return 0, err
	}
	return f.Ctx.UnwrapKey(sh, m, unwrappingkey, wrappedkey, a)
}
