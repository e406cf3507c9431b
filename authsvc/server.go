// Package authsvc is egate's auth API server: the passport's login pages,
// the OIDC provider the platforms log in with, and the JSON APIs around
// them. New wires the parts (authsvc/passport, authsvc/oidcop,
// authsvc/captcha, authsvc/alerts, authsvc/audit) over one database and one
// signing key; the Server is an http.Handler and keeps no state of its own,
// so any number of replicas can run behind a load balancer.
package authsvc

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/egate-bank/egate/internal/i18n"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"embed"

	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/authsvc/apierr"
	"github.com/egate-bank/egate/authsvc/audit"
	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/captcha"
	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

// Deps are what New needs besides the config.
type Deps struct {
	DB *store.DB
	// Signer is the ES256 (P-256) token signing key: the HSM key
	// "egate-passport-signing" in production.
	Signer crypto.Signer
	// Factors are the second-factor tools (SMS, grid card, OTP, U-shield…).
	Factors []authn.Factor
	// Now is the clock (default time.Now).
	Now func() time.Time
	// BackchannelClient posts logout tokens to the clients' back-channel
	// logout URIs (default: 5 s timeout, redirects not followed).
	BackchannelClient *http.Client
	// PasswordHooks and CaptchaHook let tests observe; leave zero.
	PasswordHooks passport.Hooks
	CaptchaHook   func(id, answer string)
	// Log receives what the public pages and APIs must not show (a device
	// fault's module error, with the request id); nil discards it.
	Log *slog.Logger
}

// Server is the auth API.
type Server struct {
	cfg      Config
	db       *store.DB
	now      func() time.Time
	passport *passport.Service
	storage  *oidcop.Storage
	provider *op.Provider
	captchas *captcha.Store
	alerts   *alerts.Outbox
	audit    *audit.Log
	factors  []authn.Factor
	pages    *template.Template
	base     string // the issuer's path, "" at the root
	secure   bool
	mux      *http.ServeMux
	// logoutKey signs post-logout redirects; backchannel delivers logout tokens.
	logoutKey   []byte
	backchannel *http.Client
	log         *slog.Logger
	orders      *orders.Service // signing orders of the signature tools (orders_login.go)
	self        SelfService     // the self-service APIs' tools and limits (api_self.go)
}

// New builds the server. The HMAC key shared by replicas (decoy reserved
// messages, code encryption) is created once in the database.
func New(ctx context.Context, cfg Config, deps Deps) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.DB == nil {
		return nil, errors.New("authsvc: no database")
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	key, err := sharedKey(ctx, deps.DB, now)
	if err != nil {
		return nil, err
	}
	outbox := alerts.New(deps.DB, now)
	hooks := deps.PasswordHooks
	hooks.OnFactorFailure = factorFailureAlerts(outbox, now, deps.PasswordHooks.OnFactorFailure)
	ps, err := passport.New(deps.DB, cfg.Passport, key, now, hooks)
	if err != nil {
		return nil, err
	}
	iu, _ := url.Parse(cfg.Issuer)
	s := &Server{
		cfg: cfg, db: deps.DB, now: now, passport: ps, factors: deps.Factors,
		captchas: captcha.New(deps.DB, now, cfg.CaptchaTTL, 5),
		alerts:   outbox,
		audit:    audit.New(deps.DB, now),
		base:     strings.TrimSuffix(iu.Path, "/"),
		secure:   iu.Scheme == "https",
		log:      deps.Log,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.orders = orders.New(deps.DB, now, s.verifyOrder)
	s.logoutKey, s.backchannel = key, deps.BackchannelClient
	if s.backchannel == nil {
		s.backchannel = &http.Client{Timeout: backchannelTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if deps.CaptchaHook != nil {
		s.captchas = s.captchas.WithIssueHook(deps.CaptchaHook)
	}
	s.storage, err = oidcop.NewStorage(deps.DB, cfg.OIDC, deps.Signer, cfg.SigningKeyID, users{ps}, now,
		func(id string) string { return s.base + "/login?id=" + url.QueryEscape(id) })
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	s.provider, err = oidcop.NewProvider(cfg.Issuer, s.storage, key, cfg.AllowInsecure)
	if err != nil {
		return nil, err
	}
	s.pages, err = template.ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// sharedKey returns the 32-byte key every replica shares, creating it on
// first start.
func sharedKey(ctx context.Context, db *store.DB, now func() time.Time) ([]byte, error) {
	var b [32]byte
	rand.Read(b[:])
	if _, err := db.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES ('authsvc.hmac_key', ?, ?) ON CONFLICT DO NOTHING`,
		hex.EncodeToString(b[:]), now().UnixMilli()); err != nil {
		return nil, fmt.Errorf("storing the shared key: %w", err)
	}
	var v string
	if err := db.QueryRow(ctx, `SELECT v FROM kv WHERE k = 'authsvc.hmac_key'`).Scan(&v); err != nil {
		return nil, fmt.Errorf("reading the shared key: %w", err)
	}
	return hex.DecodeString(v)
}

type users struct{ p *passport.Service }

func (u users) UserInfo(ctx context.Context, pid string) (oidcop.UserInfo, error) {
	c, err := u.p.Customer(ctx, pid)
	if err != nil {
		return oidcop.UserInfo{}, err
	}
	return oidcop.UserInfo{LoginName: c.LoginName, Mobile: c.Mobile}, nil
}

// Passport returns the passport service (admin commands, platforms).
func (s *Server) Passport() *passport.Service { return s.passport }

// Alerts returns the alerts outbox.
func (s *Server) Alerts() *alerts.Outbox { return s.alerts }

// Audit returns the audit log.
func (s *Server) Audit() *audit.Log { return s.audit }

// Storage returns the OIDC storage (sessions, clients).
func (s *Server) Storage() *oidcop.Storage { return s.storage }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i18n.Remember(w, r)
	s.mux.ServeHTTP(&langWriter{ResponseWriter: w, r: r}, r)
}

// langWriter carries the request to render, which picks the page's
// language from it (internal/i18n).
type langWriter struct {
	http.ResponseWriter
	r *http.Request
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *langWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) routes() {
	m := http.NewServeMux()
	b := s.base
	m.HandleFunc("GET "+b+"/login", s.loginStart)
	m.HandleFunc("POST "+b+"/login/name", s.loginName)
	m.HandleFunc("POST "+b+"/login/password", s.loginPassword)
	m.HandleFunc("POST "+b+"/login/captcha", s.newCaptcha)
	m.HandleFunc("POST "+b+"/login/factor/begin", s.factorBegin)
	m.HandleFunc("POST "+b+"/login/factor", s.factorVerify)
	m.HandleFunc("GET "+b+"/login/order/collect", s.orderCollect)
	m.HandleFunc("POST "+b+"/login/order/finish", s.orderFinish)
	m.HandleFunc("POST "+b+"/login/order/cancel", s.orderCancel)
	m.Handle(b+"/v1/orders/", s.orders.DeviceAPI(b, s.clientIP))
	m.HandleFunc("GET "+b+"/account/enrol", s.enrolPage)
	m.HandleFunc("GET "+b+"/account/enrol/collect", s.enrolCollect)
	m.HandleFunc("POST "+b+"/account/enrol/finish", s.enrolFinish)
	m.HandleFunc("POST "+b+"/account/enrol/cancel", s.enrolCancel)
	m.HandleFunc("POST "+b+"/v1/phone/bind/start", s.phoneBindStart)
	m.HandleFunc("POST "+b+"/v1/phone/bind/finish", s.phoneBindFinish)
	m.HandleFunc("GET "+b+"/logout", s.logoutPage)
	m.HandleFunc("POST "+b+"/logout", s.logout)
	m.HandleFunc("GET "+b+"/logged-out", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, http.StatusOK, "message", page{Title: "Signed out", Message: "You are signed out of the bank on this browser."})
	})
	for _, p := range APIRoutes {
		method, path, _ := strings.Cut(p, " ")
		m.HandleFunc(method+" "+b+path, s.apiHandler(p))
	}
	m.HandleFunc(b+"/api/", func(w http.ResponseWriter, r *http.Request) {
		apierr.WriteCode(w, r, apierr.NotFound, "")
	})
	m.HandleFunc("POST "+b+"/oauth/token", s.tokenEndpoint)
	m.HandleFunc("GET "+b+"/authorize/callback", s.authorizeCallback)
	// The provider serves the rest, some of it behind guards (oauth.go,
	// callback.go, logout.go); its 5xx answers are replaced by 503 "try
	// again" (faults.go).
	prov := s.hideFaults(http.StripPrefix(b, s.provider))
	m.HandleFunc("GET "+b+"/.well-known/openid-configuration", s.discovery)
	m.HandleFunc(b+"/device_authorization", noEndpoint)
	m.Handle(b+"/oauth/introspect", s.oauthForm(prov))
	m.Handle(b+"/revoke", s.oauthForm(prov))
	m.Handle(b+"/userinfo", s.userinfo(prov))
	m.HandleFunc(b+"/end_session", s.endSession)
	m.Handle(b+"/authorize", s.authorize(prov))
	m.Handle("/", prov)
	s.mux = m
}

// clientIP is the peer address, or the first X-Forwarded-For hop when the
// config trusts the load balancer.
func (s *Server) clientIP(r *http.Request) string {
	if s.cfg.TrustForwardedFor {
		if f := r.Header.Get("X-Forwarded-For"); f != "" {
			ip := strings.TrimSpace(strings.Split(f, ",")[0])
			if net.ParseIP(ip) != nil {
				return ip
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// NewPassport returns the passport service over db with the replicas'
// shared key, for operator commands and platforms that run without the
// HTTP server.
func NewPassport(ctx context.Context, db *store.DB, cfg passport.Config, now func() time.Time) (*passport.Service, error) {
	if now == nil {
		now = time.Now
	}
	key, err := sharedKey(ctx, db, now)
	if err != nil {
		return nil, err
	}
	return passport.New(db, cfg, key, now, passport.Hooks{})
}

// Purge deletes expired auth requests, tokens, sessions and captchas; run
// it now and then from one replica or all (it is idempotent).
func (s *Server) Purge(ctx context.Context) error {
	if _, err := s.storage.Purge(ctx, 24*time.Hour); err != nil {
		return err
	}
	if _, err := s.orders.Purge(ctx, s.now().Add(-24*time.Hour)); err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM phone_binds WHERE expires_ms < ?`, s.now().Add(-24*time.Hour).UnixMilli()); err != nil {
		return fmt.Errorf("purging phone bindings in progress: %w", err)
	}
	return s.captchas.Purge(ctx)
}
