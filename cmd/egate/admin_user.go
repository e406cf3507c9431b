package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/authsvc/factors"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/authsvc/phone"
	"github.com/egate-bank/egate/authsvc/pivauth"
	"github.com/egate-bank/egate/authsvc/ushield"
	"github.com/egate-bank/egate/authsvc/wdpin"
	"github.com/egate-bank/egate/devices/pinsource"
)

func init() { registerAdmin(newUserCmd) }

// newUserCmd is egate admin user add|show|lock|unlock|reset-password.
// Every command that changes a customer appends an audit record naming
// the operator (egate admin --operator, default the OS user).
func newUserCmd() *cobra.Command {
	var dsn string
	cmd := &cobra.Command{Use: "user", Short: "passport customers: add, show, lock, unlock, reset-password, withdrawal-pin"}
	cmd.PersistentFlags().StringVar(&dsn, "db", "", "database: SQLite file path or postgres:// URL (default: database.* from the config)")

	var nc passport.NewCustomer
	var pwSource string
	add := &cobra.Command{
		Use:   "add",
		Short: "register a customer (the password comes from --password-source, never the command line)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			op, err := whoRuns(cmd)
			if err != nil {
				return err
			}
			pw, err := pinsource.Read(pwSource)
			if err != nil {
				return fmt.Errorf("reading the password: %w", err)
			}
			nc.Password = strings.TrimRight(string(pw), "\r\n")
			pinsource.Wipe(pw)
			cs, err := openCustomers(cmd, dsn)
			if err != nil {
				return err
			}
			defer cs.Close()
			c, err := cs.ps.Register(cmd.Context(), nc)
			if err != nil {
				return err
			}
			if err := op.record(cmd.Context(), cs.db, "admin.user.add", map[string]string{"passport_id": c.PassportID, "login_name": c.LoginName}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "registered %s (login name %s)\n", c.PassportID, c.LoginName)
			return nil
		},
	}
	f := add.Flags()
	f.StringVar(&nc.LoginName, "login", "", "login name (3–64 of a–z 0–9 . _ - @)")
	f.StringVar(&nc.Mobile, "mobile", "", "mobile number")
	f.StringVar(&nc.Birthday, "birthday", "", "birthday YYYY-MM-DD (the password must not contain it)")
	f.StringVar(&nc.ReservedMessage, "reserved-message", "", "the anti-phishing message shown before the password")
	f.StringVar(&pwSource, "password-source", "env:EGATE_NEW_PASSWORD", "where the initial password is: env:NAME or file:/path (mode 0600)")
	for _, name := range []string{"login", "mobile", "reserved-message"} {
		add.MarkFlagRequired(name)
	}

	show := &cobra.Command{
		Use:   "show PASSPORT-ID|LOGIN-NAME",
		Short: "show a customer, every factor's failures today, its limit and lock, and the customer's enrolled tools",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := openCustomers(cmd, dsn)
			if err != nil {
				return err
			}
			defer cs.Close()
			c, err := cs.resolve(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return showCustomer(cmd, cs, c)
		},
	}

	lock := &cobra.Command{
		Use: "lock PASSPORT-ID|LOGIN-NAME", Short: "lock a customer's sign-in until an operator unlocks it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, err := whoRuns(cmd)
			if err != nil {
				return err
			}
			cs, err := openCustomers(cmd, dsn)
			if err != nil {
				return err
			}
			defer cs.Close()
			ctx := cmd.Context()
			c, err := cs.resolve(ctx, args[0])
			if err != nil {
				return err
			}
			if c.OperatorLocked {
				return fmt.Errorf("customer %s (%s) is already locked by an operator; nothing was changed", c.LoginName, c.PassportID)
			}
			if err := cs.ps.Lock(ctx, c.PassportID); err != nil {
				return err
			}
			if err := op.record(ctx, cs.db, "admin.user.lock", map[string]string{"passport_id": c.PassportID, "login_name": c.LoginName}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "locked %s\n", c.PassportID)
			return nil
		},
	}
	unlock := &cobra.Command{
		Use:   "unlock PASSPORT-ID|LOGIN-NAME",
		Short: "lift an operator lock, today's failure lockouts of every factor and an SMS code lockout (a token: egate admin token unlock; a grid card: issue a new one)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, err := whoRuns(cmd)
			if err != nil {
				return err
			}
			cs, err := openCustomers(cmd, dsn)
			if err != nil {
				return err
			}
			defer cs.Close()
			ctx := cmd.Context()
			c, err := cs.resolve(ctx, args[0])
			if err != nil {
				return err
			}
			// What there is to clear, for the refusal and the record.
			var cleared []string
			if c.OperatorLocked {
				cleared = append(cleared, "operator lock")
			}
			states, err := cs.ps.FactorStates(ctx, c.PassportID)
			if err != nil {
				return err
			}
			for _, st := range states {
				if st.Failures > 0 {
					cleared = append(cleared, fmt.Sprintf("%s failures %d", st.Factor, st.Failures))
				}
			}
			smsSvc := cs.sms()
			sst, err := smsSvc.Attempts(ctx, c.PassportID)
			if err != nil {
				return err
			}
			if sst.Failures > 0 {
				cleared = append(cleared, fmt.Sprintf("sms wrong codes %d", sst.Failures))
			}
			if len(cleared) == 0 {
				return fmt.Errorf("customer %s (%s) is not locked and has no failures today; nothing was changed", c.LoginName, c.PassportID)
			}
			if err := cs.ps.Unlock(ctx, c.PassportID); err != nil {
				return err
			}
			if _, err := smsSvc.Unlock(ctx, c.PassportID); err != nil {
				return err
			}
			if err := op.record(ctx, cs.db, "admin.user.unlock", map[string]string{"passport_id": c.PassportID, "login_name": c.LoginName,
				"cleared": strings.Join(cleared, ", ")}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "unlocked %s (cleared: %s)\n", c.PassportID, strings.Join(cleared, ", "))
			return nil
		},
	}
	var resetSource string
	reset := &cobra.Command{
		Use:   "reset-password PASSPORT-ID|LOGIN-NAME",
		Short: "set a new password after the customer's identity was checked (from --password-source)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, err := whoRuns(cmd)
			if err != nil {
				return err
			}
			pw, err := pinsource.Read(resetSource)
			if err != nil {
				return fmt.Errorf("reading the password: %w", err)
			}
			defer pinsource.Wipe(pw)
			cs, err := openCustomers(cmd, dsn)
			if err != nil {
				return err
			}
			defer cs.Close()
			c, err := cs.resolve(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := cs.ps.ResetPassword(cmd.Context(), c.PassportID, strings.TrimRight(string(pw), "\r\n")); err != nil {
				return err
			}
			if err := op.record(cmd.Context(), cs.db, "admin.user.reset-password", map[string]string{"passport_id": c.PassportID, "login_name": c.LoginName}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "password reset for %s\n", c.PassportID)
			return nil
		},
	}
	reset.Flags().StringVar(&resetSource, "password-source", "env:EGATE_NEW_PASSWORD", "where the new password is: env:NAME or file:/path (mode 0600)")
	cmd.AddCommand(add, show, lock, unlock, reset, newUserWithdrawalPINCmd(&dsn))
	return cmd
}

// newUserWithdrawalPINCmd is egate admin user withdrawal-pin: branch staff
// set a customer's withdrawal PIN (the QR withdrawal's) after checking
// their identity, as PUT /api/v1/self/withdrawal-pin does for the
// customer: the same rules (wdpin.CheckNew), an HMAC in the HSM, the
// PIN's wrong tries cleared, an audit record naming the operator and an
// alert to the customer. The PIN is never printed nor audited.
func newUserWithdrawalPINCmd(dsn *string) *cobra.Command {
	var pinSrc string
	var hf hsmFlags
	cmd := &cobra.Command{
		Use:   "withdrawal-pin PASSPORT-ID|LOGIN-NAME --pin-source file:/path|env:NAME",
		Short: "set a customer's withdrawal PIN for the QR withdrawal (6 digits from --pin-source; audited, the customer alerted)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if pinSrc == "" {
				return errors.New("--pin-source is required (file:/path of mode 0600 or env:NAME); nothing was changed")
			}
			op, err := whoRuns(cmd)
			if err != nil {
				return err
			}
			raw, err := pinsource.Read(pinSrc)
			if err != nil {
				return fmt.Errorf("--pin-source: %w; nothing was changed", err)
			}
			defer pinsource.Wipe(raw)
			pin := bytes.TrimRight(raw, "\r\n")
			if err := wdpin.CheckNew(pin); err != nil {
				return fmt.Errorf("%w; nothing was changed", err)
			}
			cs, err := openCustomers(cmd, *dsn)
			if err != nil {
				return err
			}
			defer cs.Close()
			c, err := cs.resolve(ctx, args[0])
			if err != nil {
				return err
			}
			h, err := hf.open(ctx)
			if err != nil {
				return err
			}
			defer h.Close()
			pins, err := wdpin.New(wdpin.Options{DB: cs.db, HSM: h, Attempts: cs.ps})
			if err != nil {
				return err
			}
			if err := pins.Set(ctx, c.PassportID, pin); err != nil {
				return err
			}
			if err := op.record(ctx, cs.db, "admin.user.withdrawal-pin", map[string]string{"passport_id": c.PassportID, "login_name": c.LoginName}); err != nil {
				return err
			}
			if _, err := alerts.New(cs.db, time.Now).Post(ctx, c.PassportID, alerts.KindTool, alerts.Tool{Time: time.Now().UTC(), Event: "set", Tool: wdpin.Factor}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "withdrawal PIN set for %s\n", c.PassportID)
			return nil
		},
	}
	cmd.Flags().StringVar(&pinSrc, "pin-source", "", "the new 6-digit withdrawal PIN: file:/path (mode 0600) or env:NAME")
	hf.bind(cmd, "hsm-")
	return cmd
}

// showCustomer prints the customer, the passport's failure counters today
// (the password's and those of the enabled tools counted there: U-shields,
// PIV) with the limit and the lock, and the customer's tools with the
// counters they keep themselves (SMS, grid card, OTP token): each tool's
// one counter is shown once.
func showCustomer(cmd *cobra.Command, cs *customerDB, c passport.Customer) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "passport id\t%s\n", c.PassportID)
	fmt.Fprintf(w, "login name\t%s\n", c.LoginName)
	fmt.Fprintf(w, "mobile\t%s\n", c.Mobile)
	fmt.Fprintf(w, "birthday\t%s\n", c.Birthday)
	fmt.Fprintf(w, "reserved message\t%s\n", c.ReservedMessage)
	fmt.Fprintf(w, "created\t%s\n", c.Created.UTC().Format("2006-01-02 15:04:05 MST"))
	fmt.Fprintf(w, "operator lock\t%v\n", c.OperatorLocked)
	if err := w.Flush(); err != nil {
		return err
	}

	// The passport's counters: the password's and those of the enabled
	// tools that keep none of their own; the others' one counter is in the
	// tools' table below.
	var counted []string
	for _, name := range cs.cfg.Factors.Enabled {
		if !factors.CountsOwnFailures(name) {
			counted = append(counted, name)
		}
	}
	states, err := cs.ps.FactorStates(ctx, c.PassportID, counted...)
	if err != nil {
		return err
	}
	fmt.Fprintln(out)
	tw := newTable(out, "FACTOR\tFAILURES TODAY\tLIMIT\tLOCK")
	for _, st := range states {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", st.Factor, st.Failures, st.Limit, lockText(st.Locked, st.Until, "until an operator unlocks"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	// The tools, with the counters each keeps instead of the passport's.
	type row struct{ tool, id, status, failures, lock string }
	var rows []row
	sst, err := cs.sms().Attempts(ctx, c.PassportID)
	if err != nil {
		return err
	}
	if c.Mobile != "" {
		rows = append(rows, row{"sms", c.Mobile, "active", fmt.Sprintf("%d of %d", sst.Failures, sst.Max), lockText(!sst.Until.IsZero(), sst.Until, "")})
	}
	gs, err := cs.gridcard()
	if err != nil {
		return err
	}
	cards, err := gs.Cards(ctx, c.PassportID)
	if err != nil {
		return err
	}
	for _, g := range cards {
		rows = append(rows, row{"gridcard", g.Serial, g.Status, fmt.Sprintf("%d of %d", g.Attempts, g.MaxAttempts),
			lockText(g.Locked(), time.Time{}, "until a new card is issued")})
	}
	o := cs.otp()
	toks, err := o.TokensOf(ctx, c.PassportID)
	if err != nil {
		return err
	}
	for _, t := range toks {
		l := o.LockOf(t)
		rows = append(rows, row{"otp", tokenName(t) + " (" + strings.ToUpper(string(t.Params.Kind)) + ")", t.Status,
			fmt.Sprintf("%d of %d", t.Failures, o.MaxFailures()), lockText(l.Locked, l.Until, "until an operator unlocks")})
	}
	us, err := ushield.New(cs.db, nil, nil).Tokens(ctx, c.PassportID)
	if err != nil {
		return err
	}
	for _, u := range us {
		status := "active"
		if u.Lost {
			status = "lost"
		}
		rows = append(rows, row{fmt.Sprintf("ushield (gen %d)", u.Generation), fmt.Sprintf("%s serial %s cert %s", u.TokenLabel, u.TokenSerial, u.CertSerial), status, "-", "-"})
	}
	ps, err := pivauth.New(cs.db, nil, nil).Tokens(ctx, c.PassportID)
	if err != nil {
		return err
	}
	for _, p := range ps {
		rows = append(rows, row{"piv", fmt.Sprintf("card %d slot %s cert %s", p.CardSerial, p.Slot, p.CertSerial), p.Status, "-", "-"})
	}
	phones, err := phone.New(cs.db, nil).Devices(ctx, c.PassportID)
	if err != nil {
		return err
	}
	for _, d := range phones {
		status := "active"
		if d.Revoked {
			status = "revoked"
		}
		rows = append(rows, row{"phone", fmt.Sprintf("%s device %s bound %s", d.Label, d.ID, d.BoundAt.UTC().Format("2006-01-02 15:04 MST")), status, "-", "-"})
	}
	fmt.Fprintln(out)
	if len(rows) == 0 {
		fmt.Fprintln(out, "no tools enrolled")
		return nil
	}
	tw = newTable(out, "TOOL\tID\tSTATUS\tFAILURES\tLOCK")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.tool, r.id, r.status, r.failures, r.lock)
	}
	return tw.Flush()
}
