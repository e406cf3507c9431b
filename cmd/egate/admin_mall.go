package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	"github.com/egate-bank/egate/platform/mall"
)

func init() { registerAdmin(newMallCmd) }

// newMallCmd is egate admin mall merchant list|approve|reject: the bank's
// staff review the merchants' applications (platform/mall).
func newMallCmd() *cobra.Command {
	var dsn string
	cmd := &cobra.Command{Use: "mall", Short: "the mall: review merchants' applications"}
	cmd.PersistentFlags().StringVar(&dsn, "db", "", "database: SQLite file path or postgres:// URL (default: database.* from the config)")
	merchant := &cobra.Command{Use: "merchant", Short: "merchants' applications: list, approve (opens the settlement account at ebank), reject"}
	open := func(cmd *cobra.Command) (*mall.Mall, *store.DB, error) {
		db, err := (&authFlags{db: dsn, cmd: cmd, inspect: true}).openDB(cmd.Context())
		if err != nil {
			return nil, nil, err
		}
		rows, err := db.Query(cmd.Context(), `SELECT id FROM mall_merchants LIMIT 1`)
		if err != nil {
			db.Close()
			return nil, nil, fmt.Errorf("this database has no mall: is --db (or database.dsn) egate's database, and has egate (platform mall or demo) run on it since the mall came? (%w)", err)
		}
		rows.Close()
		return &mall.Mall{DB: db, Ledger: ledger.New(db, nil)}, db, nil
	}
	var status string
	list := &cobra.Command{
		Use:   "list [--status applied|approved|rejected]",
		Short: "list the applications with what the admission rules found (problems refuse approval; flags need --accept-risk)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch status {
			case "", mall.Applied, mall.Approved, mall.Rejected:
			default:
				return fmt.Errorf("--status %q: use applied, approved or rejected", status)
			}
			m, db, err := open(cmd)
			if err != nil {
				return err
			}
			defer db.Close()
			ms, err := m.Merchants(cmd.Context(), status)
			if err != nil {
				return err
			}
			printMerchants(cmd.OutOrStdout(), ms)
			return nil
		},
	}
	list.Flags().StringVar(&status, "status", "", "only applications in this state")
	var acceptRisk bool
	var note string
	review := func(approve bool) func(cmd *cobra.Command, args []string) error {
		return func(cmd *cobra.Command, args []string) error {
			if !approve && strings.TrimSpace(note) == "" {
				return errors.New("--reason is required: say why the application is rejected; nothing was changed")
			}
			op, err := whoRuns(cmd)
			if err != nil {
				return err
			}
			m, db, err := open(cmd)
			if err != nil {
				return err
			}
			defer db.Close()
			ctx := cmd.Context()
			rv := mall.Review{Merchant: args[0], Reviewer: op.name, Note: note, AcceptRisk: acceptRisk}
			var mc mall.Merchant
			kind := "admin.mall.merchant.approve"
			if approve {
				mc, err = m.Approve(ctx, rv)
			} else {
				kind = "admin.mall.merchant.reject"
				mc, err = m.Reject(ctx, rv)
			}
			if err != nil {
				return fmt.Errorf("%s: %w; nothing was changed", args[0], err)
			}
			if err := op.record(ctx, db, kind, map[string]string{"merchant": mc.ID, "name": mc.Name, "owner": mc.Owner, "category": mc.Category,
				"flags": strings.Join(mc.Flags, ","), "accept_risk": fmt.Sprint(acceptRisk), "account": mc.Account, "note": note}); err != nil {
				return err
			}
			if approve {
				fmt.Fprintf(cmd.OutOrStdout(), "merchant %s (%s) approved by %s; settlement account %s\n", mc.ID, mc.Name, op.name, mc.Account)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "merchant %s (%s) rejected by %s: %s\n", mc.ID, mc.Name, op.name, note)
			}
			return nil
		}
	}
	approve := &cobra.Command{
		Use:   "approve ID [--accept-risk] [--note TEXT]",
		Short: "admit an eligible application and open its settlement account at ebank (audited)",
		Long: `approve admits the merchant ID: only an application without problems (documents
given, category allowed); one with risk flags only with --accept-risk. It opens
the merchant's settlement account at ebank (a current account owned by
merchant:ID) and records the approval in the audit log with the operator.`,
		Args: cobra.ExactArgs(1),
		RunE: review(true),
	}
	approve.Flags().BoolVar(&acceptRisk, "accept-risk", false, "admit an application with risk flags (the flags are audited)")
	approve.Flags().StringVar(&note, "note", "", "the reviewer's note (audited)")
	reject := &cobra.Command{
		Use:   "reject ID --reason TEXT",
		Short: "reject an application with the reason the applicant sees (audited)",
		Args:  cobra.ExactArgs(1),
		RunE:  review(false),
	}
	reject.Flags().StringVar(&note, "reason", "", "why (the applicant sees it; audited)")
	merchant.AddCommand(list, approve, reject)
	cmd.AddCommand(merchant)
	return cmd
}

func printMerchants(w io.Writer, ms []mall.Merchant) {
	if len(ms) == 0 {
		fmt.Fprintln(w, "no applications")
		return
	}
	for _, m := range ms {
		fmt.Fprintf(w, "%s  %-8s  %s  category %s  licence %s  contact %s  applied %s\n", m.ID, m.Status, m.Name, m.Category, m.Licence, m.Contact,
			time.UnixMilli(m.CreatedMS).UTC().Format(time.RFC3339))
		verdict := "eligible"
		if !m.Eligible() {
			verdict = "NOT eligible: " + strings.Join(m.Problems, ", ")
		}
		flags := "none"
		if len(m.Flags) > 0 {
			flags = strings.Join(m.Flags, ", ") + " (approve with --accept-risk)"
		}
		fmt.Fprintf(w, "    rules: %s; risk flags: %s\n", verdict, flags)
		if m.Status != mall.Applied {
			fmt.Fprintf(w, "    %s by %s at %s; account %q; note %q\n", m.Status, m.Reviewer, time.UnixMilli(m.ReviewedMS).UTC().Format(time.RFC3339), m.Account, m.Note)
		}
	}
}
