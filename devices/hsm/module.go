package hsm

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/miekg/pkcs11"
)

// p11 is the slice of PKCS#11 the miekg/pkcs11 path of the service uses
// (wrapping, attribute read-back, listing, sealing, HMAC). *pkcs11.Ctx
// satisfies it. There is no Login: egate logs in only through
// crypto11.Configure (see c11.go).
type p11 interface {
	GetSlotList(tokenPresent bool) ([]uint, error)
	GetTokenInfo(slotID uint) (pkcs11.TokenInfo, error)
	OpenSession(slotID uint, flags uint) (pkcs11.SessionHandle, error)
	CloseSession(sh pkcs11.SessionHandle) error
	GetSessionInfo(sh pkcs11.SessionHandle) (pkcs11.SessionInfo, error)
	FindObjectsInit(sh pkcs11.SessionHandle, temp []*pkcs11.Attribute) error
	FindObjects(sh pkcs11.SessionHandle, max int) ([]pkcs11.ObjectHandle, bool, error)
	FindObjectsFinal(sh pkcs11.SessionHandle) error
	GetAttributeValue(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, a []*pkcs11.Attribute) ([]*pkcs11.Attribute, error)
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

// modulePath checks that path names a file and returns its absolute,
// symlink-free form. crypto11 keeps one loaded module per path string, so
// every Service hands it the same spelling of the same library.
func modulePath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrModuleNotFound, path, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("%w: %q does not exist: set hsm.module (--module) to the path of the HSM's PKCS#11 library (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)", ErrModuleNotFound, path)
	}
	if st.IsDir() {
		return "", fmt.Errorf("%w: %q is a directory, not a PKCS#11 library: set hsm.module to the library file", ErrModuleNotFound, path)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	return abs, nil
}

func errNotLibrary(path string) error {
	return fmt.Errorf("%w: %q cannot be loaded as a PKCS#11 library (no C_GetFunctionList): set hsm.module to the HSM vendor's PKCS#11 library", ErrModuleNotFound, path)
}

// loadedModule is the service's own miekg/pkcs11 handle on the library that
// crypto11 has loaded and initialised. dlopen counts references, so both
// handles reach the same module state (sessions, login). The service never
// calls C_Finalize through it while crypto11 holds the module: crypto11's
// last Context.Close finalises.
type loadedModule struct {
	ctx   *pkcs11.Ctx
	owned bool // C_Initialize succeeded through this handle (crypto11 did not hold the module)
}

func loadModule(path string) (*loadedModule, error) {
	ctx := pkcs11.New(path)
	if ctx == nil {
		return nil, errNotLibrary(path)
	}
	err := ctx.Initialize()
	if err != nil && !isRV(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		ctx.Destroy()
		return nil, fmt.Errorf("initialising PKCS#11 module %q (C_Initialize): %w", path, err)
	}
	return &loadedModule{ctx: ctx, owned: err == nil}, nil
}

// release drops the handle; called after every session opened through it
// is closed and before crypto11's Context.Close.
func (m *loadedModule) release() {
	if m.owned {
		_ = m.ctx.Finalize()
	}
	m.ctx.Destroy()
}

// probeToken loads the module on its own for a moment to explain why
// crypto11.Configure failed: whether the library loads, and which tokens it
// has. It finalises only what it initialised itself.
func probeToken(path, label string) (found bool, info pkcs11.TokenInfo, have string, err error) {
	m, err := loadModule(path)
	if err != nil {
		return false, info, "", err
	}
	defer m.release()
	slots, err := m.ctx.GetSlotList(true)
	if err != nil {
		return false, info, "", fmt.Errorf("listing slots of module %q: %w", path, err)
	}
	var labels []string
	for _, sl := range slots {
		ti, err := m.ctx.GetTokenInfo(sl)
		if err != nil {
			continue
		}
		l := strings.TrimRight(ti.Label, " \x00")
		if l == label {
			return true, ti, "", nil
		}
		if l != "" {
			labels = append(labels, fmt.Sprintf("%q", l))
		}
	}
	sort.Strings(labels)
	have = "the module has no initialised token"
	if len(labels) > 0 {
		have = "tokens present: " + strings.Join(labels, ", ")
	}
	return false, info, have, nil
}
