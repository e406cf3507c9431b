package authsvc

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/internal/i18n"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv/chromiumtest"
)

// TestPassportWalkInBothLanguages walks the passport's pages as a customer
// does, once in Chinese and once in English: the name, password and SMS
// steps, then the enrolment (a level-1 session refused, an unknown tool,
// the enrolment page, its poll, a cancel, a refused CSR, the enrolled
// page, an unknown order). Each page is in its language: no English
// sentence of the catalogue on a Chinese page, no catalogue key shown
// as itself, and the order's text (what the helper shows and the new key
// signs) in the page's language.
func TestPassportWalkInBothLanguages(t *testing.T) {
	t.Parallel()
	for _, lang := range []string{i18n.ZH, i18n.EN} {
		t.Run(lang, func(t *testing.T) { // one after the other: they share the HSM's CA key
			fe := newFactorEnv(t, storetest.SQLite(t))
			ctx := context.Background()
			pr := i18n.In(lang, nil)
			check := func(name string, body string, want ...string) {
				t.Helper()
				text := visibleText(body)
				for _, w := range want {
					if !strings.Contains(text, w) {
						t.Errorf("%s page lacks %q:\n%s", name, w, text)
					}
				}
				if m := keyRE.FindString(text); m != "" {
					t.Errorf("%s page shows the catalogue key %q:\n%s", name, m, text)
				}
				if lang == i18n.ZH {
					if s := englishIn(text); s != "" {
						t.Errorf("%s page (zh) says %q in English:\n%s", name, s, text)
					}
				}
			}
			signIn := func(level string) *browser {
				b := fe.browser()
				u, _ := url.Parse(fe.ts.URL)
				b.c.Jar.SetCookies(u, []*http.Cookie{{Name: i18n.Cookie, Value: lang}})
				a := newAuthz("ebank", ebankRedirect)
				a.extra.Set("acr_values", "urn:egate:loa:"+level)
				r := b.follow(b.get(a.url()))
				check("name", r.body, pr.T("pp.sign_in"))
				id := formID(t, r.body)
				r = b.post("/login/name", url.Values{"id": {id}, "login_name": {"alice"}})
				check("password", r.body, pr.T("pp.enter_password"))
				r = b.submitPassword(id, r.body, testPassword)
				if level == "2" {
					if choices(r.body) != nil {
						check("choice", r.body)
						r = b.post("/login/factor/begin", url.Values{"id": {id}, "factor": {"sms"}})
					}
					check("SMS", r.body, pr.T("pp.code"))
					msgs, _ := fe.set.SMSSink.List(ctx, "13812345678", 1)
					r = b.post("/login/factor", url.Values{"id": {id}, "response": {smsRE.FindStringSubmatch(msgs[0].Body)[1]}})
				}
				a.codeFrom(t, b.follow(r))
				return b
			}
			csr := func(cn string) []byte {
				k := p256(t)
				der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, k)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := json.Marshal(EnrolAnswer{CSR: der, Label: "soft-token", Serial: "S0001", KeyID: []byte{7}})
				return b
			}

			r := signIn("1").get("/account/enrol?tool=ushield")
			check("level-1 enrol", r.body, pr.T("pp.enrol_signin_title"), pr.T("pp.enrol_signin"))
			b := signIn("2")
			r = b.get("/account/enrol?tool=sms")
			check("unknown tool", r.body, pr.T("pp.enrol_unknown_title"), pr.Tool("ushield", "U-shield"))
			r = b.get("/account/enrol?tool=ushield")
			check("enrol", r.body, pr.T("pp.enrol", pr.Tool("ushield", "U-shield")), pr.T("pp.continue"))
			po := orderOf(t, r.body)
			if want := pr.T("pp.enrol_text", pr.Tool("ushield", "U-shield"), fe.pid); !strings.HasPrefix(po.text, want+"\n") {
				t.Errorf("the order's text is %q, want %q", po.text, want)
			}
			if _, st, raw := collectEnrol(b, po.link.Ref); st.Message != pr.T("order.waiting", pr.Tool("ushield", "U-shield")) {
				t.Errorf("the poll says %s", raw)
			}
			check("cancelled", b.post("/account/enrol/cancel", url.Values{"ref": {po.link.Ref}}).body, pr.T("pp.cancelled_title"), pr.T("pp.enrol_nothing"))
			check("not cancelled", b.post("/account/enrol/cancel", url.Values{"ref": {po.link.Ref}}).body, pr.T("pp.not_cancelled_title"))
			check("unknown order", b.post("/account/enrol/finish", url.Values{"ref": {"nonesuch"}}).body, pr.T("pp.not_enrolled_title"))

			po = orderOf(t, b.get("/account/enrol?tool=ushield").body)
			check("not finished", b.post("/account/enrol/finish", url.Values{"ref": {po.link.Ref}}).body, pr.T("pp.enrol_pending_title"), pr.T("pp.enrol_pending"))
			op := fe.openOrder(t, po)
			if _, err := fe.device().SignData(ctx, op.Ref, op.DeviceToken, csr("someone else's order")); err == nil {
				t.Fatal("a foreign CSR was accepted")
			}
			if _, st, raw := collectEnrol(b, po.link.Ref); !strings.HasPrefix(st.Message, pr.T("order.refused", "")) || strings.Contains(st.Message, "%!") {
				t.Errorf("the poll of a refused order says %s", raw)
			}
			check("refused", b.post("/account/enrol/finish", url.Values{"ref": {po.link.Ref}}).body, pr.T("pp.not_enrolled_title"), pr.Refusal("wrong_answer", "The answer is not correct."))

			po = orderOf(t, b.get("/account/enrol?tool=ushield").body)
			op = fe.openOrder(t, po)
			if _, err := fe.device().SignData(ctx, op.Ref, op.DeviceToken, csr(op.Challenge)); err != nil {
				t.Fatal(err)
			}
			r = b.post("/account/enrol/finish", url.Values{"ref": {po.link.Ref}})
			check("enrolled", r.body, pr.T("pp.enrolled_title"), regexp.MustCompile(`[（(]`).Split(pr.T("pp.enrolled", pr.Tool("ushield", "U-shield"), "", 0), 2)[0])
		})
	}
}

var (
	keyRE    = regexp.MustCompile(`\b(pp|order|tool|err)\.[a-z_]+[a-z]\b`)
	scriptRE = regexp.MustCompile(`(?s)<script.*?</script>|<style.*?</style>|<[^>]*>`)
)

// visibleText is what a person reads on the page: no tags, scripts or
// styles.
func visibleText(body string) string {
	return html.UnescapeString(scriptRE.ReplaceAllString(body, " "))
}

// englishIn returns an English sentence of the catalogue (a run of at
// least three words between its arguments) found in text, or "".
func englishIn(text string) string {
	en := i18n.In(i18n.EN, nil)
	for _, k := range i18n.Keys() {
		for _, part := range regexp.MustCompile(`%(\[\d\])?[sd]`).Split(en.T(k), -1) {
			part = strings.TrimSpace(part)
			if strings.Count(part, " ") >= 2 && strings.Contains(text, part) {
				return part
			}
		}
	}
	return ""
}

// TestBrowserEnrolPagesInChinese: the enrolment pages as Chromium shows
// them on a Chinese browser (screenshots passport-zh-*.png in the shots
// folder, chromiumtest.Dir): the sign-in-first page, the enrolment page
// with its order text, its poll's Chinese state, the enrolled page after
// the helper's answer (here the device API), and a cancelled one.
func TestBrowserEnrolPagesInChinese(t *testing.T) {
	ctx := chromiumtest.New(t, 120*time.Second)
	shots := chromiumtest.Dir(t)
	rp := newTestRP(t)
	fe := newFactorEnv(t, storetest.SQLite(t), func(c *Config) {
		c.OIDC.Clients[0].RedirectURIs = []string{rp.ts.URL + "/cb"}
		c.OIDC.Clients[0].MinLevel = 2
	})
	rp.issuer, rp.verify = fe.ts.URL, fe.claims
	zh := i18n.In(i18n.ZH, nil)
	do := func(step string, acts ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		chromiumtest.Do(t, ctx, step, acts...)
	}
	text := func(sel string) string { t.Helper(); return chromiumtest.Text(t, ctx, sel) }
	shot := func(name string) { t.Helper(); chromiumtest.Shot(t, ctx, shots, "passport-zh-"+name) }
	body := func() string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		if err != nil {
			t.Fatal(err)
		}
		if e := englishIn(s); e != "" {
			t.Errorf("the Chinese page says %q in English:\n%s", e, s)
		}
		return s
	}

	do("sign in first", chromedp.Navigate(fe.ts.URL+"/account/enrol?tool=ushield&lang=zh"), chromedp.WaitVisible(chromedp.ID("message")))
	if h := text("h1"); h != zh.T("pp.enrol_signin_title") {
		t.Errorf("h1 %q", h)
	}
	body()
	shot("1-sign-in-first")

	browserPassword(t, ctx, rp)
	do("SMS step", chromedp.WaitVisible(chromedp.ID("response")))
	body()
	shot("2-sms")
	msgs, _ := fe.set.SMSSink.List(context.Background(), "13812345678", 1)
	do("SMS code", chromedp.SendKeys(chromedp.ID("response"), smsRE.FindStringSubmatch(msgs[0].Body)[1]), chromedp.Click(chromedp.ID("confirm")))
	browserWelcome(t, ctx, rp)

	do("enrol page", chromedp.Navigate(fe.ts.URL+"/account/enrol?tool=ushield"), chromedp.WaitVisible(chromedp.ID("autostart")))
	waiting := zh.T("order.waiting", zh.Tool("ushield", "U-shield"))
	do("poll", chromedp.Poll[chromedp.Void](`document.getElementById("order-state").textContent === `+strconv.Quote(waiting)))
	pageText := text("#challenge")
	if !strings.HasPrefix(pageText, zh.T("pp.enrol_text", zh.Tool("ushield", "U-shield"), fe.pid)) {
		t.Errorf("order text %q", pageText)
	}
	body()
	shot("3-enrol")
	link, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("autostart"), "href"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := orders.ParseLink(link.Value)
	if err != nil {
		t.Fatal(err)
	}
	op := fe.openOrder(t, pageOrder{link: l, text: pageText})
	k := p256(t)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: op.Challenge}}, k)
	if err != nil {
		t.Fatal(err)
	}
	ans, _ := json.Marshal(EnrolAnswer{CSR: der, Label: "soft-token", Serial: "S0001", KeyID: []byte{7}})
	if _, err := fe.device().SignData(context.Background(), op.Ref, op.DeviceToken, ans); err != nil {
		t.Fatal(err)
	}
	do("enrolled", chromedp.WaitVisible(chromedp.ID("enrolled")))
	if h := text("h1"); h != zh.T("pp.enrolled_title") {
		t.Errorf("h1 %q", h)
	}
	body()
	shot("4-enrolled")

	do("cancel", chromedp.Navigate(fe.ts.URL+"/account/enrol?tool=ushield"), chromedp.WaitVisible(chromedp.ID("cancel-order")), chromedp.Click(chromedp.ID("cancel-order")),
		chromedp.WaitVisible(chromedp.ID("message")))
	if s := body(); !strings.Contains(s, zh.T("pp.enrol_nothing")) {
		t.Errorf("cancelled page:\n%s", s)
	}
	shot("5-cancelled")
	do("unknown tool", chromedp.Navigate(fe.ts.URL+"/account/enrol?tool=sms"), chromedp.WaitVisible(chromedp.ID("message")))
	if s, want := text("#message"), zh.T("pp.enrol_unknown", "U盾或二代U盾"); s != want {
		t.Errorf("unknown tool: %q, want %q", s, want)
	}
	body()
	shot("6-unknown-tool")
}
