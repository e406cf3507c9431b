package hsm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/miekg/pkcs11"
)

// p11 is the slice of PKCS#11 the service uses. *pkcs11.Ctx satisfies it;
// tests wrap it to count or fail calls.
type p11 interface {
	GetSlotList(tokenPresent bool) ([]uint, error)
	GetTokenInfo(slotID uint) (pkcs11.TokenInfo, error)
	OpenSession(slotID uint, flags uint) (pkcs11.SessionHandle, error)
	CloseSession(sh pkcs11.SessionHandle) error
	GetSessionInfo(sh pkcs11.SessionHandle) (pkcs11.SessionInfo, error)
	Login(sh pkcs11.SessionHandle, userType uint, pin string) error
	FindObjectsInit(sh pkcs11.SessionHandle, temp []*pkcs11.Attribute) error
	FindObjects(sh pkcs11.SessionHandle, max int) ([]pkcs11.ObjectHandle, bool, error)
	FindObjectsFinal(sh pkcs11.SessionHandle) error
	GetAttributeValue(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, a []*pkcs11.Attribute) ([]*pkcs11.Attribute, error)
	GenerateKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, temp []*pkcs11.Attribute) (pkcs11.ObjectHandle, error)
	GenerateKeyPair(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, public, private []*pkcs11.Attribute) (pkcs11.ObjectHandle, pkcs11.ObjectHandle, error)
	SignInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, o pkcs11.ObjectHandle) error
	Sign(sh pkcs11.SessionHandle, message []byte) ([]byte, error)
	EncryptInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, o pkcs11.ObjectHandle) error
	Encrypt(sh pkcs11.SessionHandle, message []byte) ([]byte, error)
	DecryptInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, o pkcs11.ObjectHandle) error
	Decrypt(sh pkcs11.SessionHandle, cypher []byte) ([]byte, error)
	WrapKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, wrappingkey, key pkcs11.ObjectHandle) ([]byte, error)
	UnwrapKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, unwrappingkey pkcs11.ObjectHandle, wrappedkey []byte, a []*pkcs11.Attribute) (pkcs11.ObjectHandle, error)
	CreateObject(sh pkcs11.SessionHandle, temp []*pkcs11.Attribute) (pkcs11.ObjectHandle, error)
	DestroyObject(sh pkcs11.SessionHandle, oh pkcs11.ObjectHandle) error
}

var _ p11 = (*pkcs11.Ctx)(nil)

// A PKCS#11 library is process-wide state: C_Initialize once, C_Finalize
// when its last user is done. loadedModule counts the Services using it.
type loadedModule struct {
	key  string
	ctx  *pkcs11.Ctx
	refs int
}

var modules = struct {
	sync.Mutex
	m map[string]*loadedModule
}{m: map[string]*loadedModule{}}

func loadModule(path string) (*loadedModule, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrModuleNotFound, path, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("%w: %q does not exist: set hsm.module (--module) to the path of the HSM's PKCS#11 library (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)", ErrModuleNotFound, path)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%w: %q is a directory, not a PKCS#11 library: set hsm.module to the library file", ErrModuleNotFound, path)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	modules.Lock()
	defer modules.Unlock()
	if m, ok := modules.m[abs]; ok {
		m.refs++
		return m, nil
	}
	ctx := pkcs11.New(abs)
	if ctx == nil {
		return nil, fmt.Errorf("%w: %q cannot be loaded as a PKCS#11 library (no C_GetFunctionList): set hsm.module to the HSM vendor's PKCS#11 library", ErrModuleNotFound, path)
	}
	if err := ctx.Initialize(); err != nil && !isRV(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		ctx.Destroy()
		return nil, fmt.Errorf("initialising PKCS#11 module %q (C_Initialize): %w", path, err)
	}
	m := &loadedModule{key: abs, ctx: ctx, refs: 1}
	modules.m[abs] = m
	return m, nil
}

func (m *loadedModule) release() {
	modules.Lock()
	defer modules.Unlock()
	m.refs--
	if m.refs > 0 {
		return
	}
	delete(modules.m, m.key)
	_ = m.ctx.Finalize()
	m.ctx.Destroy()
}

var errNoSession = errors.New("no session")
