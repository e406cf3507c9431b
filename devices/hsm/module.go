package hsm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/egate-bank/egate/devices/p11"
	"github.com/miekg/pkcs11"
)

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

// loadModule is the service's own miekg/pkcs11 handle (package p11) on
// the library that crypto11 has loaded and initialised. dlopen counts
// references, so both handles reach the same module state (sessions,
// login). p11 never finalises a library crypto11 initialised: crypto11's
// last Context.Close does.
func loadModule(path string) (*p11.Module, error) {
	m, err := p11.Load(path)
	if errors.Is(err, p11.ErrLoad) {
		return nil, errNotLibrary(path)
	}
	return m, err
}

// probeToken loads the module on its own for a moment to explain why
// crypto11.Configure failed: whether the library loads, and which tokens it
// has. It finalises only what it initialised itself.
func probeToken(path, label string) (found bool, info pkcs11.TokenInfo, have string, err error) {
	m, err := loadModule(path)
	if err != nil {
		return false, info, "", err
	}
	defer m.Close()
	_, info, err = p11.FindToken(m.Ctx(), label)
	var nf *p11.TokenNotFoundError
	switch {
	case err == nil:
		return true, info, "", nil
	case errors.As(err, &nf):
		return false, info, nf.Have(), nil
	}
	return false, info, "", fmt.Errorf("module %q: %w", path, err)
}
