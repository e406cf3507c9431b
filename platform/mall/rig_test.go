package mall

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// rig is a mall on a migrated database, paying through ebank's real holds
// API (ebank.API behind the back-end client registry, over HTTP) on the same
// database: alice and bob with money, and an approved merchant "tea" run by
// bob with two products.
type rig struct {
	db           *store.DB
	l            *ledger.Ledger
	m            *Mall
	alice, bob   []ledger.Account
	tea          Merchant
	oolong, pot  Product
	other        Merchant // another approved merchant, one product
	otherProduct Product
	skew         atomic.Int64 // how far ahead of time.Now the ledger's clock is, in ns
}

const rigSecret = "mall-test-secret-0123456789abcdef"

func newRig(t testing.TB, db *store.DB) *rig {
	t.Helper()
	ctx := context.Background()
	r := &rig{db: db}
	l := ledger.New(db, func() time.Time { return time.Now().Add(time.Duration(r.skew.Load())) })
	r.l = l
	if _, err := ebank.EnsureBankAccounts(ctx, l); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(rigSecret))
	reg, err := backend.New([]backend.ClientConfig{{ID: "mall", SecretSHA256: hex.EncodeToString(sum[:]), Scopes: []string{backend.ScopeEbankHolds}}})
	if err != nil {
		t.Fatal(err)
	}
	api := &ebank.API{Holds: &ebank.Holds{Ledger: l, Grants: ebank.RequireGrant{}, DefaultTimeout: time.Hour}}
	srv := httptest.NewServer(reg.Require(backend.ScopeEbankHolds, api.Handler()))
	t.Cleanup(srv.Close)
	r.m = &Mall{DB: db, Ledger: l, Bank: &ebank.Client{BaseURL: srv.URL, ID: "mall", Secret: rigSecret}}
	if r.alice, err = ebank.OpenCustomerAccounts(ctx, l, "p-alice", "alice", ebank.Opening{Current: 1_000_00, Savings: 50_00}); err != nil {
		t.Fatal(err)
	}
	if r.bob, err = ebank.OpenCustomerAccounts(ctx, l, "p-bob", "bob", ebank.Opening{Current: 10_00}); err != nil {
		t.Fatal(err)
	}
	r.tea = r.admit(t, Application{Owner: "p-bob", Name: "Lantern Tea", Category: "tea", Licence: "91310000MA1FL0TE01", Contact: "13900139000"})
	r.other = r.admit(t, Application{Owner: "p-carol", Name: "Carol Books", Category: "books", Licence: "91310000MA1FL0BK02", Contact: "13700137000"})
	r.oolong = r.product(t, r.tea.ID, "Oolong 250g", 88_00, 5)
	r.pot = r.product(t, r.tea.ID, "Clay teapot", 120_50, 1)
	r.otherProduct = r.product(t, r.other.ID, "Poems", 30_00, 10)
	return r
}

func (r *rig) admit(t testing.TB, a Application) Merchant {
	t.Helper()
	mc, err := r.m.Apply(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if mc, err = r.m.Approve(context.Background(), Review{Merchant: mc.ID, Reviewer: "staff"}); err != nil {
		t.Fatal(err)
	}
	return mc
}

func (r *rig) product(t testing.TB, merchant, name string, price, stock int64) Product {
	t.Helper()
	p, err := r.m.AddProduct(context.Background(), NewProduct{Merchant: merchant, Name: name, Price: price, Stock: stock})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// books is the ledger's state, to compare before and after a refusal.
func (r *rig) books(t testing.TB) ledger.Report {
	t.Helper()
	rep, err := ledger.Check(context.Background(), r.db)
	if err != nil {
		t.Fatalf("ledger check: %v", err)
	}
	return rep
}

func (r *rig) balance(t testing.TB, number string) (posted, available int64) {
	t.Helper()
	a, err := r.l.Account(context.Background(), number)
	if err != nil {
		t.Fatal(err)
	}
	return a.Balance(), a.Available()
}

// buy puts products in alice's cart and places the order with a grant.
func (r *rig) buy(t testing.TB, key string, lines map[string]int64) Order {
	t.Helper()
	ctx := context.Background()
	var c Cart
	var err error
	for p, q := range lines {
		if c, err = r.m.AddToCart(ctx, "p-alice", p, q); err != nil {
			t.Fatal(err)
		}
	}
	o, err := r.m.Place(ctx, Checkout{Customer: "p-alice", Key: key, Payer: r.alice[0].Number, Rev: c.Rev}, "intent-"+key)
	if err != nil {
		t.Fatal(err)
	}
	return o
}
