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
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	"github.com/egate-bank/egate/platform/mall"
)

// EbankURL is where the other platforms reach ebank's holds API: its
// public-url, else its listen address.
func EbankURL(cfg *config.Config) string {
	if u := cfg.Platforms.Ebank.PublicURL; u != "" {
		return strings.TrimRight(u, "/")
	}
	return "http://" + cfg.Platforms.Ebank.Listen
}

// resumeEvery is how often each mall replica retries the holds of orders
// left placing (mall.ResumePlacing).
const resumeEvery = time.Minute

// mountMall serves the mall's pages (platform/mall) on its site: its
// tables in the configured database, money moved through ebank's holds API
// and payments authorized through the passport's transaction API, both as
// the back-end client platforms.mall.tx-client (scopes ebank:holds,
// tx:authorize, tx:execute). Without a tx-client the pages show the shop
// and refuse checkouts. The database is shared when not nil
// (PlatformOptions.DB), else opened here and closed when ctx ends.
func mountMall(ctx context.Context, cfg *config.Config, pc *config.PlatformConfig, s *Server, site *platform.Site, log *slog.Logger, shared *store.DB) error {
	db, err := platformDB(ctx, cfg, shared)
	if err != nil {
		return fmt.Errorf("mall: %w", err)
	}
	s.Health.Add("database", db.PingContext)
	hc := serviceClient(15 * time.Second)
	m := &mall.Mall{DB: db, Ledger: ledger.New(db, nil),
		Bank: &ebank.Client{BaseURL: EbankURL(cfg), ID: pc.TxClient, Secret: pc.TxSecret, HTTP: hc}}
	var auth mall.Authorizer = noTx{}
	if pc.TxClient != "" {
		auth = &txclient.Client{BaseURL: strings.TrimRight(cfg.Platforms.Issuer, "/"), ID: pc.TxClient, Secret: pc.TxSecret, HTTP: hc}
	}
	p := &mall.Pages{Mall: m, Auth: auth,
		Customer: func(r *http.Request) (mall.Customer, bool) {
			ss, ok := site.Session(r)
			if !ok {
				return mall.Customer{}, false
			}
			return mall.Customer{ID: ss.Subject, Name: ss.Name, Level: ss.Level}, true
		},
		OnError: func(r *http.Request, err error) {
			log.Error("mall pages", "err", err, "request_id", httpx.RequestID(r.Context()))
		}}
	site.Mount(p.Handler(), mall.Routes...)
	go m.ResumeEvery(ctx, resumeEvery, func(n int, err error) {
		switch {
		case err != nil:
			log.Error("resuming mall orders", "err", err)
		case n > 0:
			log.Info("resumed mall orders", "orders", n)
		}
	})
	return nil
}
