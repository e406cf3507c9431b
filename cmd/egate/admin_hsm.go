package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/simulators/softhsm"
	"github.com/spf13/cobra"
)

func init() { registerAdmin(newHSMCmd) }

// hsmFlags are the flags of egate admin hsm; hsmConfig maps them to the
// service's config (the one place to change when the global config arrives).
type hsmFlags struct {
	module, token, pinSource string
	pool                     int
}

func (f *hsmFlags) hsmConfig() hsm.Config {
	return hsm.Config{Module: f.module, Token: f.token, PINSource: f.pinSource, Pool: f.pool}
}

func newHSMCmd() *cobra.Command {
	f := &hsmFlags{}
	cmd := &cobra.Command{
		Use:   "hsm",
		Short: "the HSM key service: create the bank's standard keys, list keys",
	}
	defModule, _ := softhsm.ModulePath()
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.module, "module", defModule, "path of the HSM's PKCS#11 library")
	pf.StringVar(&f.token, "token", "egate", "label of the token holding egate's keys")
	pf.StringVar(&f.pinSource, "pin-source", "env:EGATE_HSM_PIN", "where the user PIN is: file:/path (mode 0600) or env:NAME")
	pf.IntVar(&f.pool, "pool-size", 0, "PKCS#11 sessions (0: default)")

	initCmd := &cobra.Command{
		Use:   "init",
		Short: "create the bank's standard keys in the HSM (keeps existing ones) and print their URIs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := hsm.Open(cmd.Context(), f.hsmConfig())
			if err != nil {
				return err
			}
			defer s.Close()
			keys, err := s.InitStandardKeys(cmd.Context())
			if err != nil {
				return err
			}
			return printKeys(cmd, keys)
		},
	}
	keysCmd := &cobra.Command{
		Use:   "keys",
		Short: "list the keys in the HSM token with their pkcs11: URIs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := hsm.Open(cmd.Context(), f.hsmConfig())
			if err != nil {
				return err
			}
			defer s.Close()
			keys, err := s.Keys(cmd.Context())
			if err != nil {
				return err
			}
			return printKeys(cmd, keys)
		},
	}
	cmd.AddCommand(initCmd, keysCmd)
	return cmd
}

func printKeys(cmd *cobra.Command, keys []hsm.Key) error {
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "LABEL\tTYPE\tURI")
	for _, k := range keys {
		t := string(k.Type)
		if t == "" {
			t = "other"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", k.Label, t, k.URI)
	}
	return w.Flush()
}
