package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/store"
)

// ErrNoHSM says that no HSM is configured.
var ErrNoHSM = errors.New("hsm.module is empty")

// HSMConfig returns the HSM section to open, with its module environment
// (hsm.module-env) applied to this process. An empty hsm.module is an error
// naming the keys to set: no process falls back to a development token.
func HSMConfig(cfg *config.Config) (hsm.Config, error) {
	hc := cfg.HSM
	if hc.Module == "" {
		return hc, fmt.Errorf("%w: set hsm.module to the HSM's PKCS#11 library, with hsm.token and hsm.pin-source (after egate demo: --config %s)", ErrNoHSM, filepath.Join(cfg.Demo.VarDir, "egate.yaml"))
	}
	if err := hc.Validate(); err != nil {
		return hc, err
	}
	return hc, hc.ApplyModuleEnv()
}

// OpenDB opens the configured database.
func OpenDB(ctx context.Context, cfg *config.Config) (*store.DB, error) {
	return store.Open(ctx, cfg.Database)
}

// platformDB is shared when not nil (PlatformOptions.DB), else the
// configured database opened for the platform alone and closed when ctx
// ends.
func platformDB(ctx context.Context, cfg *config.Config, shared *store.DB) (*store.DB, error) {
	if shared != nil {
		return shared, nil
	}
	db, err := OpenDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, func() { db.Close() })
	return db, nil
}

// serviceClient is the HTTP client a platform calls the passport's and
// ebank's APIs with: a request gives up after timeout, and up to 64 idle
// connections are kept per host. http.DefaultTransport keeps 2, so a
// platform serving more than two customers at once closed the extra
// connections after each call and dialled new ones for the next (a TCP
// handshake, and a connection's goroutine and buffers on both sides, per
// call).
func serviceClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return &http.Client{Timeout: timeout, Transport: t}
}
