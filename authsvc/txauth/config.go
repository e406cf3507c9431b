package txauth

import (
	"errors"
	"fmt"
	"time"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/limits"
)

// Config is the transactions section of egate's config. Zero values take
// the defaults in brackets (WithDefaults).
type Config struct {
	// Limits is the limit table by level, amounts in fen
	// [limits.Default(): docs/architecture.md §5].
	Limits limits.Table `yaml:"limits"`
	// TimeZone is the bank's time zone: days and years of the limits, and
	// the risk feature time.hour [Asia/Shanghai].
	TimeZone string `yaml:"time-zone"`
	// GrantTTL is how long a grant may wait for its execute call [5m].
	GrantTTL time.Duration `yaml:"grant-ttl"`
	// RiskRules are rule files or directories of them (authsvc/risk); empty:
	// the rules built into egate.
	RiskRules []string `yaml:"risk-rules"`
	// ReloadInterval is how often the rule files are checked for changes
	// [10s].
	ReloadInterval time.Duration `yaml:"reload-interval"`
	// Accounts says which payer accounts belong to which customer until the
	// core banking system answers that (the ebank issue): an intent whose
	// payer is not listed for its customer is refused. Empty: every intent
	// is refused with payer_not_customers.
	Accounts []AccountConfig `yaml:"accounts"`
	// RequireEncryption lists the channels whose intents (and their
	// proofs) must arrive as a JWE encrypted to EncryptionKey; in clear
	// they are refused with encryption_required [none].
	RequireEncryption []intent.Channel `yaml:"require-encryption"`
	// EncryptionKey is the HSM key (a label or a pkcs11: URI, type
	// rsa-2048-decrypt) that opens JWE intents and proofs
	// [egate-tx-encryption].
	EncryptionKey string `yaml:"encryption-key"`
}

// AccountConfig is one account of a customer.
type AccountConfig struct {
	Customer string `yaml:"customer"` // passport id
	Account  string `yaml:"account"`
}

// Defaults.
const (
	DefaultTimeZone       = "Asia/Shanghai"
	DefaultGrantTTL       = 5 * time.Minute
	DefaultReloadInterval = 10 * time.Second
	DefaultEncryptionKey  = "egate-tx-encryption" // hsm.LabelTxEncryption
)

// WithDefaults fills in the defaults.
func (c Config) WithDefaults() Config {
	if len(c.Limits) == 0 {
		c.Limits = limits.Default()
	}
	if c.TimeZone == "" {
		c.TimeZone = DefaultTimeZone
	}
	if c.GrantTTL == 0 {
		c.GrantTTL = DefaultGrantTTL
	}
	if c.ReloadInterval == 0 {
		c.ReloadInterval = DefaultReloadInterval
	}
	if c.EncryptionKey == "" {
		c.EncryptionKey = DefaultEncryptionKey
	}
	return c
}

// ErrConfig wraps every error of the section.
var ErrConfig = errors.New("transactions config")

// Validate checks the section (after WithDefaults).
func (c Config) Validate() error {
	c = c.WithDefaults()
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("%w: transactions.limits: %w", ErrConfig, err)
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		return fmt.Errorf("%w: transactions.time-zone %q: give an IANA zone such as Asia/Shanghai", ErrConfig, c.TimeZone)
	}
	if c.GrantTTL < 10*time.Second || c.GrantTTL > time.Hour {
		return fmt.Errorf("%w: transactions.grant-ttl %s: give 10s to 1h", ErrConfig, c.GrantTTL)
	}
	if c.ReloadInterval < time.Second {
		return fmt.Errorf("%w: transactions.reload-interval %s: give 1s or more", ErrConfig, c.ReloadInterval)
	}
	for i, p := range c.RiskRules {
		if p == "" {
			return fmt.Errorf("%w: transactions.risk-rules[%d] is empty", ErrConfig, i)
		}
	}
	if err := validChannels(c.RequireEncryption); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, a := range c.Accounts {
		if a.Customer == "" || a.Account == "" {
			return fmt.Errorf("%w: transactions.accounts[%d]: give customer and account", ErrConfig, i)
		}
		if seen[a.Account] {
			return fmt.Errorf("%w: transactions.accounts[%d]: account %s listed twice", ErrConfig, i, a.Account)
		}
		seen[a.Account] = true
	}
	return nil
}
