package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egate-bank/egate/authsvc/factors"
	"github.com/egate-bank/egate/internal/config"
)

// TestNewAuthsvcNeedsSMSGateway: `egate authsvc` with the sms factor on and
// neither an operator gateway nor the development sink configured refuses
// to start, naming both keys, before it opens the database or the HSM.
func TestNewAuthsvcNeedsSMSGateway(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "never-made.db")
	cfg, err := config.Load(config.Sources{Sets: []string{"hsm.module=/nonexistent/libpkcs11.so", "database.dsn=" + dsn}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAuthsvc(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), AuthsvcOptions{})
	if err == nil {
		a.Close()
		t.Fatal("authsvc started without an SMS gateway")
	}
	if !errors.Is(err, factors.ErrConfig) || !strings.Contains(err.Error(), "factors.sms.gateway.url") || !strings.Contains(err.Error(), "factors.sms.dev-sink") {
		t.Fatalf("error %q does not name factors.sms.gateway.url and factors.sms.dev-sink", err)
	}
	if _, err := os.Stat(dsn); err == nil {
		t.Fatal("the database was opened before the config was checked")
	}
}
