package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/authsvc/gridcard"
	"github.com/egate-bank/egate/devices/hsm"
)

func init() { registerAdmin(newGridCardCmd) }

func newGridCardCmd() *cobra.Command {
	a := &authFlags{}
	cmd := &cobra.Command{Use: "gridcard", Short: "grid cards: issue a customer's printed matrix card"}
	a.add(cmd)
	var customer, out string
	var cfg gridcard.Config
	issue := &cobra.Command{
		Use:   "issue",
		Short: "issue a new grid card (the customer's earlier card stops working) and write it as a printable PNG",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if customer == "" || out == "" {
				return errors.New("--customer and --out are required")
			}
			op, err := whoRuns(cmd)
			if err != nil {
				return err
			}
			db, h, done, err := a.openDBHSM(ctx)
			if err != nil {
				return err
			}
			defer done()
			if err := requireCustomer(ctx, db, customer); err != nil {
				return err
			}
			if _, _, err := h.EnsureKey(ctx, hsm.KeySpec{Label: gridcard.SealKeyLabel, Type: hsm.KeyAES256}); err != nil {
				return err
			}
			svc, err := gridcard.New(db, h, cfg, nil)
			if err != nil {
				return err
			}
			card, err := svc.Issue(ctx, customer)
			if err != nil {
				return err
			}
			if err := op.record(ctx, db, "admin.gridcard.issue", map[string]string{"passport_id": customer, "serial": card.Serial}); err != nil {
				return err
			}
			// The file holds the codes in clear: created 0600, for the printer.
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("card %s was issued but %w; issue again to replace it", card.Serial, err)
			}
			if err := gridcard.RenderPNG(f, card); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "issued grid card %s (%d×%d) for %s; printable image in %s (delete it after printing)\n",
				card.Serial, card.Cols, card.Rows, customer, out)
			return nil
		},
	}
	f := issue.Flags()
	f.StringVar(&customer, "customer", "", "the customer's passport id")
	f.StringVarP(&out, "out", "o", "", "PNG file to write (must not exist)")
	f.IntVar(&cfg.Cols, "cols", 8, "columns (A…)")
	f.IntVar(&cfg.Rows, "rows", 10, "rows")
	f.IntVar(&cfg.MaxUses, "max-uses", 200, "successful uses before the card expires")
	f.IntVar(&cfg.MaxAttempts, "max-attempts", 5, "wrong answers before the card locks")
	cmd.AddCommand(issue)
	return cmd
}
