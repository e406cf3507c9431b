package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/egate-bank/egate/authsvc/factors"
	"github.com/egate-bank/egate/authsvc/gridcard"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// The demo's money: what each customer's accounts open with, in fen.
var (
	aliceOpening    = ebank.Opening{Current: 50_000_00, Savings: 200_000_00}
	bobOpening      = ebank.Opening{Current: 3_000_00, Savings: 10_000_00}
	merchantOpening = ebank.Opening{Current: 1_000_00}
)

// MerchantOwner owns the mall merchant's accounts (a business, not a
// passport customer).
const MerchantOwner = "merchant:mall"

// bobGridFile is bob's grid card, printed on the first start.
const bobGridFile = "demo-bob-gridcard.png"

// demoBob registers bob on the first start (SMS to his mobile and a grid
// card, no other tool), with a password file like alice's.
func demoBob(ctx context.Context, ps *passport.Service, set *factors.Set, varDir string) (customer, error) {
	c := customer{name: "bob", file: filepath.Join(varDir, "demo-bob-password")}
	c, fresh, err := registerDemo(ctx, ps, c, passport.NewCustomer{Mobile: "13900139000", ReservedMessage: "blue kite 17"}, "Boat", varDir)
	if err != nil || !fresh {
		return c, err
	}
	if set.GridCard != nil {
		card, err := set.GridCard.Issue(ctx, c.passportID)
		if err != nil {
			return c, fmt.Errorf("issuing bob's grid card: %w", err)
		}
		f, err := os.OpenFile(filepath.Join(varDir, bobGridFile), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return c, err
		}
		err = gridcard.RenderPNG(f, card)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return c, fmt.Errorf("printing bob's grid card: %w", err)
		}
	}
	return c, nil
}

// seedAccounts gives alice, bob and the mall's merchant their accounts and
// money in ebank's ledger; rerun on every start, it opens and posts nothing
// twice (ebank.OpenCustomerAccounts' keys). It prints the accounts and
// returns alice's current account.
func seedAccounts(ctx context.Context, db *store.DB, out io.Writer, alice, bob, carol customer) (string, error) {
	var aliceCurrent string
	l := ledger.New(db, nil)
	for _, s := range []struct {
		who, owner string
		o          ebank.Opening
		mobile     string // registered to receive into the current account
	}{{"alice", alice.passportID, aliceOpening, "13800138000"}, {"bob", bob.passportID, bobOpening, "13900139000"}, {"carol", carol.passportID, carolOpening, ""},
		{"merchant", MerchantOwner, merchantOpening, ""}} {
		accts, err := ebank.OpenCustomerAccounts(ctx, l, s.owner, s.who, s.o)
		if err != nil {
			return "", fmt.Errorf("opening %s's accounts: %w", s.who, err)
		}
		if s.mobile != "" {
			if err := (ebank.Mobiles{DB: db, Ledger: l}).Register(ctx, s.owner, s.mobile, accts[0].Number); err != nil {
				return "", fmt.Errorf("registering %s's mobile number for transfers: %w", s.who, err)
			}
		}
		fmt.Fprintf(out, "Accounts   %-9s", s.who)
		for _, a := range accts {
			if s.who == "alice" && a.Kind == ledger.KindCurrent {
				aliceCurrent = a.Number
			}
			fmt.Fprintf(out, " %s %s (%s yuan)", a.Kind, a.Number, money.Yuan(a.Balance()))
		}
		fmt.Fprintln(out)
	}
	return aliceCurrent, nil
}
