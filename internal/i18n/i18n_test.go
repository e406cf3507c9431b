package i18n

import (
	"github.com/egate-bank/egate/authsvc/intent"

	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCatalogueComplete(t *testing.T) {
	t.Parallel()
	for _, k := range Keys() {
		m, _ := lookup(k)
		if strings.TrimSpace(m[0]) == "" || strings.TrimSpace(m[1]) == "" {
			t.Errorf("%s: a language is missing: %q", k, m)
		}
		if strings.Count(m[0], "%") != strings.Count(m[1], "%") {
			t.Errorf("%s: the two languages take different arguments: %q", k, m)
		}
	}
}

func TestKeysUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, k := range Keys() {
		if seen[k] {
			t.Errorf("%s is in two catalogues", k)
		}
		seen[k] = true
	}
}

func TestPick(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, query, cookie, accept, want string
	}{
		{"default is Chinese", "", "", "", ZH},
		{"English browser", "", "", "en-US,en;q=0.9", EN},
		{"Chinese browser", "", "", "zh-CN,zh;q=0.9,en;q=0.5", ZH},
		{"Traditional Chinese gets Simplified", "", "", "zh-TW", ZH},
		{"unknown language gets Chinese", "", "", "fr-FR", ZH},
		{"English preferred over French", "", "", "fr;q=0.9,en;q=0.8", EN},
		{"cookie beats the browser", "", "en", "zh-CN", EN},
		{"query beats the cookie", "lang=zh", "en", "en", ZH},
		{"bad cookie ignored", "", "xx", "en", EN},
		{"garbage header", "", "", ";;;", ZH},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/?"+c.query, nil)
			if c.cookie != "" {
				r.AddCookie(&http.Cookie{Name: Cookie, Value: c.cookie})
			}
			if c.accept != "" {
				r.Header.Set("Accept-Language", c.accept)
			}
			if got := Pick(r); got != c.want {
				t.Errorf("Pick = %q, want %q", got, c.want)
			}
		})
	}
}

func TestPickOr(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/", nil)
	if got := PickOr(r, EN); got != EN {
		t.Errorf("no language stated: %q", got)
	}
	r.Header.Set("Accept-Language", "zh-CN")
	if got := PickOr(r, EN); got != ZH {
		t.Errorf("a Chinese browser: %q", got)
	}
	r = httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: Cookie, Value: ZH})
	if got := PickOr(r, EN); got != ZH {
		t.Errorf("the cookie: %q", got)
	}
}

func TestRememberSetsTheCookie(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	if got := Remember(w, httptest.NewRequest("GET", "/?lang=en", nil)); got != EN {
		t.Fatalf("Remember = %q", got)
	}
	c := w.Result().Cookies()
	if len(c) != 1 || c[0].Name != Cookie || c[0].Value != EN {
		t.Fatalf("cookies = %v", c)
	}
	w = httptest.NewRecorder()
	Remember(w, httptest.NewRequest("GET", "/", nil))
	if len(w.Result().Cookies()) != 0 {
		t.Error("no ?lang= must set no cookie")
	}
}

func TestPrinter(t *testing.T) {
	t.Parallel()
	zh := Printer{Lang: ZH, Zone: Shanghai()}
	en := Printer{Lang: EN, Zone: time.UTC}
	if got := zh.T("xfer.done", "1,000.00", "a", "b"); got != "转账成功：1,000.00 元已从 a 转至 b。" {
		t.Errorf("zh = %q", got)
	}
	if got := en.T("xfer.done", "1,000.00", "a", "b"); got != "Done: 1,000.00 yuan from a to b." {
		t.Errorf("en = %q", got)
	}
	if got := en.T("no.such.key"); got != "no.such.key" {
		t.Errorf("unknown key = %q", got)
	}
	if got := zh.T("xfer.summary", "1.00", "A", "B"); got != "从 A 向 B 转账 1.00 元" {
		t.Errorf("zh summary = %q", got)
	}
	if zh.IntentLang() != intent.LangZH || en.IntentLang() != intent.LangEN {
		t.Errorf("intent languages %q, %q", zh.IntentLang(), en.IntentLang())
	}
	ts := time.Date(2026, 12, 3, 16, 30, 0, 0, time.UTC)
	if got := zh.Time(ts); got != "2026-12-04 00:30:00" {
		t.Errorf("Shanghai time = %q", got)
	}
	if got := en.Time(ts); got != "2026-12-03 16:30:00" {
		t.Errorf("UTC time = %q", got)
	}
}

// TestPageFor: the switch link is this page in the other language, or home
// in it after a POST; a ?lang= choice is remembered in the cookie.
func TestPageFor(t *testing.T) {
	tests := []struct {
		name, method, target        string
		wantLang, wantCode, wantURL string
		wantCookie                  bool
	}{
		{"chinese page keeps its query", "GET", "/history?from=2026-12-01&lang=zh", ZH, EN, "/history?from=2026-12-01&lang=en", true},
		{"english page", "GET", "/history?lang=en", EN, ZH, "/history?lang=zh", true},
		{"after a form, home", "POST", "/transfer?lang=en", EN, ZH, "/accounts?lang=zh", true},
		{"no choice made", "GET", "/accounts", "", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, nil)
			w := httptest.NewRecorder()
			pg := PageFor(w, r, time.UTC, "/accounts")
			if tc.wantLang == "" { // the browser's Accept-Language decides; the link is the other one
				other, _ := pg.P.Other()
				if pg.LangCode != other || pg.LangURL != "/accounts?lang="+other {
					t.Fatalf("%+v", pg)
				}
			} else if pg.P.Lang != tc.wantLang || pg.LangCode != tc.wantCode || pg.LangURL != tc.wantURL {
				t.Fatalf("got lang %s, switch %s %s; want %s, %s %s", pg.P.Lang, pg.LangCode, pg.LangURL, tc.wantLang, tc.wantCode, tc.wantURL)
			}
			if got := len(w.Result().Cookies()) > 0; got != tc.wantCookie {
				t.Fatalf("cookie set %v, want %v", got, tc.wantCookie)
			}
		})
	}
}
