package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/authsvc/audit"
	"github.com/egate-bank/egate/internal/store"
)

func init() { registerAdmin(newAuditCmd) }

// newAuditCmd is egate admin audit verify|tail. Both only read: the
// database must exist and is not migrated, so a mistyped path is an error
// instead of a new, empty and "intact" log.
func newAuditCmd() *cobra.Command {
	var dsn string
	cmd := &cobra.Command{Use: "audit", Short: "the hash-chained audit log: verify the chain, show records with their hashes"}
	cmd.PersistentFlags().StringVar(&dsn, "db", "", "database: SQLite file path or postgres:// URL (default: database.* from the config)")

	open := func(cmd *cobra.Command) (*audit.Log, func(), error) {
		db, err := (&authFlags{db: dsn, cmd: cmd, inspect: true}).openDB(cmd.Context())
		if err != nil {
			return nil, nil, err
		}
		if err := hasAuditLog(cmd.Context(), db); err != nil {
			db.Close()
			return nil, nil, err
		}
		return audit.New(db, nil), func() { db.Close() }, nil
	}

	verify := &cobra.Command{
		Use:   "verify",
		Short: "walk the whole chain; print the record count and the head hash, or the first broken record (exit 1)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, done, err := open(cmd)
			if err != nil {
				return err
			}
			defer done()
			n, head, err := l.VerifyHead(cmd.Context())
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
	var from int64
	tail := &cobra.Command{
		Use:   "tail",
		Short: "print records with their hashes as JSON lines, oldest first: the last -n, or -n from --from (not verified: run verify for that)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if last < 1 || last > 10000 {
				return fmt.Errorf("-n %d: give 1 to 10000 records", last)
			}
			if from < 0 {
				return fmt.Errorf("--from %d: give a record number from 1 on", from)
			}
			l, done, err := open(cmd)
			if err != nil {
				return err
			}
			defer done()
			var es []audit.Entry
			if from > 0 {
				es, err = l.Range(cmd.Context(), from, last)
			} else {
				es, err = l.Tail(cmd.Context(), last)
			}
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			for _, e := range es {
				line := struct {
					audit.Entry
					At string `json:"at"`
				}{e, time.UnixMilli(e.AtMS).UTC().Format(time.RFC3339Nano)}
				if err := enc.Encode(line); err != nil {
					return err
				}
			}
			return nil
		},
	}
	tail.Flags().IntVarP(&last, "n", "n", 20, "how many records")
	tail.Flags().Int64Var(&from, "from", 0, "first record number (default: the last -n records)")
	cmd.AddCommand(verify, tail)
	return cmd
}

// hasAuditLog tells a database without egate's audit table (a wrong path
// or URL) from an empty log.
func hasAuditLog(ctx context.Context, db *store.DB) error {
	rows, err := db.Query(ctx, `SELECT seq FROM audit_log LIMIT 1`)
	if err != nil {
		return fmt.Errorf("this database has no audit log: is --db (or database.dsn) egate's database? (%w)", err)
	}
	return rows.Close()
}
