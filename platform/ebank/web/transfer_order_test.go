package web

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/egate-bank/egate/authsvc/intent"
	authorders "github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// orderAuth adds signing orders to fakeAuth, as the transaction API
// answers them (authsvc.TestTransactionOrderGrant tests the real one): an
// order is followed and proved only with the browser binding it was made
// with, and its result buys one grant. The test plays the device by
// setting an order's state.
type orderAuth struct {
	*fakeAuth
	mu     sync.Mutex
	orders map[string]*fakeOrder
	proofs []txclient.ProofRequest
}

type fakeOrder struct {
	hash, browser, factor, state, code string
	collected                          bool
}

func (a *orderAuth) Authorize(ctx context.Context, in intent.Intent) (txclient.Decision, error) {
	d, err := a.fakeAuth.Authorize(ctx, in)
	d.Tools = append(d.Tools, txclient.Tool{Name: "phone", Level: 3}, txclient.Tool{Name: "ushield", Level: 4})
	return d, err
}

func (a *orderAuth) Order(_ context.Context, hash string, r txclient.OrderRequest) (txclient.Order, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !signsByOrder(r.Factor) || len(r.Browser) != 64 {
		return txclient.Order{}, &txclient.APIError{Status: 400, Code: "invalid_request"}
	}
	ref := "ref-" + strconv.Itoa(len(a.orders)+1)
	a.orders[ref] = &fakeOrder{hash: hash, browser: r.Browser, factor: r.Factor, state: "pending"}
	o := txclient.Order{Ref: ref, Factor: r.Factor, Level: 4, Text: "Transfer 10.00 yuan to 6222…0002 from 6222…0001\nChallenge: 0A0B0C0D"}
	if r.Factor == "phone" {
		o.ByQR = true
	} else {
		o.Autostart = "egate://order?ref=" + ref + "&token=tok&server=http%3A%2F%2Fpassport"
	}
	return o, nil
}

func (a *orderAuth) order(hash, ref, browser string) (*fakeOrder, error) {
	o := a.orders[ref]
	if o == nil || o.hash != hash || o.browser != browser {
		return nil, &txclient.APIError{Status: 404, Code: "unknown_order", Message: "no such signing order"}
	}
	return o, nil
}

func (a *orderAuth) CollectOrder(_ context.Context, hash string, r txclient.OrderCollect) (txclient.OrderStatus, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	o, err := a.order(hash, r.Ref, r.Browser)
	if err != nil {
		return txclient.OrderStatus{}, err
	}
	st := txclient.OrderStatus{Ref: r.Ref, State: o.state, Code: o.code, Message: "the service's sentence"}
	if o.factor == "phone" && o.state == "pending" {
		png, err := authorders.QRPNG("EGQ1."+r.Ref+".0.00000000000000000000000000000000", -5)
		if err != nil {
			return st, err
		}
		st.QR = "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
	}
	return st, nil
}

func (a *orderAuth) Proof(ctx context.Context, hash string, r txclient.ProofRequest) (txclient.Grant, error) {
	if r.Order == "" {
		return a.fakeAuth.Proof(ctx, hash, r)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.proofs = append(a.proofs, r)
	o, err := a.order(hash, r.Order, r.Browser)
	switch {
	case err != nil:
		return txclient.Grant{}, err
	case o.state == "pending" || o.state == "user_sign":
		return txclient.Grant{}, &txclient.APIError{Status: 409, Code: "order_pending"}
	case o.state != "complete":
		return txclient.Grant{}, &txclient.APIError{Status: 409, Code: "order_" + o.state}
	case o.collected:
		return txclient.Grant{}, &txclient.APIError{Status: 409, Code: "order_collected"}
	}
	o.collected = true
	return txclient.Grant{Token: "g-" + hash, Intent: hash, Level: 4, Factor: o.factor}, nil
}

func (a *orderAuth) set(ref, state, code string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.orders[ref].state, a.orders[ref].code = state, code
}

var (
	autostartRE = regexp.MustCompile(`id="autostart" href="(egate://order\?[^"]+)"`)
	orderRefRE  = regexp.MustCompile(`name="order" value="([^"]+)"`)
	pollRE      = regexp.MustCompile(`data-poll="([^"]+)"`)
)

// TestTransferByOrder: ebank's confirmation with a tool the customer holds
// is a signing order the page follows: the U-shield's page shows the text
// and the autostart link, the phone's the animated QR, neither a text box;
// only this browser's poll sees the order; a complete order makes the
// transfer once; a refused one starts a new order with the reason; a
// signature tool's confirmation without an order proves nothing.
func TestTransferByOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		oa := &orderAuth{fakeAuth: r.auth, orders: map[string]*fakeOrder{}}
		r.pages.Auth = oa
		form := func(c *client, factor string) url.Values {
			t.Helper()
			_, page := c.do("GET", "/transfer", nil)
			f := url.Values{"key": {hiddenKey.FindStringSubmatch(page)[1]}, "from": {r.alice[0].Number}, "to_kind": {"account"}, "to": {r.bob[0].Number}, "amount": {"10"}, "factor": {factor}}
			if status, page := c.do("POST", "/transfer", f); status != 200 || !strings.Contains(page, `id="factor_`+factor+`"`) {
				t.Fatalf("decision: %d %s", status, page)
			}
			return f
		}
		orderPage := func(c *client, f url.Values) (string, string) {
			t.Helper()
			status, page := c.do("POST", "/transfer/challenge", f)
			m := orderRefRE.FindStringSubmatch(page)
			if status != 200 || m == nil || !strings.Contains(page, `id="tx-text"`) || strings.Contains(page, `name="response"`) || strings.Contains(page, `type="text"`) {
				t.Fatalf("order page: %d %s", status, page)
			}
			return m[1], page
		}
		poll := func(c *client, page string) (int, struct {
			State   string
			Final   bool
			Message string
			QR      string
		}) {
			t.Helper()
			status, body := c.do("GET", strings.ReplaceAll(pollRE.FindStringSubmatch(page)[1], "&amp;", "&"), nil)
			var p struct {
				State   string
				Final   bool
				Message string
				QR      string
			}
			json.Unmarshal([]byte(body), &p)
			return status, p
		}

		t.Run("U-shield: autostart link, followed, done once", func(t *testing.T) {
			alice := r.as(t, "p-alice", "en")
			f := form(alice, "ushield")
			ref, page := orderPage(alice, f)
			if !autostartRE.MatchString(page) || !strings.Contains(page, "Challenge: 0A0B0C0D") {
				t.Fatalf("no autostart link or text: %s", page)
			}
			if status, p := poll(alice, page); status != 200 || p.State != "pending" || p.Final || !strings.Contains(p.Message, "Waiting") {
				t.Fatalf("poll: %d %+v", status, p)
			}
			// Another browser of the same customer follows nothing.
			if status, p := poll(r.as(t, "p-alice", "en"), page); status != 404 || p.State != "unknown" {
				t.Fatalf("another browser's poll: %d %+v", status, p)
			}
			oa.set(ref, "complete", "")
			if _, p := poll(alice, page); !p.Final || p.State != "complete" {
				t.Fatalf("poll after the signature: %+v", p)
			}
			before := r.books(t)
			f.Set("order", ref)
			status, done := alice.do("POST", "/transfer/confirm", f)
			if status != 200 || !strings.Contains(done, "Done: 10.00 yuan") || r.auth.executed != 1 {
				t.Fatalf("confirm: %d %s", status, done)
			}
			if r.books(t) == before {
				t.Fatal("no money moved")
			}
			after := r.books(t)
			if status, again := alice.do("POST", "/transfer/confirm", f); status != 200 || !strings.Contains(again, "already made") || r.books(t) != after {
				t.Fatalf("the confirmation again: %d %s", status, again)
			}
		})
		t.Run("phone: the animated QR, in Chinese", func(t *testing.T) {
			alice := r.as(t, "p-alice", "zh-CN")
			_, page := orderPage(alice, form(alice, "phone"))
			if !strings.Contains(page, `id="qr" src="data:image/png;base64,`) || strings.Contains(page, `id="autostart"`) || !strings.Contains(page, "银行 App") {
				t.Fatalf("phone page: %s", page)
			}
			if _, p := poll(alice, page); !strings.HasPrefix(p.QR, "data:image/png;base64,") || p.Message != "正在等待您的设备。" {
				t.Fatalf("poll: %+v", p)
			}
		})
		for _, tc := range []struct{ name, state, code, want string }{
			{"refused: a reported-lost token", "failed", "revoked", "This token was reported lost or revoked."},
			{"cancelled on the device: wrong PIN", "cancelled", "wrong_pin", "The PIN was wrong."},
			{"expired", "expired", "order_expired", "The confirmation request expired."},
			{"not signed yet", "pending", "", "Waiting for your device."},
		} {
			t.Run(tc.name, func(t *testing.T) {
				alice := r.as(t, "p-alice", "en")
				f := form(alice, "ushield")
				ref, _ := orderPage(alice, f)
				oa.set(ref, tc.state, tc.code)
				before, executed := r.books(t), r.auth.executed
				f.Set("order", ref)
				status, page := alice.do("POST", "/transfer/confirm", f)
				m := orderRefRE.FindStringSubmatch(page)
				if status != 200 || m == nil || m[1] == ref || !strings.Contains(page, tc.want) || !strings.Contains(page, "This is a new confirmation request.") {
					t.Fatalf("after a %s order: %d %s", tc.state, status, page)
				}
				if r.books(t) != before || r.auth.executed != executed {
					t.Fatal("money moved")
				}
			})
		}
		t.Run("a signature tool without an order proves nothing", func(t *testing.T) {
			alice := r.as(t, "p-alice", "en")
			f := form(alice, "ushield")
			f.Set("response", "RUdQMQ==")
			n := len(oa.proofs)
			status, page := alice.do("POST", "/transfer/confirm", f)
			if status != 200 || orderRefRE.FindStringSubmatch(page) == nil || len(oa.proofs) != n {
				t.Fatalf("a pasted signature: %d %s", status, page)
			}
		})
		t.Run("the order page runs its script under a nonce only", func(t *testing.T) {
			alice := r.as(t, "p-alice", "en")
			req, _ := http.NewRequest("POST", r.srv.URL+"/transfer/challenge", strings.NewReader(form(alice, "ushield").Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := alice.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'nonce-") || strings.Contains(csp, "unsafe-eval") {
				t.Fatalf("CSP %q", csp)
			}
		})
	})
}
