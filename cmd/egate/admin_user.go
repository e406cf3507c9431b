package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/authsvc"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/devices/pinsource"
	"github.com/egate-bank/egate/internal/store"
)

func init() { registerAdmin(newUserCmd) }

// newUserCmd is egate admin user add|show|lock|unlock.
func newUserCmd() *cobra.Command {
	var dsn string
	cmd := &cobra.Command{Use: "user", Short: "passport customers: add, show, lock, unlock, reset-password"}
	cmd.PersistentFlags().StringVar(&dsn, "db", "", "database: SQLite file path or postgres:// URL (default: database.* from the config)")
	open := func(cmd *cobra.Command) (*passport.Service, *store.DB, error) {
		// The passport section's argon2 parameters and strength rules
		// apply here as in authsvc.
		cfg, _, err := loadConfig(cmd)
		if err != nil {
			return nil, nil, err
		}
		db, err := (&authFlags{db: dsn, cmd: cmd}).openDB(cmd.Context())
		if err != nil {
			return nil, nil, err
		}
		ps, err := authsvc.NewPassport(cmd.Context(), db, cfg.Authsvc.Passport, nil)
		if err != nil {
			db.Close()
			return nil, nil, err
		}
		return ps, db, nil
	}
	// resolve takes a passport id or a login name.
	resolve := func(cmd *cobra.Command, ps *passport.Service, who string) (passport.Customer, error) {
		if c, err := ps.Customer(cmd.Context(), who); err == nil {
			return c, nil
		}
		c, err := ps.ByLoginName(cmd.Context(), who)
		if errors.Is(err, passport.ErrNotFound) {
			return c, fmt.Errorf("no customer with passport id or login name %q", who)
		}
		return c, err
	}

	var nc passport.NewCustomer
	var pwSource string
	add := &cobra.Command{
		Use:   "add",
		Short: "register a customer (the password comes from --password-source, never the command line)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := pinsource.Read(pwSource)
			if err != nil {
				return fmt.Errorf("reading the password: %w", err)
			}
			nc.Password = strings.TrimRight(string(pw), "\r\n")
			pinsource.Wipe(pw)
			ps, db, err := open(cmd)
			if err != nil {
				return err
			}
			defer db.Close()
			c, err := ps.Register(cmd.Context(), nc)
			if err != nil {
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
		Short: "show a customer and its locks",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ps, db, err := open(cmd)
			if err != nil {
				return err
			}
			defer db.Close()
			c, err := resolve(cmd, ps, args[0])
			if err != nil {
				return err
			}
			st, err := ps.LockState(cmd.Context(), c.PassportID)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "passport id\t%s\n", c.PassportID)
			fmt.Fprintf(w, "login name\t%s\n", c.LoginName)
			fmt.Fprintf(w, "mobile\t%s\n", c.Mobile)
			fmt.Fprintf(w, "birthday\t%s\n", c.Birthday)
			fmt.Fprintf(w, "reserved message\t%s\n", c.ReservedMessage)
			fmt.Fprintf(w, "created\t%s\n", c.Created.UTC().Format("2006-01-02 15:04:05 MST"))
			fmt.Fprintf(w, "operator lock\t%v\n", st.OperatorLocked)
			fmt.Fprintf(w, "password failures today\t%d\n", st.PasswordFailures)
			if st.PasswordLocked {
				fmt.Fprintf(w, "password locked until\t%s\n", st.Until.UTC().Format("2006-01-02 15:04 MST"))
			}
			return w.Flush()
		},
	}
	lockCmd := func(use, short, done string, f func(*passport.Service, *cobra.Command, string) error) *cobra.Command {
		return &cobra.Command{
			Use: use + " PASSPORT-ID|LOGIN-NAME", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				ps, db, err := open(cmd)
				if err != nil {
					return err
				}
				defer db.Close()
				c, err := resolve(cmd, ps, args[0])
				if err != nil {
					return err
				}
				if err := f(ps, cmd, c.PassportID); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", done, c.PassportID)
				return nil
			},
		}
	}
	lock := lockCmd("lock", "lock a customer's sign-in until an operator unlocks it", "locked",
		func(ps *passport.Service, cmd *cobra.Command, pid string) error { return ps.Lock(cmd.Context(), pid) })
	unlock := lockCmd("unlock", "lift an operator lock and today's failure lockouts", "unlocked",
		func(ps *passport.Service, cmd *cobra.Command, pid string) error { return ps.Unlock(cmd.Context(), pid) })
	var resetSource string
	reset := &cobra.Command{
		Use:   "reset-password PASSPORT-ID|LOGIN-NAME",
		Short: "set a new password after the customer's identity was checked (from --password-source)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := pinsource.Read(resetSource)
			if err != nil {
				return fmt.Errorf("reading the password: %w", err)
			}
			defer pinsource.Wipe(pw)
			ps, db, err := open(cmd)
			if err != nil {
				return err
			}
			defer db.Close()
			c, err := resolve(cmd, ps, args[0])
			if err != nil {
				return err
			}
			if err := ps.ResetPassword(cmd.Context(), c.PassportID, strings.TrimRight(string(pw), "\r\n")); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "password reset for %s\n", c.PassportID)
			return nil
		},
	}
	reset.Flags().StringVar(&resetSource, "password-source", "env:EGATE_NEW_PASSWORD", "where the new password is: env:NAME or file:/path (mode 0600)")
	cmd.AddCommand(add, show, lock, unlock, reset)
	return cmd
}
