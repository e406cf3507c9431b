package main

import (
	"github.com/spf13/cobra"
)

// Subcommands register themselves from their own files through these
// functions, so that each component's CLI lives beside nothing else.
// Registration is the only thing the init functions of this package do.
var (
	topCmds   []func() *cobra.Command // egate <cmd>
	simCmds   []func() *cobra.Command // egate sim <cmd>
	adminCmds []func() *cobra.Command // egate admin <cmd>
)

func registerTop(f func() *cobra.Command)   { topCmds = append(topCmds, f) }
func registerSim(f func() *cobra.Command)   { simCmds = append(simCmds, f) }
func registerAdmin(f func() *cobra.Command) { adminCmds = append(adminCmds, f) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "egate",
		Short:         "egate: hardware-integrated authentication and branch gateway",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("config", "", "config file (YAML); env EGATE_CONFIG")
	root.PersistentFlags().StringArray("set", nil, "set a config key, e.g. --set http.listen=127.0.0.1:9000 (repeatable)")
	sim := &cobra.Command{Use: "sim", Short: "run a device simulator (atm, piv, otp, ushield, phone, sms)"}
	admin := &cobra.Command{Use: "admin", Short: "operator tasks: users, tokens, keys, CA, audit, ATMs"}
	for _, f := range simCmds {
		sim.AddCommand(f())
	}
	for _, f := range adminCmds {
		admin.AddCommand(f())
	}
	root.AddCommand(sim, admin)
	for _, f := range topCmds {
		root.AddCommand(f())
	}
	return root
}
