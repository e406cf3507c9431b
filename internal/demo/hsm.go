// Package demo assembles `egate demo`: every component in one process on the
// embedded defaults, with its state under one directory (demo.var-dir) that
// is created on the first start and reused on the next — the same SQLite
// file, the same SoftHSM token, the same keys and key ids.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/simulators/softhsm"
)

// HSMToken makes (first start) or finds (later starts) the demo's SoftHSM2
// token under varDir and returns the hsm config that opens it. The token's
// PINs are random, written to files readable by the owner only; the user PIN
// file is the pin-source.
func HSMToken(ctx context.Context, varDir, label string, pool int) (hsm.Config, error) {
	dir, err := softhsm.New(filepath.Join(varDir, "softhsm"))
	if err != nil {
		return hsm.Config{}, err
	}
	if err := dir.Activate(); err != nil {
		return hsm.Config{}, err
	}
	userPINFile := filepath.Join(varDir, "hsm-user-pin")
	soPINFile := filepath.Join(varDir, "hsm-so-pin")
	userPIN, err := readOrMakePIN(userPINFile)
	if err != nil {
		return hsm.Config{}, err
	}
	soPIN, err := readOrMakePIN(soPINFile)
	if err != nil {
		return hsm.Config{}, err
	}
	if _, _, err := dir.InitToken(ctx, label, soPIN, userPIN); err != nil {
		return hsm.Config{}, err
	}
	abs, _ := filepath.Abs(userPINFile)
	return hsm.Config{Module: dir.Module, Token: label, PINSource: "file:" + abs, Pool: pool, ModuleEnv: []string{dir.Env()}}, nil
}

func readOrMakePIN(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) == 0 {
			return "", fmt.Errorf("PIN file %s is empty: delete the demo directory to start afresh", path)
		}
		return string(trimNL(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	pin := hex.EncodeToString(r[:])
	if err := os.WriteFile(path, []byte(pin+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing PIN file: %w", err)
	}
	return pin, nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
