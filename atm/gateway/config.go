package gateway

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Config is the agent-gateway section (egate agent-gateway).
type Config struct {
	// Listen is the agents' mutual-TLS listener (host:port). Agents dial
	// it; nothing else is served there.
	Listen string `yaml:"listen"`
	// Cert is a PEM file with the gateway's server certificate (egate admin
	// agent gateway-cert writes it), followed by the issuing CA's.
	Cert string `yaml:"cert"`
	// Key names the certificate's key in the HSM: a label or a pkcs11: URI.
	Key string `yaml:"key"`
	// Ping is how often each link is pinged (a link silent for three is
	// dead); Recheck how often live links' certificates are verified
	// again (they are also verified before every command).
	Ping    time.Duration `yaml:"ping"`
	Recheck time.Duration `yaml:"recheck"`
}

// DefaultKeyLabel is the HSM label of the gateway's TLS key.
const DefaultKeyLabel = "egate-agent-gateway"

// ErrConfig wraps configuration errors.
var ErrConfig = errors.New("agent-gateway config")

// Validate checks the section.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("%w: listen %q: give host:port, e.g. 0.0.0.0:7443", ErrConfig, c.Listen)
	}
	if c.Key == "" {
		return fmt.Errorf("%w: key is empty: give the HSM label of the TLS key (%s)", ErrConfig, DefaultKeyLabel)
	}
	if c.Ping < 0 || c.Recheck < 0 {
		return fmt.Errorf("%w: ping and recheck must not be negative", ErrConfig)
	}
	return nil
}
