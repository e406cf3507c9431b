package mall

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/txauth"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// fakeAuth stands in for the transaction service in these unit tests of
// the pages: level 2 (SMS) up to 1,000 yuan, else 3 (the token); the code
// is 123456. The real path is internal/demo's browser journey.
type fakeAuth struct {
	mu        sync.Mutex
	used      map[string]bool
	executed  int
	cancelled []string
	intents   map[string]intent.Intent // authorized, by hash
}

func (f *fakeAuth) Authorize(_ context.Context, in intent.Intent) (txclient.Decision, error) {
	if err := in.Validate(); err != nil {
		return txclient.Decision{}, &txclient.APIError{Status: 400, Code: "invalid_intent", Message: err.Error()}
	}
	level := 2
	if in.Amount > 1_000_00 {
		level = 3
	}
	f.mu.Lock()
	if f.intents == nil {
		f.intents = map[string]intent.Intent{}
	}
	f.intents[in.HashHex()] = in
	f.mu.Unlock()
	return txclient.Decision{Intent: in.HashHex(), Decision: txclient.Allow, Level: level, Tools: []txclient.Tool{{Name: "sms", Level: 2}, {Name: "otp", Level: 3}}}, nil
}

func (f *fakeAuth) Challenge(_ context.Context, hash string, r txclient.ChallengeRequest) (txclient.Challenge, error) {
	f.mu.Lock()
	in, ok := f.intents[hash]
	f.mu.Unlock()
	if !ok {
		return txclient.Challenge{}, &txclient.APIError{Status: 404, Code: "unknown_intent"}
	}
	return txclient.Challenge{ID: "c-" + hash, Factor: r.Factor, Prompt: "the code", Text: txauth.Text(in)}, nil
}

func (f *fakeAuth) Proof(_ context.Context, hash string, r txclient.ProofRequest) (txclient.Grant, error) {
	if r.ChallengeID != "c-"+hash || r.Response != "123456" || r.Intent == nil || r.Intent.HashHex() != hash {
		return txclient.Grant{}, &txclient.APIError{Status: 403, Code: "proof_failed"}
	}
	return txclient.Grant{Token: "g-" + hash, Intent: hash}, nil
}

func (f *fakeAuth) Execute(_ context.Context, grant string, in intent.Intent) (txclient.Executed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if grant != "g-"+in.HashHex() || f.used[grant] {
		return txclient.Executed{}, &txclient.APIError{Status: 409, Code: "grant_used"}
	}
	if f.used == nil {
		f.used = map[string]bool{}
	}
	f.used[grant] = true
	f.executed++
	return txclient.Executed{Intent: in.HashHex(), State: "executed"}, nil
}

func (f *fakeAuth) Cancel(_ context.Context, hash, _ string) (txclient.Cancelled, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = append(f.cancelled, hash)
	return txclient.Cancelled{Intent: hash}, nil
}

// web is the rig's pages on a test server; the test_who cookie says who
// is logged in and at which level ("p-alice:2").
type web struct {
	*rig
	auth  *fakeAuth
	pages *Pages
	srv   *httptest.Server
	// faults are what the pages gave OnError; a test that causes one
	// expects it, any other fails the test.
	mu     sync.Mutex
	faults []error
	expect int
}

func newWeb(t *testing.T, db *store.DB) *web {
	w := &web{rig: newRig(t, db), auth: &fakeAuth{}}
	p := &Pages{Mall: w.m, Auth: w.auth, Customer: func(r *http.Request) (Customer, bool) {
		c, err := r.Cookie("test_who")
		if err != nil {
			return Customer{}, false
		}
		id, lv, _ := strings.Cut(c.Value, ":")
		n, _ := strconv.Atoi(lv)
		return Customer{ID: id, Name: strings.TrimPrefix(id, "p-"), Level: n}, true
	}, OnError: func(_ *http.Request, err error) { w.mu.Lock(); w.faults = append(w.faults, err); w.mu.Unlock() }}
	w.pages = p
	w.srv = httptest.NewServer(p.Handler())
	t.Cleanup(w.srv.Close)
	t.Cleanup(func() {
		if len(w.faults) != w.expect {
			t.Errorf("the pages reported %v, want %d faults", w.faults, w.expect)
		}
	})
	return w
}

// browser is a client logged in as who at level, speaking lang.
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
}

func (w *web) browser(t *testing.T, who string, level int, lang string) *browser {
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(w.srv.URL)
	jar.SetCookies(u, []*http.Cookie{{Name: "test_who", Value: who + ":" + strconv.Itoa(level)}, {Name: "egate_lang", Value: lang}})
	return &browser{t: t, c: &http.Client{Jar: jar}, base: w.srv.URL}
}

func (b *browser) read(resp *http.Response, err error) (int, string) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	s := string(body)
	if strings.HasPrefix(s, "<!doctype html>") && !strings.HasSuffix(strings.TrimSpace(s), "</html>") {
		b.t.Errorf("%s: the page stops short (a template failed):\n%s", resp.Request.URL.Path, s)
	}
	if strings.Contains(s, "%!") {
		b.t.Errorf("%s: a message has the wrong arguments:\n%s", resp.Request.URL.Path, s)
	}
	if k := regexp.MustCompile(`mall\.[a-z_.]+[a-z]`).FindString(s); k != "" {
		b.t.Errorf("%s: the page shows the message key %q (missing from the catalogue)", resp.Request.URL.Path, k)
	}
	return resp.StatusCode, s
}

func (b *browser) get(path string) (int, string) { b.t.Helper(); return b.read(b.c.Get(b.base + path)) }
func (b *browser) post(path string, f url.Values) (int, string) {
	b.t.Helper()
	return b.read(b.c.PostForm(b.base+path, f))
}

func field(t *testing.T, page, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no field %s in:\n%s", name, page)
	}
	return m[1]
}

func errCode(page string) string {
	m := regexp.MustCompile(`data-code="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return m[1]
}

// The customer's journey in both languages: into the cart, checkout,
// the tool the amount needs, the code; the order is paid (held). Then the
// merchant ships and refunds part; the customer's order shows the refund.
func TestCheckoutPages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWeb(t, db)
		for _, c := range []struct {
			lang, paid, shipped string
			qty                 int
			txLang, txText      string // the intent's language, and its text as the customer confirms it
		}{
			{"zh", "付款成功", "已发货", 1, "zh-CN", "向 %[1]s 付款 %[2]s 元（付款账户 %[3]s）"},
			{"en", "Paid:", "Shipped", 2, "en", "Pay %[2]s yuan to %[1]s from %[3]s"},
		} {
			t.Run(c.lang, func(t *testing.T) {
				alice := w.browser(t, "p-alice", 1, c.lang)
				if code, page := alice.get("/shop"); code != 200 || !strings.Contains(page, "Oolong 250g") {
					t.Fatalf("shop %d:\n%s", code, page)
				}
				if code, _ := alice.post("/cart/add", url.Values{"product": {w.oolong.ID}, "qty": {strconv.Itoa(c.qty)}}); code != 200 {
					t.Fatalf("add: %d", code)
				}
				_, form := alice.get("/checkout")
				if got := field(t, form, "txlang"); got != c.txLang {
					t.Fatalf("the checkout's language %q, want %q", got, c.txLang)
				}
				f := url.Values{"key": {field(t, form, "key")}, "rev": {field(t, form, "rev")}, "payer": {w.alice[0].Number}, "txlang": {c.txLang}}
				code, page := alice.post("/checkout", f)
				if code != 200 || !strings.Contains(page, `id="factor_sms"`) {
					t.Fatalf("decision %d:\n%s", code, page)
				}
				f.Set("factor", "sms")
				_, page = alice.post("/checkout/challenge", f)
				w.auth.mu.Lock()
				var in intent.Intent
				for _, x := range w.auth.intents {
					if x.IdempotencyKey == f.Get("key") {
						in = x
					}
				}
				w.auth.mu.Unlock()
				if in.Lang != c.txLang {
					t.Fatalf("the intent's language %q, want %q", in.Lang, c.txLang)
				}
				text := fmt.Sprintf(c.txText, txauth.Mask(in.Payee), money.Yuan(in.Amount), txauth.Mask(w.alice[0].Number))
				if !strings.Contains(page, `id="tx-text">`+text+`</p>`) {
					t.Errorf("the challenge page does not show %q:\n%s", text, page)
				}
				f.Set("challenge_id", field(t, page, "challenge_id"))
				f.Set("response", "000000")
				before := w.books(t)
				if code, page := alice.post("/checkout/confirm", f); code != 422 || errCode(page) != "proof_failed" || w.books(t) != before {
					t.Fatalf("wrong code: %d %s", code, errCode(page))
				}
				f.Set("response", "123456")
				code, page = alice.post("/checkout/confirm", f)
				if code != 200 || !strings.Contains(page, c.paid) || !strings.Contains(page, `data-status="paid"`) {
					t.Fatalf("confirm %d:\n%s", code, page)
				}
				if code, page := alice.post("/checkout/confirm", f); code != 200 || !strings.Contains(page, `data-status="paid"`) || w.books(t).Holds != before.Holds+1 {
					t.Fatalf("submitted twice: %d, %d holds\n%s", code, w.books(t).Holds, page)
				}
				orders, _ := w.m.Orders(context.Background(), "p-alice", "")
				o := orders[0]
				bob := w.browser(t, "p-bob", 1, c.lang)
				if code, page := bob.post("/merchant/orders/"+o.ID+"/ship", nil); code != 403 || errCode(page) != "step_up_required" {
					t.Fatalf("ship at level 1: %d %s", code, errCode(page))
				}
				bob = w.browser(t, "p-bob", 2, c.lang)
				if code, page := bob.post("/merchant/orders/"+o.ID+"/ship", nil); code != 200 || !strings.Contains(page, c.shipped) {
					t.Fatalf("ship %d:\n%s", code, page)
				}
				_, page = bob.get("/merchant")
				key := regexp.MustCompile(`action="/merchant/orders/` + o.ID + `/refund" class="refund"><input type="hidden" name="key" value="([^"]+)"`).FindStringSubmatch(page)
				if key == nil {
					t.Fatalf("no refund form:\n%s", page)
				}
				before = w.books(t)
				if code, page := bob.post("/merchant/orders/"+o.ID+"/refund", url.Values{"key": {key[1]}, "amount": {"1000"}}); code != 422 || errCode(page) != "refund_above_paid" || w.books(t) != before {
					t.Fatalf("refund above: %d %s", code, errCode(page))
				}
				if code, _ := bob.post("/merchant/orders/"+o.ID+"/refund", url.Values{"key": {key[1]}, "amount": {"10.50"}}); code != 200 {
					t.Fatalf("refund: %d", code)
				}
				if _, page := alice.get("/orders/" + o.ID); !strings.Contains(page, "10.50") || !strings.Contains(page, `data-status="shipped"`) {
					t.Fatalf("alice's order:\n%s", page)
				}
				if code, _ := bob.get("/orders/" + o.ID); code != 404 {
					t.Fatalf("bob reads alice's order: %d", code)
				}
				_, list := alice.get("/orders")
				if !strings.Contains(list, o.ID) {
					t.Fatalf("history:\n%s", list)
				}
			})
		}
	})
}

// The cart changed after the intent was authorized: the confirmation is
// refused before any proof or money, with a sentence, and the ledger is
// unchanged; so is an order for more than the stock.
func TestCheckoutPageRefusals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWeb(t, db)
		alice := w.browser(t, "p-alice", 1, "en")
		alice.post("/cart/add", url.Values{"product": {w.oolong.ID}, "qty": {"1"}})
		_, form := alice.get("/checkout")
		f := url.Values{"key": {field(t, form, "key")}, "rev": {field(t, form, "rev")}, "payer": {w.alice[0].Number}, "factor": {"sms"}}
		alice.post("/checkout", f)
		_, page := alice.post("/checkout/challenge", f)
		f.Set("challenge_id", field(t, page, "challenge_id"))
		f.Set("response", "123456")
		alice.post("/cart/set", url.Values{"product": {w.oolong.ID}, "qty": {"2"}}) // another tab
		before := w.books(t)
		code, page := alice.post("/checkout/confirm", f)
		if code != 409 || errCode(page) != "cart_changed" || !strings.Contains(page, "Your cart changed after the payment was authorized") {
			t.Fatalf("cart changed: %d %s\n%s", code, errCode(page), page)
		}
		if w.books(t) != before || w.auth.executed != 0 {
			t.Fatalf("the ledger or the grant moved: %+v, %d executed", w.books(t), w.auth.executed)
		}
		if code, page := alice.post("/cart/add", url.Values{"product": {w.pot.ID}, "qty": {"1"}}); code != 200 {
			t.Fatalf("teapot: %d %s", code, errCode(page))
		}
		if code, page := alice.post("/cart/set", url.Values{"product": {w.pot.ID}, "qty": {"2"}}); code != 409 || errCode(page) != "out_of_stock" || !strings.Contains(page, "Not enough in stock") {
			t.Fatalf("out of stock: %d %s", code, errCode(page))
		}
		if code, page := alice.post("/cart/add", url.Values{"product": {w.otherProduct.ID}, "qty": {"1"}}); code != 409 || errCode(page) != "cart_other_merchant" {
			t.Fatalf("another merchant: %d %s", code, errCode(page))
		}
		if code, page := alice.post("/cart/set", url.Values{"product": {w.pot.ID}, "qty": {"x"}}); code != 400 || errCode(page) != "invalid_request" {
			t.Fatalf("bad quantity: %d %s", code, errCode(page))
		}
		if w.books(t) != before {
			t.Fatal("the ledger moved")
		}
		// ebank does not answer the hold: the page says the payment is
		// being completed, the order keeps its stock, the same form again
		// completes it.
		alice.post("/cart/set", url.Values{"product": {w.pot.ID}, "qty": {"0"}})
		_, form = alice.get("/checkout")
		f = url.Values{"key": {field(t, form, "key")}, "rev": {field(t, form, "rev")}, "payer": {w.alice[0].Number}, "factor": {"sms"}}
		_, page = alice.post("/checkout/challenge", f)
		f.Set("challenge_id", field(t, page, "challenge_id"))
		f.Set("response", "123456")
		w.m.Bank = &faultyBank{Bank: w.m.Bank, lost: true}
		w.expect = 1
		if code, page := alice.post("/checkout/confirm", f); code != 503 || errCode(page) != "placing" || !strings.Contains(page, `data-status="placing"`) {
			t.Fatalf("hold lost: %d %s\n%s", code, errCode(page), page)
		}
		if code, page := alice.post("/checkout/confirm", f); code != 200 || !strings.Contains(page, `data-status="paid"`) || w.books(t).Holds != before.Holds+1 {
			t.Fatalf("the same form again: %d %s", code, errCode(page))
		}
	})
}

// The merchant centre: an application through the page (what the rules
// refuse is listed), the review's outcome, products added at level 2 (a
// bad price refused), and a customer cancelling a paid order on its page.
func TestMerchantPages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWeb(t, db)
		ctx := context.Background()
		for _, lang := range []string{"zh", "en"} {
			dave := w.browser(t, "p-dave-"+lang, 2, lang)
			if code, page := dave.get("/merchant"); code != 200 || !strings.Contains(page, `id="apply"`) {
				t.Fatalf("apply form %d:\n%s", code, page)
			}
			code, page := dave.post("/merchant/apply", url.Values{"name": {"Dave's kites"}, "category": {"toys"}, "licence": {"123"}, "contact": {"1390000000" + map[string]string{"zh": "1", "en": "2"}[lang]}})
			if code != 200 || !strings.Contains(page, `data-status="applied"`) || !strings.Contains(page, `id="problems"`) {
				t.Fatalf("application with a bad licence %d:\n%s", code, page)
			}
			if code, page := dave.post("/merchant/apply", url.Values{"name": {"again"}, "category": {"toys"}}); code != 409 || errCode(page) != "already_applied" {
				t.Fatalf("second application: %d %s", code, errCode(page))
			}
		}
		erin := w.browser(t, "p-erin", 2, "en")
		erin.post("/merchant/apply", url.Values{"name": {"Erin's books"}, "category": {"books"}, "licence": {"91110000MA0ERXN005"}, "contact": {"13900000009"}})
		if code, page := erin.post("/merchant/products", url.Values{"name": {"Atlas"}, "price": {"45.50"}, "stock": {"3"}}); code != 403 || errCode(page) != "not_merchant" {
			t.Fatalf("product before approval: %d %s", code, errCode(page))
		}
		mc, _, _ := w.m.MerchantOf(ctx, "p-erin")
		if _, err := w.m.Approve(ctx, Review{Merchant: mc.ID, Reviewer: "staff"}); err != nil {
			t.Fatal(err)
		}
		if _, page := erin.get("/merchant"); !strings.Contains(page, `id="settlement"`) {
			t.Fatalf("approved merchant's page:\n%s", page)
		}
		if code, page := erin.post("/merchant/products", url.Values{"name": {"Atlas"}, "price": {"45.505"}, "stock": {"3"}}); code != 400 || errCode(page) != "invalid_request" || !strings.Contains(page, `value="45.505"`) {
			t.Fatalf("bad price: %d %s", code, errCode(page))
		}
		if code, page := erin.post("/merchant/products", url.Values{"name": {"Atlas"}, "price": {"45.50"}, "stock": {"3"}}); code != 200 || !strings.Contains(page, "Added: Atlas") {
			t.Fatalf("add product: %d\n%s", code, page)
		}
		{
			low := w.browser(t, "p-erin", 1, "en")
			if code, page := low.post("/merchant/products", url.Values{"name": {"Globe"}, "price": {"1"}, "stock": {"1"}}); code != 403 || errCode(page) != "step_up_required" {
				t.Fatalf("product at level 1: %d %s", code, errCode(page))
			}
		}
		alice := w.browser(t, "p-alice", 1, "en")
		if _, page := alice.get("/shop"); !strings.Contains(page, "Atlas") || !strings.Contains(page, "45.50") {
			t.Fatalf("the new product is not in the shop:\n%s", page)
		}
		o := w.buy(t, "to-cancel", map[string]int64{w.oolong.ID: 2})
		if code, _ := w.browser(t, "p-bob", 2, "en").post("/orders/"+o.ID+"/cancel", nil); code != 404 {
			t.Fatalf("bob cancels alice's order: %d", code)
		}
		if code, page := alice.post("/orders/"+o.ID+"/cancel", nil); code != 200 || !strings.Contains(page, `data-status="cancelled"`) {
			t.Fatalf("cancel: %d\n%s", code, page)
		}
		if code, page := alice.post("/orders/"+o.ID+"/cancel", nil); code != 409 || errCode(page) != "order_state" {
			t.Fatalf("cancel twice: %d %s", code, errCode(page))
		}
		if p, _ := w.m.Product(ctx, w.oolong.ID); p.Stock != 5 || w.books(t).Holds != 0 {
			t.Fatalf("after cancel: stock %d, holds %d", p.Stock, w.books(t).Holds)
		}
	})
}

// orderAuth adds signing orders to fakeAuth as the transaction API answers
// them (authsvc's TestTransactionOrderGrant tests the real one): followed
// and proved only by the browser it was made for; the test plays the
// device by setting the order's state.
type orderAuth struct {
	*fakeAuth
	mu     sync.Mutex
	orders map[string]*fakeOrder
}

type fakeOrder struct{ hash, browser, factor, state string }

func (a *orderAuth) Authorize(ctx context.Context, in intent.Intent) (txclient.Decision, error) {
	d, err := a.fakeAuth.Authorize(ctx, in)
	d.Tools = append(d.Tools, txclient.Tool{Name: "phone", Level: 3}, txclient.Tool{Name: "ushield", Level: 4})
	return d, err
}

func (a *orderAuth) Order(_ context.Context, hash string, r txclient.OrderRequest) (txclient.Order, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ref := "ref-" + strconv.Itoa(len(a.orders)+1)
	a.orders[ref] = &fakeOrder{hash: hash, browser: r.Browser, factor: r.Factor, state: "pending"}
	o := txclient.Order{Ref: ref, Factor: r.Factor, Text: "Pay 88.00 yuan to 6299…\nChallenge: 0A0B0C0D"}
	if r.Factor == "phone" {
		o.ByQR = true
	} else {
		o.Autostart = "egate://order?ref=" + ref
	}
	return o, nil
}

func (a *orderAuth) CollectOrder(_ context.Context, hash string, r txclient.OrderCollect) (txclient.OrderStatus, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	o := a.orders[r.Ref]
	if o == nil || o.hash != hash || o.browser != r.Browser {
		return txclient.OrderStatus{}, &txclient.APIError{Status: 404, Code: "unknown_order"}
	}
	st := txclient.OrderStatus{Ref: r.Ref, State: o.state}
	if o.factor == "phone" && o.state == "pending" {
		st.QR = "data:image/png;base64,iVBORw0KGgo="
	}
	return st, nil
}

func (a *orderAuth) Proof(ctx context.Context, hash string, r txclient.ProofRequest) (txclient.Grant, error) {
	if r.Order == "" {
		return a.fakeAuth.Proof(ctx, hash, r)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	o := a.orders[r.Order]
	switch {
	case o == nil || o.hash != hash || o.browser != r.Browser:
		return txclient.Grant{}, &txclient.APIError{Status: 404, Code: "unknown_order"}
	case o.state != "complete":
		return txclient.Grant{}, &txclient.APIError{Status: 409, Code: "order_" + o.state}
	}
	o.state = "used"
	return txclient.Grant{Token: "g-" + hash, Intent: hash}, nil
}

// A payment confirmed with a tool the customer holds goes through a
// signing order on the mall's page, as on ebank's transfer page: the text
// and the autostart link (U-shield) or the QR (phone app), no code box;
// the poll answers only this browser; confirming before the device signed
// starts a new order; once signed, the order is paid.
func TestCheckoutByOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWeb(t, db)
		oa := &orderAuth{fakeAuth: w.auth, orders: map[string]*fakeOrder{}}
		w.pages.Auth = oa
		for _, c := range []struct{ factor, shows string }{{"ushield", `id="autostart" href="egate://order?ref=`}, {"phone", `id="qr" src="data:image/png;base64,`}} {
			t.Run(c.factor, func(t *testing.T) {
				alice := w.browser(t, "p-alice", 1, "en")
				alice.post("/cart/add", url.Values{"product": {w.oolong.ID}, "qty": {"1"}})
				_, form := alice.get("/checkout")
				f := url.Values{"key": {field(t, form, "key")}, "rev": {field(t, form, "rev")}, "payer": {w.alice[0].Number}}
				if _, page := alice.post("/checkout", f); !strings.Contains(page, `id="factor_`+c.factor+`"`) {
					t.Fatalf("no %s among the tools:\n%s", c.factor, page)
				}
				f.Set("factor", c.factor)
				code, page := alice.post("/checkout/challenge", f)
				if code != 200 || !strings.Contains(page, c.shows) || !strings.Contains(page, "Challenge: 0A0B0C0D") || strings.Contains(page, `name="response"`) {
					t.Fatalf("order page %d:\n%s", code, page)
				}
				ref := field(t, page, "order")
				pollURL := strings.ReplaceAll(regexp.MustCompile(`data-poll="([^"]+)"`).FindStringSubmatch(page)[1], "&amp;", "&")
				if code, body := alice.get(pollURL); code != 200 || !strings.Contains(body, `"state":"pending"`) || !strings.Contains(body, "Waiting") {
					t.Fatalf("poll: %d %s", code, body)
				}
				if code, _ := w.browser(t, "p-alice", 1, "en").get(pollURL); code != 404 {
					t.Fatalf("another browser polls: %d", code)
				}
				f.Set("order", ref)
				before := w.books(t)
				code, page = alice.post("/checkout/confirm", f)
				if code != 200 || !strings.Contains(page, "This is a new confirmation request") || field(t, page, "order") == ref || w.books(t) != before {
					t.Fatalf("confirm before signing: %d\n%s", code, page)
				}
				ref = field(t, page, "order")
				oa.mu.Lock()
				oa.orders[ref].state = "complete"
				oa.mu.Unlock()
				f.Set("order", ref)
				if code, page := alice.post("/checkout/confirm", f); code != 200 || !strings.Contains(page, `data-status="paid"`) {
					t.Fatalf("confirm: %d\n%s", code, page)
				}
			})
		}
	})
}
