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

	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/clients/helper"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/internal/testenv/chromiumtest"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	"github.com/egate-bank/egate/simulators/oathtoken"
	"github.com/egate-bank/egate/simulators/softhsm"
)

// TestBrowserJourney is issue 12's journey through the running demo in
// headless Chromium, every step on the real stack (the passport, txauth with
// its limit table and the tools on SoftHSM2, the ledger): alice logs in with
// her password and an SMS code (level 2) in Chinese, sees her balance, pays
// bob 2,000 yuan by his mobile number: the bank's level-2 limit (1,000 per
// transaction) steps the transfer up to level 3, and she completes it with
// her dynamic-password token's code, a stronger tool than her login's. She
// finds the balance-change alert and her login in the history, lowers her
// own level-3 limit on the self-service page, and a payment over it (level
// 4, which none of her tools reaches) is refused with the reason and moves
// nothing; she enrols a U-shield on the passport's page and pays it at
// level 4 through the transfer's signing order, a higher tool again. bob
// logs in (English) and sees the money; the
// books balance afterwards (egate admin ledger check's Check). Each page is
// a PNG in EGATE_SHOTS_DIR (default the test's temporary directory).
func TestBrowserJourney(t *testing.T) {
	testenv.NeedCommand(t, "softhsm2-util", "softhsm2")
	varDir := t.TempDir()
	// alice's U-shield: a SoftHSM2 token beside the demo's HSM, made before
	// the module is loaded (SoftHSM2 reads its tokens once); she enrols it
	// herself below, and egate helper's code signs with it in this process.
	shield, err := softhsm.New(filepath.Join(varDir, "softhsm"))
	if err != nil {
		t.Fatal(err)
	}
	const shieldPIN = "24681357"
	if _, _, err := shield.InitToken(context.Background(), "alice-ushield", "11223344", shieldPIN); err != nil {
		t.Fatal(err)
	}
	passport, out, stop := startDemo(t, varDir)
	defer stop()
	ebank := "http://" + lastCfg.Platforms.Ebank.Listen
	shots := chromiumtest.Dir(t)
	printed := out.String()
	bobNumber := regexp.MustCompile(`Accounts\s+bob\s+current (\d+)`).FindStringSubmatch(printed)
	aliceNumbers := regexp.MustCompile(`Accounts\s+alice\s+current (\d+) \(([\d,.]+) yuan\) savings (\d+)`).FindStringSubmatch(printed)
	if bobNumber == nil || aliceNumbers == nil {
		t.Fatalf("the demo does not print the accounts:\n%s", printed)
	}
	db, err := store.Open(context.Background(), store.Config{Driver: lastCfg.Database.Driver, DSN: lastCfg.Database.DSN})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l := ledger.New(db, nil)
	balance := func(number string) int64 {
		t.Helper()
		a, err := l.Account(context.Background(), number)
		if err != nil {
			t.Fatal(err)
		}
		return a.Balance()
	}
	bobBefore, aliceBefore := balance(bobNumber[1]), balance(aliceNumbers[1])

	ctx := chromiumtest.New(t, 3*time.Minute)
	do := func(step string, acts ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		chromiumtest.Do(t, ctx, step, acts...)
	}
	text := func(sel string) string { t.Helper(); return chromiumtest.Text(t, ctx, sel) }
	n := 0
	shot := func(name string) {
		t.Helper()
		n++
		chromiumtest.Shot(t, ctx, shots, "journey-"+twoDigits(n)+"-"+name)
	}
	login := func(who, lang, mobile string) {
		t.Helper()
		pw, err := os.ReadFile(filepath.Join(varDir, "demo-"+who+"-password"))
		if err != nil {
			t.Fatal(err)
		}
		do(who+" home", chromedp.Navigate(ebank+"/?lang="+lang), chromedp.WaitVisible(chromedp.ID("login")))
		shot(who + "-welcome")
		do(who+" login", chromedp.Click(chromedp.ID("login")), chromedp.WaitVisible(chromedp.ID("login_name")),
			chromedp.SendKeys(chromedp.ID("login_name"), who), chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("reserved")))
		shot(who + "-password")
		do(who+" password", chromedp.SendKeys(chromedp.ID("password"), strings.TrimSpace(string(pw))), chromedp.Click(chromedp.ID("signin")),
			chromedp.WaitVisible(chromedp.ID("factor-sms")))
		shot(who + "-tools")
		do(who+" sms", chromedp.Click(chromedp.ID("factor-sms")), chromedp.WaitVisible(chromedp.ID("response")))
		do(who+" code", chromedp.SendKeys(chromedp.ID("response"), smsCodeTo(t, passport, mobile)))
		shot(who + "-sms")
		do(who+" confirm", chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("who")))
		if lv := text("#level"); lv != "2" {
			t.Fatalf("%s logged in at level %s, want 2", who, lv)
		}
		shot(who + "-home")
	}

	// alice, in Chinese: password and SMS, then her balance.
	login("alice", "zh", "13800138000")
	do("accounts", chromedp.Navigate(ebank+"/accounts"), chromedp.WaitVisible(chromedp.ID("accounts")))
	if got := text(`tr[data-number="` + aliceNumbers[1] + `"] .available`); got != aliceNumbers[2] {
		t.Errorf("alice's current account shows %q available, the demo opened it with %s", got, aliceNumbers[2])
	}
	shot("alice-accounts")

	// 2,000 yuan to bob's mobile number, to confirm by SMS as she chooses
	// on the form: over the level-2 limit, so the decision asks for level
	// 3, the SMS challenge is not begun with it (challenge_error
	// level_too_low) and the decision page asks her for another tool; her
	// token's code completes it.
	do("transfer form", chromedp.Navigate(ebank+"/transfer"), chromedp.WaitVisible(chromedp.ID("amount")),
		chromedp.Click(chromedp.ID("to_kind_mobile")), chromedp.SendKeys(chromedp.ID("to_mobile"), "139 0013 9000"),
		chromedp.SendKeys(chromedp.ID("amount"), "2000"), chromedp.SendKeys(chromedp.ID("memo"), "房租"),
		chromedp.WaitVisible(chromedp.ID("tool_otp")), chromedp.Click(chromedp.ID("tool_sms")))
	shot("alice-transfer")
	do("decision", chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("decision")))
	if n := text("#notice"); !strings.Contains(n, "达不到此笔转账所需的级别") {
		t.Errorf("the SMS chosen on the form, below the level: notice %q", n)
	}
	why := text("#decision")
	level, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("decision"), "data-level"))
	if err != nil || level.Value != "3" || !strings.Contains(why, "超过了银行规定的认证级别 2 的单笔限额 1,000.00 元") || !strings.Contains(why, "动态口令牌") {
		t.Fatalf("decision: level %q (%v), %q", level.Value, err, why)
	}
	shot("alice-stepped-up")
	do("token", chromedp.Click(chromedp.ID("factor_otp")), chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("response")))
	if tx := text("#tx-text"); !strings.Contains(tx, "转账 2,000.00 元") {
		t.Errorf("the challenge's transaction text %q", tx)
	}
	do("token code", chromedp.SendKeys(chromedp.ID("response"), totpCode(t, varDir)))
	shot("alice-token")
	do("confirm", chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("done")))
	if done := text("#done"); !strings.Contains(done, "转账成功：2,000.00 元") || !strings.Contains(done, bobNumber[1]) {
		t.Fatalf("done: %q", done)
	}
	shot("alice-done")

	// The balance-change alert, and the login in the history.
	do("alerts", chromedp.Navigate(ebank+"/alerts"), chromedp.WaitVisible(chromedp.ID("alerts")))
	if alerts := text("#alerts"); !strings.Contains(alerts, "转出 2,000.00 元") {
		t.Errorf("no balance-change alert: %q", alerts)
	}
	shot("alice-alerts")
	do("logins", chromedp.Navigate(ebank+"/logins"), chromedp.WaitVisible(chromedp.ID("logins")))
	if h := text("#logins"); !strings.Contains(h, "网上银行") || !strings.Contains(h, "Chrome") {
		t.Errorf("login history: %q", h)
	}
	shot("alice-logins")

	// Self-service: she lowers her own level-3 limit to 1,500 yuan a
	// payment. Then 1,600 yuan needs level 4, which none of her tools
	// reaches: refused with the reason, nothing moved.
	do("settings", chromedp.Navigate(ebank+"/settings"), chromedp.WaitVisible(chromedp.ID("reserved-now")),
		chromedp.SetValue(chromedp.ID("level"), "3"), chromedp.SendKeys(chromedp.ID("per_transaction"), "1500"),
		chromedp.SendKeys(chromedp.ID("per_day"), "500000"), chromedp.SendKeys(chromedp.ID("per_year"), "5000000"),
		chromedp.Click(chromedp.ID("limits-change")), chromedp.WaitVisible(chromedp.ID("notice")))
	if got := text(`tr[data-level="3"] .own-txn`); !strings.HasPrefix(got, "1,500.00") {
		t.Errorf("her level-3 limit shows %q", got)
	}
	shot("alice-own-limit")
	before := balance(aliceNumbers[3])
	do("over her own limit", chromedp.Navigate(ebank+"/transfer"), chromedp.WaitVisible(chromedp.ID("amount")),
		chromedp.SetValue(chromedp.ID("from"), aliceNumbers[3]), chromedp.SendKeys(chromedp.ID("to"), bobNumber[1]),
		chromedp.SendKeys(chromedp.ID("amount"), "1600"), chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("error")))
	if e := text("#error"); !strings.Contains(e, "您自己设定的认证级别 3 的单笔限额 1,500.00 元") || !strings.Contains(e, "认证级别 4 的工具") || !strings.Contains(e, "调整自己的限额") {
		t.Errorf("a payment over her own level-3 limit: %q", e)
	}
	shot("alice-level4-refused")
	if after := balance(aliceNumbers[3]); after != before {
		t.Errorf("the refused payment moved money: %d → %d", before, after)
	}

	// She enrols her U-shield on the passport's page (egate helper's code
	// makes the key on the token, the bank CA certifies it) and pays the
	// 1,600 yuan with it: level 4, signed on the token through the signing
	// order the transfer page shows.
	h := &helper.Helper{Client: &orders.Client{Base: passport}, Tools: []helper.Tool{&helper.UShield{Module: shield.Module, Label: "alice-ushield"}},
		UI: autoUI{pin: shieldPIN}}
	runHelper := func(step string) {
		t.Helper()
		link, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("autostart"), "href"))
		if err != nil {
			t.Fatalf("%s: the autostart link: %v", step, err)
		}
		l, err := orders.ParseLink(link.Value)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if res, err := h.Run(context.Background(), orders.OpenRequest{Ref: l.Ref, AutostartToken: l.Token}); err != nil || res.State != orders.Complete {
			t.Fatalf("%s: the helper: %+v %v", step, res, err)
		}
	}
	do("enrolment page", chromedp.Navigate(passport+"/account/enrol?tool=ushield"), chromedp.WaitVisible(chromedp.ID("autostart")))
	shot("alice-enrol-ushield")
	runHelper("enrolment")
	do("enrolled", chromedp.WaitVisible(chromedp.ID("enrolled")))
	if e := text("#enrolled"); !strings.Contains(e, "您的U盾已绑定") {
		t.Errorf("the enrolled page says %q", e)
	}
	shot("alice-enrolled")
	do("level-4 transfer", chromedp.Navigate(ebank+"/transfer"), chromedp.WaitVisible(chromedp.ID("amount")),
		chromedp.SetValue(chromedp.ID("from"), aliceNumbers[3]), chromedp.SendKeys(chromedp.ID("to"), bobNumber[1]),
		chromedp.SendKeys(chromedp.ID("amount"), "1600"), chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("decision")))
	if lv, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("decision"), "data-level")); err != nil || lv.Value != "4" {
		t.Fatalf("the decision's level: %q %v", lv.Value, err)
	}
	shot("alice-level4")
	do("U-shield", chromedp.Click(chromedp.ID("factor_ushield")), chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("autostart")))
	shot("alice-ushield-order")
	runHelper("the transfer's order")
	do("done with the U-shield", chromedp.WaitVisible(chromedp.ID("done")))
	if done := text("#done"); !strings.Contains(done, "转账成功：1,600.00 元") {
		t.Fatalf("done: %q", done)
	}
	shot("alice-level4-done")
	// She logs out (of the passport too: back on ebank's home page).
	do("logout", chromedp.Navigate(ebank+"/"), chromedp.WaitVisible(chromedp.ID("logout")), chromedp.Click(chromedp.ID("logout")),
		chromedp.WaitVisible(chromedp.ID("login")))

	// bob, in English, sees the money.
	login("bob", "en", "13900139000")
	do("bob accounts", chromedp.Navigate(ebank+"/accounts"), chromedp.WaitVisible(chromedp.ID("accounts")))
	shot("bob-accounts")
	if got, want := balance(bobNumber[1]), bobBefore+2_000_00+1_600_00; got != want {
		t.Errorf("bob's current account: %d fen, want %d", got, want)
	}
	if got, want := balance(aliceNumbers[1]), aliceBefore-2_000_00; got != want {
		t.Errorf("alice's current account: %d fen, want %d", got, want)
	}
	if got, want := text(`tr[data-number="`+bobNumber[1]+`"] .available`), money.Yuan(bobBefore+2_000_00+1_600_00); got != want {
		t.Errorf("bob's page shows %q, want %q", got, want)
	}
	if _, err := ledger.Check(context.Background(), db); err != nil {
		t.Fatalf("ledger check after the journey: %v", err)
	}
	t.Logf("screenshots in %s", shots)
}

// autoUI is the customer at egate helper's prompts: confirms and types the
// token's PIN.
type autoUI struct{ pin string }

func (autoUI) Show(*orders.Opened, []byte, string)                {}
func (autoUI) Confirm(context.Context) (bool, error)              { return true, nil }
func (u autoUI) PIN(context.Context, string, int) ([]byte, error) { return []byte(u.pin), nil }
func (autoUI) Say(string)                                         {}

func twoDigits(n int) string { return string([]byte{byte('0' + n/10), byte('0' + n%10)}) }

// totpCode is the code alice's token shows now (the demo's PSKC file: what
// the vendor ships, read as egate sim otp reads it).
func totpCode(t *testing.T, varDir string) string {
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
