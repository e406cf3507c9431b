package main

import (
	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/internal/demo"
)

func init() { registerTop(newDemoCmd) }

func newDemoCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "demo",
		Short: "run every component in one process on the embedded defaults (state under ./var)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return demo.Run(cmd.Context(), cfg, cmd.OutOrStdout(), log)
		},
	}
	return c
}
