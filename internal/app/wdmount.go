package app

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/egate-bank/egate/atm/withdrawal"
	"github.com/egate-bank/egate/authsvc"
	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/authsvc/phone"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/authsvc/wdpin"
	"github.com/egate-bank/egate/devices/agent/dclink"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// WithdrawalRecoverEvery is how often the withdrawal service resolves
// unfinished withdrawals by asking their ATMs.
const WithdrawalRecoverEvery = 5 * time.Second

// MountWithdrawals serves the QR withdrawal API (/atm/withdrawals, see
// atm/withdrawal/README.md) on s for egate agent-gateway: the ATMs through
// atms (the gateway), holds in ebank's ledger on db, the withdrawal PIN
// checked with h and counted on the passport's counter, each withdrawal
// authorized by the passport's transaction API as the back-end client of
// cfg.Withdrawals. Sessions are opened only by the back-end clients of
// authsvc.backend-clients holding atm:withdrawals (WithdrawalsHandler).
// It runs Recover at once and every few seconds until ctx ends, and
// returns what the gateway's events go to.
func MountWithdrawals(ctx context.Context, cfg *config.Config, s *Server, db *store.DB, h *hsm.Service, atms withdrawal.Commander, log *slog.Logger) (func(branch string, ev dclink.Event), error) {
	wc := cfg.Withdrawals
	reg, err := backend.New(cfg.Authsvc.BackendClients)
	if err != nil {
		return nil, fmt.Errorf("withdrawals: %w", err)
	}
	base := strings.TrimRight(cmp.Or(wc.TxURL, cfg.Platforms.Issuer), "/")
	if base == "" {
		return nil, fmt.Errorf("withdrawals: give withdrawals.tx-url (or platforms.issuer): the passport's transaction API")
	}
	pp, err := authsvc.NewPassport(ctx, db, cfg.Authsvc.Passport, nil)
	if err != nil {
		return nil, fmt.Errorf("withdrawals: the passport's counters: %w", err)
	}
	pins, err := wdpin.New(wdpin.Options{DB: db, HSM: h, Attempts: pp})
	if err != nil {
		return nil, err
	}
	l := ledger.New(db, nil)
	if _, err := ebank.EnsureBankAccounts(ctx, l); err != nil {
		return nil, fmt.Errorf("withdrawals: %w", err)
	}
	tx := &txclient.Client{BaseURL: base, ID: wc.TxClient, Secret: wc.TxSecret, HTTP: serviceClient(15 * time.Second)}
	wl, err := NewWithdrawalLedger(ctx, &ebank.Holds{Ledger: l, Grants: ebank.RequireGrant{}, DefaultTimeout: cmp.Or(wc.HoldTimeout, 30*time.Minute)})
	if err != nil {
		return nil, err
	}
	wl.Intents = &WithdrawalIntents{Tx: tx, DB: db, OnError: func(err error) { log.Error("withdrawal hold refused", "err", err) }}
	auth := &WithdrawalAuthorizer{Tx: tx, Ledger: l, ATM: atms, PIN: pins, PINTimeout: wc.PINTimeout, DB: db, Phones: phone.New(db, nil)}
	svc, err := withdrawal.New(withdrawal.Options{DB: db, ATM: atms, Ledger: wl, Authorizer: auth, TTL: wc.TTL,
		OnSettled: WithdrawalSettled(tx, l, db, func(err error) { log.Error("withdrawal settled", "err", err) })})
	if err != nil {
		return nil, err
	}
	hd := WithdrawalsHandler(svc, reg)
	s.Mux.Handle("/atm/withdrawals", hd)
	s.Mux.Handle("/atm/withdrawals/", hd)
	go func() {
		t := time.NewTicker(WithdrawalRecoverEvery)
		defer t.Stop()
		for {
			if err := svc.Recover(ctx); err != nil && ctx.Err() == nil {
				log.Warn("withdrawal recovery", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func(_ string, ev dclink.Event) {
		go func() {
			if err := svc.Event(context.WithoutCancel(ctx), ev); err != nil {
				log.Error("withdrawal event", "atm", ev.ATM, "kind", ev.Kind, "err", err)
			}
		}()
	}, nil
}

// WithdrawalsHandler is the withdrawal API with its open route
// (POST /atm/withdrawals) served only to the back-end clients of reg that
// hold the scope atm:withdrawals: the bank's ATM application side. Anybody
// else gets 401 unauthorized or invalid_client (with WWW-Authenticate) or
// 403 insufficient_scope, and no session is opened. The read shows the
// amounts only through the same check (anonymous: the state only); the
// phone's approval keeps its own authentication (the device signature and
// the proof, checked by WithdrawalAuthorizer).
func WithdrawalsHandler(svc *withdrawal.Service, reg *backend.Registry) http.Handler {
	return svc.Handler(func(open http.Handler) http.Handler { return reg.Require(backend.ScopeATMWithdrawals, open) })
}
