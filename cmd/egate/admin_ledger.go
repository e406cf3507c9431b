package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

func init() { registerAdmin(newLedgerCmd) }

// newLedgerCmd is egate admin ledger check. It only reads: the database
// must exist and is not migrated, like egate admin audit.
func newLedgerCmd() *cobra.Command {
	var dsn string
	cmd := &cobra.Command{Use: "ledger", Short: "ebank's double-entry ledger: prove that the books balance"}
	cmd.PersistentFlags().StringVar(&dsn, "db", "", "database: SQLite file path or postgres:// URL (default: database.* from the config)")
	check := &cobra.Command{
		Use:   "check",
		Short: "prove that debits equal credits and every balance equals the sum of its transfers; or name the first account that does not (exit 1)",
		Long: `check reads one consistent snapshot of the ledger and proves that every
account's posted and pending debits and credits equal the sums of its
transfers, that debits equal credits over all accounts (posted and pending
apart), and that no customer's account is below zero. It prints the counts
and totals, or one line naming the first account (by number) that does not
balance and by how much, and exits 1. It only reads.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := (&authFlags{db: dsn, cmd: cmd, inspect: true}).openDB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			if err := hasLedger(cmd.Context(), db); err != nil {
				return err
			}
			start := time.Now()
			rep, err := ledger.Check(cmd.Context(), db)
			if err != nil {
				var ce *ledger.CheckError
				if errors.As(err, &ce) {
					return fmt.Errorf("%w; keep the database as it is and investigate", err)
				}
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "ledger balanced: %d accounts, %d transfers, %d holds open (checked in %v)\n",
				rep.Accounts, rep.Transfers, rep.Holds, time.Since(start).Round(time.Millisecond))
			fmt.Fprintf(w, "posted:  debits %s = credits %s yuan\n", money.Yuan(rep.DebitsPosted), money.Yuan(rep.CreditsPosted))
			fmt.Fprintf(w, "pending: debits %s = credits %s yuan\n", money.Yuan(rep.DebitsPending), money.Yuan(rep.CreditsPending))
			return nil
		},
	}
	cmd.AddCommand(check)
	return cmd
}

// hasLedger tells a database without ebank's tables (a wrong path or
// URL, or one not migrated since the ledger came) from an empty ledger.
func hasLedger(ctx context.Context, db *store.DB) error {
	rows, err := db.Query(ctx, `SELECT id FROM ebank_accounts LIMIT 1`)
	if err != nil {
		return fmt.Errorf("this database has no ebank ledger: is --db (or database.dsn) egate's database, and has egate (authsvc, platform or demo) run on it since the ledger came? (%w)", err)
	}
	return rows.Close()
}
