package authsvc

import (
	"net/url"
	"strings"
	"testing"

	"github.com/egate-bank/egate/internal/store/storetest"
)

// The passport's pages speak the customer's language: English when the
// client states none, Chinese on ?lang=zh (kept by the cookie for the
// following pages, POSTs included), English again on ?lang=en.
func TestPagesInBothLanguages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storetest.SQLite(t))
	b := e.browser()
	a := newAuthz("ebank", ebankRedirect)
	r := b.follow(b.get(a.url()))
	if !strings.Contains(r.body, "Sign in with your passport") || !strings.Contains(r.body, `<html lang="en">`) {
		t.Fatalf("no English name page:\n%s", r.body)
	}
	id := formID(t, r.body)
	r = b.get("/login?id=" + url.QueryEscape(id) + "&lang=zh")
	for _, want := range []string{`<html lang="zh-Hans">`, "用通行证登录", `<label for="login_name">登录名</label>`, `hreflang="en">English</a>`} {
		if !strings.Contains(r.body, want) {
			t.Fatalf("Chinese name page lacks %q:\n%s", want, r.body)
		}
	}
	r = b.post("/login/name", url.Values{"id": {id}, "login_name": {"alice"}})
	for _, want := range []string{"请输入密码", "您的预留信息：", `id="reserved"`, "登录</button>"} {
		if !strings.Contains(r.body, want) {
			t.Fatalf("Chinese password page lacks %q:\n%s", want, r.body)
		}
	}
	if strings.Contains(r.body, "Enter your password") {
		t.Fatal("English on the Chinese page")
	}
	// A message page (here: a sign-in that does not exist) and the tool
	// names are said in Chinese too.
	if m := b.get("/login?id=nonesuch&lang=zh"); !strings.Contains(m.body, "<h1>登录已过期</h1>") || !strings.Contains(m.body, "请返回平台重新开始") ||
		strings.Contains(m.body, "Go back to the platform") {
		t.Fatalf("Chinese message page:\n%s", m.body)
	}
	r = b.get("/login?id=" + url.QueryEscape(id) + "&lang=en")
	if !strings.Contains(r.body, `<html lang="en">`) {
		t.Fatalf("no English after ?lang=en:\n%s", r.body)
	}
}
