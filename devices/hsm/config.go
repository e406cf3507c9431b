package hsm

import (
	"fmt"
	"os"
	"strings"
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
	// ModuleEnv is environment the vendor's PKCS#11 library reads its own
	// configuration from, as NAME=value (SoftHSM2: SOFTHSM2_CONF=/etc/softhsm2.conf;
	// Thales Luna: ChrystokiConfigurationPath=/etc). The process sets it
	// before the library is loaded (ApplyModuleEnv). Never a PIN.
	ModuleEnv []string `yaml:"module-env"`
	// RetryMin and RetryMax bound the backoff between attempts to reopen
	// an HSM that became unreachable (0: DefaultRetryMin, DefaultRetryMax).
	// While it waits, calls fail at once with ErrUnavailable.
	RetryMin time.Duration `yaml:"retry-min"`
	RetryMax time.Duration `yaml:"retry-max"`
	// LiveSeeds is the number of unwrapped OTP seeds each pooled session
	// keeps in the HSM for the next HMACWrapped of the same wrapped seed,
	// evicted least-recently-used (0: DefaultLiveSeeds; -1: none, every
	// HMACWrapped unwraps and destroys).
	LiveSeeds int `yaml:"live-seeds"`
}

// ApplyModuleEnv sets ModuleEnv in this process's environment, overriding
// what was there: the config names the module and what it reads. Call it
// before Open; a library loaded already has read its environment.
func (c Config) ApplyModuleEnv() error {
	for _, kv := range c.ModuleEnv {
		name, val, _ := strings.Cut(kv, "=")
		if err := os.Setenv(name, val); err != nil {
			return fmt.Errorf("%w: hsm.module-env %s: %w", ErrBadConfig, name, err)
		}
	}
	return nil
}

func validModuleEnv(kv string) bool {
	name, val, ok := strings.Cut(kv, "=")
	if !ok || name == "" || val == "" {
		return false
	}
	for i, c := range name {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
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
	for _, kv := range c.ModuleEnv {
		if !validModuleEnv(kv) {
			name, _, _ := strings.Cut(kv, "=")
			return fmt.Errorf("%w: hsm.module-env: want NAME=value entries (e.g. SOFTHSM2_CONF=/etc/softhsm2.conf), not %q", ErrBadConfig, name)
		}
	}
	if c.Pool < 0 || c.Pool > MaxPoolSize {
		return fmt.Errorf("%w: hsm.pool-size %d: want 0 (default %d) to %d", ErrBadConfig, c.Pool, DefaultPoolSize, MaxPoolSize)
	}
	if c.LiveSeeds < -1 || c.LiveSeeds > MaxLiveSeeds {
		return fmt.Errorf("%w: hsm.live-seeds %d: want 0 (default %d), -1 (none) or 1 to %d", ErrBadConfig, c.LiveSeeds, DefaultLiveSeeds, MaxLiveSeeds)
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

func (c Config) liveSeeds() int {
	switch c.LiveSeeds {
	case 0:
		return DefaultLiveSeeds
	case -1:
		return 0
	}
	return c.LiveSeeds
}

func (c Config) poolSize() int {
	if c.Pool == 0 {
		return DefaultPoolSize
	}
	return c.Pool
}
