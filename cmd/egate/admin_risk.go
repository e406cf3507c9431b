package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/limits"
	"github.com/egate-bank/egate/authsvc/risk"
	"github.com/egate-bank/egate/authsvc/txauth"
	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/internal/store"
)

func init() { registerAdmin(newRiskCmd) }

// newRiskCmd is egate admin risk review list|approve|deny and egate admin
// risk test RULES INTENTS.
func newRiskCmd() *cobra.Command {
	var dsn string
	cmd := &cobra.Command{Use: "risk", Short: "transaction risk: the review queue, and trying rules on recorded intents"}
	cmd.PersistentFlags().StringVar(&dsn, "db", "", "database: SQLite file path or postgres:// URL (default: database.* from the config)")

	// open opens the existing database (never a new one: a mistyped path
	// is an error, not an empty queue) and the service over it.
	open := func(cmd *cobra.Command) (*txauth.Service, func(), error) {
		db, err := (&authFlags{db: dsn, cmd: cmd, inspect: true}).openDB(cmd.Context())
		if err != nil {
			return nil, nil, err
		}
		if err := hasTxTables(cmd.Context(), db); err != nil {
			db.Close()
			return nil, nil, err
		}
		cfg, _, err := loadConfig(cmd)
		if err != nil {
			db.Close()
			return nil, nil, err
		}
		tc := cfg.Transactions
		tc.RiskRules = nil // the queue needs no rules
		svc, err := txauth.New(tc, txauth.Deps{DB: db})
		if err != nil {
			db.Close()
			return nil, nil, err
		}
		return svc, func() { db.Close() }, nil
	}

	review := &cobra.Command{Use: "review", Short: "intents held for review: list them, approve or deny one"}
	var n int
	list := &cobra.Command{
		Use:   "list",
		Short: "list the intents waiting for review, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 || n > 10000 {
				return fmt.Errorf("-n %d: give 1 to 10000", n)
			}
			svc, done, err := open(cmd)
			if err != nil {
				return err
			}
			defer done()
			items, err := svc.ReviewList(cmd.Context(), n)
			if err != nil {
				return err
			}
			tw := newTable(cmd.OutOrStdout(), "INTENT\tCUSTOMER\tAMOUNT\tLEVEL\tRULES\tSINCE\tWHAT")
			for _, it := range items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", it.Intent, it.Customer, money.Yuan(it.Amount), it.Level,
					strings.Join(it.Rules, ","), it.At.Format(time.RFC3339), it.Text)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d waiting\n", len(items))
			return nil
		},
	}
	list.Flags().IntVarP(&n, "n", "n", 100, "at most this many")

	verdict := func(approve bool) *cobra.Command {
		var note string
		use, short := "deny INTENT", "refuse an intent held for review: the customer is told"
		if approve {
			use, short = "approve INTENT", "release an intent held for review: the customer proves it at the decided level"
		}
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				op, err := whoRuns(cmd)
				if err != nil {
					return err
				}
				operator := op.name
				if len(note) > 500 {
					return errors.New("--note: at most 500 characters")
				}
				svc, done, err := open(cmd)
				if err != nil {
					return err
				}
				defer done()
				d, err := svc.Review(cmd.Context(), args[0], approve, operator, note)
				if err != nil {
					var te *txauth.Error
					if errors.As(err, &te) {
						return fmt.Errorf("intent %s: %s (%s)", args[0], te.Msg, te.Code)
					}
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "intent %s %s by %s; the customer was told: %s\n", d.Intent, d.State, operator, d.Message)
				return nil
			},
		}
		c.Flags().StringVar(&note, "note", "", "why, for the audit log")
		return c
	}
	review.AddCommand(list, verdict(true), verdict(false))

	var limit int
	test := &cobra.Command{
		Use:   "test RULES INTENTS",
		Short: "run rule files over recorded intents and print each decision with the rules that fired",
		Long: `RULES is a rule file or a directory of them (authsvc/risk). INTENTS is a
JSON-lines file, one {"intent": {...}, "features": {"device.new": true, ...},
"level": 2} per line (features by their rule names; level: the limit table's,
default the level the configured table asks with no usage), or "db": the
intents recorded in the database with the features they were decided on.
Nothing is stored or changed.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			set, err := risk.LoadFiles([]string{args[0]})
			if err != nil {
				return err
			}
			var recs []txauth.Recorded
			if args[1] == "db" {
				svc, done, err := open(cmd)
				if err != nil {
					return err
				}
				defer done()
				if recs, err = svc.Recorded(cmd.Context(), limit); err != nil {
					return err
				}
			} else {
				cfg, _, err := loadConfig(cmd)
				if err != nil {
					return err
				}
				if recs, err = readRecorded(args[1], cfg.Transactions.WithDefaults().Limits); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			for _, rec := range recs {
				fmt.Fprintf(w, "%s %s yuan %s: ", short(rec.Hash), money.Yuan(rec.Intent.Amount), rec.Intent.Kind)
				if rec.BaseLevel == 0 {
					fmt.Fprintf(w, "deny (limits; no rule ran)\n")
					continue
				}
				d := set.Decide(&rec.Features, rec.BaseLevel)
				fmt.Fprintf(w, "%s", d.Action)
				if d.Action == risk.Allow {
					fmt.Fprintf(w, " at level %d", d.Level)
				}
				fmt.Fprintf(w, " rules=%s", ruleNames(d.Fired))
				if len(d.DryRun) > 0 {
					fmt.Fprintf(w, " dry-run=%s", ruleNames(d.DryRun))
				}
				for _, e := range d.Errors {
					fmt.Fprintf(w, " error=%q", e)
				}
				if rec.Decision != "" {
					fmt.Fprintf(w, " (recorded: %s)", rec.Decision)
				}
				fmt.Fprintln(w)
			}
			return nil
		},
	}
	test.Flags().IntVar(&limit, "limit", 1000, "with db: the newest this many intents")
	cmd.AddCommand(review, test)
	return cmd
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func ruleNames(fs []risk.Fired) string {
	if len(fs) == 0 {
		return "-"
	}
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Rule
	}
	return strings.Join(out, ",")
}

// readRecorded reads a JSON-lines file of intents and features.
func readRecorded(path string, table limits.Table) ([]txauth.Recorded, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("intents: %w", err)
	}
	defer f.Close()
	var out []txauth.Recorded
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		var raw struct {
			Intent   json.RawMessage `json:"intent"`
			Features json.RawMessage `json:"features"`
			Level    int             `json:"level"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%s:%d: want {\"intent\": {...}, \"features\": {...}, \"level\": N}: %v", path, line, err)
		}
		in, err := intent.Decode(bytes.NewReader(raw.Intent))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: intent: %w", path, line, err)
		}
		feats, err := txauth.ParseFeatures(raw.Features)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		feats.Amount, feats.Kind, feats.Channel, feats.Currency, feats.Payee = in.Amount, string(in.Kind), string(in.Channel), in.Currency, in.Payee
		level := raw.Level
		if level == 0 {
			level, _ = table.Need(in.Amount, limits.Usage{})
		} else if level < 1 || level > 5 {
			return nil, fmt.Errorf("%s:%d: level %d: give 1 to 5", path, line, level)
		}
		out = append(out, txauth.Recorded{Hash: in.HashHex(), Intent: in, Features: feats, BaseLevel: level})
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("intents: %w", err)
	}
	return out, nil
}

// hasTxTables tells a database without egate's transaction tables (a
// wrong path or URL) from an empty queue.
func hasTxTables(ctx context.Context, db *store.DB) error {
	rows, err := db.Query(ctx, `SELECT hash FROM tx_intents LIMIT 1`)
	if err != nil {
		return fmt.Errorf("this database has no transaction intents: is --db (or database.dsn) egate's database? (%w)", err)
	}
	return rows.Close()
}
