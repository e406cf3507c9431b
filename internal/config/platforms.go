package config

import (
	"fmt"
	"net/url"

	"github.com/egate-bank/egate/platform"
)

// PlatformConfig is one platform's process; its keys are declared by
// platform.Config, the one declaration of a platform's section.
type PlatformConfig = platform.Config

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

// Validate checks each platform's section (platform.Config.ValidateSection);
// the rest is checked by platform.Config.Validate when a platform starts.
func (c PlatformsConfig) Validate() error {
	if c.Issuer != "" {
		u, err := url.Parse(c.Issuer)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("platforms.issuer %q: give the passport's absolute http(s) URL", c.Issuer)
		}
	}
	for _, n := range platform.Names {
		p, _ := c.ByName(n)
		if err := p.ValidateSection("platforms." + n); err != nil {
			return err
		}
	}
	return nil
}
