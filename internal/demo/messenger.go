package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/messenger"
)

// carolOpening is carol's money in the demo (fen).
var carolOpening = ebank.Opening{Current: 2_000_00, Savings: 5_000_00}

// registerDemo registers a demo customer on the first start, with a random
// password kept in c.file (owner-only); later starts find them again.
// fresh is true when the customer was registered now.
func registerDemo(ctx context.Context, ps *passport.Service, c customer, nc passport.NewCustomer, word, varDir string) (_ customer, fresh bool, _ error) {
	if _, err := os.Stat(c.file); err == nil {
		cu, err := ps.ByLoginName(ctx, c.name)
		if err != nil {
			return c, false, fmt.Errorf("the demo customer %s: %w (delete %s to start afresh)", c.name, err, varDir)
		}
		c.passportID = cu.PassportID
		return c, false, nil
	}
	nc.LoginName, nc.Password = c.name, "Demo-"+randomHex(6)+"-"+word
	cu, err := ps.Register(ctx, nc)
	if errors.Is(err, passport.ErrLoginNameTaken) {
		// The password file was removed: give the customer a new password.
		if cu, err = ps.ByLoginName(ctx, c.name); err == nil {
			err = ps.ResetPassword(ctx, cu.PassportID, nc.Password)
		}
	}
	c.passportID = cu.PassportID
	if err != nil {
		return c, false, fmt.Errorf("registering the demo customer %s: %w", c.name, err)
	}
	return c, true, os.WriteFile(c.file, []byte(nc.Password+"\n"), 0o600)
}

// demoCarol registers carol (SMS to her mobile, no other tool).
func demoCarol(ctx context.Context, ps *passport.Service, varDir string) (customer, error) {
	c := customer{name: "carol", file: filepath.Join(varDir, "demo-carol-password")}
	c, _, err := registerDemo(ctx, ps, c, passport.NewCustomer{Mobile: "13700137000", ReservedMessage: "green bamboo 42"}, "Lamp", varDir)
	return c, err
}

// seedMessenger gives alice, bob and carol messenger profiles and their
// group chat "Friends" with a first message, once.
func seedMessenger(ctx context.Context, db *store.DB, people ...customer) (string, error) {
	st := &messenger.Store{DB: db}
	var ids []string
	for _, c := range people {
		if err := st.Profile(ctx, c.passportID, c.name); err != nil {
			return "", err
		}
		ids = append(ids, c.passportID)
	}
	g, err := st.GroupOnce(ctx, "demo-friends", ids[0], "Friends 朋友们", ids[1:])
	if err != nil {
		return "", err
	}
	_, _, err = st.Post(ctx, messenger.Message{Conversation: g, Sender: ids[0], Kind: messenger.KindText, Ref: "seed:hello",
		Body: "Hotpot on Friday? I'll pay and open an AA collection. 周五吃火锅？我先付，发起 AA 收款。"})
	return g, err
}

// printMessenger tells how to try each of the messenger's features.
func printMessenger(out io.Writer, url, passport string, carol customer) {
	fmt.Fprintf(out, "  messenger %s/chats: the group \"Friends\" of alice, bob and carol (carol's password in %s)\n", url, carol.file)
	fmt.Fprintf(out, "           friend transfer: in the group or a chat, \"Send money\"; the SMS code is at %s/sim/sms/\n", passport)
	fmt.Fprintf(out, "           AA collection: in the group, \"Open an AA collection\"; bob and carol pay their shares from their own logins\n")
	fmt.Fprintf(out, "           receive by QR: carol at %s/receive makes a QR; save it as an image, then\n", url)
	fmt.Fprintf(out, "             egate sim phone pay-qr IMAGE   prints the pay page for alice to open, confirm and prove\n")
	fmt.Fprintf(out, "           alerts %s/alerts, customer service %s/service (staff: egate admin messenger service list|reply)\n", url, url)
}
