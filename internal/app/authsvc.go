package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/egate-bank/egate/authsvc"
	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/store"
)

// Authsvc is the auth API process: the passport's pages and OIDC provider
// on one server, with the database and the HSM it owns.
type Authsvc struct {
	Server  *Server
	Auth    *authsvc.Server
	DB      *store.DB
	HSM     *hsm.Service
	Issuer  string
	closers []func()
}

// AuthsvcConfig is the authsvc section with the issuer filled in from
// http.public-url (or the listen address) when it is empty.
func AuthsvcConfig(cfg *config.Config) authsvc.Config {
	ac := cfg.Authsvc
	if ac.Issuer == "" {
		ac.Issuer = cfg.HTTP.BaseURL()
		if strings.HasPrefix(ac.Issuer, "http://") && cfg.HTTP.PublicURL == "" {
			// No public URL given: a development setup on plain http.
			ac.AllowInsecure = true
		}
	}
	return ac.WithDefaults()
}

// NewAuthsvc opens the database and the HSM, makes sure the token signing
// key exists, and builds the server on cfg.HTTP.Listen. factors are the
// second-factor tools (nil: password only).
func NewAuthsvc(ctx context.Context, cfg *config.Config, log *slog.Logger, factors func(db *store.DB, h *hsm.Service) ([]authn.Factor, error)) (*Authsvc, error) {
	ac := AuthsvcConfig(cfg)
	if err := ac.Validate(); err != nil {
		return nil, err
	}
	a := &Authsvc{Issuer: ac.Issuer}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	var err error
	if a.DB, err = OpenDB(ctx, cfg); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { a.DB.Close() })
	if a.HSM, err = OpenHSM(ctx, cfg); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { a.HSM.Close() })
	if _, _, err := a.HSM.EnsureKey(ctx, hsm.KeySpec{Label: ac.SigningKey, Type: hsm.KeyECDSAP256}); err != nil {
		return nil, fmt.Errorf("the token signing key %q: %w", ac.SigningKey, err)
	}
	signer, err := a.HSM.Signer(ctx, ac.SigningKey)
	if err != nil {
		return nil, err
	}
	var fs []authn.Factor
	if factors != nil {
		if fs, err = factors(a.DB, a.HSM); err != nil {
			return nil, err
		}
	}
	a.Auth, err = authsvc.New(ctx, ac, authsvc.Deps{DB: a.DB, Signer: signer, Factors: fs})
	if err != nil {
		return nil, err
	}
	if a.Server, err = NewServer("authsvc", cfg.HTTP.Listen, log); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { a.Server.Listener.Close() })
	a.Server.Health.Add("database", func(ctx context.Context) error { return a.DB.PingContext(ctx) })
	a.Server.Health.Add("hsm", func(ctx context.Context) error { _, err := a.HSM.FindKey(ctx, ac.SigningKey); return err })
	a.Server.Mux.Handle("/", a.Auth)
	ok = true
	return a, nil
}

// PurgeEvery removes expired login state every period until ctx ends.
func (a *Authsvc) PurgeEvery(ctx context.Context, period time.Duration, log *slog.Logger) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.Auth.Purge(ctx); err != nil {
				log.Warn("purging expired login state", "err", err)
			}
		}
	}
}

// Close releases the database and the HSM.
func (a *Authsvc) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}
