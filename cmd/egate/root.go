package main

import (
	"fmt"
	"strings"

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
	sim := &cobra.Command{Use: "sim", Short: "run a device simulator (atm, piv, otp, ushield, sms)"}
	admin := &cobra.Command{Use: "admin", Short: "operator tasks: users, tokens, keys, CA, audit, ATMs, the ledger"}
	addOperatorFlag(admin)
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
	// Cobra adds the completion group when it executes; add it now so
	// that it is strict too.
	root.InitDefaultCompletionCmd()
	strictGroups(root)
	return root
}

// strictGroups makes every command group below the root (egate admin,
// egate admin ca, …) refuse a word that names none of its subcommands.
// Cobra shows a group's help and exits 0 for "egate admin ca isue", which a
// script would take for success.
func strictGroups(c *cobra.Command) {
	for _, sub := range c.Commands() {
		strictGroups(sub)
	}
	if !c.HasParent() || !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		if args[0] == "help" { // egate admin help [ca …], as cobra allows
			target, _, err := cmd.Find(args[1:])
			if err != nil || target == nil {
				target = cmd
			}
			if len(args) > 1 && target == cmd {
				return fmt.Errorf("unknown help topic %q for %q", strings.Join(args[1:], " "), cmd.CommandPath())
			}
			return target.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		var names []string
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		return fmt.Errorf("%s (commands: %s)", msg, strings.Join(names, ", "))
	}
}
