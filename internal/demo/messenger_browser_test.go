package demo

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	simphone "github.com/egate-bank/egate/simulators/phone"
)

// demoPerson is one demo customer in a browser context of their own.
type demoPerson struct {
	t            *testing.T
	name, mobile string
	ctx          context.Context
	passport     string
	shots        string
	n            int
}

func (p *demoPerson) do(step string, acts ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, acts...); err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, step, err)
	}
}

func (p *demoPerson) shot(what string) {
	p.t.Helper()
	b, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatal(err)
	}
	p.n++
	os.WriteFile(filepath.Join(p.shots, "demo-messenger-"+p.name+"-"+string(rune('a'+p.n-1))+"-"+what+".png"), b, 0o644)
}

// smsCode is the newest code sent to the person's phone by the demo's
// SMS sink (login alerts go there too; they carry no six-digit number).
func (p *demoPerson) smsCode() string {
	p.t.Helper()
	var msgs []struct{ To, Body string }
	getJSON(p.t, p.passport+"/sim/sms/messages.json?to="+p.mobile+"&limit=5", &msgs)
	for _, m := range msgs {
		if c := regexp.MustCompile(`\b\d{6}\b`).FindString(m.Body); c != "" {
			return c
		}
	}
	p.t.Fatalf("no SMS code for %s: %+v", p.name, msgs)
	return ""
}

// pay chooses the SMS code at the decision, types the code the bank sent
// and confirms; it returns the done page's text.
func (p *demoPerson) pay(what string) string {
	p.t.Helper()
	p.do(what+": decision", chromedp.WaitVisible(chromedp.ID("decision")), chromedp.Click(chromedp.ID("factor_sms")))
	p.do(what+": challenge", chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("response")))
	p.do(what+": code", chromedp.SendKeys(chromedp.ID("response"), p.smsCode()))
	p.shot(what + "-challenge")
	p.do(what+": confirm", chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.CSS("#done, #error")))
	p.shot(what + "-done")
	s, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

// TestDemoMessengerJourney: egate demo, headless Chromium, the real
// passport, transaction API and ebank. alice, bob and carol log in to the
// messenger with their passwords (its level 1) in browser contexts of
// their own; in the seeded group alice sends bob 50 yuan, opens an AA
// collection of 90 yuan that bob and carol pay, and pays carol 20 yuan by
// scanning carol's receive QR from a screenshot with the phone
// simulator; every payment is proved with the SMS code the bank sent. The
// ledger check (egate admin ledger check's proof) passes afterwards and
// the balances moved by exactly these amounts. PNGs in EGATE_SHOTS_DIR.
func TestDemoMessengerJourney(t *testing.T) {
	testenv.NeedCommand(t, "softhsm2-util", "softhsm2")
	shots := os.Getenv("EGATE_SHOTS_DIR")
	if shots == "" {
		shots = t.TempDir()
	}
	os.MkdirAll(shots, 0o755)
	varDir := t.TempDir()
	base, out, stop := startDemo(t, varDir)
	defer stop()
	cfg := lastCfg
	m := "http://" + cfg.Platforms.Messenger.Listen
	accounts := map[string]string{}
	for _, who := range []string{"alice", "bob", "carol"} {
		a := regexp.MustCompile(`Accounts\s+` + who + `\s+current (\d+)`).FindStringSubmatch(out.String())
		if a == nil {
			t.Fatalf("no current account of %s printed:\n%s", who, out.String())
		}
		accounts[who] = a[1]
	}
	db, err := store.Open(context.Background(), store.Config{Driver: cfg.Database.Driver, DSN: cfg.Database.DSN})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l := ledger.New(db, nil)
	balance := func(who string) int64 {
		a, err := l.Account(context.Background(), accounts[who])
		if err != nil {
			t.Fatal(err)
		}
		return a.Balance()
	}
	start := map[string]int64{"alice": balance("alice"), "bob": balance("bob"), "carol": balance("carol")}

	browser := testenv.Chromium(t, 1100, 900)
	people := map[string]*demoPerson{}
	for _, c := range []struct{ name, mobile string }{{"alice", "13800138000"}, {"bob", "13900139000"}, {"carol", "13700137000"}} {
		ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		t.Cleanup(cancel)
		ctx, cancelT := context.WithTimeout(ctx, 4*time.Minute)
		t.Cleanup(cancelT)
		p := &demoPerson{t: t, name: c.name, mobile: c.mobile, ctx: ctx, passport: base, shots: shots}
		pw, err := os.ReadFile(filepath.Join(varDir, "demo-"+c.name+"-password"))
		if err != nil {
			t.Fatal(err)
		}
		p.do("login", chromedp.Navigate(m+"/login"), chromedp.WaitVisible(chromedp.ID("login_name")),
			chromedp.SendKeys(chromedp.ID("login_name"), c.name), chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("password")),
			chromedp.SendKeys(chromedp.ID("password"), strings.TrimSpace(string(pw))), chromedp.Click(chromedp.ID("signin")),
			chromedp.WaitVisible(chromedp.ID("chats")))
		people[c.name] = p
	}
	alice, bob, carol := people["alice"], people["bob"], people["carol"]
	lang := "?lang=en"
	alice.do("group", chromedp.Navigate(m+"/chats"+lang), chromedp.WaitVisible(chromedp.CSS(`#chats li[data-kind="group"] a`)),
		chromedp.Click(chromedp.CSS(`#chats li[data-kind="group"] a`)), chromedp.WaitVisible(chromedp.ID("amount")))
	group, err := chromedp.Run(alice.ctx, chromedp.Evaluate[string]("location.pathname"))
	if err != nil {
		t.Fatal(err)
	}
	// alice sends bob 50 yuan in the group
	if _, err := chromedp.Run(alice.ctx, chromedp.Evaluate[bool](`(function(){var s=document.getElementById('to');for(var o of s.options){if(o.text==='bob'){s.value=o.value;return true}}return false})()`)); err != nil {
		t.Fatal(err)
	}
	alice.do("transfer", chromedp.SendKeys(chromedp.ID("amount"), "50"), chromedp.SendKeys(chromedp.ID("memo"), "taxi"), chromedp.Click(chromedp.ID("pay")))
	if done := alice.pay("transfer"); !strings.Contains(done, "alice sent bob 50.00 yuan") {
		t.Fatalf("transfer: %q", done)
	}
	// the AA collection: 90 yuan among the three, bob and carol pay 30 each
	alice.do("AA", chromedp.Navigate(m+group+"/aa/new"), chromedp.WaitVisible(chromedp.ID("total")),
		chromedp.SendKeys(chromedp.ID("total"), "90"), chromedp.SendKeys(chromedp.ID("memo"), "hotpot"),
		chromedp.Click(chromedp.ID("aa-open")), chromedp.WaitVisible(chromedp.ID("shares")))
	aa, err := chromedp.Run(alice.ctx, chromedp.Evaluate[string]("location.pathname"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*demoPerson{bob, carol} {
		p.do("AA page", chromedp.Navigate(m+aa+lang), chromedp.WaitVisible(chromedp.ID("pay-share")), chromedp.Click(chromedp.ID("pay-share")))
		if done := p.pay("aa"); !strings.Contains(done, p.name+" paid an AA share of 30.00 yuan") {
			t.Fatalf("%s's share: %q", p.name, done)
		}
	}
	alice.do("AA paid", chromedp.Navigate(m+aa), chromedp.WaitVisible(chromedp.ID("aa-totals")))
	alice.shot("aa-paid")
	// carol's receive QR, read by the phone from a screenshot, paid by alice
	carol.do("receive", chromedp.Navigate(m+"/receive"), chromedp.WaitVisible(chromedp.ID("amount")),
		chromedp.SendKeys(chromedp.ID("amount"), "20"), chromedp.Click(chromedp.ID("make-qr")), chromedp.WaitVisible(chromedp.ID("qr")))
	carol.shot("qr")
	png, err := chromedp.Run(carol.ctx, chromedp.Screenshot(chromedp.ID("qr")))
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "carol-qr.png")
	if err := os.WriteFile(img, png, 0o600); err != nil {
		t.Fatal(err)
	}
	payURL, err := simphone.ReceiveQR(img)
	if err != nil || !strings.HasPrefix(payURL, strings.TrimRight(cfg.Platforms.Messenger.PublicURL, "/")+"/pay/") && !strings.HasPrefix(payURL, m+"/pay/") {
		t.Fatalf("the phone read %q: %v", payURL, err)
	}
	alice.do("pay by QR", chromedp.Navigate(payURL), chromedp.WaitVisible(chromedp.ID("fixed-amount")), chromedp.Click(chromedp.ID("next")))
	if done := alice.pay("qr"); !strings.Contains(done, "alice paid carol 20.00 yuan by QR") {
		t.Fatalf("QR payment: %q", done)
	}
	alice.do("group after", chromedp.Navigate(m+group), chromedp.WaitVisible(chromedp.ID("messages")))
	alice.shot("group")

	if _, err := ledger.Check(context.Background(), db); err != nil {
		t.Fatalf("ledger check: %v", err)
	}
	got := map[string]int64{"alice": balance("alice"), "bob": balance("bob"), "carol": balance("carol")}
	want := map[string]int64{"alice": start["alice"] - 50_00 + 60_00 - 20_00, "bob": start["bob"] + 50_00 - 30_00, "carol": start["carol"] - 30_00 + 20_00}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("balances %v, want %v", got, want)
		}
	}
	t.Logf("screenshots in %s", shots)
}
