package authsvc

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestBrowserAttemptsCaptchaAndLockout walks headless Chromium through six
// wrong passwords: the page counts the attempts down, the captcha's "New
// picture" button (a plain form, no script) brings a new picture, the sixth
// shows the locked page, and its link leads back to the platform with
// error=access_denied. With EGATE_SHOTS_DIR set it saves password.png and
// locked.png there.
func TestBrowserAttemptsCaptchaAndLockout(t *testing.T) {
	ctx := chromium(t)
	rp := newTestRP(t)
	e := newEnv(t, storetest.SQLite(t), func(c *Config) {
		c.OIDC.Clients[0].RedirectURIs = []string{rp.ts.URL + "/cb"}
	})
	rp.issuer, rp.verify = e.ts.URL, e.claims
	shots := os.Getenv("EGATE_SHOTS_DIR")
	shoot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return s
	}
	captchaID := func() string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`form[action$="/login/password"] input[name="captcha_id"]`), "value"))
		if err != nil || !v.Exists {
			t.Fatalf("no captcha: %v", err)
		}
		return v.Value
	}
	// click submits a form and waits for the page it loads (the old
	// page's elements would not do: they may still be there).
	click := func(what string, acts ...chromedp.Action[chromedp.Void]) int64 {
		t.Helper()
		resp, err := chromedp.RunResponse(ctx, acts...)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return resp.Status
	}
	err := chromedp.Do(ctx,
		chromedp.Navigate(rp.ts.URL+"/start"),
		chromedp.WaitVisible(chromedp.ID("login_name")),
		chromedp.SendKeys(chromedp.ID("login_name"), "alice"),
		chromedp.Click(chromedp.ID("next")),
		chromedp.WaitVisible(chromedp.ID("attempts")),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if got := text("#attempts"); got != "6 attempts left today before the password locks until midnight." {
		t.Fatalf("attempts %q", got)
	}
	for i := range 6 {
		acts := []chromedp.Action[chromedp.Void]{chromedp.SendKeys(chromedp.ID("password"), "Wrong-Pass-1")}
		if i > 0 {
			ans, _ := e.captcha.Load(captchaID())
			acts = append(acts, chromedp.SendKeys(chromedp.ID("captcha_answer"), ans.(string)))
		}
		acts = append(acts, chromedp.Click(chromedp.ID("signin")))
		status := click(fmt.Sprintf("attempt %d", i+1), acts...)
		if i < 5 {
			if got, want := text("#attempts"), fmt.Sprintf("%d attempt", 5-i); status != 401 || !strings.HasPrefix(got, want) {
				t.Fatalf("attempt %d: %d %q, want %q", i+1, status, got, want)
			}
		} else if status != 403 {
			t.Fatalf("locking attempt: %d", status)
		}
		if i == 1 {
			// A new picture, without script: the old one is spent.
			old := captchaID()
			if status := click("new picture", chromedp.Click(chromedp.ID("new-captcha"))); status != 200 || captchaID() == old {
				t.Fatalf("new picture: %d, same picture %v", status, captchaID() == old)
			}
			if got := text("#attempts"); got != "4 attempts left today before the password locks until midnight." {
				t.Fatalf("attempts after a new picture %q", got)
			}
			shoot("password.png")
		}
	}
	if got := text("#locked"); got != "Your password is locked after too many failed attempts." {
		t.Fatalf("locked page: %q", got)
	}
	shoot("locked.png")
	click("back to the platform", chromedp.Click(chromedp.ID("back")))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(loc)
	if !strings.HasPrefix(loc, rp.ts.URL+"/cb?") || u.Query().Get("error") != "access_denied" {
		t.Fatalf("back link led to %s", loc)
	}
}
