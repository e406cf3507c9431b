// Package oath is the passport's dynamic-password (OATH) token service
// (level 3; the algorithms are devices/otp, a simulated token is
// simulators/oathtoken):
// tokens imported from vendor PSKC files, bound to customers, verified with
// a look-ahead window, resynchronised from two consecutive codes, and OCRA
// challenge-response over transaction data.
//
// Seeds never exist in the clear outside the HSM and the import path: the
// importer wraps each seed with the HSM's seed-wrap key (egate-otp-seed-wrap,
// whose unwrap template lets a seed back into the HSM only as a sensitive,
// non-extractable, sign-only key: devices/hsm) at once and stores only the
// wrapped blob; every HMAC is computed inside the HSM (HSM.HMACWrapped), a
// whole look-ahead window in one call. A token without a PIN whose code is
// right at the expected counter costs one HMAC of that call when the HSM
// can stop early (devices/hsm's HMACWrappedUntil); a wrong, replayed or
// skipped-ahead code, and every code of a token with a PIN, computes the
// whole window, so the time taken tells only what the answer says
// (verify.go, windowCodes). Seeds stored under an older key are
// moved under the seed-wrap key inside the HSM by RewrapSeeds.
//
// Replay and lockout are enforced by the database, not by process memory, so
// they hold across replicas: a token's counter is a high-water mark moved by
// one atomic UPDATE … WHERE counter <= accepted (the statement that loses a
// race changes no row and its code is refused as a replay), and a failed
// attempt is reserved by an atomic increment before the code is compared.
//
// An attempt that checked nothing because the HSM failed is given back at
// once and answered ErrUnavailable (authn.ErrUnavailable; 503 on the HTTP
// API); a factor's challenge is given back with it, so the customer
// answers the same challenge again. HSM errors never count toward the
// lockout. A token found at MaxFailures without a lockout end (a process
// stopped between counting and recording) is given the configured lockout
// at its next attempt.
//
// A verification by serial or customer (VerifyCode, the HTTP API) is two
// statements when the code is right: one that counts the attempt and loads
// the token, and the ledger's UPDATE (fast.go).
//
// Concurrency: a Service is safe for concurrent use; it holds no per-token
// state in memory (only prepared statements).
package oath

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/challenge"
	"github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/internal/store"
)

// HSM is the slice of the HSM service this package uses (devices/hsm's
// *Service satisfies it).
type HSM interface {
	WrapSecret(ctx context.Context, wrapKeyLabel string, secret []byte) ([]byte, error)
	HMACWrapped(ctx context.Context, wrapKeyLabel string, wrapped []byte, h crypto.Hash, msgs [][]byte) ([][]byte, error)
	RewrapSecret(ctx context.Context, fromLabel, toLabel string, wrapped []byte) ([]byte, error)
}

// Config tunes verification. Zero values take the defaults in brackets.
type Config struct {
	WrapKeyLabel     string        // HSM seed-wrap key that wraps seeds ["egate-otp-seed-wrap", hsm.LabelSeedWrap]
	HOTPWindow       int           // counters looked ahead at login [10]
	HOTPLookBehind   int           // used counters checked to report a replay [3]
	TOTPSteps        int           // steps accepted either side of now [1]
	ResyncWindow     int           // counters (HOTP) or steps each side (TOTP) searched by resync [100]
	MaxFailures      int           // failed attempts before lockout [5]
	LockFor          time.Duration // how long a lockout lasts; negative: until an operator unlocks [15m]
	ChallengeTTL     time.Duration // lifetime of a challenge [5m]
	OCRACounterAhead int           // OCRA counters looked ahead [10]
	TxLayout         otp.TxLayout  // transaction question layout
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.WrapKeyLabel == "" {
		c.WrapKeyLabel = "egate-otp-seed-wrap"
	}
	def(&c.HOTPWindow, 10)
	def(&c.HOTPLookBehind, 3)
	def(&c.TOTPSteps, 1)
	def(&c.ResyncWindow, 100)
	def(&c.MaxFailures, 5)
	def(&c.OCRACounterAhead, 10)
	if c.LockFor == 0 {
		c.LockFor = 15 * time.Minute
	}
	if c.ChallengeTTL == 0 {
		c.ChallengeTTL = 5 * time.Minute
	}
	return c
}

// Service verifies codes of stored tokens.
type Service struct {
	db  *store.DB
	ch  *challenge.Store // the one challenge store (auth_challenges)
	hsm HSM
	cfg Config
	now func() time.Time
	// stmts are the hot path's prepared statements (fast.go); a
	// connection cache, not token state.
	stmts stmtCache
}

// New returns a Service. now may be nil (time.Now).
func New(db *store.DB, hsm HSM, cfg Config, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, ch: challenge.New(db, now), hsm: hsm, cfg: cfg.withDefaults(), now: now}
}

// Errors. The authn sentinels are reused so the passport maps them the same
// way for every factor.
var (
	ErrUnknownToken = errors.New("no such token")
	ErrAmbiguous    = errors.New("the customer has several tokens; give the token serial")
	ErrNotAssigned  = errors.New("the token is not assigned to this customer")
	ErrAssigned     = errors.New("the token is already assigned to a customer")
	ErrWrongCode    = authn.ErrWrongAnswer
	ErrReplay       = authn.ErrReplay
	ErrMalformed    = authn.ErrBadResponse
	ErrRevoked      = authn.ErrRevoked
	ErrUnavailable  = authn.ErrUnavailable
)

// Token is a stored token without its wrapped seed.
type Token struct {
	ID           string
	Serial       string
	KeyID        string
	Manufacturer string
	Params       otp.Params
	PassportID   string
	Status       string
	Counter      uint64
	Drift        int64
	Failures     int
	LockedUntil  int64 // ms; 0 none, -1 operator
	NotAfter     time.Time
	NotBefore    time.Time // the file's StartDate: no code is accepted before it
	// PINMode is "" or the PSKC PINUsageMode the server checks: "Append"
	// (code then PIN) or "Prepend" (PIN then code), PINMin to PINMax digits.
	PINMode        string
	PINMin, PINMax int
	pinMAC         []byte
	wrapLabel      string
	wrapped        []byte
}

// mac is the HSM-backed otp.MAC of one token.
type mac struct {
	hsm     HSM
	label   string
	wrapped []byte
}

func (m mac) MAC(ctx context.Context, h crypto.Hash, msgs [][]byte) ([][]byte, error) {
	out, err := m.hsm.HMACWrapped(ctx, m.label, m.wrapped, h, msgs)
	if err != nil {
		// Whatever the HSM said, no code was checked.
		return nil, fmt.Errorf("%w: HSM HMAC: %w", authn.ErrUnavailable, err)
	}
	return out, nil
}

func (s *Service) macOf(t *Token) otp.MAC {
	return mac{hsm: s.hsm, label: t.wrapLabel, wrapped: t.wrapped}
}
