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

	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	"github.com/egate-bank/egate/simulators/oathtoken"
)

// TestMallJourney drives egate demo in headless Chromium: alice logs in to
// ebank (password and SMS) and then to the mall without being asked
// again (single sign-on); she buys the teapot (1,280 yuan: level 3) and
// pays with her dynamic-password token on the mall's own page; bob, who
// runs the demo merchant, logs in to the mall, steps up to level 2 with an
// SMS code for the merchant centre, ships (the hold is captured) and
// refunds 280 yuan; alice's order shows the refund. The books balance
// afterwards (ledger.Check, what egate admin ledger check runs). Each page
// is saved as a PNG in EGATE_SHOTS_DIR (default the test's temporary
// directory).
func TestMallJourney(t *testing.T) {
	testenv.NeedCommand(t, "softhsm2-util", "softhsm2")
	chromiumPath := testenv.NeedCommand(t, "chromium", "chromium")
	shots := os.Getenv("EGATE_SHOTS_DIR")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	varDir := t.TempDir()
	base, out, stop := startDemo(t, varDir)
	defer stop()
	ebank, mall := "http://"+lastCfg.Platforms.Ebank.Listen, "http://"+lastCfg.Platforms.Mall.Listen
	if printed := out.String(); !strings.Contains(printed, "Mall       merchant \"Lantern Tea House") || !strings.Contains(printed, mall+"/shop") {
		t.Fatalf("the demo does not say how to try the mall:\n%s", printed)
	}

	browser := func(t *testing.T) context.Context {
		opts := []chromedp.ExecAllocatorOption{
			chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
			chromedp.Flag("disable-background-networking", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1100, 800),
		}
		actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
		t.Cleanup(cancelA)
		ctx, cancel := chromedp.NewContext(actx)
		t.Cleanup(cancel)
		if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
			t.Fatalf("starting chromium: %v", err)
		}
		ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
		t.Cleanup(cancelT)
		return ctx
	}
	do := func(ctx context.Context, step string, acts ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, acts...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(ctx context.Context, sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	shot := func(ctx context.Context, name string) {
		t.Helper()
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(shots, "mall-"+name+".png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sms := func(to string) string {
		t.Helper()
		var msgs []struct{ To, Body string }
		getJSON(t, base+"/sim/sms/messages.json?to="+to+"&limit=1", &msgs)
		if len(msgs) != 1 {
			t.Fatalf("no SMS to %s", to)
		}
		return regexp.MustCompile(`\b\d{6}\b`).FindString(msgs[0].Body)
	}
	password := func(who string) string {
		b, err := os.ReadFile(filepath.Join(varDir, "demo-"+who+"-password"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}

	// alice: ebank first, with her password and an SMS code.
	alice := browser(t)
	do(alice, "ebank login", chromedp.Navigate(ebank+"/?lang=en"), chromedp.Click(chromedp.ID("login")), chromedp.WaitVisible(chromedp.ID("login_name")),
		chromedp.SendKeys(chromedp.ID("login_name"), "alice"), chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), password("alice")), chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("factor-sms")),
		chromedp.Click(chromedp.ID("factor-sms")), chromedp.WaitVisible(chromedp.ID("response")))
	do(alice, "ebank SMS", chromedp.SendKeys(chromedp.ID("response"), sms("13800138000")), chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("who")))
	shot(alice, "01-alice-ebank")
	// The mall: one click, no password, no code (single sign-on).
	do(alice, "mall sign-on", chromedp.Navigate(mall+"/?lang=en"), chromedp.Click(chromedp.ID("login")), chromedp.WaitVisible(chromedp.ID("who")))
	if who, loc := text(alice, "#who"), location(t, alice); !strings.Contains(who, "alice") || !strings.HasPrefix(loc, mall) {
		t.Fatalf("mall home after sign-on: %q at %s", who, loc)
	}
	shot(alice, "02-alice-mall-home")
	do(alice, "shop", chromedp.Click(chromedp.ID("shop")), chromedp.WaitVisible(chromedp.ID("products")))
	shot(alice, "03-shop")
	table, err := chromedp.Run(alice, chromedp.OuterHTML(chromedp.ID("products")))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`data-product="(p-[0-9a-f]+)"><td><b>[^<]*teapot`).FindStringSubmatch(table)
	if m == nil {
		t.Fatalf("no teapot in the shop:\n%s", table)
	}
	pot := m[1]
	do(alice, "add the teapot", chromedp.Click(chromedp.ID("add-"+pot)), chromedp.WaitVisible(chromedp.ID("cart")))
	shot(alice, "04-cart")
	do(alice, "checkout", chromedp.Click(chromedp.ID("checkout")), chromedp.WaitVisible(chromedp.ID("payer")))
	shot(alice, "05-checkout")
	do(alice, "pay", chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("decision")))
	if lv := attr(t, alice, "#decision", "data-level"); lv != "3" {
		t.Fatalf("the teapot (1,280 yuan) needs level %s, want 3", lv)
	}
	shot(alice, "06-decision")
	do(alice, "token", chromedp.Click(chromedp.ID("factor_otp")), chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("response")))
	do(alice, "token code", chromedp.SendKeys(chromedp.ID("response"), totp(t, varDir)))
	shot(alice, "07-challenge")
	do(alice, "confirm", chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("status")))
	if st := attr(t, alice, "#status", "data-status"); st != "paid" {
		t.Fatalf("order %s: %s", st, text(alice, "main"))
	}
	orderID := regexp.MustCompile(`o-[0-9a-f]+`).FindString(text(alice, "h1"))
	shot(alice, "08-paid")

	// bob runs the merchant: a password login at the mall's level 1, then
	// the step-up to level 2 that the merchant centre asks for.
	bob := browser(t)
	do(bob, "bob login", chromedp.Navigate(mall+"/?lang=zh"), chromedp.Click(chromedp.ID("login")), chromedp.WaitVisible(chromedp.ID("login_name")),
		chromedp.SendKeys(chromedp.ID("login_name"), "bob"), chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), password("bob")), chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("who")))
	do(bob, "merchant centre", chromedp.Click(chromedp.ID("merchant")), chromedp.WaitVisible(chromedp.ID("stepup")))
	shot(bob, "09-merchant-stepup")
	do(bob, "step-up", chromedp.Click(chromedp.ID("raise")), chromedp.WaitVisible(chromedp.ID("factor-sms")), chromedp.Click(chromedp.ID("factor-sms")),
		chromedp.WaitVisible(chromedp.ID("response")))
	do(bob, "step-up code", chromedp.SendKeys(chromedp.ID("response"), sms("13900139000")), chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("who")))
	do(bob, "merchant centre at level 2", chromedp.Navigate(mall+"/merchant"), chromedp.WaitVisible(chromedp.ID("ship-"+orderID)))
	shot(bob, "10-merchant-orders")
	do(bob, "ship", chromedp.Click(chromedp.ID("ship-"+orderID)), chromedp.WaitVisible(chromedp.ID("notice")), chromedp.WaitVisible(chromedp.ID("refund-"+orderID)))
	shot(bob, "11-shipped")
	do(bob, "refund too much", chromedp.SendKeys(chromedp.ID("refund-"+orderID), "2000"), chromedp.Click(chromedp.ID("refund-btn-"+orderID)), chromedp.WaitVisible(chromedp.ID("error")))
	if code := attr(t, bob, "#error", "data-code"); code != "refund_above_paid" {
		t.Fatalf("refund of 2,000 yuan on 1,280: %s", code)
	}
	shot(bob, "12-refund-refused")
	do(bob, "refund", chromedp.SendKeys(chromedp.ID("refund-"+orderID), "280"), chromedp.Click(chromedp.ID("refund-btn-"+orderID)), chromedp.WaitVisible(chromedp.ID("notice")))
	shot(bob, "13-refunded")

	do(alice, "alice's order", chromedp.Navigate(mall+"/orders/"+orderID), chromedp.WaitVisible(chromedp.ID("refunds")))
	if st, refunds := attr(t, alice, "#status", "data-status"), text(alice, "#refunds"); st != "shipped" || !strings.Contains(refunds, "280.00") {
		t.Fatalf("alice's order: %s, refunds %q", st, refunds)
	}
	shot(alice, "14-alice-refund")
	do(alice, "ebank accounts", chromedp.Navigate(ebank+"/accounts"), chromedp.WaitVisible(chromedp.ID("accounts")))
	shot(alice, "15-alice-accounts")

	db, err := store.Open(context.Background(), store.Config{Driver: lastCfg.Database.Driver, DSN: lastCfg.Database.DSN})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rep, err := ledger.Check(context.Background(), db)
	if err != nil {
		t.Fatalf("ledger check after the journey: %v", err)
	}
	var debit, credit string
	if err := db.QueryRow(context.Background(), `SELECT debit_account, credit_account FROM ebank_transfers WHERE code = 'refund'`).Scan(&debit, &credit); err != nil {
		t.Fatalf("the refund's transfer: %v", err)
	}
	t.Logf("ledger balanced: %d accounts, %d transfers, %d holds open; refund %s → %s; screenshots in %s", rep.Accounts, rep.Transfers, rep.Holds, debit, credit, shots)
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func attr(t *testing.T, ctx context.Context, sel, name string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil {
		t.Fatalf("%s[%s]: %v", sel, name, err)
	}
	return v.Value
}

// totp is a code of alice's demo token now.
func totp(t *testing.T, varDir string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(varDir, totpFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := oathtoken.Load(f, pskc.Options{}, "")
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := tok.Press(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return code
}
