// Package i18n is the message catalogue of the customer's pages, shared by
// the passport (authsvc) and the platforms: Simplified Chinese and English,
// chosen from the lang cookie (set by ?lang=zh or ?lang=en on any page), else
// from Accept-Language, else Chinese. Every message exists in both languages
// (TestCatalogueComplete).
package i18n

import (
	"fmt"
	"net/http"
	"time"

	"golang.org/x/text/language"

	"github.com/egate-bank/egate/authsvc/intent"
)

// Languages the pages speak.
const (
	ZH = "zh" // Simplified Chinese, the default
	EN = "en"
)

// Cookie keeps the customer's choice of language.
const Cookie = "egate_lang"

var matcher = language.NewMatcher([]language.Tag{language.SimplifiedChinese, language.English})

// Pick returns the language of r: a ?lang= on the request, the cookie, then
// Accept-Language, then Chinese.
func Pick(r *http.Request) string { return PickOr(r, ZH) }

// PickOr is Pick with def for a request that states no language at all
// (no ?lang=, cookie or Accept-Language: not a browser). The passport uses
// English there, for the API-like clients that read its pages.
func PickOr(r *http.Request, def string) string {
	if r.URL.Query().Get("lang") == "" && r.Header.Get("Accept-Language") == "" {
		if c, err := r.Cookie(Cookie); err != nil || (c.Value != ZH && c.Value != EN) {
			return def
		}
	}
	return pick(r)
}

func pick(r *http.Request) string {
	if l := r.URL.Query().Get("lang"); l == ZH || l == EN {
		return l
	}
	if c, err := r.Cookie(Cookie); err == nil && (c.Value == ZH || c.Value == EN) {
		return c.Value
	}
	tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil || len(tags) == 0 {
		return ZH
	}
	_, i, conf := matcher.Match(tags...)
	if conf == language.No {
		return ZH
	}
	if i == 1 {
		return EN
	}
	return ZH
}

// Remember stores a ?lang= choice in the cookie (a year), so that the
// following pages keep it. It returns the request's language.
func Remember(w http.ResponseWriter, r *http.Request) string {
	l := r.URL.Query().Get("lang")
	if l == ZH || l == EN {
		http.SetCookie(w, &http.Cookie{Name: Cookie, Value: l, Path: "/", MaxAge: 365 * 24 * 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		return l
	}
	return Pick(r)
}

// Printer translates for one language.
type Printer struct {
	Lang string
	Zone *time.Location
}

// For returns the printer of r's language in zone (nil: Asia/Shanghai).
func For(r *http.Request, zone *time.Location) Printer {
	return In(Pick(r), zone)
}

// In returns the printer of lang in zone (nil: Asia/Shanghai).
func In(lang string, zone *time.Location) Printer {
	if zone == nil {
		zone = Shanghai()
	}
	return Printer{Lang: lang, Zone: zone}
}

// Shanghai is the customers' default time zone (UTC+8 if the zone database
// is missing).
func Shanghai() *time.Location {
	z, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return z
}

// T returns the message key in p's language, formatted with args like
// fmt.Sprintf. An unknown key returns the key itself, visible in a page and
// caught by the tests.
func (p Printer) T(key string, args ...any) string {
	m, ok := lookup(key)
	if !ok {
		return key
	}
	s := m[0]
	if p.Lang == EN {
		s = m[1]
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// IntentLang is the language of a transaction the customer starts on a
// page in p's language (intent.Intent.Lang): the text they confirm and sign
// is then in the page's language.
func (p Printer) IntentLang() string {
	if p.Lang == EN {
		return intent.LangEN
	}
	return intent.LangZH
}

// HTMLLang is the page's lang attribute.
func (p Printer) HTMLLang() string {
	if p.Lang == EN {
		return "en"
	}
	return "zh-Hans"
}

// Other is the language to switch to, and its name in itself.
func (p Printer) Other() (code, name string) {
	if p.Lang == EN {
		return ZH, "中文"
	}
	return EN, "English"
}

// Time formats t in the customer's zone.
func (p Printer) Time(t time.Time) string {
	return t.In(p.Zone).Format("2006-01-02 15:04:05")
}

// TimeMS formats Unix milliseconds in the customer's zone.
func (p Printer) TimeMS(ms int64) string { return p.Time(time.UnixMilli(ms)) }

// Has reports whether key is in the catalogue.
func Has(key string) bool { _, ok := lookup(key); return ok }

// catalogues are the message maps, each a part of the pages: a key is in
// one of them (TestKeysUnique).
var catalogues = []map[string][2]string{catalogue, ebankCatalogue, passportCatalogue}

func lookup(key string) ([2]string, bool) {
	for _, c := range catalogues {
		if m, ok := c[key]; ok {
			return m, true
		}
	}
	return [2]string{}, false
}

// Keys lists the catalogue's keys (for tests).
func Keys() []string {
	var out []string
	for _, c := range catalogues {
		for k := range c {
			out = append(out, k)
		}
	}
	return out
}

// Page is what every page of a platform knows of its language: the
// printer, and the link that switches the page to the other language.
type Page struct {
	P        Printer
	LangCode string // the other language's code
	LangName string // … and its name, in itself
	LangURL  string // this page in the other language
}

// PageFor remembers a ?lang= choice (Remember), picks the printer (For)
// and builds the switch link: this page with lang set to the other
// language, or home in it after a POST (a form's answer cannot be fetched
// again).
func PageFor(w http.ResponseWriter, r *http.Request, zone *time.Location, home string) Page {
	Remember(w, r)
	p := For(r, zone)
	code, name := p.Other()
	u := home + "?lang=" + code
	if r.Method != http.MethodPost {
		q := r.URL.Query()
		q.Set("lang", code)
		u = r.URL.Path + "?" + q.Encode()
	}
	return Page{P: p, LangCode: code, LangName: name, LangURL: u}
}
