package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/authsvc/txauth"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	"github.com/egate-bank/egate/simulators/pivcard/pivtest"
)

// TestTransferSignedWithEachTool: alice logs in to ebank (a real `egate
// platform ebank` process and a real `egate authsvc`) in headless Chromium,
// enrols the PIV simulator on pcscd herself from ebank's enrolment page
// (raised to level 2 with an SMS code; the card's attestation checked by
// the bank), raises the session to level 4 with that card through `egate
// helper`, and pays bob once with each tool she holds, each through a signing
// order the confirmation page follows by itself: a 1st-generation U-shield
// (a SoftHSM2 token) through `egate helper` started with the page's
// autostart link; a 2nd-generation one played by `egate sim ushield`,
// whose display must show exactly the page's text before the test presses
// its confirm button (in English, and again from a Chinese page with the
// Chinese text); the PIV simulator on pcscd, enrolled with its
// attestation, through the helper; and `egate sim phone` scanning a
// screenshot of the page's animated QR (in English, and again from a
// Chinese page); on the Chinese page an SMS code too, whose message names
// the Chinese text. The page has no text box for a
// signature; each transfer ends on ebank's "Done" page and moves the
// money once. The enrolled card is on ebank's tools list (self-service);
// reported lost there, it is no longer offered.
func TestTransferSignedWithEachTool(t *testing.T) {
	testenv.NeedCommand(t, "chromium", "chromium")
	pivtest.NeedPCSC(t)
	b := newAdminBench(t)
	b.caInit(t)
	pid := b.customer(t, "alice")
	bobID := b.customer(t, "bob")
	ctx := context.Background()
	const shieldPIN = "24681357"
	for _, l := range []string{"ushield-1", "ushield-2"} {
		if _, _, err := b.sh.InitToken(ctx, l, "11223344", shieldPIN); err != nil {
			t.Fatal(err)
		}
	}
	const txSecret = "ebank-tx-client-0123456789abcdef0123456789"
	b.env = append(b.env, "EGATE_TEST_SHIELD_PIN="+shieldPIN, "EGATE_TEST_APP_PIN=2468", "EGATE_TEST_PIV_PIN=123456")
	for gen, l := range map[string]string{"1": "ushield-1", "2": "ushield-2"} {
		if r := b.admin(t, "ushield", "enroll", "--module", b.sh.Module, "--token", l, "--customer", pid, "--generation", gen,
			"--pin-source", "env:EGATE_TEST_SHIELD_PIN"); r.code != 0 {
			t.Fatalf("enroll %s: %+v", l, r)
		}
	}
	// The PIV card: inserted into a virtual reader of pcscd; alice enrols
	// it herself from ebank's page below (the bank accepts the simulator's
	// vendor root).
	vendor := pivtest.Vendor(t)
	slot := pivtest.TakeReader(t)
	pivtest.Insert(t, slot, pivtest.NewCard(t, vendor))
	root := filepath.Join(b.dir, "piv-vendor-root.pem")
	if err := os.WriteFile(root, vendor.RootPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	// Accounts: alice's and bob's at ebank.
	db := openBenchDB(t, b)
	l := ledger.New(db, nil)
	if _, err := ebank.EnsureBankAccounts(ctx, l); err != nil {
		t.Fatal(err)
	}
	if _, err := ebank.OpenCustomerAccounts(ctx, l, pid, "alice", ebank.Opening{Current: 100_000_00}); err != nil {
		t.Fatal(err)
	}
	bobs, err := ebank.OpenCustomerAccounts(ctx, l, bobID, "bob", ebank.Opening{Current: 100_00})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	authAddr, ebankAddr := freePort(t), freePort(t)
	conf := filepath.Join(b.dir, "egate.yaml")
	os.WriteFile(conf, []byte(`http: {listen: "`+authAddr+`"}
database: {driver: sqlite, dsn: "`+b.db+`"}
hsm: {module: "`+b.sh.Module+`", token: `+benchHSMToken+`, pin-source: "env:EGATE_TEST_HSM_PIN"}
factors: {enabled: [sms, phone, ushield, piv, ushield2], sms: {dev-sink: true}, piv: {vendor-roots: "`+root+`"}}
authsvc:
  oidc:
    clients:
      - {id: ebank, secret: "ebank-secret-0123456789abcdef", redirect-uris: ["http://`+ebankAddr+`/callback"], min-level: 1}
  backend-clients:
    - {id: ebank-tx, secret-sha256: `+backend.HashSecret([]byte(txSecret))+`, scopes: [tx:authorize, tx:execute, alerts:balance]}
platforms:
  issuer: "http://`+authAddr+`"
  ebank: {listen: "`+ebankAddr+`", client-secret: "ebank-secret-0123456789abcdef", cookie-key: "0123456789abcdef0123456789abcdef-ebank", level: 1,
          tx-client: ebank-tx, tx-secret: "`+txSecret+`"}
  mall: {listen: "127.0.0.1:1"}
  messenger: {listen: "127.0.0.1:2"}
`), 0o600)
	base, _ := startAuthsvc(t, b, conf)
	eb := exec.Command(egateBin, "platform", "ebank", "--config", conf)
	eb.Dir, eb.Env = b.dir, append(os.Environ(), b.env...)
	elines, estderr := startLines(t, eb)
	ebankURL := waitLine(t, elines, regexp.MustCompile(`ebank serving at (http://\S+)`), estderr)[1]
	go func() {
		for range elines {
		}
	}()
	state := bindPhone(t, b, base)

	bctx := helperChromium(t)
	step := stepper(t, bctx, 60*time.Second)
	step("ebank's login", chromedp.Navigate(ebankURL+"/login?lang=en"), chromedp.WaitVisible(chromedp.ID("login_name")))
	step("the password page", chromedp.SendKeys(chromedp.ID("login_name"), "alice"), chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("password")))
	step("back at ebank", chromedp.SendKeys(chromedp.ID("password"), "Blue-Kite-47"), chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("who")))

	// toOrder fills the transfer form (2,000 yuan to bob: level 3, which
	// every tool of alice's reaches), picks the tool and returns the order
	// page's text.
	// In Chinese (lang "zh") the text is the Chinese one, as the customer
	// confirms it on the page, the device's display and the SMS.
	textOf := map[string]string{"en": "Transfer 2,000.00 yuan to " + txauth.Mask(bobs[0].Number) + " from ",
		"zh": "向 " + txauth.Mask(bobs[0].Number) + " 转账 2,000.00 元（付款账户 "}
	doneOf := map[string]string{"en": "Done: 2,000.00 yuan from ", "zh": "转账成功：2,000.00 元已从 "}
	toOrderIn := func(t *testing.T, lang, tool, memo string) string {
		t.Helper()
		step := stepper(t, bctx, 60*time.Second)
		step("the transfer form", chromedp.Navigate(ebankURL+"/transfer?lang="+lang), chromedp.WaitVisible(chromedp.ID("amount")),
			chromedp.SendKeys(chromedp.ID("to"), bobs[0].Number), chromedp.SendKeys(chromedp.ID("amount"), "2000"), chromedp.SendKeys(chromedp.ID("memo"), memo))
		step("the decision", chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("factor_"+tool)), chromedp.Click(chromedp.ID("factor_"+tool)))
		step("the order page", chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("order-status")))
		if n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("input[type=text], textarea").length`)); err != nil || n != 0 {
			t.Fatalf("the order page has %d text boxes (%v)", n, err)
		}
		text, err := chromedp.Run(bctx, chromedp.TextContent(chromedp.ID("tx-text")))
		if err != nil || !strings.HasPrefix(text, textOf[lang]) || !strings.Contains(text, "\nChallenge: ") {
			t.Fatalf("the order's text %q %v, want it to start %q", text, err, textOf[lang])
		}
		shot(t, bctx, "transfer-order-"+tool+strings.TrimPrefix(lang, "en"))
		return text
	}
	toOrder := func(t *testing.T, tool, memo string) string { t.Helper(); return toOrderIn(t, "en", tool, memo) }
	autostart := func(t *testing.T) string {
		t.Helper()
		link, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.ID("autostart"), "href"))
		if err != nil || !strings.HasPrefix(link.Value, "egate://order?") {
			t.Fatalf("autostart link %+v %v", link, err)
		}
		return link.Value
	}
	doneIn := func(t *testing.T, lang, tool string) {
		t.Helper()
		step := stepper(t, bctx, 60*time.Second)
		step("the page goes on by itself", chromedp.WaitVisible(chromedp.ID("done")))
		d, _ := chromedp.Run(bctx, chromedp.Text(chromedp.ID("done")))
		if !strings.Contains(d, doneOf[lang]) || !strings.Contains(d, bobs[0].Number) {
			t.Fatalf("done page %q", d)
		}
		shot(t, bctx, "transfer-done-"+tool+strings.TrimPrefix(lang, "en"))
	}
	done := func(t *testing.T, tool string) { t.Helper(); doneIn(t, "en", tool) }
	helperOK := func(t *testing.T, h result, text string) {
		t.Helper()
		if h.code != 0 || !strings.Contains(h.stdout, "│ "+strings.ReplaceAll(text, "\n", "\n│ ")) || !strings.Contains(h.stdout, "Signed.") {
			t.Fatalf("egate helper: %+v", h)
		}
	}

	t.Run("enrol the PIV card from ebank's page through egate helper", func(t *testing.T) {
		step := stepper(t, bctx, 60*time.Second)
		// Enrolling needs level 2: the SMS code, read from the sink.
		step("the passport's tools at level 2", chromedp.Navigate(ebankURL+"/login?level=2"), chromedp.WaitVisible(chromedp.ID("factor-sms")), chromedp.Click(chromedp.ID("factor-sms")))
		step("the SMS page", chromedp.WaitVisible(chromedp.ID("response")))
		code := lastSMSCode(t, b)
		step("back at ebank at level 2", chromedp.SendKeys(chromedp.ID("response"), code), chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("who")))
		step("ebank's enrolment page", chromedp.Navigate(ebankURL+"/enrol"), chromedp.WaitVisible(chromedp.ID("enrol-piv")))
		shot(t, bctx, "ebank-enrol")
		step("the passport's enrolment", chromedp.Click(chromedp.ID("enrol-piv")), chromedp.WaitVisible(chromedp.ID("autostart")))
		shot(t, bctx, "enrol-piv-order")
		h := run(t, b.dir, b.env, "helper", autostart(t), "--piv", "--piv-reader", slot.Reader, "--pin-source", "env:EGATE_TEST_PIV_PIN", "--yes")
		if h.code != 0 || !strings.Contains(h.stdout, "Enrolled:") || !strings.Contains(h.stdout, "│ Enrol a new PIV card for "+pid) {
			t.Fatalf("egate helper: %+v", h)
		}
		step("the enrolled page", chromedp.WaitVisible(chromedp.ID("enrolled")))
		shot(t, bctx, "enrol-piv-done")
		step("back at ebank", chromedp.Click(chromedp.ID("back")), chromedp.WaitVisible(chromedp.ID("notice")))
		if n, _ := chromedp.Run(bctx, chromedp.Text(chromedp.ID("notice"))); !strings.Contains(n, "PIV card is enrolled") {
			t.Fatalf("ebank's notice %q", n)
		}
		if r := b.admin(t, "piv", "list", "--customer", pid); r.code != 0 || !regexp.MustCompile(`(?m)9a.*active`).MatchString(r.stdout) {
			t.Fatalf("piv list: %+v", r)
		}
		// On the customer's tools list at ebank's self-service.
		step("the tools list", chromedp.Click(chromedp.ID("to-tools")), chromedp.WaitVisible(chromedp.CSS(`#tool-table tr[data-tool="piv"][data-status="active"]`)))
		shot(t, bctx, "ebank-tools-piv")
	})
	t.Run("log in at level 4 with the PIV card on pcscd through egate helper", func(t *testing.T) {
		step := stepper(t, bctx, 60*time.Second)
		step("the passport's tools at level 4", chromedp.Navigate(ebankURL+"/login?level=4"), chromedp.WaitVisible(chromedp.ID("factor-piv")), chromedp.Click(chromedp.ID("factor-piv")))
		step("the PIV page", chromedp.WaitVisible(chromedp.ID("autostart")))
		text, err := chromedp.Run(bctx, chromedp.TextContent(chromedp.ID("challenge")))
		if err != nil || !strings.HasPrefix(text, "egate login for "+pid+"\nChallenge: ") {
			t.Fatalf("text on the page %q %v", text, err)
		}
		shot(t, bctx, "login-piv-order")
		helperOK(t, run(t, b.dir, b.env, "helper", autostart(t), "--piv", "--piv-reader", slot.Reader, "--pin-source", "env:EGATE_TEST_PIV_PIN", "--yes"), text)
		step("back at ebank at level 4", chromedp.WaitVisible(chromedp.ID("level")))
		if lv, _ := chromedp.Run(bctx, chromedp.Text(chromedp.ID("level"))); lv != "4" {
			t.Fatalf("level %q", lv)
		}
	})
	// First, while the day's level-2 limit is untouched: 20 yuan by SMS.
	t.Run("in Chinese: the SMS names the Chinese text", func(t *testing.T) {
		step := stepper(t, bctx, 60*time.Second)
		step("the transfer form", chromedp.Navigate(ebankURL+"/transfer?lang=zh"), chromedp.WaitVisible(chromedp.ID("amount")),
			chromedp.SendKeys(chromedp.ID("to"), bobs[0].Number), chromedp.SendKeys(chromedp.ID("amount"), "20"), chromedp.SendKeys(chromedp.ID("memo"), "sms-zh"))
		step("the decision", chromedp.Click(chromedp.ID("next")), chromedp.WaitNotPresent(chromedp.ID("amount")))
		shot(t, bctx, "transfer-decision-smszh")
		step("the SMS", chromedp.WaitVisible(chromedp.ID("factor_sms")), chromedp.Click(chromedp.ID("factor_sms")))
		step("the challenge page", chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("response")))
		shown, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID("tx-text")))
		if want := "向 " + txauth.Mask(bobs[0].Number) + " 转账 20.00 元（付款账户 "; err != nil || !strings.HasPrefix(shown, want) {
			t.Fatalf("the page's text %q %v, want it to start %q", shown, err, want)
		}
		body := lastSMS(t, b)
		if !strings.Contains(body, "，用于确认："+shown+"。") {
			t.Fatalf("the SMS %q does not name the page's text %q", body, shown)
		}
		shot(t, bctx, "transfer-challenge-smszh")
		step("confirmed", chromedp.SendKeys(chromedp.ID("response"), lastSMSCode(t, b)), chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("done")))
		if d, _ := chromedp.Run(bctx, chromedp.Text(chromedp.ID("done"))); !strings.Contains(d, "转账成功：20.00 元已从 ") {
			t.Fatalf("done page %q", d)
		}
		shot(t, bctx, "transfer-done-smszh")
	})

	t.Run("a 1st-generation U-shield through egate helper", func(t *testing.T) {
		text := toOrder(t, "ushield", "u1")
		helperOK(t, run(t, b.dir, b.env, "helper", autostart(t), "--module", b.sh.Module, "--token", "ushield-1", "--pin-source", "env:EGATE_TEST_SHIELD_PIN", "--yes"), text)
		done(t, "ushield")
	})
	t.Run("a 2nd-generation U-shield whose button the test presses", func(t *testing.T) {
		text := toOrder(t, "ushield2", "u2")
		helperOK(t, confirmOnUShield2(t, b, "ushield-2", autostart(t), text, nil), text)
		done(t, "ushield2")
	})
	t.Run("the PIV card on pcscd through egate helper", func(t *testing.T) {
		text := toOrder(t, "piv", "piv")
		helperOK(t, run(t, b.dir, b.env, "helper", autostart(t), "--piv", "--piv-reader", slot.Reader, "--pin-source", "env:EGATE_TEST_PIV_PIN", "--yes"), text)
		done(t, "piv")
	})
	t.Run("the phone app scanning a screenshot of the QR", func(t *testing.T) {
		text := toOrder(t, "phone", "phone")
		r := scanWithPhone(t, b, bctx, state)
		if r.code != 0 || !strings.Contains(r.stdout, "│ "+strings.ReplaceAll(text, "\n", "\n│ ")) || !strings.Contains(r.stdout, "Signed.") {
			t.Fatalf("sim phone scan: %+v", r)
		}
		done(t, "phone")
	})

	// On a Chinese page the customer confirms the Chinese text: the
	// 2nd-generation U-shield shows and signs it, the SMS names it.
	t.Run("in Chinese: a 2nd-generation U-shield shows and signs the Chinese text", func(t *testing.T) {
		text := toOrderIn(t, "zh", "ushield2", "u2-zh")
		helperOK(t, confirmOnUShield2(t, b, "ushield-2", autostart(t), text, nil), text)
		doneIn(t, "zh", "ushield2")
	})
	t.Run("in Chinese: the phone app shows and signs the Chinese text", func(t *testing.T) {
		text := toOrderIn(t, "zh", "phone", "phone-zh")
		r := scanWithPhone(t, b, bctx, state)
		if r.code != 0 || !strings.Contains(r.stdout, "│ "+strings.ReplaceAll(text, "\n", "\n│ ")) || !strings.Contains(r.stdout, "Signed.") {
			t.Fatalf("sim phone scan: %+v", r)
		}
		doneIn(t, "zh", "phone")
	})

	t.Run("reported lost on ebank's tools list, the PIV card signs nothing", func(t *testing.T) {
		step := stepper(t, bctx, 60*time.Second)
		step("the tools list", chromedp.Navigate(ebankURL+"/settings#tools"), chromedp.WaitVisible(chromedp.CSS(`#tool-table tr[data-tool="piv"][data-status="active"] button`)))
		step("report lost", chromedp.Click(chromedp.CSS(`#tool-table tr[data-tool="piv"] button`)), chromedp.WaitVisible(chromedp.CSS(`#tool-table tr[data-tool="piv"][data-status="lost"]`)))
		shot(t, bctx, "ebank-tools-piv-lost")
		if r := b.admin(t, "piv", "list", "--customer", pid); r.code != 0 || regexp.MustCompile(`(?m)9a.*active`).MatchString(r.stdout) {
			t.Fatalf("piv list after the report: %+v", r)
		}
		// A transfer no longer offers the card.
		step("the transfer form", chromedp.Navigate(ebankURL+"/transfer"), chromedp.WaitVisible(chromedp.ID("amount")),
			chromedp.SendKeys(chromedp.ID("to"), bobs[0].Number), chromedp.SendKeys(chromedp.ID("amount"), "2000"))
		step("the decision", chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("factor_ushield")))
		if n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("#factor_piv").length`)); err != nil || n != 0 {
			t.Fatalf("a lost card is still offered (%v)", err)
		}
	})

	db = openBenchDB(t, b)
	defer db.Close()
	got, err := ledger.New(db, nil).Account(ctx, bobs[0].Number)
	if want := int64(100_00 + 6*2_000_00 + 20_00); err != nil || got.Balance() != want {
		t.Fatalf("bob's balance %d (%v), want %d: each transfer once", got.Balance(), err, want)
	}
	if _, err := ledger.Check(ctx, db); err != nil {
		t.Fatalf("ledger check: %v", err)
	}
}
