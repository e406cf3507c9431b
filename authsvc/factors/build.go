package factors

import (
	"context"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/egate-bank/egate/authsvc/apierr"
	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/authsvc/gridcard"
	"github.com/egate-bank/egate/authsvc/oath"
	"github.com/egate-bank/egate/authsvc/phone"
	"github.com/egate-bank/egate/authsvc/pivauth"
	"github.com/egate-bank/egate/authsvc/sms"
	"github.com/egate-bank/egate/authsvc/ushield"
	"github.com/egate-bank/egate/devices/hsm"
	devotp "github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/internal/store"
)

// Deps are what Build needs besides the config.
type Deps struct {
	DB  *store.DB
	HSM *hsm.Service
	// Now is the clock (default time.Now).
	Now func() time.Time
	// SMS is an SMS gateway to use instead of the configured one (tests).
	// When nil, Build makes sms.HTTPGateway from factors.sms.gateway, or the
	// development sink (messages stored in the database outbox, shown by
	// egate sim sms and egate demo's /sim/sms/) only when
	// factors.sms.dev-sink is true: it must never run in production, its
	// messages hold live codes in clear.
	SMS sms.Gateway
}

// Set is every tool Build made, and their HTTP APIs.
type Set struct {
	// Factors are the enabled tools, in level order, for authsvc.Deps.Factors.
	Factors []authn.Factor

	SMS     *sms.Service // nil when sms is not enabled
	SMSSink *sms.Sink    // non-nil when the development sink is in use
	// SMSGateway is the gateway SMS codes leave through (Deps.SMS, the
	// operator's HTTP API or SMSSink); nil when sms is not enabled. Other
	// messages to customers (login alerts) may use it too.
	SMSGateway sms.Gateway
	GridCard   *gridcard.Service // nil when gridcard is not enabled
	OTP        *oath.Service     // nil when otp is not enabled
	UShield    *ushield.Service  // nil when neither ushield nor ushield2 is enabled
	PIV        *pivauth.Service  // nil when piv is not enabled
	Phone      *phone.Service    // nil when phone is not enabled
	CA         *ca.CA            // nil when the CA is not initialised and no tool needs it

	// Attempts is the passport's per-customer, per-factor counter
	// (authsvc.Server.Passport()), the one lockout counter of the tools
	// that keep none of their own (ushield, ushield2, piv):
	// VerifyTransaction counts their answers on it, as the login pages do.
	// The process sets it once the passport exists; without it
	// VerifyTransaction refuses those tools (authn.ErrNoAttempts). The
	// SMS code, the grid card and the OTP token count on their own.
	Attempts authn.Attempts

	// OTPRewrap is what Build's RewrapSeeds moved under the seed-wrap key
	// (seeds stored under an older key); OTPRewrapErr says which seeds
	// could not be moved (they keep working under their own key): the
	// caller logs both.
	OTPRewrap    oath.RewrapSummary
	OTPRewrapErr error

	// Handler serves the tools' own HTTP APIs under fixed prefixes:
	//   /v1/otp/verify, /v1/otp/resync  the OTP back-office API (authsvc/oath):
	//                                   the caller mounts it behind back-end
	//                                   client authentication (authsvc/backend)
	//   /ca/crl, /ca/root.pem, /ca/issuing.pem  the bank CA (authsvc/ca)
	// Anything else answers 404 in egate's JSON error shape. The development
	// SMS sink's page (simulators/sms.Handler over SMSSink) is not here:
	// only egate demo mounts it.
	Handler http.Handler

	db  *store.DB
	now func() time.Time
}

// Build makes every enabled tool over one database and one HSM. It checks
// up front that the HSM holds the keys the tools use (egate-hmac for SMS,
// egate-secrets-wrap sealing grid cards, the seed-wrap key egate-otp-seed-wrap
// for OTP seeds, which must be of type aes-256-seed-wrap, egate-ca-issuing
// for the CA), so a missing key fails here with its label rather than at a
// customer's first login. With OTP on, it moves seeds still wrapped by
// another key under the seed-wrap key (oath.Service.RewrapSeeds; see
// Set.OTPRewrap).
//
// The bank CA is loaded when the database has one. When it has none, Build
// creates it if cfg.CA.AutoInit (the demo), fails with ca.ErrNotInitialized
// if a certificate tool (ushield, ushield2, piv) is enabled, and otherwise
// goes on without a CA (Set.CA nil; /ca/ answers 503 not_initialized).
func Build(ctx context.Context, cfg Config, deps Deps) (*Set, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(deps.SMS != nil); err != nil {
		return nil, err
	}
	if deps.DB == nil {
		return nil, errors.New("factors: no database")
	}
	if deps.HSM == nil {
		return nil, errors.New("factors: no HSM: the tools keep their secrets under HSM keys")
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	set := &Set{db: deps.DB, now: now}
	h := deps.HSM

	// The SMS gateway first: a token that cannot be read fails before
	// anything (such as an auto-initialised CA) is made.
	if cfg.enabled(SMS) {
		gw := deps.SMS
		switch {
		case gw != nil:
		case cfg.SMS.Gateway.URL != "":
			g := cfg.SMS.Gateway
			hg, err := sms.NewHTTPGateway(sms.HTTPGatewayConfig{URL: g.URL, TokenSource: g.TokenSource, Timeout: g.Timeout})
			if err != nil {
				return nil, fmt.Errorf("%w: sms.gateway: %w", ErrConfig, err)
			}
			gw = hg
		case cfg.SMS.DevSink:
			set.SMSSink = sms.NewSink(deps.DB, now)
			gw = set.SMSSink
		default: // Validate refuses this; never fall back to the sink
			return nil, fmt.Errorf("%w: sms has no gateway", ErrConfig)
		}
		set.SMSGateway = gw
	}

	// The HSM keys the enabled tools need.
	var need []string
	if cfg.enabled(SMS) {
		need = append(need, sms.HMACKeyLabel)
	}
	if cfg.enabled(GridCard) {
		need = append(need, gridcard.SealKeyLabel)
	}
	if cfg.enabled(OTP) {
		need = append(need, cfg.OTP.WrapKeyLabel)
	}
	for _, l := range need {
		k, err := h.FindKey(ctx, l)
		if err != nil {
			return nil, fmt.Errorf("factors: %w", err)
		}
		if cfg.enabled(OTP) && l == cfg.OTP.WrapKeyLabel && k.Type != hsm.KeySeedWrap {
			return nil, fmt.Errorf("factors: %w: otp.wrap-key-label names %q, a %s key, not a seed-wrap key (%s): seeds would not stay in the HSM; run egate admin hsm init (it makes %s) and name that", hsm.ErrKeyType, l, typeOf(k), hsm.KeySeedWrap, hsm.LabelSeedWrap)
		}
	}

	c, err := openCA(ctx, cfg, deps.DB, h, now)
	if err != nil {
		return nil, err
	}
	set.CA = c

	if cfg.enabled(SMS) {
		s := cfg.SMS
		set.SMS = sms.New(deps.DB, set.SMSGateway, phoneBook{deps.DB}, h, sms.Config{BankName: s.BankName, TTL: s.TTL, Window: s.SendWindow,
			PerCustomer: s.PerCustomer, PerPhone: s.PerPhone, PerIP: s.PerIP, MaxAttempts: s.MaxAttempts, LockFor: s.LockFor}, now)
	}
	if cfg.enabled(GridCard) {
		g := cfg.GridCard
		set.GridCard, err = gridcard.New(deps.DB, h, gridcard.Config{Cols: g.Cols, Rows: g.Rows, Cells: g.Cells, MaxUses: g.MaxUses,
			MaxAttempts: g.MaxAttempts, TTL: g.TTL}, now)
		if err != nil {
			return nil, fmt.Errorf("%w: gridcard: %w", ErrConfig, err)
		}
	}
	if cfg.enabled(OTP) {
		o := cfg.OTP
		set.OTP = oath.New(deps.DB, h, oath.Config{WrapKeyLabel: o.WrapKeyLabel, HOTPWindow: o.HOTPWindow, HOTPLookBehind: o.HOTPLookBehind,
			TOTPSteps: o.TOTPSteps, ResyncWindow: o.ResyncWindow, MaxFailures: o.MaxFailures, LockFor: o.LockFor,
			ChallengeTTL: o.ChallengeTTL, OCRACounterAhead: o.OCRACounterAhead,
			TxLayout: devotp.TxLayout{ChallengeDigits: o.OCRAChallenge, PayeeDigits: o.OCRAPayeeDigits}}, now)
		// Seeds stored under an older key move under the seed-wrap key
		// now, inside the HSM. A seed that cannot move keeps working under
		// its own key: that is reported, not fatal.
		set.OTPRewrap, set.OTPRewrapErr = set.OTP.RewrapSeeds(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if cfg.enabled(UShield) || cfg.enabled(UShield2) {
		set.UShield = ushield.New(deps.DB, c, now)
		set.UShield.TTL = cfg.UShield.ChallengeTTL
	}
	if cfg.enabled(Phone) {
		set.Phone = phone.New(deps.DB, now)
	}
	if cfg.enabled(PIV) {
		set.PIV = pivauth.New(deps.DB, c, now)
		set.PIV.TTL = cfg.PIV.ChallengeTTL
		if cfg.PIV.VendorRoots != "" {
			pool, err := readRoots(cfg.PIV.VendorRoots)
			if err != nil {
				return nil, fmt.Errorf("factors.piv.vendor-roots: %w", err)
			}
			set.PIV.VendorRoots = pool
		}
	}

	// Level order: sms, gridcard (2), otp, phone (3), ushield, piv (4), ushield2 (5).
	for _, name := range All {
		if !cfg.enabled(name) {
			continue
		}
		switch name {
		case SMS:
			set.Factors = append(set.Factors, set.SMS.Factor())
		case GridCard:
			set.Factors = append(set.Factors, set.GridCard.Factor())
		case OTP:
			set.Factors = append(set.Factors, oath.Factor{S: set.OTP})
		case Phone:
			set.Factors = append(set.Factors, set.Phone.Factor())
		case UShield:
			set.Factors = append(set.Factors, set.UShield.Factor(1))
		case PIV:
			set.Factors = append(set.Factors, set.PIV.Factor())
		case UShield2:
			set.Factors = append(set.Factors, set.UShield.Factor(2))
		}
	}
	set.Handler = set.handler()
	return set, nil
}

// openCA loads the bank CA, or makes it (AutoInit), or says why it can't.
func openCA(ctx context.Context, cfg Config, db *store.DB, h *hsm.Service, now func() time.Time) (*ca.CA, error) {
	var certTools []string
	for _, n := range cfg.Enabled {
		if needsCA(n) {
			certTools = append(certTools, n)
		}
	}
	c, err := ca.Load(ctx, db, nil, now)
	if errors.Is(err, ca.ErrNotInitialized) {
		switch {
		case cfg.CA.AutoInit:
			return initCA(ctx, cfg, db, h, now)
		case len(certTools) > 0:
			return nil, fmt.Errorf("factors: %s need the bank CA: %w (or set factors.ca.auto-init for a demo, or leave %s out of factors.enabled)",
				strings.Join(certTools, ", "), err, strings.Join(certTools, ", "))
		default:
			return nil, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("factors: opening the bank CA: %w", err)
	}
	// The CA is there: load it again with its issuing key from the HSM, so
	// that enrollment (Issue) works through the same Set.
	key, err := h.Signer(ctx, ca.IssuingKeyLabel)
	if err != nil {
		if len(certTools) == 0 {
			return c, nil // verification and the CRL need no key; enrollment will say what is missing
		}
		return nil, fmt.Errorf("factors: the bank CA's issuing key: %w", err)
	}
	c, err = ca.Load(ctx, db, key, now)
	if err != nil {
		return nil, fmt.Errorf("factors: opening the bank CA: %w", err)
	}
	return c, nil
}

// initCA is `egate admin ca init` for the demo: root and issuing keys made in
// the HSM if missing, certificates stored. A replica that loses the race to
// another loads the winner's CA.
func initCA(ctx context.Context, cfg Config, db *store.DB, h *hsm.Service, now func() time.Time) (*ca.CA, error) {
	for _, l := range []string{ca.RootKeyLabel, ca.IssuingKeyLabel} {
		if _, _, err := h.EnsureKey(ctx, hsm.KeySpec{Label: l, Type: hsm.KeyECDSAP256}); err != nil {
			return nil, fmt.Errorf("factors: creating the CA key %q: %w", l, err)
		}
	}
	root, err := h.Signer(ctx, ca.RootKeyLabel)
	if err != nil {
		return nil, fmt.Errorf("factors: the CA root key: %w", err)
	}
	iss, err := h.Signer(ctx, ca.IssuingKeyLabel)
	if err != nil {
		return nil, fmt.Errorf("factors: the CA issuing key: %w", err)
	}
	c, err := ca.Init(ctx, db, root, iss, ca.Options{Organization: cfg.CA.Organization}, now)
	if errors.Is(err, ca.ErrAlreadyInitialized) {
		c, err = ca.Load(ctx, db, iss, now)
	}
	if err != nil {
		return nil, fmt.Errorf("factors: initialising the bank CA: %w", err)
	}
	return c, nil
}

// phoneBook reads the customer's mobile number from the passport.
type phoneBook struct{ db *store.DB }

func (p phoneBook) Phone(ctx context.Context, passportID string) (string, error) {
	var m string
	err := p.db.QueryRow(ctx, `SELECT mobile FROM customers WHERE passport_id = ?`, passportID).Scan(&m)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return m, err
}

// Factor returns the enabled tool of that name, or nil.
func (s *Set) Factor(name string) authn.Factor {
	for _, f := range s.Factors {
		if f.Name() == name {
			return f
		}
	}
	return nil
}

// Close releases what the tools hold (the OTP service's prepared
// statements). The database and the HSM are the caller's.
func (s *Set) Close() error {
	if s.OTP != nil {
		return s.OTP.Close()
	}
	return nil
}

func (s *Set) handler() http.Handler {
	mux := http.NewServeMux()
	if s.OTP != nil {
		mux.Handle("/v1/otp/", s.OTP.Handler())
	}
	if s.CA != nil {
		mux.Handle("/ca/", s.CA.Handler())
	} else {
		mux.HandleFunc("/ca/", func(w http.ResponseWriter, r *http.Request) {
			apierr.WriteCode(w, r, apierr.NotInitialized, ca.ErrNotInitialized.Error())
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		apierr.WriteCode(w, r, apierr.NotFound, "")
	})
	return mux
}

func typeOf(k hsm.Key) string {
	if k.Type == "" {
		return "unknown"
	}
	return string(k.Type)
}

// readRoots reads a PEM file of certificates into a pool.
func readRoots(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
