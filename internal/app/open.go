package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/simulators/softhsm"
)

// ErrNoHSM says that no HSM is configured and no demo token exists.
var ErrNoHSM = errors.New("hsm.module is empty and there is no demo SoftHSM token")

// HSMConfig returns the HSM section to open. An empty hsm.module means the
// demo's SoftHSM2 token under demo.var-dir (made by egate demo): its
// configuration is activated for this process, so that operator commands
// run after `make run` reach the same keys.
func HSMConfig(cfg *config.Config) (hsm.Config, error) {
	hc := cfg.HSM
	if hc.Module != "" {
		return hc, nil
	}
	dir := filepath.Join(cfg.Demo.VarDir, "softhsm")
	if _, err := os.Stat(filepath.Join(dir, "softhsm2.conf")); errors.Is(err, fs.ErrNotExist) {
		return hc, fmt.Errorf("%w under %s: set hsm.module (and hsm.token, hsm.pin-source), or run egate demo once", ErrNoHSM, cfg.Demo.VarDir)
	}
	d, err := softhsm.New(dir)
	if err != nil {
		return hc, err
	}
	if os.Getenv("SOFTHSM2_CONF") == "" {
		if err := d.Activate(); err != nil {
			return hc, err
		}
	}
	hc.Module = d.Module
	return hc, nil
}

// OpenHSM opens the configured HSM.
func OpenHSM(ctx context.Context, cfg *config.Config) (*hsm.Service, error) {
	hc, err := HSMConfig(cfg)
	if err != nil {
		return nil, err
	}
	return hsm.Open(ctx, hc)
}

// OpenDB opens the configured database.
func OpenDB(ctx context.Context, cfg *config.Config) (*store.DB, error) {
	return store.Open(ctx, cfg.Database)
}
