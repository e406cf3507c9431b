package config

import (
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/egate-bank/egate/internal/gctune"

	"go.yaml.in/yaml/v3"

	"github.com/egate-bank/egate/atm/gateway"
	"github.com/egate-bank/egate/authsvc"
	"github.com/egate-bank/egate/authsvc/factors"
	"github.com/egate-bank/egate/authsvc/txauth"
	"github.com/egate-bank/egate/devices/agent"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/store"
)

//go:embed defaults.yaml
var defaultsYAML []byte

// Config is egate's whole configuration. Each section validates itself.
type Config struct {
	Log LogConfig `yaml:"log"`
	// Runtime is the Go runtime's garbage collector (GOGC, GOMEMLIMIT).
	Runtime  gctune.Config `yaml:"runtime"`
	HTTP     HTTPConfig    `yaml:"http"`
	Database store.Config  `yaml:"database"`
	HSM      hsm.Config    `yaml:"hsm"`
	Demo     DemoConfig    `yaml:"demo"`
	// Platforms are ebank, mall and messenger (egate platform NAME).
	Platforms PlatformsConfig `yaml:"platforms"`
	// Authsvc is the passport: login pages and the OIDC provider (egate authsvc).
	Authsvc authsvc.Config `yaml:"authsvc"`
	// Factors are the authentication tools beside the password.
	Factors factors.Config `yaml:"factors"`
	// Agent is the branch device agent (egate agent).
	Agent agent.Config `yaml:"agent"`
	// AgentGateway is the data centre's end of the agents' links (egate agent-gateway).
	AgentGateway gateway.Config `yaml:"agent-gateway"`
	// Withdrawals is the QR withdrawal API egate agent-gateway serves.
	Withdrawals WithdrawalsConfig `yaml:"withdrawals"`
	// Transactions is transaction authorization (authsvc/txauth): the limit
	// table, the risk rules, grants, the bank's time zone.
	Transactions txauth.Config `yaml:"transactions"`
}

// LogConfig is the log section.
type LogConfig struct {
	Level string `yaml:"level"` // debug, info, warn, error
}

// Validate checks the section.
func (c LogConfig) Validate() error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.Level)); err != nil {
		return fmt.Errorf("log.level %q: use debug, info, warn or error", c.Level)
	}
	return nil
}

// SlogLevel returns the level for log/slog.
func (c LogConfig) SlogLevel() slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.Level))
	return l
}

// HTTPConfig is the listener of the process's HTTP server.
type HTTPConfig struct {
	Listen string `yaml:"listen"` // host:port
	// PublicURL is the address customers' browsers and the platforms reach
	// this server at (the OIDC issuer); empty: http://<listen>.
	PublicURL string `yaml:"public-url"`
}

// Validate checks the section.
func (c HTTPConfig) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("http.listen %q: give host:port, e.g. 127.0.0.1:8080", c.Listen)
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("http.public-url %q: give an absolute http(s) URL", c.PublicURL)
		}
	}
	return nil
}

// BaseURL is PublicURL or the listen address as a URL.
func (c HTTPConfig) BaseURL() string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	return "http://" + c.Listen
}

// DemoConfig is used by egate demo only.
type DemoConfig struct {
	// VarDir holds the demo's state: the SQLite file, the SoftHSM token
	// directory and the token's PIN file. Created on the first start, reused
	// on the next.
	VarDir string `yaml:"var-dir"`
	// WithdrawalTTL is how long the demo ATM's QR withdrawal session may be
	// approved from the phone; 2 minutes when zero.
	WithdrawalTTL time.Duration `yaml:"withdrawal-ttl"`
}

// Validate checks the section.
func (c DemoConfig) Validate() error {
	if c.VarDir == "" {
		return errors.New("demo.var-dir is empty: give a directory for the demo's state, e.g. ./var")
	}
	if c.WithdrawalTTL < 0 || c.WithdrawalTTL > time.Hour {
		return errors.New("demo.withdrawal-ttl: give a duration from 1s to 1h (0: 2m)")
	}
	return nil
}

// Defaults returns the embedded defaults (those of egate demo).
func Defaults() *Config {
	var c Config
	if err := DecodeYAML(defaultsYAML, "embedded defaults", &c); err != nil {
		panic(err) // the embedded file is tested
	}
	return &c
}

// Sources say where a config comes from, in increasing precedence.
type Sources struct {
	File    string   // YAML file; empty: none
	Environ []string // os.Environ()
	Sets    []string // --set key=value
}

// Load builds the effective config: defaults, file, environment, --set.
// It does not validate; call the Validate of the sections a process uses
// (ValidateAll for all of them).
func Load(src Sources) (*Config, error) {
	c := Defaults()
	if src.File != "" {
		if err := LoadFile(src.File, c); err != nil {
			return nil, err
		}
	}
	if err := ApplyEnv(c, src.Environ); err != nil {
		return nil, err
	}
	if err := ApplySets(c, src.Sets); err != nil {
		return nil, err
	}
	// Sections with computed defaults show their effective values.
	c.Authsvc = c.Authsvc.WithDefaults()
	c.Factors = c.Factors.WithDefaults()
	c.Transactions = c.Transactions.WithDefaults()
	return c, nil
}

// FromProcess is Load with this process's environment.
func FromProcess(file string, sets []string) (*Config, error) {
	if file == "" {
		file = os.Getenv("EGATE_CONFIG")
	}
	return Load(Sources{File: file, Environ: os.Environ(), Sets: sets})
}

// ValidateAll validates every section, naming the first bad one.
func (c *Config) ValidateAll() error {
	for _, v := range []interface{ Validate() error }{c.Log, c.Runtime, c.HTTP, c.Database, c.HSM, c.Demo, c.Platforms, c.Agent, c.AgentGateway, c.Withdrawals, c.Factors, c.Transactions} {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	return nil
}

// Redacted returns the config as YAML with every field tagged secret:"true"
// replaced by "<redacted>".
func (c *Config) Redacted() ([]byte, error) {
	cp := *c
	redact(reflect.ValueOf(&cp).Elem())
	return yaml.Marshal(&cp)
}

func redact(v reflect.Value) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		switch {
		case f.Tag.Get("secret") == "true" && fv.Kind() == reflect.String && fv.String() != "":
			fv.SetString("<redacted>")
		case fv.Kind() == reflect.Struct:
			redact(fv)
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
			// Copy the slice so that the caller's config keeps its values.
			cp := reflect.MakeSlice(fv.Type(), fv.Len(), fv.Len())
			reflect.Copy(cp, fv)
			for j := 0; j < cp.Len(); j++ {
				redact(cp.Index(j))
			}
			fv.Set(cp)
		}
	}
}
