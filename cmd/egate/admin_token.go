package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/authsvc/oath"
	"github.com/egate-bank/egate/devices/otp"
)

func init() {
	registerToken(newTokenShowCmd)
	registerToken(newTokenAssignCmd)
	registerToken(newTokenUnassignCmd)
	registerToken(newTokenUnlockCmd)
}

// tokenName is how an operator names one OATH key: its serial, and its key
// id unless that is the serial again (the usual PSKC file's choice).
func tokenName(t *oath.Token) string {
	if t.KeyID == "" || t.KeyID == t.Serial {
		return t.Serial
	}
	return t.Serial + " key " + t.KeyID
}

// tokenArgs are the flags every OATH token command shares.
type tokenArgs struct {
	db, keyID string
}

func (a *tokenArgs) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.db, "db", "", "database: SQLite file path or postgres:// URL (default: database.* from the config)")
	cmd.Flags().StringVar(&a.keyID, "key-id", "", "the key's id, when the token holds several keys (egate admin token show lists them)")
}

// open is what every state-changing token command does first: the
// operator's name (checked before anything changes), then the database.
func (a *tokenArgs) open(cmd *cobra.Command) (operator, *customerDB, error) {
	op, err := whoRuns(cmd)
	if err != nil {
		return op, nil, err
	}
	cs, err := openCustomers(cmd, a.db)
	return op, cs, err
}

// token finds the token the command names, as an operator reads a refusal.
func (a *tokenArgs) token(ctx context.Context, o *oath.Service, serial string) (*oath.Token, error) {
	t, err := o.TokenBySerial(ctx, serial, a.keyID)
	if err != nil {
		return nil, tokenError(err, serial, a.keyID)
	}
	return t, nil
}

// tokenError turns the token service's refusals into one line an operator
// can act on.
func tokenError(err error, serial, keyID string) error {
	name := serial
	if keyID != "" {
		name += " key " + keyID
	}
	switch {
	case errors.Is(err, oath.ErrUnknownToken):
		return fmt.Errorf("no OTP token %s (egate admin token import-pskc imports them); nothing was changed", name)
	case errors.Is(err, oath.ErrAmbiguous):
		return fmt.Errorf("token %s holds several keys: give --key-id; nothing was changed", serial)
	}
	return err
}

func newTokenShowCmd() *cobra.Command {
	var a tokenArgs
	cmd := &cobra.Command{
		Use:   "show SERIAL",
		Short: "show an OATH token (HOTP, TOTP, OCRA): its customer, kind, counter and drift, failures and lock (never its seed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := openCustomers(cmd, a.db)
			if err != nil {
				return err
			}
			defer cs.Close()
			ctx := cmd.Context()
			o := cs.otp()
			t, err := a.token(ctx, o, args[0])
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "serial\t%s\n", t.Serial)
			if t.KeyID != "" {
				fmt.Fprintf(w, "key id\t%s\n", t.KeyID)
			}
			fmt.Fprintf(w, "manufacturer\t%s\n", t.Manufacturer)
			p := t.Params
			fmt.Fprintf(w, "kind\t%s\n", strings.ToUpper(string(p.Kind)))
			switch p.Kind {
			case otp.KindTOTP:
				fmt.Fprintf(w, "algorithm\t%s, %d digits, %s steps\n", p.Hash, p.Digits, p.Period)
				fmt.Fprintf(w, "next time step\t%d\n", t.Counter)
				fmt.Fprintf(w, "drift\t%d steps\n", t.Drift)
			case otp.KindOCRA:
				fmt.Fprintf(w, "algorithm\t%s\n", p.Suite)
				fmt.Fprintf(w, "next counter\t%d\n", t.Counter)
			default:
				fmt.Fprintf(w, "algorithm\t%s, %d digits\n", p.Hash, p.Digits)
				fmt.Fprintf(w, "next counter\t%d\n", t.Counter)
			}
			holder := "nobody"
			if t.PassportID != "" {
				holder = cs.loginOf(ctx, t.PassportID)
			}
			fmt.Fprintf(w, "assigned to\t%s\n", holder)
			fmt.Fprintf(w, "status\t%s\n", t.Status)
			if !t.NotAfter.IsZero() {
				fmt.Fprintf(w, "valid until\t%s\n", t.NotAfter.UTC().Format(time.DateOnly))
			}
			fmt.Fprintf(w, "failures\t%d of %d\n", t.Failures, o.MaxFailures())
			l := o.LockOf(t)
			lock := "none"
			if l.Locked {
				lock = lockText(true, l.Until, "until an operator unlocks")
			}
			fmt.Fprintf(w, "lock\t%s\n", lock)
			return w.Flush()
		},
	}
	a.bind(cmd)
	return cmd
}

func newTokenAssignCmd() *cobra.Command {
	var a tokenArgs
	var customer string
	cmd := &cobra.Command{
		Use:   "assign SERIAL --customer PASSPORT-ID|LOGIN-NAME",
		Short: "assign an imported OATH token to a customer (a token another customer holds is refused)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, cs, err := a.open(cmd)
			if err != nil {
				return err
			}
			defer cs.Close()
			ctx := cmd.Context()
			c, err := cs.resolve(ctx, customer)
			if err != nil {
				return fmt.Errorf("%w; nothing was changed", err)
			}
			o := cs.otp()
			t, err := a.token(ctx, o, args[0])
			if err != nil {
				return err
			}
			if t.PassportID == c.PassportID {
				return fmt.Errorf("token %s is already assigned to %s; nothing was changed", tokenName(t), cs.loginOf(ctx, c.PassportID))
			}
			err = o.Assign(ctx, t.Serial, t.KeyID, c.PassportID)
			var ae *oath.AssignedError
			switch {
			case errors.As(err, &ae):
				return fmt.Errorf("token %s is already assigned to %s: unassign it first (egate admin token unassign %s); nothing was changed",
					tokenName(t), cs.loginOf(ctx, ae.PassportID), t.Serial)
			case errors.Is(err, oath.ErrRevoked):
				return fmt.Errorf("token %s is %s and cannot be assigned; nothing was changed", tokenName(t), t.Status)
			case err != nil:
				return tokenError(err, args[0], a.keyID)
			}
			if err := op.record(ctx, cs.db, "admin.token.assign", map[string]string{"serial": t.Serial, "key_id": t.KeyID,
				"passport_id": c.PassportID, "login_name": c.LoginName}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "assigned token %s to %s\n", tokenName(t), cs.loginOf(ctx, c.PassportID))
			return nil
		},
	}
	a.bind(cmd)
	cmd.Flags().StringVar(&customer, "customer", "", "the customer: passport id or login name")
	cmd.MarkFlagRequired("customer")
	return cmd
}

func newTokenUnassignCmd() *cobra.Command {
	var a tokenArgs
	cmd := &cobra.Command{
		Use:   "unassign SERIAL",
		Short: "take an OATH token back from its customer (returned to the bank); its failures are cleared, its counter kept",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, cs, err := a.open(cmd)
			if err != nil {
				return err
			}
			defer cs.Close()
			ctx := cmd.Context()
			o := cs.otp()
			t, err := a.token(ctx, o, args[0])
			if err != nil {
				return err
			}
			prev, err := o.Unassign(ctx, t.Serial, t.KeyID)
			if errors.Is(err, oath.ErrNotAssigned) {
				return fmt.Errorf("token %s is not assigned to anyone; nothing was changed", tokenName(t))
			}
			if err != nil {
				return tokenError(err, args[0], a.keyID)
			}
			if err := op.record(ctx, cs.db, "admin.token.unassign", map[string]string{"serial": t.Serial, "key_id": t.KeyID, "passport_id": prev}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "unassigned token %s from %s\n", tokenName(t), cs.loginOf(ctx, prev))
			return nil
		},
	}
	a.bind(cmd)
	return cmd
}

func newTokenUnlockCmd() *cobra.Command {
	var a tokenArgs
	cmd := &cobra.Command{
		Use:   "unlock SERIAL",
		Short: "clear an OATH token's failed attempts and lockout",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, cs, err := a.open(cmd)
			if err != nil {
				return err
			}
			defer cs.Close()
			ctx := cmd.Context()
			o := cs.otp()
			t, err := a.token(ctx, o, args[0])
			if err != nil {
				return err
			}
			err = o.Unlock(ctx, t.Serial, t.KeyID)
			if errors.Is(err, oath.ErrNotLocked) {
				return fmt.Errorf("token %s is not locked and has no failed attempts; nothing was changed", tokenName(t))
			}
			if err != nil {
				return tokenError(err, args[0], a.keyID)
			}
			if err := op.record(ctx, cs.db, "admin.token.unlock", map[string]string{"serial": t.Serial, "key_id": t.KeyID,
				"passport_id": t.PassportID, "failures": fmt.Sprint(t.Failures)}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "unlocked token %s (%d failed attempts cleared)\n", tokenName(t), t.Failures)
			return nil
		},
	}
	a.bind(cmd)
	return cmd
}
