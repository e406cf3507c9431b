package demo

import (
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/store"
)

// ConfigFile is the name of the config the demo writes in its directory.
const ConfigFile = "egate.yaml"

// runConfig is what var/egate.yaml holds: the sections that name the demo's
// HSM token and database, so that an operator command or an egate authsvc
// started with --config reaches the same keys and the same customers.
type runConfig struct {
	HSM      hsm.Config   `yaml:"hsm"`
	Database store.Config `yaml:"database"`
}

// writeConfig writes var/egate.yaml (mode 0600; it names the PIN file, not
// the PIN) with absolute paths, so that it works from any directory, and
// returns its path. It is rewritten at every start.
func writeConfig(c config.Config) (string, error) {
	db := c.Database
	if db.Driver == store.SQLite {
		abs, err := filepath.Abs(db.DSN)
		if err != nil {
			return "", err
		}
		db.DSN = abs
	}
	b, err := yaml.Marshal(runConfig{HSM: c.HSM, Database: db})
	if err != nil {
		return "", err
	}
	head := "# Written by egate demo at every start: its HSM token and its database.\n# Use it with --config (or EGATE_CONFIG) for egate admin … and egate authsvc.\n"
	path := filepath.Join(c.Demo.VarDir, ConfigFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append([]byte(head), b...), 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}
