package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv/chromiumtest"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// TestBrowserJourney drives the pages in headless Chromium in both
// languages, with the keyboard-reachable forms only (no JavaScript on the
// pages): alice reads her accounts and history, pays bob with the token
// (level 3, the code of the fake authorizer), sees the result and her new
// balance; a transfer to herself is refused. Each page is saved as a PNG in
// EGATE_SHOTS_DIR (default the test's temporary directory).
func TestBrowserJourney(t *testing.T) {
	shots := chromiumtest.Dir(t)
	r := newRig(t, storetest.SQLite(t))
	if _, err := r.l.Transfer(context.Background(), ledger.Request{Origin: "mall", Key: "shop", Debit: r.alice[0].Number, Credit: r.bob[0].Number, Amount: 88_50, Grant: "g", Code: "checkout", Memo: "tea"}); err != nil {
		t.Fatal(err)
	}
	fp, pp := newFakePassport(t)
	r.pages.Passport = pp
	at := time.Date(2026, 12, 3, 1, 2, 3, 0, time.UTC)
	fp.alerts = []Alert{
		{ID: "1", Kind: "balance", At: at, Body: []byte(`{"account":"6299…0001","amount":-100000,"balance":99900000,"currency":"CNY"}`)},
		{ID: "2", Kind: "login", At: at, Body: []byte(`{"client":"ebank","device":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36","ip":"203.0.113.5","level":2}`)},
		{ID: "3", Kind: "login_failed", At: at, Body: []byte(`{"client":"mall","device":"curl/8.5","ip":"127.0.0.1","factor":"password"}`)},
		{ID: "4", Kind: "tool", At: at, Body: []byte(`{"event":"set","tool":"atm-pin"}`)},
	}
	h := r.pages.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		req.AddCookie(&http.Cookie{Name: "test_who", Value: "p-alice"})
		h.ServeHTTP(w, req)
	}))
	defer srv.Close()
	for _, c := range []struct {
		lang, accounts, done, self, balance, wdpin string
	}{
		{"zh", "我的账户", "转账成功：1,000.00 元", "付款账户和收款账户不能相同", "998,911.50", "取款密码已设置"},
		{"en", "My accounts", "Done: 1,000.00 yuan", "You cannot pay an account into itself", "997,911.50", "withdrawal PIN is set"},
	} {
		t.Run(c.lang, func(t *testing.T) {
			ctx := chromiumtest.New(t, 90*time.Second)
			do := func(step string, acts ...chromedp.Action[chromedp.Void]) {
				t.Helper()
				chromiumtest.Do(t, ctx, step, acts...)
			}
			text := func(sel string) string { t.Helper(); return chromiumtest.Text(t, ctx, sel) }
			shot := func(name string) { t.Helper(); chromiumtest.Shot(t, ctx, shots, "ebank-"+c.lang+"-"+name) }
			do("accounts", chromedp.Navigate(srv.URL+"/accounts?lang="+c.lang), chromedp.WaitVisible(chromedp.ID("accounts")))
			h1 := text("h1")
			shot("1-accounts")
			do("history", chromedp.Navigate(srv.URL+"/accounts/"+r.alice[0].Number+"?min=10"), chromedp.WaitVisible(chromedp.ID("history")))
			shot("2-history")
			do("transfer form", chromedp.Navigate(srv.URL+"/transfer"), chromedp.WaitVisible(chromedp.ID("amount")),
				chromedp.SendKeys(chromedp.ID("to"), r.bob[0].Number), chromedp.SendKeys(chromedp.ID("amount"), "1000"),
				chromedp.SendKeys(chromedp.ID("memo"), "rent"))
			shot("3-transfer")
			do("decision", chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("decision")), chromedp.Click(chromedp.ID("factor_otp")))
			shot("4-decision")
			do("challenge", chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("response")), chromedp.SendKeys(chromedp.ID("response"), "123456"))
			shot("5-challenge")
			do("confirm", chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("done")))
			done := text("#done")
			shot("6-done")
			do("accounts again", chromedp.Navigate(srv.URL+"/accounts"), chromedp.WaitVisible(chromedp.ID("accounts")))
			avail := text(`tr[data-number="` + r.alice[0].Number + `"] .available`)
			do("to herself", chromedp.Navigate(srv.URL+"/transfer"), chromedp.WaitVisible(chromedp.ID("amount")),
				chromedp.Click(chromedp.ID("to_kind_own")), chromedp.SendKeys(chromedp.ID("amount"), "1"),
				chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("error")))
			errText := text("#error")
			shot("7-refused")
			do("alerts", chromedp.Navigate(srv.URL+"/alerts"), chromedp.WaitVisible(chromedp.ID("alerts")))
			shot("8-alerts")
			do("logins", chromedp.Navigate(srv.URL+"/logins"), chromedp.WaitVisible(chromedp.ID("logins")))
			shot("9-logins")
			do("settings", chromedp.Navigate(srv.URL+"/settings"), chromedp.WaitVisible(chromedp.ID("reserved-now")))
			shot("10-settings")
			do("withdrawal PIN", chromedp.SendKeys(chromedp.ID("pin"), "385017"), chromedp.SendKeys(chromedp.ID("pin_again"), "385017"),
				chromedp.Click(chromedp.ID("wdpin-set")), chromedp.WaitVisible(chromedp.ID("notice")))
			wdpinNote := text("#notice")
			shot("11-withdrawal-pin")
			if !strings.Contains(wdpinNote, c.wdpin) {
				t.Errorf("withdrawal PIN notice %q, want %q", wdpinNote, c.wdpin)
			}
			if h1 != c.accounts || !strings.Contains(done, c.done) || !strings.Contains(errText, c.self) || avail != c.balance {
				t.Errorf("h1 %q, done %q, error %q, available %q", h1, done, errText, avail)
			}
		})
	}
	t.Logf("screenshots in %s", shots)
}
