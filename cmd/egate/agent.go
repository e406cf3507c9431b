package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/devices/agent"
	"github.com/egate-bank/egate/internal/app"
)

func init() { registerTop(newAgentCmd) }

func newAgentCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "agent",
		Short: "run the branch device agent: owns the ATMs on serial lines (agent.* in the config)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if err := cfg.Agent.Validate(); err != nil {
				return err
			}
			if _, _, err := net.SplitHostPort(cfg.Agent.Listen); err != nil {
				return fmt.Errorf("agent.listen %q: give host:port", cfg.Agent.Listen)
			}
			s, err := app.NewServer("agent", cfg.Agent.Listen, log)
			if err != nil {
				return err
			}
			a, err := agent.New(cfg.Agent, agent.SerialLines, s.Metrics.Registry)
			if err != nil {
				return err
			}
			defer a.Close()
			s.Health.Add("atms", a.Check)
			s.Mux.Handle("/atms", a.Handler())
			s.Mux.Handle("/atms/", a.Handler())
			fmt.Fprintf(cmd.OutOrStdout(), "agent serving at %s with %d ATM(s): %v\n", s.URL(), len(a.IDs()), a.IDs())
			return app.ServeAll(cmd.Context(), s)
		},
	}
}
