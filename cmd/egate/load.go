package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/authsvc"
	"github.com/egate-bank/egate/authsvc/oath"
	"github.com/egate-bank/egate/internal/loadgen"
)

func init() { registerTop(newLoadCmd) }

const loadLong = `Drives a running egate demo or egate authsvc over loopback (127.0.0.0/8 or
::1 only: any other target is refused) with a bounded number of operations
per scenario, one scenario after the other, and prints for each: operations,
errors by HTTP status and error code, throughput, p50/p90/p99 latency, and
the requests it sent next to the change of egate_http_requests_total in the
target's /metrics (by method and status), which must agree.

Scenarios:
  login    a whole OIDC login: /authorize with PKCE (S256), the passport's
           name, password and token pages with an HOTP code, the code
           exchange at /oauth/token
  refresh  refresh-token rotation at /oauth/token
  otp      POST /v1/otp/verify as the back-end client

The logins use load-test customers, each with an HOTP token, made by
"egate load seed" (worker N uses customer N only, so each token's codes go
in order); the customers file keeps the counters between runs. The target
needs a public OIDC client for the logins, e.g. in the config of egate demo:

  authsvc:
    oidc:
      clients:
        - {id: loadgen, public: true, min-level: 3, redirect-uris: [http://127.0.0.1/load-callback]}

make load does all of it: it starts egate demo on free loopback ports in a
temporary directory, seeds, runs egate load and stops the demo.

Exits non-zero when a scenario's error rate is above --max-error-rate or
/metrics disagrees with what was sent.`

func newLoadCmd() *cobra.Command {
	var (
		target, customersFile, clientID, redirectURI string
		backendID, backendSecretFile, scenarios      string
		lim                                          loadgen.Limits
		maxErr                                       float64
	)
	cmd := &cobra.Command{
		Use:   "load",
		Short: "bounded load over loopback: logins with a second factor, token refreshes, OTP verifications; throughput, p50/p99, /metrics",
		Long:  loadLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if target == "" {
				cfg, _, err := loadConfig(cmd)
				if err != nil {
					return err
				}
				target = cfg.HTTP.BaseURL()
			}
			base, err := loadgen.CheckTarget(target)
			if err != nil {
				return err
			}
			if err := lim.Validate(); err != nil {
				return err
			}
			var list []string
			for _, s := range strings.Split(scenarios, ",") {
				if s = strings.TrimSpace(s); s != "" {
					list = append(list, s)
				}
			}
			b, err := os.ReadFile(customersFile)
			if err != nil {
				return fmt.Errorf("reading the load-test customers: %w (egate load seed --customers-file %s makes them)", err, customersFile)
			}
			cs, err := loadgen.ParseCustomers(b)
			if err != nil {
				return err
			}
			t := &loadgen.Target{Base: base, Client: loadgen.Client(lim.Concurrency), Tally: loadgen.NewTally(),
				ClientID: clientID, RedirectURI: redirectURI, BackendID: backendID, Customers: cs}
			for w := range lim.Concurrency {
				t.Workers = append(t.Workers, loadgen.ClientFrom(loadgen.WorkerAddr(w), 2))
			}
			if strings.Contains(scenarios, "otp") {
				sec, err := os.ReadFile(backendSecretFile)
				if err != nil {
					return fmt.Errorf("reading the back-end client's secret: %w (give --backend-secret-file)", err)
				}
				t.BackendSecret = strings.TrimSpace(string(sec))
			}
			_, runErr := loadgen.RunAll(cmd.Context(), cmd.OutOrStdout(), t, list, lim, maxErr)
			// The counters moved whether the run passed or not: keep them.
			if err := writeCustomers(customersFile, cs); err != nil {
				return errors.Join(runErr, err)
			}
			return runErr
		},
	}
	f := cmd.Flags()
	f.StringVar(&target, "target", "", "the passport's base URL, on loopback (default: http.public-url or http.listen of the config)")
	f.StringVar(&scenarios, "scenarios", strings.Join(loadgen.Scenarios, ","), "scenarios to run, in order: login, refresh, otp")
	f.IntVar(&lim.Requests, "requests", 2000, "at most this many operations per scenario (a login is one operation of several requests)")
	f.DurationVar(&lim.Duration, "duration", 20*time.Second, "at most this long per scenario")
	f.IntVar(&lim.Concurrency, "concurrency", 4, "concurrent clients (at most the number of seeded customers)")
	f.Float64Var(&maxErr, "max-error-rate", 0.01, "fail when more than this fraction of a scenario's operations fail")
	f.StringVar(&customersFile, "customers-file", "var/load-customers.json", "the load-test customers (egate load seed)")
	f.StringVar(&clientID, "client", "loadgen", "the public OIDC client the logins are for")
	f.StringVar(&redirectURI, "redirect-uri", "http://127.0.0.1/load-callback", "its registered redirect URI (never visited)")
	f.StringVar(&backendID, "backend-client", "demo-backend", "the back-end client of the OTP verify API")
	f.StringVar(&backendSecretFile, "backend-secret-file", "var/demo-backend-secret", "file holding its secret")
	cmd.AddCommand(newLoadSeedCmd())
	return cmd
}

// newLoadSeedCmd is egate load seed: load-test customers with HOTP tokens
// in the database and HSM of the config (after egate demo: --config
// var/egate.yaml), written to the customers file egate load reads.
func newLoadSeedCmd() *cobra.Command {
	var (
		a             authFlags
		customersFile string
		n             int
	)
	cmd := &cobra.Command{
		Use:   "seed",
		Short: "register load-test customers with HOTP tokens (database and HSM of the config) for egate load",
		Long: `Registers --customers load-test customers (login names load-TAG-NNNN, one
random password) and gives each an HOTP token, imported like a vendor's PSKC
file (the seed wrapped by the HSM's seed-wrap key) and assigned; the
customers, their password and their tokens' seeds and counters go to
--customers-file (mode 0600), which egate load reads and updates. Customers
already in the file are kept; only the missing ones are made. It works
beside a running egate demo: egate load seed --config var/egate.yaml.
Test data only: a PostgreSQL database not on loopback (or a Unix socket) is
refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 || n > 10000 {
				return errors.New("--customers must be 1–10000")
			}
			ctx := cmd.Context()
			var cs *loadgen.Customers
			if b, err := os.ReadFile(customersFile); err == nil {
				if cs, err = loadgen.ParseCustomers(b); err != nil {
					return err
				}
			} else if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			cfg, _, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			dbc := cfg.Database
			if a.db != "" {
				dbc = dbConfig(a.db)
			}
			if err := loadgen.CheckDatabase(dbc.Driver, dbc.DSN); err != nil {
				return err
			}
			db, h, done, err := a.openDBHSM(ctx)
			if err != nil {
				return err
			}
			defer done()
			ps, err := authsvc.NewPassport(ctx, db, cfg.Authsvc.Passport, nil)
			if err != nil {
				return err
			}
			wrap := cfg.Factors.WithDefaults().OTP.WrapKeyLabel
			cs, seedErr := loadgen.Seed(ctx, ps, oath.New(db, h, oath.Config{WrapKeyLabel: wrap}, nil), cs, n, filepath.Dir(customersFile))
			if cs != nil {
				if err := writeCustomers(customersFile, cs); err != nil {
					return errors.Join(seedErr, err)
				}
			}
			if seedErr != nil {
				return seedErr
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d load-test customers with HOTP tokens in %s\n", len(cs.List), customersFile)
			return nil
		},
	}
	a.add(cmd)
	cmd.Flags().StringVar(&customersFile, "customers-file", "var/load-customers.json", "where the customers, their password and their tokens go (mode 0600)")
	cmd.Flags().IntVar(&n, "customers", 8, "how many load-test customers (one per concurrent client)")
	return cmd
}

func writeCustomers(path string, cs *loadgen.Customers) error {
	b, err := cs.Marshal()
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
