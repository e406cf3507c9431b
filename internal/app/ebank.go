package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/httpx"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// Ebank's holds API and expiry sweep. A hold's timeout when the caller
// gives none, and how often each replica releases expired holds.
const (
	holdTimeout = 15 * time.Minute
	expiryEvery = 30 * time.Second
)

// mountEbank serves ebank's holds and transfers API (/v1/holds,
// /v1/transfers; platform/ebank) on s to the back-end clients of
// authsvc.backend-clients that hold the scope ebank:holds, opens the bank's
// own accounts if missing, and runs the hold expiry sweep until ctx ends,
// when it also closes the database. Grants are checked by
// ebank.RequireGrant until the transaction-authorization client is wired in.
func mountEbank(ctx context.Context, cfg *config.Config, s *Server, log *slog.Logger) error {
	reg, err := backend.New(cfg.Authsvc.BackendClients)
	if err != nil {
		return err
	}
	db, err := OpenDB(ctx, cfg)
	if err != nil {
		return fmt.Errorf("ebank: %w", err)
	}
	l := ledger.New(db, nil)
	if _, err := ebank.EnsureBankAccounts(ctx, l); err != nil {
		db.Close()
		return fmt.Errorf("ebank: %w", err)
	}
	holds := &ebank.Holds{Ledger: l, Grants: ebank.RequireGrant{}, DefaultTimeout: holdTimeout}
	api := &ebank.API{Holds: holds, OnError: func(r *http.Request, err error) {
		log.Error("ebank API", "err", err, "request_id", httpx.RequestID(r.Context()))
	}}
	h := reg.Require(backend.ScopeEbankHolds, api.Handler())
	for _, p := range []string{"/v1/holds", "/v1/holds/", "/v1/transfers", "/v1/transfers/"} {
		s.Mux.Handle(p, h)
	}
	s.Health.Add("database", db.PingContext)
	go holds.ExpireEvery(ctx, expiryEvery, func(n int, err error) {
		switch {
		case err != nil:
			log.Error("releasing expired holds", "err", err)
		case n > 0:
			log.Info("released expired holds", "holds", n)
		}
	})
	context.AfterFunc(ctx, func() { db.Close() })
	return nil
}
