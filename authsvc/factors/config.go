package factors

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/egate-bank/egate/authsvc/sms"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/pinsource"
)

// Factor names, as authn.Factor.Name returns them and as Config.Enabled
// lists them.
const (
	SMS      = "sms"      // level 2
	GridCard = "gridcard" // level 2
	OTP      = "otp"      // level 3
	Phone    = "phone"    // level 3: the bank's phone app (device key, app PIN)
	UShield  = "ushield"  // level 4: 1st-generation U-shield
	PIV      = "piv"      // level 4
	UShield2 = "ushield2" // level 5: 2nd-generation U-shield (display + confirm button)
)

// All lists every factor, in level order; it is the default of Enabled.
var All = []string{SMS, GridCard, OTP, Phone, UShield, PIV, UShield2}

// needsCA reports whether a factor verifies certificates of the bank CA.
func needsCA(name string) bool { return name == UShield || name == UShield2 || name == PIV }

// Config is the factors section of egate's config. Zero values take the
// defaults in brackets (WithDefaults).
type Config struct {
	// Enabled lists the tools the passport offers [all of All]. An explicit
	// empty list turns every second factor off.
	Enabled  []string       `yaml:"enabled"`
	SMS      SMSConfig      `yaml:"sms"`
	GridCard GridCardConfig `yaml:"gridcard"`
	OTP      OTPConfig      `yaml:"otp"`
	UShield  UShieldConfig  `yaml:"ushield"`
	PIV      PIVConfig      `yaml:"piv"`
	CA       CAConfig       `yaml:"ca"`
}

// SMSConfig tunes SMS codes (authsvc/sms).
type SMSConfig struct {
	BankName    string        `yaml:"bank-name"`    // the sender named in the message ["egate Bank"]
	TTL         time.Duration `yaml:"ttl"`          // a code's lifetime [5m]
	SendWindow  time.Duration `yaml:"send-window"`  // the window of the send limits [1h]
	PerCustomer int           `yaml:"per-customer"` // sends per customer per window [5]
	PerPhone    int           `yaml:"per-phone"`    // sends per phone number per window [5]
	PerIP       int           `yaml:"per-ip"`       // sends per client IP per window [20]
	MaxAttempts int           `yaml:"max-attempts"` // wrong codes before lockout [5]
	LockFor     time.Duration `yaml:"lock-for"`     // lockout duration [30m]

	// Gateway is the operator's SMS HTTP API (sms.HTTPGateway). When sms is
	// enabled, exactly one of Gateway.URL and DevSink must be set.
	Gateway SMSGatewayConfig `yaml:"gateway"`
	// DevSink keeps every message in the database table sms_outbox, read by
	// `egate sim sms` and egate demo's /sim/sms/ page, instead of sending it. For
	// development only: the messages hold live codes in clear. egate demo
	// turns it on when no gateway URL is set. [false]
	DevSink bool `yaml:"dev-sink"`
}

// SMSGatewayConfig is the operator's SMS HTTP API.
type SMSGatewayConfig struct {
	// URL is the send endpoint: https (http only to 127.0.0.1 or localhost,
	// for tests), without user or password.
	URL string `yaml:"url"`
	// TokenSource says where the bearer token is: file:/path (mode 0600) or
	// env:NAME (devices/pinsource). The token itself is never in the config.
	TokenSource string `yaml:"token-source"`
	// Timeout bounds one send [10s].
	Timeout time.Duration `yaml:"timeout"`
}

// GridCardConfig shapes grid cards and their challenges (authsvc/gridcard).
type GridCardConfig struct {
	Cols        int           `yaml:"cols"`         // columns A… [8]; 2–26
	Rows        int           `yaml:"rows"`         // rows [10]; 2–99
	Cells       int           `yaml:"cells"`        // cells asked per challenge [3]
	MaxUses     int           `yaml:"max-uses"`     // successful answers before a card expires [200]
	MaxAttempts int           `yaml:"max-attempts"` // wrong answers before lockout (the bank issues a new card) [5]
	TTL         time.Duration `yaml:"ttl"`          // challenge lifetime [3m]
}

// OTPConfig tunes dynamic-password tokens (authsvc/oath).
type OTPConfig struct {
	WrapKeyLabel     string        `yaml:"wrap-key-label"`        // HSM seed-wrap key wrapping seeds ["egate-otp-seed-wrap"]
	HOTPWindow       int           `yaml:"hotp-window"`           // counters looked ahead [10]
	HOTPLookBehind   int           `yaml:"hotp-look-behind"`      // used counters checked to report a replay [3]
	TOTPSteps        int           `yaml:"totp-steps"`            // time steps accepted either side of now [1]
	ResyncWindow     int           `yaml:"resync-window"`         // counters/steps searched by resync [100]
	MaxFailures      int           `yaml:"max-failures"`          // failed attempts before lockout [5]
	LockFor          time.Duration `yaml:"lock-for"`              // lockout duration [15m]; negative: until an operator unlocks
	ChallengeTTL     time.Duration `yaml:"challenge-ttl"`         // challenge lifetime [5m]
	OCRACounterAhead int           `yaml:"ocra-counter-ahead"`    // OCRA counters looked ahead [10]
	OCRAChallenge    int           `yaml:"ocra-challenge-digits"` // random digits in a transaction question [4]
	OCRAPayeeDigits  int           `yaml:"ocra-payee-digits"`     // payee account digits in a transaction question [4]
}

// UShieldConfig tunes U-shield challenges (both generations).
type UShieldConfig struct {
	ChallengeTTL time.Duration `yaml:"challenge-ttl"` // [2m]
}

// PIVConfig tunes PIV challenges.
type PIVConfig struct {
	ChallengeTTL time.Duration `yaml:"challenge-ttl"` // [2m]
	// VendorRoots is a PEM file of the attestation roots (Yubico's, the
	// simulator's) a card the customer enrols through the desktop helper
	// must chain to; empty: customers cannot enrol PIV cards themselves
	// (operators still can, egate admin piv enroll --vendor-root).
	VendorRoots string `yaml:"vendor-roots"`
}

// CAConfig says where the bank CA comes from.
type CAConfig struct {
	// AutoInit creates the CA (root and issuing keys in the HSM, their
	// certificates in the database) when the database has none. Off in
	// production, where `egate admin ca init` makes it once; the demo turns
	// it on. [false]
	AutoInit bool `yaml:"auto-init"`
	// Organization names the bank in certificates AutoInit makes ["egate Bank"].
	Organization string `yaml:"organization"`
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.Enabled == nil {
		c.Enabled = slices.Clone(All)
	}
	dur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	n := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	if c.SMS.BankName == "" {
		c.SMS.BankName = "egate Bank"
	}
	dur(&c.SMS.TTL, 5*time.Minute)
	dur(&c.SMS.SendWindow, time.Hour)
	n(&c.SMS.PerCustomer, 5)
	n(&c.SMS.PerPhone, 5)
	n(&c.SMS.PerIP, 20)
	n(&c.SMS.MaxAttempts, 5)
	dur(&c.SMS.LockFor, 30*time.Minute)
	dur(&c.SMS.Gateway.Timeout, sms.DefaultGatewayTimeout)

	n(&c.GridCard.Cols, 8)
	n(&c.GridCard.Rows, 10)
	n(&c.GridCard.Cells, 3)
	n(&c.GridCard.MaxUses, 200)
	n(&c.GridCard.MaxAttempts, 5)
	dur(&c.GridCard.TTL, 3*time.Minute)

	if c.OTP.WrapKeyLabel == "" {
		c.OTP.WrapKeyLabel = hsm.LabelSeedWrap
	}
	n(&c.OTP.HOTPWindow, 10)
	n(&c.OTP.HOTPLookBehind, 3)
	n(&c.OTP.TOTPSteps, 1)
	n(&c.OTP.ResyncWindow, 100)
	n(&c.OTP.MaxFailures, 5)
	dur(&c.OTP.LockFor, 15*time.Minute)
	dur(&c.OTP.ChallengeTTL, 5*time.Minute)
	n(&c.OTP.OCRACounterAhead, 10)
	n(&c.OTP.OCRAChallenge, 4)
	n(&c.OTP.OCRAPayeeDigits, 4)

	dur(&c.UShield.ChallengeTTL, 2*time.Minute)
	dur(&c.PIV.ChallengeTTL, 2*time.Minute)
	if c.CA.Organization == "" {
		c.CA.Organization = "egate Bank"
	}
	return c
}

// ErrConfig wraps every config error.
var ErrConfig = errors.New("factors config")

// Validate checks the section after WithDefaults. Each error names the key
// (as in the YAML, under the factors section) and what it must be.
func (c Config) Validate() error { return c.validate(false) }

// validate is Validate; smsGateway says the caller brings its own SMS
// gateway (Deps.SMS), which then needs neither sms.gateway.url nor
// sms.dev-sink.
func (c Config) validate(smsGateway bool) error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: %s %s", ErrConfig, key, fmt.Sprintf(format, args...))
	}
	seen := map[string]bool{}
	for _, name := range c.Enabled {
		if !slices.Contains(All, name) {
			return bad("enabled", "names %q, which is not a tool; choose from %s", name, strings.Join(All, ", "))
		}
		if seen[name] {
			return bad("enabled", "names %q twice", name)
		}
		seen[name] = true
	}
	durIn := func(key string, d, lo, hi time.Duration) error {
		if d < lo || d > hi {
			return bad(key, "is %s; it must be between %s and %s", d, lo, hi)
		}
		return nil
	}
	intIn := func(key string, v, lo, hi int) error {
		if v < lo || v > hi {
			return bad(key, "is %d; it must be between %d and %d", v, lo, hi)
		}
		return nil
	}
	g := c.GridCard
	o := c.OTP
	for _, err := range []error{
		durIn("sms.ttl", c.SMS.TTL, 30*time.Second, 30*time.Minute),
		durIn("sms.send-window", c.SMS.SendWindow, time.Minute, 7*24*time.Hour),
		intIn("sms.per-customer", c.SMS.PerCustomer, 1, 1000),
		intIn("sms.per-phone", c.SMS.PerPhone, 1, 1000),
		intIn("sms.per-ip", c.SMS.PerIP, 1, 100000),
		intIn("sms.max-attempts", c.SMS.MaxAttempts, 1, 100),
		durIn("sms.lock-for", c.SMS.LockFor, time.Minute, 7*24*time.Hour),
		durIn("sms.gateway.timeout", c.SMS.Gateway.Timeout, time.Second, 2*time.Minute),
		intIn("gridcard.cols", g.Cols, 2, 26),
		intIn("gridcard.rows", g.Rows, 2, 99),
		intIn("gridcard.cells", g.Cells, 1, min(g.Cols*g.Rows, 10)),
		intIn("gridcard.max-uses", g.MaxUses, 1, 1000000),
		intIn("gridcard.max-attempts", g.MaxAttempts, 1, 100),
		durIn("gridcard.ttl", g.TTL, 30*time.Second, 30*time.Minute),
		intIn("otp.hotp-window", o.HOTPWindow, 1, 1000),
		intIn("otp.hotp-look-behind", o.HOTPLookBehind, 0, 1000),
		intIn("otp.totp-steps", o.TOTPSteps, 0, 10),
		intIn("otp.resync-window", o.ResyncWindow, 1, 100000),
		intIn("otp.max-failures", o.MaxFailures, 1, 100),
		durIn("otp.challenge-ttl", o.ChallengeTTL, 30*time.Second, 30*time.Minute),
		intIn("otp.ocra-counter-ahead", o.OCRACounterAhead, 0, 1000),
		intIn("otp.ocra-challenge-digits", o.OCRAChallenge, 1, 32),
		intIn("otp.ocra-payee-digits", o.OCRAPayeeDigits, 1, 32),
		durIn("ushield.challenge-ttl", c.UShield.ChallengeTTL, 30*time.Second, 30*time.Minute),
		durIn("piv.challenge-ttl", c.PIV.ChallengeTTL, 30*time.Second, 30*time.Minute),
	} {
		if err != nil {
			return err
		}
	}
	if c.SMS.TTL > c.SMS.SendWindow {
		return bad("sms.ttl", "(%s) must not be longer than sms.send-window (%s)", c.SMS.TTL, c.SMS.SendWindow)
	}
	if strings.TrimSpace(c.SMS.BankName) == "" || len(c.SMS.BankName) > 40 || strings.ContainsAny(c.SMS.BankName, "\r\n") {
		return bad("sms.bank-name", "must be one line of 1 to 40 bytes")
	}
	if err := c.SMS.validateGateway(c.enabled(SMS) && !smsGateway); err != nil {
		return err
	}
	if strings.TrimSpace(o.WrapKeyLabel) == "" {
		return bad("otp.wrap-key-label", "must name the HSM key that wraps seeds")
	}
	if o.WrapKeyLabel == hsm.LabelSecretsWrap {
		return bad("otp.wrap-key-label", "must not be %s, the sealing key (it can decrypt): seeds are wrapped by a seed-wrap key such as %s (egate admin hsm init makes it; seeds already under %s are moved at start)", hsm.LabelSecretsWrap, hsm.LabelSeedWrap, hsm.LabelSecretsWrap)
	}
	return nil
}

// enabled reports whether the tool is on.
func (c Config) enabled(name string) bool { return slices.Contains(c.Enabled, name) }

// validateGateway checks the SMS gateway keys; need says one of the gateway
// and the development sink must be chosen (sms is enabled).
func (s SMSConfig) validateGateway(need bool) error {
	g := s.Gateway
	switch {
	case need && g.URL == "" && !s.DevSink:
		return fmt.Errorf("%w: sms has no gateway: set factors.sms.gateway.url (with factors.sms.gateway.token-source) to the operator's SMS API, "+
			"or factors.sms.dev-sink: true for development only (messages, live codes included, kept in clear in the database), "+
			"or leave sms out of factors.enabled", ErrConfig)
	case need && g.URL != "" && s.DevSink:
		return fmt.Errorf("%w: factors.sms.gateway.url and factors.sms.dev-sink are both set; choose one: the gateway in production, the sink only in development", ErrConfig)
	}
	if g.URL != "" {
		if err := sms.CheckGatewayURL(g.URL); err != nil {
			return fmt.Errorf("%w: sms.gateway.url %w", ErrConfig, err)
		}
		if _, err := pinsource.Parse(g.TokenSource); err != nil {
			return fmt.Errorf("%w: sms.gateway.token-source: %w", ErrConfig, err)
		}
	}
	return nil
}
