package hsm

import (
	"fmt"
	"time"

	"github.com/egate-bank/egate/devices/pinsource"
)

// DefaultPoolSize is the number of sessions when Config.Pool is 0.
const DefaultPoolSize = 8

// MaxPoolSize bounds Config.Pool.
const MaxPoolSize = 1024

// Config selects the module, the token and the PIN.
type Config struct {
	// Module is the path of the PKCS#11 library (SoftHSM2:
	// /usr/lib/softhsm/libsofthsm2.so).
	Module string `yaml:"module"`
	// Token is the label of the token holding egate's keys.
	Token string `yaml:"token"`
	// PINSource names where the user PIN is: file:/path or env:NAME.
	PINSource string `yaml:"pin-source"`
	// Pool is the number of PKCS#11 sessions (0: DefaultPoolSize).
	Pool int `yaml:"pool-size"`
	// RetryMin and RetryMax bound the backoff between attempts to reopen
	// an HSM that became unreachable (0: DefaultRetryMin, DefaultRetryMax).
	// While it waits, calls fail at once with ErrUnavailable.
	RetryMin time.Duration `yaml:"retry-min"`
	RetryMax time.Duration `yaml:"retry-max"`
}

// Default backoff between attempts to reopen an unreachable HSM.
const (
	DefaultRetryMin = 100 * time.Millisecond
	DefaultRetryMax = 5 * time.Second
)

// Validate checks the section without touching the module or reading the PIN.
func (c Config) Validate() error {
	if c.Module == "" {
		return fmt.Errorf("%w: hsm.module is empty: set it to the path of the HSM's PKCS#11 library (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)", ErrBadConfig)
	}
	if c.Token == "" {
		return fmt.Errorf("%w: hsm.token is empty: set it to the label of the token holding egate's keys", ErrBadConfig)
	}
	if len(c.Token) > 32 {
		return fmt.Errorf("%w: hsm.token %q is longer than the 32 characters a PKCS#11 label can hold", ErrBadConfig, c.Token)
	}
	if _, err := pinsource.Parse(c.PINSource); err != nil {
		return fmt.Errorf("%w: hsm.pin-source: %w", ErrBadConfig, err)
	}
	if c.Pool < 0 || c.Pool > MaxPoolSize {
		return fmt.Errorf("%w: hsm.pool-size %d: want 0 (default %d) to %d", ErrBadConfig, c.Pool, DefaultPoolSize, MaxPoolSize)
	}
	if c.RetryMin < 0 || c.RetryMax < 0 || (c.RetryMax > 0 && c.RetryMin > c.RetryMax) {
		return fmt.Errorf("%w: hsm.retry-min %v and hsm.retry-max %v: want 0 (defaults %v and %v) or 0 < retry-min <= retry-max", ErrBadConfig, c.RetryMin, c.RetryMax, DefaultRetryMin, DefaultRetryMax)
	}
	return nil
}

func (c Config) retryBounds() (lo, hi time.Duration) {
	lo, hi = c.RetryMin, c.RetryMax
	if lo == 0 {
		lo = DefaultRetryMin
	}
	if hi == 0 {
		hi = max(DefaultRetryMax, lo)
	}
	return lo, hi
}

func (c Config) poolSize() int {
	if c.Pool == 0 {
		return DefaultPoolSize
	}
	return c.Pool
}
