package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/httpx"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	"github.com/egate-bank/egate/platform/ebank/web"
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
// when it also closes the database it opened. Grants are checked by
// ebank.RequireGrant until the transaction-authorization client is wired in.
// The database is shared when not nil (PlatformOptions.DB).
func mountEbank(ctx context.Context, cfg *config.Config, s *Server, log *slog.Logger, shared *store.DB) (*ledger.Ledger, *store.DB, error) {
	reg, err := backend.New(cfg.Authsvc.BackendClients)
	if err != nil {
		return nil, nil, err
	}
	db, err := platformDB(ctx, cfg, shared)
	if err != nil {
		return nil, nil, fmt.Errorf("ebank: %w", err)
	}
	l := ledger.New(db, nil)
	if _, err := ebank.EnsureBankAccounts(ctx, l); err != nil {
		return nil, nil, fmt.Errorf("ebank: %w", err)
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
	return l, db, nil
}

// ebankPages are the customer's pages (platform/ebank/web) on the ebank
// site: transfers authorized by the passport's transaction API as the
// back-end client platforms.ebank.tx-client.
func ebankPages(cfg *config.Config, pc *config.PlatformConfig, site *platform.Site, others map[string]string, l *ledger.Ledger, db *store.DB, log *slog.Logger) {
	var auth web.Authorizer = noTx{}
	var alerts web.BalanceAlerter
	hc := serviceClient(15 * time.Second)
	if pc.TxClient != "" {
		c := &txclient.Client{BaseURL: strings.TrimRight(cfg.Platforms.Issuer, "/"), ID: pc.TxClient, Secret: pc.TxSecret, HTTP: hc}
		auth, alerts = c, c
	}
	p := &web.Pages{Ledger: l, Auth: auth, Alerts: alerts, Payees: &ebank.Payees{DB: db}, Mobiles: &ebank.Mobiles{DB: db, Ledger: l},
		Passport: &web.Passport{Issuer: cfg.Platforms.Issuer, HTTP: hc}, Customer: customerOf(site),
		Others: others,
		OnError: func(r *http.Request, err error) {
			log.Error("ebank pages", "err", err, "request_id", httpx.RequestID(r.Context()))
		}}
	p.PassportURL = cfg.Platforms.Issuer // where tokens are enrolled
	p.StatementFont = pc.StatementFont
	warnStatementFont(pc.StatementFont, log)

	site.Mount(p.Handler(), web.Routes...)
	site.SetHome(p.Home())
}

// warnStatementFont tells the operator at start when the Chinese PDF
// statement's font cannot be embedded: the statement is then printed in
// English (and says so) until the font is installed.
func warnStatementFont(path string, log *slog.Logger) {
	if err := web.CheckStatementFont(path); err != nil {
		log.Warn("the Chinese PDF statement is printed in English until its font is there: install fonts-droid-fallback or set platforms.ebank.statement-font",
			"err", err)
	}
}

// customerOf is the logged-in customer of a platform site's session.
func customerOf(site *platform.Site) func(r *http.Request) (web.Customer, bool) {
	return func(r *http.Request) (web.Customer, bool) {
		ss, ok := site.Session(r)
		if !ok {
			return web.Customer{}, false
		}
		return web.Customer{ID: ss.Subject, Name: ss.Name, Level: ss.Level, Token: ss.AccessToken, AMR: ss.AMR, AuthTime: ss.AuthTime}, true
	}
}

// noTx refuses every transfer: no tx-client is configured.
type noTx struct{}

var errNoTx = &txclient.APIError{Status: http.StatusServiceUnavailable, Code: "tx_unavailable", Message: "platforms.ebank.tx-client is not configured"}

func (noTx) Authorize(context.Context, intent.Intent) (txclient.Decision, error) {
	return txclient.Decision{}, errNoTx
}
func (noTx) Challenge(context.Context, string, txclient.ChallengeRequest) (txclient.Challenge, error) {
	return txclient.Challenge{}, errNoTx
}
func (noTx) Proof(context.Context, string, txclient.ProofRequest) (txclient.Grant, error) {
	return txclient.Grant{}, errNoTx
}
func (noTx) Execute(context.Context, string, intent.Intent) (txclient.Executed, error) {
	return txclient.Executed{}, errNoTx
}
func (noTx) Cancel(context.Context, string, string) (txclient.Cancelled, error) {
	return txclient.Cancelled{}, errNoTx
}
