package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/authsvc"
	"github.com/egate-bank/egate/authsvc/gridcard"
	"github.com/egate-bank/egate/authsvc/oath"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/authsvc/sms"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/store"
)

// customerDB is what the operator commands on customers and their tokens
// work with: the database (--db or database.*), the passport over it with
// the config's passport section (argon2 parameters, strength rules,
// max-failures), and the tools' services with the config's limits. None
// needs the HSM: they read and clear counters, assign and unlock.
type customerDB struct {
	cfg *config.Config
	db  *store.DB
	ps  *passport.Service
}

func openCustomers(cmd *cobra.Command, dsn string) (*customerDB, error) {
	cfg, _, err := loadConfig(cmd)
	if err != nil {
		return nil, err
	}
	db, err := (&authFlags{db: dsn, cmd: cmd}).openDB(cmd.Context())
	if err != nil {
		return nil, err
	}
	ps, err := authsvc.NewPassport(cmd.Context(), db, cfg.Authsvc.Passport, nil)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &customerDB{cfg: cfg, db: db, ps: ps}, nil
}

func (c *customerDB) Close() { c.db.Close() }

// resolve takes a passport id or a login name.
func (c *customerDB) resolve(ctx context.Context, who string) (passport.Customer, error) {
	if cu, err := c.ps.Customer(ctx, who); err == nil {
		return cu, nil
	}
	cu, err := c.ps.ByLoginName(ctx, who)
	if errors.Is(err, passport.ErrNotFound) {
		return cu, fmt.Errorf("no customer with passport id or login name %q", who)
	}
	return cu, err
}

// loginOf names a customer for an operator: "alice (P…)", or the bare
// passport id when it names nobody (any more).
func (c *customerDB) loginOf(ctx context.Context, passportID string) string {
	if cu, err := c.ps.Customer(ctx, passportID); err == nil {
		return cu.LoginName + " (" + passportID + ")"
	}
	return passportID
}

func (c *customerDB) otp() *oath.Service {
	o := c.cfg.Factors.OTP
	return oath.New(c.db, nil, oath.Config{MaxFailures: o.MaxFailures, LockFor: o.LockFor}, nil)
}

func (c *customerDB) sms() *sms.Service {
	s := c.cfg.Factors.SMS
	return sms.New(c.db, nil, nil, nil, sms.Config{MaxAttempts: s.MaxAttempts, LockFor: s.LockFor}, nil)
}

func (c *customerDB) gridcard() (*gridcard.Service, error) {
	g := c.cfg.Factors.GridCard
	return gridcard.New(c.db, nil, gridcard.Config{Cols: g.Cols, Rows: g.Rows, Cells: g.Cells, MaxUses: g.MaxUses, MaxAttempts: g.MaxAttempts, TTL: g.TTL}, nil)
}

// lockText says how long a lock lasts: "-" for none.
func lockText(locked bool, until time.Time, forever string) string {
	switch {
	case !locked:
		return "-"
	case until.IsZero():
		return forever
	}
	return "until " + until.UTC().Format("2006-01-02 15:04 MST")
}
