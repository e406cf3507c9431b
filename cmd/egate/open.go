package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/store"
)

// authFlags are the database and HSM flags the authenticator admin commands share.
type authFlags struct {
	db  string
	hf  hsmFlags
	cmd *cobra.Command
	// inspect opens the database only to read it: it must exist and is not
	// migrated (egate admin audit).
	inspect bool
}

func (a *authFlags) add(cmd *cobra.Command) {
	a.cmd = cmd
	cmd.PersistentFlags().StringVar(&a.db, "db", "", "database: SQLite file path or postgres:// URL (default: database.* from the config)")
	a.hf.bind(cmd, "hsm-")
}

// openDB opens --db when given, else the configured database.
func (a *authFlags) openDB(ctx context.Context) (*store.DB, error) {
	var c store.Config
	switch {
	case a.db != "":
		c = dbConfig(a.db)
	case a.cmd == nil:
		return nil, errors.New("--db is required: a SQLite file or a postgres:// URL")
	default:
		cfg, _, err := loadConfig(a.cmd)
		if err != nil {
			return nil, err
		}
		c = cfg.Database
	}
	c.MustExist, c.NoMigrate = a.inspect, a.inspect
	return store.Open(ctx, c)
}

// openDBHSM opens the database and the HSM; done closes both.
func (a *authFlags) openDBHSM(ctx context.Context) (db *store.DB, h *hsm.Service, done func(), err error) {
	db, err = a.openDB(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	h, err = a.hf.open(ctx)
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	return db, h, func() { h.Close(); db.Close() }, nil
}

// openCA opens the database, the HSM and the CA with its issuing key; done
// closes the database and the HSM.
func (a *authFlags) openCA(ctx context.Context) (c *ca.CA, db *store.DB, done func(), err error) {
	db, h, done, err := a.openDBHSM(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	signer, err := h.Signer(ctx, ca.IssuingKeyLabel)
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	c, err = ca.Load(ctx, db, signer, nil)
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	return c, db, done, nil
}

// loadCA opens the database and loads the CA without its issuing key (it
// can list, export and revoke, not sign); done closes the database.
func (a *authFlags) loadCA(ctx context.Context) (c *ca.CA, done func(), err error) {
	db, err := a.openDB(ctx)
	if err != nil {
		return nil, nil, err
	}
	c, err = ca.Load(ctx, db, nil, nil)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return c, func() { db.Close() }, nil
}

// newTable starts a tab-aligned table on w with its header line; Flush
// writes it.
func newTable(w io.Writer, header string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	return tw
}

// requireCustomer checks that passportID names a passport customer before
// an operator binds a tool to it: a typo must not issue a card or enroll a
// token for nobody.
func requireCustomer(ctx context.Context, db *store.DB, passportID string) error {
	var n int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM customers WHERE passport_id = ?`, passportID).Scan(&n); err != nil {
		return fmt.Errorf("looking up customer %q: %w", passportID, err)
	}
	if n == 0 {
		return fmt.Errorf("no customer with passport id %q (egate admin user show LOGIN-NAME prints a customer's id); nothing was changed", passportID)
	}
	return nil
}
