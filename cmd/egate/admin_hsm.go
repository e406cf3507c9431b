package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/egate-bank/egate/authsvc/oath"
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
	pf.StringVar(&f.module, prefix+"module", "", "path of the HSM's PKCS#11 library (default: hsm.module; after egate demo: --config var/egate.yaml)")
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
		Short: "the HSM key service: create the bank's standard keys, list keys, move OTP seeds under the seed-wrap key",
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
	cmd.AddCommand(initCmd, keysCmd, newRewrapSeedsCmd(f))
	return cmd
}

// newRewrapSeedsCmd is egate admin hsm rewrap-seeds: what every authsvc
// start does (authsvc/factors.Build), on demand and with a report.
func newRewrapSeedsCmd(f *hsmFlags) *cobra.Command {
	var dbDSN, to string
	cmd := &cobra.Command{
		Use:   "rewrap-seeds",
		Short: "move OTP seeds still wrapped by an older key (egate-secrets-wrap) under the seed-wrap key, inside the HSM",
		Long: `Moves every stored OTP seed that is not wrapped by the seed-wrap key
(--wrap-key, default factors.otp.wrap-key-label: egate-otp-seed-wrap) under
it. Each seed is unwrapped by its old key into a sensitive session key in the
HSM and wrapped at once by the seed-wrap key; it never leaves the HSM in the
clear. Safe to run again, and while authsvc runs (each start does the same).
The seed-wrap key must exist: egate admin hsm init makes it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if to == "" {
				cfg, _, err := loadConfig(cmd)
				if err != nil {
					return err
				}
				to = cfg.Factors.WithDefaults().OTP.WrapKeyLabel
			}
			db, err := (&authFlags{db: dbDSN, cmd: cmd}).openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			h, err := f.open(ctx)
			if err != nil {
				return err
			}
			defer h.Close()
			k, err := h.FindKey(ctx, to)
			if err != nil {
				return err
			}
			if k.Type != hsm.KeySeedWrap {
				return fmt.Errorf("%w: %q is not a seed-wrap key (%s): seeds would not stay in the HSM; run egate admin hsm init and use %s", hsm.ErrKeyType, to, hsm.KeySeedWrap, hsm.LabelSeedWrap)
			}
			sum, err := oath.New(db, h, oath.Config{WrapKeyLabel: to}, nil).RewrapSeeds(ctx)
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "moved %d seeds under %s\n", sum.Total(), to)
			for _, m := range []struct {
				what string
				by   map[string]int
			}{{"moved from", sum.Rewrapped}, {"kept under", sum.Kept}} {
				labels := make([]string, 0, len(m.by))
				for l := range m.by {
					labels = append(labels, l)
				}
				sort.Strings(labels)
				for _, l := range labels {
					fmt.Fprintf(out, "  %s %-28s %d\n", m.what, l, m.by[l])
				}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&dbDSN, "db", "", "database: SQLite file path or postgres:// URL (default: database.* from the config)")
	cmd.Flags().StringVar(&to, "wrap-key", "", "the seed-wrap key (default: factors.otp.wrap-key-label, egate-otp-seed-wrap)")
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
