package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/httpx"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	"github.com/egate-bank/egate/platform/messenger"
)

// mountMessenger serves the messenger's pages (platform/messenger) on its
// site: conversations in the database, payments authorized by the
// passport's transaction API and made through ebank's transfers API, both
// as the back-end client platforms.messenger.tx-client (scopes
// tx:authorize, tx:execute, alerts:balance, ebank:holds). Without one,
// chats work and payments are refused. The database is shared when not
// nil (PlatformOptions.DB), else opened here and closed when ctx ends.
func mountMessenger(ctx context.Context, cfg *config.Config, pc *config.PlatformConfig, public string, site *platform.Site, s *Server, log *slog.Logger, shared *store.DB) error {
	db, err := platformDB(ctx, cfg, shared)
	if err != nil {
		return fmt.Errorf("messenger: %w", err)
	}
	ebankURL := cfg.Platforms.Ebank.PublicURL
	if ebankURL == "" {
		ebankURL = "http://" + cfg.Platforms.Ebank.Listen
	}
	hc := serviceClient(15 * time.Second)
	svc := &messenger.Service{Store: &messenger.Store{DB: db}, Hub: &messenger.Hub{}, Auth: noTx{},
		Bank: &messenger.EbankAPI{Ledger: ledger.New(db, nil), BaseURL: ebankURL, ID: pc.TxClient, Secret: pc.TxSecret, HTTP: hc}}
	if pc.TxClient != "" {
		c := &txclient.Client{BaseURL: strings.TrimRight(cfg.Platforms.Issuer, "/"), ID: pc.TxClient, Secret: pc.TxSecret, HTTP: hc}
		svc.Auth, svc.Alerts = c, c
	}
	p := &messenger.Pages{Svc: svc, Alerts: site.Alerts, PublicURL: public, Stop: ctx.Done(), Customer: customerOf(site),
		OnError: func(r *http.Request, err error) {
			log.Error("messenger pages", "err", err, "request_id", httpx.RequestID(r.Context()))
		}}
	site.Mount(p.Handler(), messenger.Routes...)
	s.Health.Add("database", db.PingContext)
	return nil
}
