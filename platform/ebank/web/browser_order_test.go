package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv/chromiumtest"
)

// TestBrowserOrderPage drives the order step in headless Chromium in both
// languages: the U-shield's page (text, autostart link, status) and the
// phone's (animated QR), each saved as a PNG in EGATE_SHOTS_DIR; when the
// device completes the order (the stand-in authorizer's order set
// complete, as the real API reports it) the page's script posts the
// confirmation by itself and the transfer is done.
func TestBrowserOrderPage(t *testing.T) {
	shots := chromiumtest.Dir(t)
	r := newRig(t, storetest.SQLite(t))
	oa := &orderAuth{fakeAuth: r.auth, orders: map[string]*fakeOrder{}}
	r.pages.Auth = oa
	h := r.pages.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		req.AddCookie(&http.Cookie{Name: "test_who", Value: "p-alice"})
		h.ServeHTTP(w, req)
	}))
	defer srv.Close()
	for _, c := range []struct{ lang, waiting, done string }{
		{"zh", "正在等待您的令牌", "转账成功：10.00 元"},
		{"en", "Waiting for your token", "Done: 10.00 yuan"},
	} {
		t.Run(c.lang, func(t *testing.T) {
			ctx := chromiumtest.New(t, 90*time.Second)
			do := func(step string, acts ...chromedp.Action[chromedp.Void]) {
				t.Helper()
				chromiumtest.Do(t, ctx, step, acts...)
			}
			shot := func(name string) { t.Helper(); chromiumtest.Shot(t, ctx, shots, "ebank-"+c.lang+"-order-"+name) }
			toOrder := func(tool string) string {
				t.Helper()
				do("form", chromedp.Navigate(srv.URL+"/transfer?lang="+c.lang), chromedp.WaitVisible(chromedp.ID("amount")),
					chromedp.SendKeys(chromedp.ID("to"), r.bob[0].Number), chromedp.SendKeys(chromedp.ID("amount"), "10"))
				do("decision", chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("factor_"+tool)), chromedp.Click(chromedp.ID("factor_"+tool)))
				do("order page", chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("order-status")))
				ref, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("order"), "data-ref"))
				if err != nil || !ref.Exists {
					t.Fatalf("no order on the page: %v", err)
				}
				return ref.Value
			}
			toOrder("phone")
			do("the QR", chromedp.WaitVisible(chromedp.ID("qr")))
			shot("phone")
			ref := toOrder("ushield")
			status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("order-status")))
			shot("ushield")
			oa.set(ref, "complete", "")
			do("goes on by itself", chromedp.WaitVisible(chromedp.ID("done")))
			done, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("done")))
			shot("done")
			if !strings.Contains(status, c.waiting) || !strings.Contains(done, c.done) {
				t.Fatalf("status %q, done %q", status, done)
			}
		})
	}
	t.Logf("screenshots in %s", shots)
}
