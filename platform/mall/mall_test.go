package mall

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// Applications are checked by the admission rules; staff approve only an
// eligible one (flags accepted explicitly), which opens a settlement
// account at ebank, or reject it with a reason.
func TestAdmission(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		ctx := context.Background()
		good := Application{Name: "Dragon Books", Category: "books", Licence: "91110000MA0DRAGEN3", Contact: "13600136000"}
		for _, c := range []struct {
			name       string
			app        Application
			problems   []string
			flags      []string
			acceptRisk bool
			want       string // the code of Approve's refusal, "" approved
		}{
			{"complete", good, nil, nil, false, ""},
			{"no licence", func(a Application) Application { a.Licence = ""; a.Contact = "13600136009"; return a }(good), []string{"licence_missing"}, nil, true, "merchant_ineligible"},
			{"bad contact", func(a Application) Application { a.Contact = "12345"; a.Licence = "91110000MA0DRAGEN4"; return a }(good), []string{"contact_missing"}, nil, true, "merchant_ineligible"},
			{"category not allowed", func(a Application) Application {
				a.Category = "gambling"
				a.Licence = "91110000MA0DRAGEN5"
				a.Contact = "13600136001"
				return a
			}(good), []string{"category_not_allowed"}, nil, true, "merchant_ineligible"},
			{"high risk not accepted", func(a Application) Application {
				a.Category = "electronics"
				a.Licence = "91110000MA0DRAGEN6"
				a.Contact = "13600136002"
				return a
			}(good), nil, []string{"high_risk_category"}, false, "risk_not_accepted"},
			{"high risk accepted", func(a Application) Application {
				a.Category = "jewellery"
				a.Licence = "91110000MA0DRAGEN7"
				a.Contact = "13600136003"
				return a
			}(good), nil, []string{"high_risk_category"}, true, ""},
			{"duplicate licence", func(a Application) Application { a.Contact = "13600136004"; return a }(good), nil, []string{"duplicate_licence"}, false, "risk_not_accepted"},
		} {
			t.Run(c.name, func(t *testing.T) {
				c.app.Owner = "p-" + c.name
				mc, err := r.m.Apply(ctx, c.app)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(mc.Problems, c.problems) || !slices.Equal(mc.Flags, c.flags) || mc.Status != Applied {
					t.Fatalf("problems %v flags %v status %s; want %v %v", mc.Problems, mc.Flags, mc.Status, c.problems, c.flags)
				}
				got, err := r.m.Approve(ctx, Review{Merchant: mc.ID, Reviewer: "staff", AcceptRisk: c.acceptRisk})
				if Code(err) != c.want {
					t.Fatalf("approve: %v, want %q", err, c.want)
				}
				accts, _ := r.l.Accounts(ctx, SettlementOwner(mc.ID))
				if c.want != "" {
					if again, _ := r.m.Merchant(ctx, mc.ID); again.Status != Applied || len(accts) != 0 {
						t.Fatalf("refused approval changed %+v, accounts %v", again, accts)
					}
					return
				}
				if got.Status != Approved || len(accts) != 1 || accts[0].Number != got.Account || accts[0].Kind != ledger.KindCurrent {
					t.Fatalf("approved %+v with accounts %+v", got, accts)
				}
				if _, err := r.m.Approve(ctx, Review{Merchant: mc.ID, Reviewer: "staff"}); Code(err) != "already_reviewed" {
					t.Fatalf("approved twice: %v", err)
				}
			})
		}
		mc, err := r.m.Apply(ctx, Application{Owner: "p-dave", Name: "Dave", Category: "toys", Licence: "91110000MA0DAWE008", Contact: "13500135000"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.m.Reject(ctx, Review{Merchant: mc.ID, Reviewer: "staff"}); Code(err) != "reason_required" {
			t.Fatalf("reject without reason: %v", err)
		}
		if got, err := r.m.Reject(ctx, Review{Merchant: mc.ID, Reviewer: "staff", Note: "licence expired"}); err != nil || got.Status != Rejected || got.Note != "licence expired" {
			t.Fatalf("reject: %+v %v", got, err)
		}
		if _, err := r.m.Apply(ctx, Application{Owner: "p-dave", Name: "Dave 2", Category: "toys", Licence: "91110000MA0DAWE009", Contact: "13500135001"}); Code(err) != "already_applied" {
			t.Fatalf("second application: %v", err)
		}
		if _, err := r.m.AddProduct(ctx, NewProduct{Merchant: mc.ID, Name: "Kite", Price: 100, Stock: 1}); Code(err) != "merchant_not_open" {
			t.Fatalf("product of a rejected merchant: %v", err)
		}
	})
}

// A checkout holds the money at ebank; shipping captures it to the
// merchant; refunds (partial, then the rest) pay it back to the account
// that paid, never more than was paid; the books balance throughout.
func TestCheckoutShipRefund(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		ctx := context.Background()
		o := r.buy(t, "k1", map[string]int64{r.oolong.ID: 2, r.pot.ID: 1})
		if o.Status != Paid || o.Total != 2*88_00+120_50 || o.Hold == "" || len(o.Lines) != 2 {
			t.Fatalf("order %+v", o)
		}
		if posted, avail := r.balance(t, r.alice[0].Number); posted != 1_000_00 || avail != 1_000_00-o.Total {
			t.Fatalf("alice after checkout: posted %d available %d", posted, avail)
		}
		if p, _ := r.m.Product(ctx, r.pot.ID); p.Stock != 0 {
			t.Fatalf("teapot stock %d", p.Stock)
		}
		if c, _ := r.m.Cart(ctx, "p-alice"); len(c.Lines) != 0 {
			t.Fatalf("cart after checkout %+v", c)
		}
		again, err := r.m.Place(ctx, Checkout{Customer: "p-alice", Key: "k1", Payer: r.alice[0].Number, Rev: 1}, "intent-k1")
		if err != nil || !again.Replayed || again.ID != o.ID || r.books(t).Holds != 1 {
			t.Fatalf("the same checkout again: %+v %v", again, err)
		}
		if _, err := r.m.Refund(ctx, RefundRequest{Merchant: r.tea.ID, Order: o.ID, Key: "early", Amount: 1}); Code(err) != "order_state" {
			t.Fatalf("refund before shipping: %v", err)
		}
		if _, err := r.m.Ship(ctx, r.other.ID, o.ID); Code(err) != "not_found" {
			t.Fatalf("another merchant ships: %v", err)
		}
		if o, err = r.m.Ship(ctx, r.tea.ID, o.ID); err != nil || o.Status != Shipped || o.Captured != o.Total {
			t.Fatalf("ship: %+v %v", o, err)
		}
		if posted, _ := r.balance(t, r.tea.Account); posted != o.Total {
			t.Fatalf("merchant has %d", posted)
		}
		f, err := r.m.Refund(ctx, RefundRequest{Merchant: r.tea.ID, Order: o.ID, Key: "r1", Amount: 88_00})
		if err != nil || f.State != "done" || f.Transfer == "" {
			t.Fatalf("partial refund: %+v %v", f, err)
		}
		if f2, err := r.m.Refund(ctx, RefundRequest{Merchant: r.tea.ID, Order: o.ID, Key: "r1", Amount: 88_00}); err != nil || f2.ID != f.ID {
			t.Fatalf("the same refund again: %+v %v", f2, err)
		}
		before := r.books(t)
		if _, err := r.m.Refund(ctx, RefundRequest{Merchant: r.tea.ID, Order: o.ID, Key: "r2", Amount: o.Total - 88_00 + 1}); Code(err) != "refund_above_paid" {
			t.Fatalf("refund above what was paid: %v", err)
		}
		if after := r.books(t); after != before {
			t.Fatalf("a refused refund changed the ledger: %+v → %+v", before, after)
		}
		if _, err := r.m.Refund(ctx, RefundRequest{Merchant: r.tea.ID, Order: o.ID, Key: "r3", Amount: o.Total - 88_00}); err != nil {
			t.Fatalf("refund of the rest: %v", err)
		}
		o, _ = r.m.Order(ctx, o.ID)
		if o.Refunded != o.Total || len(o.Refunds) != 2 || o.Refundable() != 0 {
			t.Fatalf("order after refunds %+v", o)
		}
		if posted, avail := r.balance(t, r.alice[0].Number); posted != 1_000_00 || avail != 1_000_00 {
			t.Fatalf("alice after the whole refund: %d %d", posted, avail)
		}
		if _, err := r.m.Refund(ctx, RefundRequest{Merchant: r.tea.ID, Order: o.ID, Key: "r4", Amount: 1}); Code(err) != "refund_above_paid" {
			t.Fatalf("refund after the whole: %v", err)
		}
		mine, err := r.m.Orders(ctx, "p-alice", "")
		theirs, err2 := r.m.Orders(ctx, "", r.tea.ID)
		none, err3 := r.m.Orders(ctx, "", r.other.ID)
		if err != nil || err2 != nil || err3 != nil || len(mine) != 1 || len(theirs) != 1 || len(none) != 0 {
			t.Fatalf("histories: %d %d %d (%v %v %v)", len(mine), len(theirs), len(none), err, err2, err3)
		}
		r.books(t)
	})
}

// Bad input is refused with its code, and neither the ledger nor the
// stock changes.
func TestCheckoutRefusals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		ctx := context.Background()
		cases := []struct {
			name string
			do   func(t *testing.T) error
			want string
		}{
			{"more than in stock into the cart", func(t *testing.T) error {
				_, err := r.m.AddToCart(ctx, "p-alice", r.pot.ID, 2)
				return err
			}, "out_of_stock"},
			{"another merchant's product", func(t *testing.T) error {
				if _, err := r.m.SetQty(ctx, "p-alice", r.oolong.ID, 1); err != nil {
					t.Fatal(err)
				}
				_, err := r.m.AddToCart(ctx, "p-alice", r.otherProduct.ID, 1)
				return err
			}, "cart_other_merchant"},
			{"cart changed after the intent was authorized", func(t *testing.T) error {
				c, _ := r.m.SetQty(ctx, "p-alice", r.oolong.ID, 1)
				if _, err := r.m.Prepare(ctx, Checkout{Customer: "p-alice", Key: "chg", Payer: r.alice[0].Number, Rev: c.Rev}); err != nil {
					t.Fatal(err)
				}
				if _, err := r.m.SetQty(ctx, "p-alice", r.oolong.ID, 3); err != nil { // in another tab
					t.Fatal(err)
				}
				_, err := r.m.Place(ctx, Checkout{Customer: "p-alice", Key: "chg", Payer: r.alice[0].Number, Rev: c.Rev}, "intent-chg")
				return err
			}, "cart_changed"},
			{"sold out between the cart and the checkout", func(t *testing.T) error {
				if _, err := r.m.SetQty(ctx, "p-alice", r.oolong.ID, 0); err != nil {
					t.Fatal(err)
				}
				c, err := r.m.SetQty(ctx, "p-alice", r.pot.ID, 1)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := r.m.SetQty(ctx, "p-bob", r.pot.ID, 1); err != nil {
					t.Fatal(err)
				}
				cb, _ := r.m.Cart(ctx, "p-bob")
				if _, err := r.m.Place(ctx, Checkout{Customer: "p-bob", Key: "bob", Payer: r.bob[0].Number, Rev: cb.Rev}, "intent-bob"); Code(err) != "" && ledger.Code(err) != "insufficient_funds" {
					t.Fatal(err) // bob has 10 yuan: his order fails and gives the teapot back
				}
				if _, err := r.m.SetQty(ctx, "p-carol", r.pot.ID, 1); err != nil {
					t.Fatal(err)
				}
				// carol buys the last teapot through the table directly (as another replica would)
				if _, err := db.Exec(ctx, `UPDATE mall_products SET stock = stock - 1 WHERE id = ?`, r.pot.ID); err != nil {
					t.Fatal(err)
				}
				defer db.Exec(ctx, `UPDATE mall_products SET stock = stock + 1 WHERE id = ?`, r.pot.ID)
				_, err = r.m.Place(ctx, Checkout{Customer: "p-alice", Key: "sold", Payer: r.alice[0].Number, Rev: c.Rev}, "intent-sold")
				return err
			}, "out_of_stock"},
			{"payer not hers", func(t *testing.T) error {
				c, _ := r.m.Cart(ctx, "p-alice")
				_, err := r.m.Place(ctx, Checkout{Customer: "p-alice", Key: "payer", Payer: r.bob[0].Number, Rev: c.Rev}, "intent-payer")
				return err
			}, "invalid_request"},
			{"refund of another merchant's order", func(t *testing.T) error {
				_, err := r.m.Refund(ctx, RefundRequest{Merchant: r.other.ID, Order: "o-nothing", Key: "x", Amount: 1})
				return err
			}, "not_found"},
			{"zero refund", func(t *testing.T) error {
				_, err := r.m.Refund(ctx, RefundRequest{Merchant: r.tea.ID, Order: "o-nothing", Key: "x", Amount: 0})
				return err
			}, "invalid_request"},
			{"empty cart", func(t *testing.T) error {
				_, err := r.m.Prepare(ctx, Checkout{Customer: "p-nobody", Key: "e", Payer: r.alice[0].Number})
				return err
			}, "cart_empty"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := r.books(t)
				pot, _ := r.m.Product(ctx, r.pot.ID)
				err := c.do(t)
				if Code(err) != c.want {
					t.Fatalf("got %v, want %s", err, c.want)
				}
				if after := r.books(t); after != before {
					t.Fatalf("the ledger changed: %+v → %+v", before, after)
				}
				if p, _ := r.m.Product(ctx, r.pot.ID); p.Stock != pot.Stock {
					t.Fatalf("teapot stock %d → %d", pot.Stock, p.Stock)
				}
			})
		}
	})
}

// A refusal of ebank fails the order and gives the stock back; a cancelled
// order releases its hold and gives its stock back, and cannot be shipped.
func TestFailedAndCancelledOrders(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		ctx := context.Background()
		c, err := r.m.AddToCart(ctx, "p-bob", r.oolong.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		before := r.books(t)
		failed, err := r.m.Place(ctx, Checkout{Customer: "p-bob", Key: "poor", Payer: r.bob[0].Number, Rev: c.Rev}, "intent-poor")
		if ledger.Code(err) != "insufficient_funds" || failed.Status != Failed {
			t.Fatalf("bob with 10 yuan buys 88 yuan of tea: %v", err)
		}
		if after := r.books(t); after != before {
			t.Fatalf("ledger changed %+v → %+v", before, after)
		}
		if p, _ := r.m.Product(ctx, r.oolong.ID); p.Stock != 5 {
			t.Fatalf("stock after the failed order %d", p.Stock)
		}
		orders, _ := r.m.Orders(ctx, "p-bob", "")
		if len(orders) != 1 || orders[0].Status != Failed {
			t.Fatalf("bob's orders %+v", orders)
		}
		o := r.buy(t, "c1", map[string]int64{r.oolong.ID: 3})
		if _, err := r.m.Cancel(ctx, "", "p-bob", o.ID); Code(err) != "not_found" {
			t.Fatalf("bob cancels alice's order: %v", err)
		}
		if o, err = r.m.Cancel(ctx, "", "p-alice", o.ID); err != nil || o.Status != Cancelled {
			t.Fatalf("cancel: %+v %v", o, err)
		}
		if p, _ := r.m.Product(ctx, r.oolong.ID); p.Stock != 5 {
			t.Fatalf("stock after cancel %d", p.Stock)
		}
		if posted, avail := r.balance(t, r.alice[0].Number); avail != posted {
			t.Fatalf("alice's hold not released: %d %d", posted, avail)
		}
		if _, err := r.m.Ship(ctx, r.tea.ID, o.ID); Code(err) != "order_state" {
			t.Fatalf("ship a cancelled order: %v", err)
		}
		if _, err := r.m.Cancel(ctx, r.tea.ID, "", o.ID); Code(err) != "order_state" {
			t.Fatalf("cancel twice: %v", err)
		}
		if rep := r.books(t); rep.Holds != 0 {
			t.Fatalf("holds left %+v", rep)
		}
	})
}

// Two buyers of the last teapot at once: exactly one order is paid, the
// other is refused as out of stock and its grant's money never moves; ten
// refunds of 30% at once on one order: exactly three are paid.
func TestConcurrentCheckoutsAndRefunds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		ctx := context.Background()
		buyers := []string{"p-alice", "p-erin"}
		if _, err := ebank.OpenCustomerAccounts(ctx, r.l, "p-erin", "erin", ebank.Opening{Current: 1_000_00}); err != nil {
			t.Fatal(err)
		}
		cos := make([]Checkout, len(buyers))
		for i, b := range buyers {
			c, err := r.m.SetQty(ctx, b, r.pot.ID, 1)
			if err != nil {
				t.Fatal(err)
			}
			accts, _ := r.m.Accounts(ctx, b)
			cos[i] = Checkout{Customer: b, Key: "last-" + b, Payer: accts[0].Number, Rev: c.Rev}
		}
		errs := make([]error, len(buyers))
		var wg sync.WaitGroup
		for i := range buyers {
			wg.Go(func() { _, errs[i] = r.m.Place(ctx, cos[i], "intent-"+buyers[i]) })
		}
		wg.Wait()
		won, sold := 0, 0
		for _, err := range errs {
			switch Code(err) {
			case "":
				if err != nil {
					t.Fatal(err)
				}
				won++
			case "out_of_stock":
				sold++
			default:
				t.Fatalf("unexpected: %v", err)
			}
		}
		if p, _ := r.m.Product(ctx, r.pot.ID); won != 1 || sold != 1 || p.Stock != 0 || r.books(t).Holds != 1 {
			t.Fatalf("won %d, sold out %d, stock %d, holds %d", won, sold, p.Stock, r.books(t).Holds)
		}

		if _, err := r.m.SetQty(ctx, "p-alice", r.pot.ID, 0); err != nil { // the loser's cart still has it
			t.Fatal(err)
		}
		o := r.buy(t, "many", map[string]int64{r.oolong.ID: 1})
		if _, err := r.m.Ship(ctx, r.tea.ID, o.ID); err != nil {
			t.Fatal(err)
		}
		// The merchant has money enough for all ten: only the mall's count
		// stops the fourth.
		bank, _ := ebank.EnsureBankAccounts(ctx, r.l)
		if _, err := r.l.Transfer(ctx, ledger.Request{Origin: "bank", Key: "float", Debit: bank[ebank.LabelEquity].Number, Credit: r.tea.Account, Amount: 10_000_00}); err != nil {
			t.Fatal(err)
		}
		part := o.Total * 3 / 10
		ok := make([]bool, 10)
		for i := range ok {
			wg.Go(func() {
				_, err := r.m.Refund(ctx, RefundRequest{Merchant: r.tea.ID, Order: o.ID, Key: fmt.Sprintf("k%d", i), Amount: part})
				if err != nil && Code(err) != "refund_above_paid" {
					t.Errorf("refund %d: %v", i, err)
				}
				ok[i] = err == nil
			})
		}
		wg.Wait()
		paid := 0
		for _, v := range ok {
			if v {
				paid++
			}
		}
		o, _ = r.m.Order(ctx, o.ID)
		var back int64
		if err := db.QueryRow(ctx, `SELECT COALESCE(SUM(amount), 0) FROM ebank_transfers WHERE code = 'refund' AND debit_account = ?`, r.tea.Account).Scan(&back); err != nil {
			t.Fatal(err)
		}
		if paid != 3 || o.Refunded != 3*part || back != 3*part {
			t.Fatalf("%d refunds paid, order says %d refunded, ebank moved %d", paid, o.Refunded, back)
		}
	})
}

// A hold that expired before the merchant shipped: shipping is refused
// and cancels the order (stock given back); cancelling an order whose hold
// expired cancels it too; ebank's sweep releases the holds.
func TestExpiredHolds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		r.m.HoldTimeout = time.Minute
		ctx := context.Background()
		ship := r.buy(t, "late-ship", map[string]int64{r.oolong.ID: 2})
		cancel := r.buy(t, "late-cancel", map[string]int64{r.oolong.ID: 1})
		r.skew.Store(int64(2 * time.Minute))
		if _, err := r.m.Ship(ctx, r.tea.ID, ship.ID); Code(err) != "order_state" || ledger.Code(err) != "hold_expired" {
			t.Fatalf("ship after expiry: %v", err)
		}
		if o, _ := r.m.Order(ctx, ship.ID); o.Status != Cancelled || o.Captured != 0 {
			t.Fatalf("order after a refused ship: %+v", o)
		}
		if o, err := r.m.Cancel(ctx, "", "p-alice", cancel.ID); err != nil || o.Status != Cancelled {
			t.Fatalf("cancel after expiry: %+v %v", o, err)
		}
		if p, _ := r.m.Product(ctx, r.oolong.ID); p.Stock != 5 {
			t.Fatalf("stock %d", p.Stock)
		}
		if posted, _ := r.balance(t, r.tea.Account); posted != 0 {
			t.Fatalf("the merchant got %d", posted)
		}
		if n, err := r.l.ExpireHolds(ctx, 10); err != nil || r.books(t).Holds != 0 {
			t.Fatalf("sweep released %d (%v), %d open", n, err, r.books(t).Holds)
		}
	})
}

// faultyBank is ebank's holds API whose next Hold fails as the network
// would: before ebank saw it (lost), or after ebank made it (its answer
// lost).
type faultyBank struct {
	Bank
	mu          sync.Mutex
	lost, after bool
}

func (f *faultyBank) Hold(ctx context.Context, r ebank.HoldRequest) (ledger.Transfer, error) {
	f.mu.Lock()
	lost, after := f.lost, f.after
	f.lost, f.after = false, false
	f.mu.Unlock()
	if lost {
		return ledger.Transfer{}, fmt.Errorf("%w: connection reset (test)", ebank.ErrUnavailable)
	}
	t, err := f.Bank.Hold(ctx, r)
	if after && err == nil {
		return ledger.Transfer{}, fmt.Errorf("%w: answer lost (test)", ebank.ErrUnavailable)
	}
	return t, err
}

// An order whose hold failed on the network stays placing with its stock
// taken; ResumePlacing (or the same checkout again) makes the hold once —
// or finds the one ebank made before the answer was lost.
func TestResumePlacing(t *testing.T) {
	for _, c := range []struct {
		name        string
		lost, after bool
		retry       string // "resume" or "again"
	}{
		{"request lost, resumed", true, false, "resume"},
		{"answer lost, resumed", false, true, "resume"},
		{"answer lost, checkout again", false, true, "again"},
	} {
		t.Run(c.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				r := newRig(t, db)
				ctx := context.Background()
				fb := &faultyBank{Bank: r.m.Bank, lost: c.lost, after: c.after}
				r.m.Bank = fb
				cart, _ := r.m.AddToCart(ctx, "p-alice", r.oolong.ID, 1)
				co := Checkout{Customer: "p-alice", Key: "k", Payer: r.alice[0].Number, Rev: cart.Rev}
				holds := r.books(t).Holds
				if _, err := r.m.Place(ctx, co, "intent-k"); !errors.Is(err, ebank.ErrUnavailable) {
					t.Fatalf("place: %v", err)
				}
				orders, _ := r.m.Orders(ctx, "p-alice", "")
				if len(orders) != 1 || orders[0].Status != Placing {
					t.Fatalf("orders %+v", orders)
				}
				if c.retry == "resume" {
					if n, err := r.m.ResumePlacing(ctx, 0); n != 1 || err != nil {
						t.Fatalf("resume: %d %v", n, err)
					}
				} else if o, err := r.m.Place(ctx, co, "intent-k"); err != nil || o.Status != Paid {
					t.Fatalf("again: %+v %v", o, err)
				}
				o, _ := r.m.Order(ctx, orders[0].ID)
				if o.Status != Paid || o.Hold == "" || r.books(t).Holds != holds+1 {
					t.Fatalf("after the retry %+v, %d holds (was %d)", o, r.books(t).Holds, holds)
				}
				if n, _ := r.m.ResumePlacing(ctx, 0); n != 0 {
					t.Fatalf("resumed %d again", n)
				}
			})
		})
	}
}
