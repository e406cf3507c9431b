package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/internal/app"
	"github.com/egate-bank/egate/platform"
)

func init() { registerTop(newPlatformCmd) }

func newPlatformCmd() *cobra.Command {
	return &cobra.Command{
		Use:       "platform ebank|mall|messenger",
		Short:     "run one customer platform, an OIDC client of the passport (platforms.* in the config)",
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		ValidArgs: platform.Names,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if err := cfg.Platforms.Validate(); err != nil {
				return err
			}
			s, err := app.Platform(cmd.Context(), cfg, args[0], log, app.PlatformOptions{})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s serving at %s (passport %s)\n", args[0], s.URL(), cfg.Platforms.Issuer)
			return app.ServeAll(cmd.Context(), s)
		},
	}
}
