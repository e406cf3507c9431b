package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/pkcs11uri"
	"github.com/egate-bank/egate/internal/app"
	"github.com/spf13/cobra"
)

func init() { registerAdmin(newHSMCmd) }

// hsmFlags are HSM flags that override the hsm section of the config
// (file, EGATE_HSM_*, --set) when given. prefix is "" for egate admin hsm
// and "hsm-" where the command has other flags too.
type hsmFlags struct {
	module, token, pinSource string
	pool                     int

	cmd    *cobra.Command
	prefix string
}

// bind registers the flags as persistent flags of cmd.
func (f *hsmFlags) bind(cmd *cobra.Command, prefix string) {
	f.cmd, f.prefix = cmd, prefix
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.module, prefix+"module", "", "path of the HSM's PKCS#11 library (default: hsm.module, or the demo's SoftHSM token)")
	pf.StringVar(&f.token, prefix+"token", "", "label of the token holding egate's keys (default: hsm.token)")
	pf.StringVar(&f.pinSource, prefix+"pin-source", "", "where the user PIN is: file:/path (mode 0600) or env:NAME (default: hsm.pin-source)")
	if prefix == "" {
		pf.IntVar(&f.pool, "pool-size", 0, "PKCS#11 sessions (default: hsm.pool-size)")
	}
}

func (f *hsmFlags) changed(name string) bool {
	fl := f.cmd.PersistentFlags().Lookup(f.prefix + name)
	return fl != nil && fl.Changed
}

// resolve is the effective HSM config: the config's hsm section, then the
// flags that were given.
func (f *hsmFlags) resolve() (hsm.Config, error) {
	cfg, _, err := loadConfig(f.cmd)
	if err != nil {
		return hsm.Config{}, err
	}
	if f.changed("module") {
		cfg.HSM.Module = f.module
	}
	if f.changed("token") {
		cfg.HSM.Token = f.token
	}
	if f.changed("pin-source") {
		cfg.HSM.PINSource = f.pinSource
	}
	if f.changed("pool-size") {
		cfg.HSM.Pool = f.pool
	}
	return app.HSMConfig(cfg)
}

// open opens the HSM.
func (f *hsmFlags) open(ctx context.Context) (*hsm.Service, error) {
	hc, err := f.resolve()
	if err != nil {
		return nil, err
	}
	return hsm.Open(ctx, hc)
}

func newHSMCmd() *cobra.Command {
	f := &hsmFlags{}
	cmd := &cobra.Command{
		Use:   "hsm",
		Short: "the HSM key service: create the bank's standard keys, list keys",
	}
	f.bind(cmd, "")

	initCmd := &cobra.Command{
		Use:   "init",
		Short: "create the bank's standard keys in the HSM (keeps existing ones) and print their URIs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := f.open(cmd.Context())
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
		Use:   "keys [LABEL|pkcs11:URI]",
		Short: "list the keys in the HSM token with their pkcs11: URIs, or show the one named",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && strings.HasPrefix(args[0], "pkcs11:") {
				// A malformed URI is refused before the HSM is touched.
				if _, err := pkcs11uri.Parse(args[0]); err != nil {
					return err
				}
			}
			s, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			if len(args) == 1 {
				k, err := s.ResolveKey(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return printKeys(cmd, []hsm.Key{k})
			}
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
