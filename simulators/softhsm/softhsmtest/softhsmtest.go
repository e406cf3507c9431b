// Package softhsmtest provisions SoftHSM2 for a test binary, once: the one
// place egate's tests make a SoftHSM2 directory, point the process at it
// and initialise their tokens (devices/hsm, devices/hsm/hsmtest,
// devices/pkcs11token, authsvc/ushield and devices/p11 use it).
//
// SoftHSM2 reads SOFTHSM2_CONF and its token directory once, at
// C_Initialize: a token created after the module is loaded is not seen by
// the process. So a test binary provisions every token it needs in TestMain
// (or on first use, before anything loads the module):
//
//	var hsm = softhsmtest.Tokens{SOPIN: "87654321", PIN: "123456", Labels: []string{"ushield-a"}}
//
//	func TestMain(m *testing.M) { softhsmtest.Main(m, &hsm) }
//
// and each test asks hsm.Need(t) for the directory; without SoftHSM2 it
// skips, or fails under EGATE_TEST_STRICT=1 (internal/testenv).
package softhsmtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/simulators/softhsm"
)

// Tokens is one test binary's SoftHSM2: the tokens to initialise, and,
// once Provision ran, the directory or why there is none.
type Tokens struct {
	Labels []string // tokens to initialise, each with SOPIN and PIN
	SOPIN  string
	PIN    string

	// Root is the temporary directory holding the SoftHSM2 directory
	// (Root/softhsm); tests may keep their own files there (PIN files).
	Root string
	Dir  *softhsm.Dir
	Err  error // why SoftHSM2 could not be provisioned
}

// Provision makes Root (a new temporary directory), the SoftHSM2
// directory in it, points this process's SoftHSM2 library at it
// (SOFTHSM2_CONF) and initialises the tokens with softhsm2-util. It must
// run before anything in the process loads the module. The outcome is in
// Dir and Err.
func (s *Tokens) Provision() error {
	s.Err = s.provision()
	return s.Err
}

func (s *Tokens) provision() error {
	root, err := os.MkdirTemp("", "egate-softhsm-")
	if err != nil {
		return err
	}
	s.Root = root
	d, err := softhsm.New(filepath.Join(root, "softhsm"))
	if err != nil {
		return err
	}
	if err := d.Activate(); err != nil {
		return err
	}
	for _, l := range s.Labels {
		if _, _, err := d.InitToken(context.Background(), l, s.SOPIN, s.PIN); err != nil {
			return err
		}
	}
	s.Dir = d
	return nil
}

// Need returns the directory, or skips tb (fails it under
// EGATE_TEST_STRICT=1) when SoftHSM2 could not be provisioned.
func (s *Tokens) Need(tb testing.TB) *softhsm.Dir {
	tb.Helper()
	if s.Dir == nil {
		err := s.Err
		if err == nil {
			err = fmt.Errorf("not provisioned")
		}
		testenv.Missing(tb, "SoftHSM2", fmt.Sprintf("apt-get install softhsm2 (%v)", err))
	}
	return s.Dir
}

// Remove deletes Root. Every module user must be closed by then.
func (s *Tokens) Remove() {
	if s.Root != "" {
		os.RemoveAll(s.Root)
	}
}

// Main provisions s, runs the tests, removes Root and exits with the
// tests' code. A failed provisioning is left to Need, so that tests skip
// (or fail, strict) with the reason.
func Main(m *testing.M, s *Tokens) {
	s.Provision()
	code := m.Run()
	s.Remove()
	os.Exit(code)
}
