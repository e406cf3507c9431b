package p11

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/miekg/pkcs11"
)

// ErrLoad: the file cannot be loaded as a PKCS#11 library (missing, or no
// C_GetFunctionList).
var ErrLoad = errors.New("cannot load the PKCS#11 library")

// ErrTokenNotFound: no initialised token with that label.
var ErrTokenNotFound = errors.New("PKCS#11 token not found")

// The process's loaded libraries, by path. PKCS#11 state (initialisation,
// sessions, logins) is per process and library, so every Module on one
// path shares one handle.
var loaded struct {
	mu   sync.Mutex
	libs map[string]*library
}

type library struct {
	ctx   *pkcs11.Ctx
	users int
	owned bool // C_Initialize succeeded here (no other component had initialised it)
}

// Module is one user's hold on a loaded, initialised PKCS#11 library.
type Module struct {
	path string
	lib  *library
	once sync.Once
}

// Load loads and initialises the library at path, or shares the handle a
// Module of this process already holds on it. If another component of the
// process initialised the library first (C_Initialize answers
// CKR_CRYPTOKI_ALREADY_INITIALIZED), that initialisation is used and never
// finalised here.
func Load(path string) (*Module, error) {
	loaded.mu.Lock()
	defer loaded.mu.Unlock()
	if l := loaded.libs[path]; l != nil {
		l.users++
		return &Module{path: path, lib: l}, nil
	}
	c := pkcs11.New(path)
	if c == nil {
		return nil, fmt.Errorf("%w: %q", ErrLoad, path)
	}
	err := c.Initialize()
	if err != nil && !IsRV(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		c.Destroy()
		return nil, fmt.Errorf("initialising PKCS#11 module %q (C_Initialize): %w", path, err)
	}
	l := &library{ctx: c, users: 1, owned: err == nil}
	if loaded.libs == nil {
		loaded.libs = map[string]*library{}
	}
	loaded.libs[path] = l
	return &Module{path: path, lib: l}, nil
}

// Ctx is the library's PKCS#11 functions.
func (m *Module) Ctx() Ctx { return m.lib.ctx }

// Path is the path the library was loaded from.
func (m *Module) Path() string { return m.path }

// Close gives the Module's hold back. The last Close on a path finalises
// the library (if a Module initialised it) and unloads it; the caller has
// closed its sessions first. Close is idempotent.
func (m *Module) Close() error {
	m.once.Do(func() {
		loaded.mu.Lock()
		defer loaded.mu.Unlock()
		m.lib.users--
		if m.lib.users > 0 {
			return
		}
		if m.lib.owned {
			_ = m.lib.ctx.Finalize()
		}
		m.lib.ctx.Destroy()
		if loaded.libs[m.path] == m.lib {
			delete(loaded.libs, m.path)
		}
	})
	return nil
}

// Label is a token's label without the blank padding PKCS#11 adds.
func Label(ti pkcs11.TokenInfo) string { return strings.TrimRight(ti.Label, " \x00") }

// FindToken returns the slot holding the token labelled label, and its
// info. When there is none the error matches ErrTokenNotFound and names the
// tokens present.
func FindToken(c Ctx, label string) (uint, pkcs11.TokenInfo, error) {
	slots, err := c.GetSlotList(true)
	if err != nil {
		return 0, pkcs11.TokenInfo{}, fmt.Errorf("listing slots: %w", err)
	}
	var labels []string
	for _, sl := range slots {
		ti, err := c.GetTokenInfo(sl)
		if err != nil {
			continue
		}
		l := Label(ti)
		if l == label {
			return sl, ti, nil
		}
		if l != "" {
			labels = append(labels, fmt.Sprintf("%q", l))
		}
	}
	sort.Strings(labels)
	return 0, pkcs11.TokenInfo{}, &TokenNotFoundError{Label: label, Present: labels}
}

// TokenNotFoundError is FindToken's error: no token labelled Label; Present
// are the (quoted) labels the module has. It matches ErrTokenNotFound.
type TokenNotFoundError struct {
	Label   string
	Present []string
}

func (e *TokenNotFoundError) Error() string {
	return fmt.Sprintf("%v: no token labelled %q (%s)", ErrTokenNotFound, e.Label, e.Have())
}

// Have says which tokens the module has, for a message.
func (e *TokenNotFoundError) Have() string {
	if len(e.Present) == 0 {
		return "the module has no initialised token"
	}
	return "tokens present: " + strings.Join(e.Present, ", ")
}

func (e *TokenNotFoundError) Is(target error) bool { return target == ErrTokenNotFound }

// FindObjects returns up to max handles of objects matching tmpl.
func FindObjects(c Ctx, sh pkcs11.SessionHandle, tmpl []*pkcs11.Attribute, max int) ([]pkcs11.ObjectHandle, error) {
	if err := c.FindObjectsInit(sh, tmpl); err != nil {
		return nil, err
	}
	var out []pkcs11.ObjectHandle
	var ferr error
	for len(out) < max {
		hs, _, err := c.FindObjects(sh, max-len(out))
		if err != nil {
			ferr = err
			break
		}
		if len(hs) == 0 {
			break
		}
		out = append(out, hs...)
	}
	if err := c.FindObjectsFinal(sh); err != nil && ferr == nil {
		ferr = err
	}
	return out, ferr
}
