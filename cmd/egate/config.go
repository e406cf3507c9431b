package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/gctune"
)

func init() { registerAdmin(newConfigCmd) }

// loadConfig builds the effective config from --config/EGATE_CONFIG, the
// environment and --set, and the process's JSON logger on stderr.
func loadConfig(cmd *cobra.Command) (*config.Config, *slog.Logger, error) {
	pf := cmd.Root().PersistentFlags()
	file, _ := pf.GetString("config")
	sets, _ := pf.GetStringArray("set")
	cfg, err := config.FromProcess(file, sets)
	if err != nil {
		return nil, nil, err
	}
	if err := cfg.Log.Validate(); err != nil {
		return nil, nil, err
	}
	if err := cfg.Runtime.Validate(); err != nil {
		return nil, nil, err
	}
	gctune.Apply(cfg.Runtime)
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.Log.SlogLevel()}))
	// Libraries that log through the default logger (zitadel's op) write
	// the same JSON lines.
	slog.SetDefault(log)
	return cfg, log, nil
}

func newConfigCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "inspect the configuration"}
	c.AddCommand(&cobra.Command{
		Use:   "print",
		Short: "print the effective config (defaults, file, environment, --set) with secrets redacted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			b, err := cfg.Redacted()
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), string(b))
			return nil
		},
	})
	c.AddCommand(&cobra.Command{
		Use:   "keys",
		Short: "list every config key with its environment variable",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, k := range config.Keys(config.Defaults()) {
				fmt.Fprintf(cmd.OutOrStdout(), "%-28s %s\n", k, config.EnvName(k))
			}
			return nil
		},
	})
	return c
}
