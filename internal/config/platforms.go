package config

import (
	"fmt"
	"net"
)

// PlatformConfig is one platform's process: where it listens and how it is
// registered with the passport. The passport's issuer is http.public-url of
// the authsvc (Config.Issuer).
type PlatformConfig struct {
	Listen       string `yaml:"listen"`
	PublicURL    string `yaml:"public-url"`
	ClientSecret string `yaml:"client-secret" secret:"true"`
	CookieKey    string `yaml:"cookie-key" secret:"true"`
	Level        int    `yaml:"level"`
	// TxClient and TxSecret are the back-end client (authsvc.backend-clients,
	// scopes tx:authorize, tx:execute) with which ebank's transfer pages
	// call the passport's transaction authorization API. Empty: the pages
	// show accounts and history, and refuse transfers.
	TxClient string `yaml:"tx-client"`
	TxSecret string `yaml:"tx-secret" secret:"true"`
}

// PlatformsConfig holds the three platforms.
type PlatformsConfig struct {
	// Issuer is the passport's issuer URL the platforms log in with.
	Issuer    string         `yaml:"issuer"`
	Ebank     PlatformConfig `yaml:"ebank"`
	Mall      PlatformConfig `yaml:"mall"`
	Messenger PlatformConfig `yaml:"messenger"`
}

// ByName returns the section of a platform.
func (c *PlatformsConfig) ByName(name string) (*PlatformConfig, error) {
	switch name {
	case "ebank":
		return &c.Ebank, nil
	case "mall":
		return &c.Mall, nil
	case "messenger":
		return &c.Messenger, nil
	}
	return nil, fmt.Errorf("%w: no platform %q: use ebank, mall or messenger", ErrConfig, name)
}

// Validate checks the listen addresses; the rest is checked by
// platform.Config.Validate when a platform starts.
func (c PlatformsConfig) Validate() error {
	for n, p := range map[string]PlatformConfig{"ebank": c.Ebank, "mall": c.Mall, "messenger": c.Messenger} {
		if _, _, err := net.SplitHostPort(p.Listen); err != nil {
			return fmt.Errorf("platforms.%s.listen %q: give host:port", n, p.Listen)
		}
	}
	return nil
}
