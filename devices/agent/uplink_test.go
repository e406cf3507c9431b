package agent

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLinkConfigValidate(t *testing.T) {
	tok := TokenConfig{Module: "/usr/lib/softhsm/libsofthsm2.so", Key: "pkcs11:token=branch-0101;object=egate-agent", PINSource: "file:/etc/egate/agent-pin"}
	link := func(f func(c *Config)) Config {
		c := Config{Branch: "BR-0101", DatacentreURL: "tls://dc.bank.example:7443", DatacentreCA: "/etc/egate/root.pem", Token: tok}
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"no link", Config{}, true},
		{"link", link(func(c *Config) {}), true},
		{"http URL", link(func(c *Config) { c.DatacentreURL = "https://dc.bank.example:7443" }), false},
		{"no port", link(func(c *Config) { c.DatacentreURL = "tls://dc.bank.example" }), false},
		{"a path", link(func(c *Config) { c.DatacentreURL = "tls://dc.bank.example:7443/x" }), false},
		{"no branch", link(func(c *Config) { c.Branch = "" }), false},
		{"bad branch", link(func(c *Config) { c.Branch = "BR 01" }), false},
		{"no CA", link(func(c *Config) { c.DatacentreCA = "" }), false},
		{"no module", link(func(c *Config) { c.Token.Module = "" }), false},
		{"key not a URI", link(func(c *Config) { c.Token.Key = "egate-agent" }), false},
		{"key without object", link(func(c *Config) { c.Token.Key = "pkcs11:token=branch-0101" }), false},
		{"key of type cert", link(func(c *Config) { c.Token.Key = "pkcs11:token=t;object=o;type=cert" }), false},
		{"key with a PIN inline", link(func(c *Config) { c.Token.Key = "pkcs11:token=t;object=o?pin-value=1234" }), false},
		{"PIN inline", link(func(c *Config) { c.Token.PINSource = "1234" }), false},
		{"module env", link(func(c *Config) { c.Token.ModuleEnv = []string{"SOFTHSM2_CONF=/etc/softhsm2.conf"} }), true},
		{"module env without a value", link(func(c *Config) { c.Token.ModuleEnv = []string{"SOFTHSM2_CONF"} }), false},
		{"module env bad name", link(func(c *Config) { c.Token.ModuleEnv = []string{"1X=y"} }), false},
		{"backoff max below min", link(func(c *Config) { c.ReconnectMin, c.ReconnectMax = time.Second, time.Millisecond }), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v is not an ErrConfig", err)
			}
		})
	}
}

// TestBackoff: attempt n waits between d/2 and d, d doubling from the
// minimum and capped at the maximum.
func TestBackoff(t *testing.T) {
	for _, r := range []float64{0, 0.5, 0.999} {
		u := &Uplink{opt: UplinkOptions{ReconnectMin: 100 * time.Millisecond, ReconnectMax: 2 * time.Second}, rand: func() float64 { return r }}
		for n, d := range []time.Duration{100, 200, 400, 800, 1600, 2000, 2000, 2000} {
			d *= time.Millisecond
			got := u.backoff(n)
			if got < d/2 || got > d {
				t.Fatalf("rand %v attempt %d: %s, want in [%s, %s]", r, n, got, d/2, d)
			}
		}
		if got := u.backoff(1000); got > 2*time.Second {
			t.Fatalf("attempt 1000: %s over the maximum", got)
		}
	}
}

func TestClientTLS(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "root.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o644)
	for _, ca := range []string{filepath.Join(dir, "missing.pem"), notPEM} {
		c := Config{Branch: "BR-01", DatacentreURL: "tls://127.0.0.1:7443", DatacentreCA: ca}
		if _, err := c.ClientTLS(tls.Certificate{}); !errors.Is(err, ErrConfig) {
			t.Fatalf("datacentre-ca %s: %v", ca, err)
		}
	}
}
