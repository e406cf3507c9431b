package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/authsvc/audit"
)

func init() { registerAdmin(newAuditCmd) }

// newAuditCmd is egate admin audit verify|tail.
func newAuditCmd() *cobra.Command {
	var dsn string
	cmd := &cobra.Command{Use: "audit", Short: "the hash-chained audit log: verify the chain, show the last records"}
	cmd.PersistentFlags().StringVar(&dsn, "db", "", "database: SQLite file path or postgres:// URL (default: database.* from the config)")

	verify := &cobra.Command{
		Use:   "verify",
		Short: "walk the whole chain; print the record count and the head hash, or the first broken record (exit 1)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := (&authFlags{db: dsn, cmd: cmd}).openDB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			n, head, err := audit.New(db, nil).VerifyHead(cmd.Context())
			var be *audit.BrokenError
			if errors.As(err, &be) {
				return fmt.Errorf("%w: the records from %d on cannot be trusted; keep the database as it is and investigate", err, be.Seq)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "audit log intact: %d records\nhead %s\n", n, head)
			return nil
		},
	}

	var last int
	tail := &cobra.Command{
		Use:   "tail",
		Short: "print the last records as JSON lines, oldest first (not verified: run verify for that)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if last < 1 || last > 10000 {
				return fmt.Errorf("-n %d: give 1 to 10000 records", last)
			}
			db, err := (&authFlags{db: dsn, cmd: cmd}).openDB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			recs, err := audit.New(db, nil).Tail(cmd.Context(), last)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			for _, r := range recs {
				line := struct {
					audit.Record
					At string `json:"at"`
				}{r, time.UnixMilli(r.AtMS).UTC().Format(time.RFC3339Nano)}
				if err := enc.Encode(line); err != nil {
					return err
				}
			}
			return nil
		},
	}
	tail.Flags().IntVarP(&last, "n", "n", 20, "how many records")
	cmd.AddCommand(verify, tail)
	return cmd
}
