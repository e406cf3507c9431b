package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/egate-bank/egate/authsvc"
	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/devices/hsm"
)

func init() { registerTop(newAuthsvcCmd) }

// authsvcFlags map to authsvc.Config until the global config is wired.
type authsvcFlags struct {
	auth          authFlags
	listen        string
	issuer        string
	clientsFile   string
	allowInsecure bool
}

func (f *authsvcFlags) config() (authsvc.Config, error) {
	cfg := authsvc.Config{Issuer: f.issuer, AllowInsecure: f.allowInsecure}
	if f.clientsFile != "" {
		b, err := os.ReadFile(f.clientsFile)
		if err != nil {
			return cfg, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		var oc oidcop.Config
		if err := dec.Decode(&oc); err != nil {
			return cfg, fmt.Errorf("%s: %w", f.clientsFile, err)
		}
		cfg.OIDC = oc
	}
	return cfg, nil
}

func newAuthsvcCmd() *cobra.Command {
	f := &authsvcFlags{}
	cmd := &cobra.Command{
		Use:   "authsvc",
		Short: "run the auth API: passport login pages and the OIDC provider",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
			cfg, err := f.config()
			if err != nil {
				return err
			}
			cfg = cfg.WithDefaults()
			db, err := f.auth.openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			h, err := hsm.Open(ctx, f.auth.hf.hsmConfig())
			if err != nil {
				return err
			}
			defer h.Close()
			if _, _, err := h.EnsureKey(ctx, hsm.KeySpec{Label: cfg.SigningKey, Type: hsm.KeyECDSAP256}); err != nil {
				return err
			}
			signer, err := h.Signer(ctx, cfg.SigningKey)
			if err != nil {
				return err
			}
			srv, err := authsvc.New(ctx, cfg, authsvc.Deps{DB: db, Signer: signer})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", f.listen)
			if err != nil {
				return err
			}
			hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
			go func() {
				t := time.NewTicker(10 * time.Minute)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
						if err := srv.Purge(ctx); err != nil {
							log.Warn("purging expired login state", "err", err)
						}
					}
				}
			}()
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				hs.Shutdown(sctx)
			}()
			log.Info("authsvc listening", "addr", ln.Addr().String(), "issuer", cfg.Issuer, "clients", len(cfg.OIDC.Clients))
			fmt.Fprintf(cmd.OutOrStdout(), "authsvc serving %s at %s\n", cfg.Issuer, ln.Addr())
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	f.auth.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8443", "address to listen on (TLS is the load balancer's)")
	fl.StringVar(&f.issuer, "issuer", "http://127.0.0.1:8443", "the passport's external base URL (https in production)")
	fl.BoolVar(&f.allowInsecure, "allow-insecure", false, "allow an http issuer (development only)")
	fl.StringVar(&f.clientsFile, "clients", "", "YAML file with the OIDC section: clients (id, secret or public, redirect-uris, min-level) and token lifetimes")
	return cmd
}
