package demo

import (
	"context"
	"fmt"
	"io"

	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	"github.com/egate-bank/egate/platform/mall"
)

// DemoMerchant is the demo's mall merchant: its settlement account is the
// current account of MerchantOwner (seedAccounts opens it), and bob runs
// its merchant centre.
const DemoMerchant = "mall"

// demoProducts are what the demo merchant sells: one cheap enough for an
// SMS code (level 2), one that needs the token (level 3).
var demoProducts = []mall.NewProduct{
	{Name: "西湖龙井 250g / Longjing tea 250g", Description: "Spring 2026 harvest", Price: 168_00, Stock: 20},
	{Name: "紫砂壶 / Yixing clay teapot", Description: "Hand-made, 300 ml", Price: 1_280_00, Stock: 5},
	{Name: "茶杯四件套 / Four tea cups", Description: "Celadon", Price: 98_50, Stock: 50},
}

// seedMall makes the demo merchant (approved, no review) run by bob, with
// its products the first time; rerun it changes nothing.
func seedMall(ctx context.Context, db *store.DB, out io.Writer, bob customer) error {
	l := ledger.New(db, nil)
	m := &mall.Mall{DB: db, Ledger: l}
	accts, err := l.Accounts(ctx, MerchantOwner)
	if err != nil || len(accts) == 0 {
		return fmt.Errorf("the demo merchant's account: %v", err)
	}
	mc, err := m.Seed(ctx, mall.Merchant{ID: DemoMerchant, Owner: bob.passportID, Name: "Lantern Tea House 灯笼茶庄", Category: "tea",
		Licence: "91330100MA2DEMO001", Contact: "13900139000", Account: accts[0].Number})
	if err != nil {
		return fmt.Errorf("seeding the mall's merchant: %w", err)
	}
	have, err := m.Products(ctx, mc.ID)
	if err != nil {
		return err
	}
	if len(have) == 0 {
		for _, p := range demoProducts {
			p.Merchant = mc.ID
			if _, err := m.AddProduct(ctx, p); err != nil {
				return fmt.Errorf("seeding the mall's products: %w", err)
			}
		}
	}
	fmt.Fprintf(out, "Mall       merchant %q (run by bob, settlement account %s), %d products from %s yuan\n", mc.Name, mc.Account, len(demoProducts), money.Yuan(demoProducts[2].Price))
	return nil
}

// printMall tells how to try the mall.
func printMall(out io.Writer, mallURL string) {
	fmt.Fprintf(out, "  mall     %s/shop: log in at ebank first and the mall does not ask again; add to cart, check out from alice's\n", mallURL)
	fmt.Fprintf(out, "           account (the teapot, 1,280 yuan, needs the token; the tea an SMS code), %s/orders to cancel;\n", mallURL)
	fmt.Fprintf(out, "           as bob, %s/merchant ships (the hold is captured) and refunds; staff: egate admin mall merchant list\n", mallURL)
}
