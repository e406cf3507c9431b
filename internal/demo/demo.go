package demo

import (
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/httpx"
	"github.com/egate-bank/egate/internal/store"
)

// PassportSigningKey is the HSM label of the key that signs ID and access tokens.
const PassportSigningKey = "egate-passport-signing"

// Run starts the demo and serves until ctx ends. What it started and where
// is printed to out; operational logs go to log.
func Run(ctx context.Context, cfg *config.Config, out io.Writer, log *slog.Logger) error {
	// Every section is checked before anything is created on disk.
	for _, v := range []interface{ Validate() error }{cfg.Demo, cfg.HTTP, cfg.Log, cfg.Database} {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(cfg.Demo.VarDir, 0o700); err != nil {
		return fmt.Errorf("creating demo directory %s: %w", cfg.Demo.VarDir, err)
	}
	hcfg := cfg.HSM
	if hcfg.Module == "" {
		var err error
		hcfg, err = HSMToken(ctx, cfg.Demo.VarDir, cfg.HSM.Token, cfg.HSM.Pool)
		if err != nil {
			return fmt.Errorf("preparing the demo SoftHSM token: %w", err)
		}
		fmt.Fprintf(out, "HSM        SoftHSM2 token %q in %s\n", hcfg.Token, filepath.Join(cfg.Demo.VarDir, "softhsm"))
	} else {
		fmt.Fprintf(out, "HSM        token %q through %s\n", hcfg.Token, hcfg.Module)
	}
	if err := hcfg.Validate(); err != nil {
		return err
	}
	if err := cfg.HTTP.Validate(); err != nil {
		return err
	}
	keys, err := hsm.Open(ctx, hcfg)
	if err != nil {
		return err
	}
	defer keys.Close()
	std, err := keys.InitStandardKeys(ctx)
	if err != nil {
		return fmt.Errorf("creating the bank's standard HSM keys: %w", err)
	}
	for _, k := range std {
		fmt.Fprintf(out, "  key      %-24s %s\n", k.Label, k.URI)
	}

	dbcfg := cfg.Database
	db, err := store.Open(ctx, dbcfg)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(out, "Database   %s %s\n", dbcfg.Driver, dbcfg.DSN)

	signer, err := keys.Signer(ctx, PassportSigningKey)
	if err != nil {
		return err
	}
	jwks, kid, err := JWKS(signer)
	if err != nil {
		return err
	}

	metrics := httpx.NewMetrics()
	health := httpx.NewHealth()
	health.Add("database", func(ctx context.Context) error { return db.PingContext(ctx) })
	health.Add("hsm", func(ctx context.Context) error { _, err := keys.FindKey(ctx, PassportSigningKey); return err })

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", health.Live)
	mux.HandleFunc("GET /readyz", health.Ready)
	mux.Handle("GET /metrics", metrics.Handler())
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		httpx.WriteJSON(w, http.StatusOK, jwks)
	})

	branch, err := StartATM(ctx, cfg.Demo.VarDir, metrics.Registry)
	if err != nil {
		return fmt.Errorf("starting the simulated ATM: %w", err)
	}
	defer branch.Close()
	branch.Mount(mux)
	health.Add("atm", branch.Agent.Check)
	fmt.Fprintf(out, "ATM        simulated ATM-DEMO-01 on %s (115200 baud, paced), journal %s\n", branch.Sim.TTYName, filepath.Join(cfg.Demo.VarDir, "atm-journal"))

	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w (set http.listen, e.g. --set http.listen=127.0.0.1:8081)", cfg.HTTP.Listen, err)
	}
	base := "http://" + ln.Addr().String()
	srv := &http.Server{Handler: httpx.Middleware(log, metrics, mux), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "\negate demo is up:\n")
	fmt.Fprintf(out, "  health   %s/healthz\n  ready    %s/readyz\n  metrics  %s/metrics\n", base, base, base)
	fmt.Fprintf(out, "  JWKS     %s/.well-known/jwks.json (kid %s, HSM key %s)\n", base, kid, signer.URI())
	fmt.Fprintf(out, "  ATM      %s/sim/atm/ (screen, cassettes; POST /sim/atm/faults)\n", base)
	fmt.Fprintf(out, "  agent    %s/agent/atms\n", base)
	fmt.Fprintf(out, "Press Ctrl-C to stop.\n")
	log.Info("demo started", "listen", ln.Addr().String())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	fmt.Fprintln(out, "egate demo stopped.")
	return err
}

// JWKS is the key set that publishes a signing key: its public half, with
// the RFC 7638 thumbprint as key id.
func JWKS(s crypto.Signer) (jose.JSONWebKeySet, string, error) {
	jwk := jose.JSONWebKey{Key: s.Public(), Use: "sig", Algorithm: string(jose.ES256)}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return jose.JSONWebKeySet{}, "", fmt.Errorf("JWK thumbprint: %w", err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}}, jwk.KeyID, nil
}
