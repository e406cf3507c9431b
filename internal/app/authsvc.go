package app

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"

	"github.com/egate-bank/egate/authsvc"
	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/authsvc/audit"
	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/authsvc/factors"
	"github.com/egate-bank/egate/authsvc/jwe"
	"github.com/egate-bank/egate/authsvc/sms"
	"github.com/egate-bank/egate/authsvc/txauth"
	"github.com/egate-bank/egate/authsvc/wdpin"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/store"
)

// AuthsvcOptions are the choices a process makes beyond the config.
type AuthsvcOptions struct {
	// InitKeys creates the bank's standard HSM keys that are missing (the
	// demo); otherwise they must exist (egate admin hsm init).
	InitKeys bool
}

// Authsvc is the auth API process: the passport's pages and OIDC provider
// on one server, with the database and the HSM it owns.
type Authsvc struct {
	Server  *Server
	Auth    *authsvc.Server
	Factors *factors.Set
	// Backend holds the back-end clients of authsvc.backend-clients, which
	// alone may call the OTP verify API.
	Backend *backend.Registry
	// Tx is transaction authorization (authsvc/txauth), served under
	// /v1/tx/ and /v1/alerts/ to the back-end clients with its scopes.
	Tx *txauth.Service
	// TxAccounts are the accounts of transactions.accounts (and what egate
	// demo adds); txauth also asks ebank's ledger (ebank.Owners).
	TxAccounts *txauth.MapAccounts
	DB         *store.DB
	HSM        *hsm.Service
	Issuer     string
	Config     authsvc.Config // the authsvc section in force, defaults filled
	Keys       []hsm.Key      // the standard keys, when InitKeys made or found them
	closers    []func()
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
// key exists, builds the authentication tools (factors.*) and the passport
// on cfg.HTTP.Listen. The tools' own APIs are mounted beside the passport:
// /ca/ (CRL and CA certificates, public) and the OTP verify API
// (POST /v1/otp/verify and /v1/otp/resync), which answers only the
// back-end clients of authsvc.backend-clients that hold the scope
// otp:verify or otp:resync (HTTP Basic; authsvc/backend), and the
// transaction authorization API (/v1/tx/, /v1/alerts/; authsvc/txauth) to
// those with tx:authorize, tx:execute or alerts:balance; GET /openapi.yaml
// (and .json) describes them all (AuthsvcRoutes). No simulator
// page (/sim/...) is mounted here, whatever the config: egate demo mounts
// its own.
func NewAuthsvc(ctx context.Context, cfg *config.Config, log *slog.Logger, o AuthsvcOptions) (*Authsvc, error) {
	ac := AuthsvcConfig(cfg)
	if err := ac.Validate(); err != nil {
		return nil, err
	}
	// The tools' config is checked again by factors.Build; checking it here
	// too refuses a bad one (such as sms with no gateway) before the
	// database and the HSM are opened.
	if err := cfg.Factors.WithDefaults().Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Transactions.Validate(); err != nil {
		return nil, err
	}
	// The HSM's config too, so that a missing hsm.module is named before
	// anything is opened.
	hc, err := HSMConfig(cfg)
	if err != nil {
		return nil, err
	}
	a := &Authsvc{Issuer: ac.Issuer, Config: ac}
	// The back-end clients' secrets are read before anything is opened.
	if a.Backend, err = backend.New(ac.BackendClients); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	if a.DB, err = OpenDB(ctx, cfg); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { a.DB.Close() })
	if a.HSM, err = hsm.Open(ctx, hc); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { a.HSM.Close() })
	if o.InitKeys {
		if a.Keys, err = a.HSM.InitStandardKeys(ctx); err != nil {
			return nil, fmt.Errorf("creating the bank's standard HSM keys: %w", err)
		}
	}
	if _, _, err := a.HSM.EnsureKey(ctx, hsm.KeySpec{Label: ac.SigningKey, Type: hsm.KeyECDSAP256}); err != nil {
		return nil, fmt.Errorf("the token signing key %q: %w", ac.SigningKey, err)
	}
	signer, err := a.HSM.Signer(ctx, ac.SigningKey)
	if err != nil {
		return nil, err
	}
	if a.Factors, err = factors.Build(ctx, cfg.Factors, factors.Deps{DB: a.DB, HSM: a.HSM}); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { a.Factors.Close() })
	if log != nil {
		if rw := a.Factors.OTPRewrap; rw.Total() > 0 {
			log.Info("moved OTP seeds under the seed-wrap key, inside the HSM", "seeds", rw.Total(), "from", rw.Rewrapped, "to", cfg.Factors.WithDefaults().OTP.WrapKeyLabel)
		}
		if err := a.Factors.OTPRewrapErr; err != nil {
			log.Warn("some OTP seeds could not be moved under the seed-wrap key; they keep working under their old key (egate admin hsm rewrap-seeds retries)", "err", err)
		}
	}
	var authLog *slog.Logger
	if log != nil {
		authLog = log.With("server", "authsvc")
	}
	a.Auth, err = authsvc.New(ctx, ac, authsvc.Deps{DB: a.DB, Signer: signer, Factors: a.Factors.Factors, Log: authLog})
	if err != nil {
		return nil, err
	}
	// Transactions count the tools' failures on the same counters as logins.
	a.Factors.Attempts = a.Auth.Passport()
	txEnc, err := txEncryption(ctx, a.HSM, cfg.Transactions, log)
	if err != nil {
		return nil, err
	}
	a.TxAccounts = txauth.NewMapAccounts(cfg.Transactions.Accounts)
	accounts := eitherAccounts{a.TxAccounts, ebank.Owners{Ledger: ledger.New(a.DB, nil)}}
	if a.Tx, err = txauth.New(cfg.Transactions, txauth.Deps{DB: a.DB, Tools: txauth.FromFactors(a.Factors), Audit: a.Auth.Audit(), Alerts: a.Auth.Alerts(), Encryption: txEnc, Accounts: accounts, Orders: a.Auth}); err != nil {
		return nil, err
	}
	// The customer's self-service APIs list, bind and revoke the tools and
	// lower the limits that transactions count against,
	// and set the withdrawal PIN the ATMs check (an HMAC in the HSM).
	pins, err := wdpin.New(wdpin.Options{DB: a.DB, HSM: a.HSM, Attempts: a.Auth.Passport()})
	if err != nil {
		return nil, err
	}
	a.Auth.SetSelfService(authsvc.SelfService{Tools: a.Factors, Limits: a.Tx.Counter(), WithdrawalPINs: pins})
	if a.Server, err = NewServer("authsvc", cfg.HTTP.Listen, log); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { a.Server.Listener.Close() })
	a.Server.Health.Add("database", func(ctx context.Context) error { return a.DB.PingContext(ctx) })
	// Check reopens an HSM that became unreachable once its backoff
	// allows, so the probe alone brings the process back to ready.
	a.Server.Health.Add("hsm", func(ctx context.Context) error {
		if err := a.HSM.Check(ctx); err != nil {
			return err
		}
		_, err := a.HSM.FindKey(ctx, ac.SigningKey)
		return err
	})
	a.Server.Mux.Handle("/", a.Auth)
	a.Server.Mux.Handle("/ca/", a.Factors.Handler) // caRoutes, and 404 for the rest
	for _, r := range otpRoutes {
		a.Server.Mux.Handle(r.Pattern, a.Backend.Require(r.Scope, a.Factors.Handler))
	}
	oa, err := authsvc.OpenAPIHandler()
	if err != nil {
		return nil, err
	}
	for _, r := range openapiRoutes {
		a.Server.Mux.Handle(r.Pattern, oa)
	}
	tx := a.Tx.Handler(a.Backend)
	a.Server.Mux.Handle("/v1/tx/", tx)
	a.Server.Mux.Handle("/v1/alerts/", tx)
	a.Server.Mux.Handle("GET /keys/encryption", tx) // beside the OIDC JWKS at /keys
	if a.Factors.OTP != nil && len(a.Backend.IDs()) == 0 {
		log.Info("no back-end client may call the OTP verify API: authsvc.backend-clients is empty")
	}
	ok = true
	return a, nil
}

// txEncryption opens the HSM's transaction-encryption key
// (transactions.encryption-key) for JWE intents and proofs, with RSA-OAEP
// at the hash the HSM does (SHA-256, or SHA-1 on SoftHSM2 2.6). A missing
// key is an error only when transactions.require-encryption lists a
// channel; otherwise JWE bodies are not accepted and the log says how to
// make the key.
func txEncryption(ctx context.Context, h *hsm.Service, tc txauth.Config, log *slog.Logger) (*jwe.Opener, error) {
	tc = tc.WithDefaults()
	dec, err := h.Decrypter(ctx, tc.EncryptionKey)
	if errors.Is(err, hsm.ErrKeyNotFound) && len(tc.RequireEncryption) == 0 {
		if log != nil {
			log.Info("no transaction-encryption key in the HSM: intents and proofs are accepted in clear only (egate admin hsm init makes it)", "key", tc.EncryptionKey)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the transaction-encryption key %q (transactions.encryption-key; egate admin hsm init makes %s): %w", tc.EncryptionKey, hsm.LabelTxEncryption, err)
	}
	hash, err := dec.OAEPHash(ctx)
	if err != nil {
		return nil, fmt.Errorf("the transaction-encryption key %q: %w", tc.EncryptionKey, err)
	}
	alg := jwe.AlgRSAOAEP256
	if hash == crypto.SHA1 {
		alg = jwe.AlgRSAOAEP
	}
	return jwe.New(dec, alg)
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

// CheckpointAuditEvery signs the audit log's head with the HSM's audit key
// (hsm.LabelAuditCheckpoint) every authsvc.audit-checkpoint-every, when
// records were added, until ctx ends. Every replica may run it: a head
// signed twice is stored once. A tampered log is reported, never signed.
func (a *Authsvc) CheckpointAuditEvery(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(a.Config.AuditCheckpointEvery)
	defer t.Stop()
	var key crypto.Signer
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if key == nil {
			s, err := a.HSM.Signer(ctx, hsm.LabelAuditCheckpoint)
			if err != nil {
				log.Warn("audit checkpoints: the HSM's audit key is not usable (egate admin hsm init makes it)", "key", hsm.LabelAuditCheckpoint, "err", err)
				continue
			}
			key = s
		}
		cp, err := a.Auth.Audit().Checkpoint(ctx, key)
		switch {
		case errors.Is(err, audit.ErrNothingToSign):
		case errors.Is(err, audit.ErrBroken):
			log.Error("audit log does not verify: not signing it; run egate admin audit verify", "err", err)
		case err != nil:
			log.Warn("audit checkpoint", "err", err)
		default:
			log.Info("audit checkpoint signed", "seq", cp.Seq, "head", cp.HeadHash)
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

// WatchRiskRules reloads transactions.risk-rules every
// transactions.reload-interval until ctx ends, logging each reload and
// each refused rule set (the rules in force stay).
func (a *Authsvc) WatchRiskRules(ctx context.Context, log *slog.Logger) {
	a.Tx.WatchRules(ctx, func(changed bool, err error) {
		if err != nil {
			log.Warn("risk rules refused; the rules in force stay", "err", err)
		} else if changed {
			log.Info("risk rules reloaded")
		}
	})
}

// DeliverLoginAlerts sends login, failed-login and lockout alerts by SMS to
// the customer's mobile (one SMS per sitting: alerts.SMSText decides)
// through the SMS factor's gateway (the operator's API, or the development
// sink when factors.sms.dev-sink is set), until ctx ends. It returns at once
// when the sms factor is off. Every replica may run it: each alert is
// claimed once.
func (a *Authsvc) DeliverLoginAlerts(ctx context.Context, log *slog.Logger) {
	gw := a.Factors.SMSGateway
	if gw == nil {
		return
	}
	ps := a.Auth.Passport()
	a.Auth.Alerts().Run(ctx, alerts.ConsumerSMS, 2*time.Second, func(ctx context.Context, al alerts.Alert) error {
		text, ok := alerts.SMSText(al, nil)
		if !ok {
			return nil // not an SMS (SSO, step-up, other kinds) or malformed: never retried
		}
		c, err := ps.Customer(ctx, al.PassportID)
		if err != nil || c.Mobile == "" {
			return err
		}
		return gw.Send(ctx, sms.Message{To: c.Mobile, Body: text})
	}, func(err error) { log.Warn("delivering login alerts by SMS", "err", err) })
}

// eitherAccounts: an account is the customer's when the configured map or
// ebank's ledger says so; its age is the ledger's.
type eitherAccounts struct {
	m *txauth.MapAccounts
	l ebank.Owners
}

func (e eitherAccounts) Owns(ctx context.Context, customer, account string) (bool, error) {
	if ok, _ := e.m.Owns(ctx, customer, account); ok {
		return true, nil
	}
	return e.l.Owns(ctx, customer, account)
}

func (e eitherAccounts) AccountAgeDays(ctx context.Context, account string) (int64, error) {
	return e.l.AccountAgeDays(ctx, account)
}
