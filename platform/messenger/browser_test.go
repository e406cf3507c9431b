package messenger

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/platform"
	simphone "github.com/egate-bank/egate/simulators/phone"
)

// person is one customer's browser context.
type person struct {
	t     *testing.T
	name  string
	lang  string
	ctx   context.Context
	shots string
	n     int
}

func tab(t *testing.T, browser context.Context, base, name, lang, shots string) *person {
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelT)
	p := &person{t: t, name: name, lang: lang, ctx: ctx, shots: shots}
	p.do("log in", chromedp.Navigate(base+"/as?who="+name+"&lang="+lang), chromedp.WaitVisible(chromedp.ID("nav-chats")))
	return p
}

func (p *person) do(step string, acts ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, acts...); err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, step, err)
	}
}

func (p *person) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("%s: text of %s: %v", p.name, sel, err)
	}
	return strings.TrimSpace(s)
}

func (p *person) shot(what string) {
	p.t.Helper()
	b, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatal(err)
	}
	p.n++
	name := filepath.Join(p.shots, "messenger-"+p.name+"-"+p.lang+"-"+string(rune('a'+p.n-1))+"-"+what+".png")
	if err := os.WriteFile(name, b, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// pay goes from the payment form's decision through the SMS challenge
// (the fake authorizer's code) to the done page.
func (p *person) pay(what string) string {
	p.t.Helper()
	p.do(what+": decision", chromedp.WaitVisible(chromedp.ID("decision")), chromedp.Click(chromedp.ID("factor_sms")))
	p.shot(what + "-decision")
	p.do(what+": challenge", chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("response")),
		chromedp.SendKeys(chromedp.ID("response"), "123456"))
	p.shot(what + "-challenge")
	p.do(what+": confirm", chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("done")))
	p.shot(what + "-done")
	return p.text("#done")
}

// TestBrowserJourney drives the messenger in headless Chromium as alice
// (Chinese), bob and carol (English), each in a browser context of their
// own: alice makes the group, bob sees her message arrive without a
// reload, alice sends bob 88.50 yuan, opens an AA collection of 300.01
// yuan (equal shares, the odd fen hers) that bob and carol pay, closes it,
// and pays carol 66 yuan by scanning carol's receive QR from a screenshot
// with the phone simulator's reader; the ledger check passes afterwards.
// Each page is saved as a PNG in EGATE_SHOTS_DIR (default the test's
// temporary directory).
func TestBrowserJourney(t *testing.T) {
	shots := os.Getenv("EGATE_SHOTS_DIR")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, storetest.SQLite(t))
	h := r.pages.Handler()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /as", func(w http.ResponseWriter, req *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "test_who", Value: req.URL.Query().Get("who"), Path: "/"})
		http.Redirect(w, req, "/chats?lang="+req.URL.Query().Get("lang"), http.StatusFound)
	})
	mux.Handle("/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close) // after the browsers' cleanups, which end their event streams
	r.pages.PublicURL = srv.URL
	start := r.balances()
	// the passport's alerts as its API gives them (a login and a balance change)
	r.pages.Alerts = func(req *http.Request) ([]platform.InboxAlert, error) {
		c, _ := r.pages.Customer(req)
		var login, bal platform.InboxAlert
		login.ID, login.Kind, login.At = c.ID+"-1", "login", time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)
		login.Body.Client, login.Body.IP, login.Body.Device, login.Body.Level = "ebank", "203.0.113.7", "Firefox on Linux", 2
		bal.ID, bal.Kind, bal.At = c.ID+"-2", "balance", time.Date(2026, 12, 3, 9, 35, 0, 0, time.UTC)
		bal.Body.Account, bal.Body.Amount, bal.Body.Balance = "6299…0017", -100_00, 9_900_00
		return []platform.InboxAlert{bal, login}, nil
	}

	browser := testenv.Chromium(t, 1100, 900)
	alice := tab(t, browser, srv.URL, "alice", "zh", shots)
	bob := tab(t, browser, srv.URL, "bob", "en", shots)
	carol := tab(t, browser, srv.URL, "carol", "en", shots)

	alice.do("new group", chromedp.SendKeys(chromedp.ID("title"), "Friends 朋友们"), chromedp.SendKeys(chromedp.ID("members"), "bob, carol"))
	alice.shot("chats")
	alice.do("make group", chromedp.Click(chromedp.ID("make-group")), chromedp.WaitVisible(chromedp.ID("messages")))
	url, err := chromedp.Run(alice.ctx, chromedp.Evaluate[string]("location.pathname"))
	if err != nil {
		t.Fatal(err)
	}
	group := srv.URL + url
	bob.do("bob's chats", chromedp.Navigate(srv.URL+"/chats"), chromedp.WaitVisible(chromedp.ID("chats")))
	bob.do("bob's alerts", chromedp.Navigate(srv.URL+"/alerts"), chromedp.WaitVisible(chromedp.CSS(`#messages li[data-kind="alert"]`)))
	if got := bob.text("#messages"); !strings.Contains(got, "Login to ebank") || !strings.Contains(got, "100.00 yuan out") {
		t.Fatalf("bob's alerts: %q", got)
	}
	bob.shot("alerts")
	bob.do("bob opens the group", chromedp.Navigate(group), chromedp.WaitVisible(chromedp.ID("messages")))
	alice.do("send", chromedp.SendKeys(chromedp.ID("text"), "周五吃火锅？"), chromedp.Click(chromedp.ID("send-button")),
		chromedp.WaitVisible(chromedp.CSS(`#messages li[data-kind="text"]`)))
	bob.do("live message", chromedp.WaitVisible(chromedp.CSS(`#messages li[data-kind="text"]`)))
	if got := bob.text(`#messages li[data-kind="text"]`); !strings.Contains(got, "周五吃火锅") {
		t.Fatalf("bob's page shows %q", got)
	}
	bob.shot("live-message")

	// alice sends bob money in the group
	alice.do("transfer form", chromedp.Navigate(group), chromedp.WaitVisible(chromedp.ID("amount")),
		chromedp.SendKeys(chromedp.ID("amount"), "88.50"), chromedp.SendKeys(chromedp.ID("memo"), "车费"))
	alice.shot("group")
	alice.do("transfer", chromedp.Click(chromedp.ID("pay")))
	// authorized: bob sees it live, pending, before alice proves it
	bob.do("bob sees the pending transfer", chromedp.WaitVisible(chromedp.CSS(`#messages li[data-kind="transfer"][data-state="pending"]`)))
	if got := bob.text(`#messages li[data-kind="transfer"]`); !strings.Contains(got, "alice is sending you 88.50 yuan — waiting for alice's confirmation") {
		t.Fatalf("bob's pending transfer: %q", got)
	}
	bob.shot("transfer-pending")
	if done := alice.pay("transfer"); !strings.Contains(done, "88.50") {
		t.Fatalf("transfer done: %q", done)
	}
	bob.do("bob sees the transfer", chromedp.WaitVisible(chromedp.CSS(`#messages li[data-kind="transfer"][data-state="done"]`)))
	if n, err := chromedp.Run(bob.ctx, chromedp.Evaluate[int](`document.querySelectorAll('#messages li[data-kind="transfer"]').length`)); err != nil || n != 1 {
		t.Fatalf("bob's page shows %d transfer messages (%v): the pending one is updated in place", n, err)
	}
	bob.shot("transfer-received")

	// the AA collection
	alice.do("AA form", chromedp.Navigate(group), chromedp.WaitVisible(chromedp.ID("aa-new")), chromedp.Click(chromedp.ID("aa-new")),
		chromedp.WaitVisible(chromedp.ID("total")), chromedp.SendKeys(chromedp.ID("total"), "300.01"), chromedp.SendKeys(chromedp.ID("memo"), "火锅"))
	alice.shot("aa-form")
	alice.do("AA open", chromedp.Click(chromedp.ID("aa-open")), chromedp.WaitVisible(chromedp.ID("shares")))
	aa, err := chromedp.Run(alice.ctx, chromedp.Evaluate[string]("location.pathname"))
	if err != nil {
		t.Fatal(err)
	}
	alice.shot("aa-open")
	for _, p := range []*person{bob, carol} {
		p.do("AA page", chromedp.Navigate(srv.URL+aa), chromedp.WaitVisible(chromedp.ID("pay-share")))
		p.shot("aa")
		p.do("pay share", chromedp.Click(chromedp.ID("pay-share")))
		if done := p.pay("aa-share"); !strings.Contains(done, "100.00") {
			t.Fatalf("%s's share: %q", p.name, done)
		}
	}
	alice.do("AA paid", chromedp.Navigate(srv.URL+aa), chromedp.WaitVisible(chromedp.ID("shares")))
	if got := alice.text("#aa-totals"); !strings.Contains(got, "200.00") {
		t.Fatalf("alice sees %q", got)
	}
	alice.shot("aa-paid")
	alice.do("AA close", chromedp.Click(chromedp.ID("close")), chromedp.WaitVisible(chromedp.CSS(`#aa-state[data-state="closed"]`)))
	alice.shot("aa-closed")

	// carol's receive QR, scanned from a screenshot by the phone app
	carol.do("receive", chromedp.Navigate(srv.URL+"/receive"), chromedp.WaitVisible(chromedp.ID("amount")),
		chromedp.SendKeys(chromedp.ID("amount"), "66"), chromedp.SendKeys(chromedp.ID("memo"), "tea"),
		chromedp.Click(chromedp.ID("make-qr")), chromedp.WaitVisible(chromedp.ID("qr")))
	carol.shot("qr")
	png, err := chromedp.Run(carol.ctx, chromedp.Screenshot(chromedp.ID("qr")))
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(shots, "messenger-carol-qr-only.png")
	if err := os.WriteFile(img, png, 0o644); err != nil {
		t.Fatal(err)
	}
	payURL, err := simphone.ReceiveQR(img)
	if err != nil || !strings.HasPrefix(payURL, srv.URL+"/pay/") {
		t.Fatalf("the phone reads %q: %v", payURL, err)
	}
	alice.do("pay by QR", chromedp.Navigate(payURL), chromedp.WaitVisible(chromedp.ID("fixed-amount")))
	alice.shot("qr-pay")
	alice.do("pay by QR: next", chromedp.Click(chromedp.ID("next")))
	if done := alice.pay("qr"); !strings.Contains(done, "66.00") {
		t.Fatalf("QR payment: %q", done)
	}
	alice.do("group again", chromedp.Navigate(group), chromedp.WaitVisible(chromedp.ID("messages")))
	alice.shot("group-after")
	carol.do("carol's chats", chromedp.Navigate(srv.URL+"/chats"), chromedp.WaitVisible(chromedp.CSS(".badge.unread")))
	carol.shot("chats-unread")
	alice.do("alice's alerts", chromedp.Navigate(srv.URL+"/alerts"), chromedp.WaitVisible(chromedp.CSS(`#messages li[data-kind="alert"]`)))
	alice.shot("alerts")

	got := r.balances()
	want := map[string]int64{"alice": start["alice"] - 88_50 + 200_00 - 66_00, "bob": start["bob"] + 88_50 - 100_00,
		"carol": start["carol"] - 100_00 + 66_00, "dave": start["dave"]}
	if !equal(got, want) {
		t.Fatalf("balances %v, want %v", got, want)
	}
	r.checkLedger()
	t.Logf("screenshots in %s", shots)
}
