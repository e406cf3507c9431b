package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/limits"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// fakePassport stands in for the passport's customer APIs in these unit
// tests of the pages (authsvc's TestSelfServiceAPI tests the API itself
// on its real stacks): it keeps alice's reserved message, own limits and
// tools, answers refusals as the real API does, and records the calls.
type fakePassport struct {
	mu       sync.Mutex
	reserved string
	own      limits.Table
	tools    []Tool
	alerts   []Alert
	calls    []string
	refuse   map[string][2]any // path → {status, code}
}

func newFakePassport(t *testing.T) (*fakePassport, *Passport) {
	f := &fakePassport{reserved: "red lantern 88", own: limits.Default(), refuse: map[string][2]any{},
		tools: []Tool{{Tool: "sms", Ref: "138****5678", Level: 2, Status: "active"}, {Tool: "gridcard", ID: "GC0042", Ref: "…0042", Level: 2, Status: "active"},
			{Tool: "otp", ID: "TOTP-0001/1", Ref: "TOTP-0001", Level: 3, Status: "active"}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer tok-p-alice" {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":{"code":"invalid_token","message":"x"}}`)
			return
		}
		var in map[string]any
		json.NewDecoder(r.Body).Decode(&in)
		b, _ := json.Marshal(in)
		f.calls = append(f.calls, r.Method+" "+r.URL.Path+" "+string(b))
		if rf, ok := f.refuse[r.URL.Path]; ok {
			w.WriteHeader(rf[0].(int))
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": rf[1].(string), "message": "refused"}})
			return
		}
		switch r.Method + " " + r.URL.Path {
		case "GET /api/v1/self":
			json.NewEncoder(w).Encode(Self{Level: 2, ReservedMessage: f.reserved, Mobile: "13800138000", Tools: f.tools, Limits: limits.Default(), OwnLimits: f.own, Usage: limits.Usage{Day: 1_000_00}})
		case "PUT /api/v1/self/reserved-message":
			f.reserved = in["reserved_message"].(string)
			w.WriteHeader(204)
		case "PUT /api/v1/self/limits":
			lv := int(in["level"].(float64))
			f.own[lv-1] = limits.Limit{Level: lv, PerTxn: int64(in["per_transaction"].(float64)), PerDay: int64(in["per_day"].(float64)), PerYear: int64(in["per_year"].(float64))}
			io.WriteString(w, `{}`)
		case "POST /api/v1/self/tools/lost":
			for i := range f.tools {
				if f.tools[i].ID == in["id"] {
					f.tools[i].Status = "revoked"
				}
			}
			io.WriteString(w, `{}`)
		case "PUT /api/v1/self/withdrawal-pin":
			w.WriteHeader(204)
		case "POST /api/v1/self/tools/otp", "POST /api/v1/password":
			w.WriteHeader(201)
			io.WriteString(w, `{}`)
		case "GET /api/v1/alerts":
			json.NewEncoder(w).Encode(map[string]any{"alerts": f.alerts})
		default:
			w.WriteHeader(404)
		}
	}))
	t.Cleanup(srv.Close)
	return f, &Passport{Issuer: srv.URL}
}

// wrote checks that the calls since the last reset that change something
// (not GET) are exactly call, or none when call is "".
func (f *fakePassport) wrote(t *testing.T, call string) {
	t.Helper()
	f.mu.Lock()
	var writes []string
	for _, c := range f.calls {
		if !strings.HasPrefix(c, "GET ") {
			writes = append(writes, c)
		}
	}
	f.mu.Unlock()
	if (call == "" && len(writes) != 0) || (call != "" && (len(writes) != 1 || writes[0] != call)) {
		t.Errorf("passport calls %q, want %q", writes, call)
	}
}

func (f *fakePassport) callCount() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.calls) }

// The self-service page: below level 2 it offers the step-up and its forms
// change nothing; at level 2 it shows the reserved message, the limits and
// the tools, and each form goes to the passport in the API's units (fen),
// with the passport's refusals said as sentences in the page's language.
func TestSettingsPage(t *testing.T) {
	r := newRig(t, storetest.SQLite(t))
	fp, pp := newFakePassport(t)
	r.pages.Passport = pp
	low := r.as(t, "p-alice", "en")
	u, _ := url.Parse(r.srv.URL)
	low.c.Jar.SetCookies(u, []*http.Cookie{{Name: "test_level", Value: "1"}})
	if st, page := low.do("GET", "/settings", nil); st != 200 || !strings.Contains(page, `id="stepup"`) || !strings.Contains(page, `href="/login?level=2"`) || strings.Contains(page, "reserved_message") {
		t.Fatalf("level-1 settings: %d %s", st, page)
	}
	if st, page := low.do("POST", "/settings/reserved-message", url.Values{"reserved_message": {"stolen"}}); st != 403 || !strings.Contains(page, `data-code="step_up_required"`) {
		t.Fatalf("level-1 POST: %d %s", st, page)
	}
	if n := fp.callCount(); n != 0 {
		t.Fatalf("a level-1 session called the passport %d times", n)
	}

	for _, lang := range []string{"en", "zh-CN"} {
		_, page := r.as(t, "p-alice", lang).do("GET", "/settings", nil)
		for _, want := range []string{`id="reserved-now">red lantern 88</b>`, `<tr data-level="3"><td>3</td>`, `name="serial"`, `id="enrol"`, `data-tool="gridcard" data-status="active"`, `value="GC0042"`} {
			if !strings.Contains(page, want) {
				t.Errorf("%s settings page lacks %q:\n%s", lang, want, page)
			}
		}
		if lang == "zh-CN" && (!strings.Contains(page, "50,000.00") || !strings.Contains(page, "动态口令牌") || strings.Contains(page, "Report lost")) {
			t.Errorf("zh page:\n%s", page)
		}
	}

	alice := r.as(t, "p-alice", "en")
	cases := []struct {
		name, path string
		form       url.Values
		refuse     [2]any
		status     int
		want       string
		call       string // the passport call made ("" none)
	}{
		{"reserved message", "/settings/reserved-message", url.Values{"reserved_message": {" blue kite 7 "}}, [2]any{}, 200, "reserved message is changed", `PUT /api/v1/self/reserved-message {"reserved_message":"blue kite 7"}`},
		{"empty reserved message", "/settings/reserved-message", url.Values{"reserved_message": {"  "}}, [2]any{}, 400, "1–64 characters", ""},
		{"lower a limit", "/settings/limits", url.Values{"level": {"3"}, "per_transaction": {"100"}, "per_day": {"200.5"}, "per_year": {"5,000"}}, [2]any{}, 200, "limits are changed",
			`PUT /api/v1/self/limits {"level":3,"per_day":20050,"per_transaction":10000,"per_year":500000}`},
		{"block a level", "/settings/limits", url.Values{"level": {"2"}, "per_transaction": {"0"}, "per_day": {"0"}, "per_year": {"0"}}, [2]any{}, 200, "limits are changed",
			`PUT /api/v1/self/limits {"level":2,"per_day":0,"per_transaction":0,"per_year":0}`},
		{"a limit not a number", "/settings/limits", url.Values{"level": {"3"}, "per_transaction": {"lots"}, "per_day": {"1"}, "per_year": {"1"}}, [2]any{}, 400, "at most two decimals", ""},
		{"a fractional fen", "/settings/limits", url.Values{"level": {"3"}, "per_transaction": {"1.005"}, "per_day": {"1"}, "per_year": {"1"}}, [2]any{}, 400, "at most two decimals", ""},
		{"raise a limit", "/settings/limits", url.Values{"level": {"3"}, "per_transaction": {"60000"}, "per_day": {"500000"}, "per_year": {"5000000"}}, [2]any{422, "limit_above_bank"}, 422, "not raise it above the bank",
			`PUT /api/v1/self/limits {"level":3,"per_day":50000000,"per_transaction":6000000,"per_year":500000000}`},
		{"bind with wrong codes", "/settings/otp", url.Values{"serial": {"TOTP-0002"}, "code1": {"1"}, "code2": {"2"}}, [2]any{401, "wrong_answer"}, 422, "codes are wrong",
			`POST /api/v1/self/tools/otp {"code1":"1","code2":"2","serial":"TOTP-0002"}`},
		{"bind another's token", "/settings/otp", url.Values{"serial": {"TOTP-0009"}, "code1": {"1"}, "code2": {"2"}}, [2]any{409, "token_taken"}, 409, "cannot be bound",
			`POST /api/v1/self/tools/otp {"code1":"1","code2":"2","serial":"TOTP-0009"}`},
		{"bind without codes", "/settings/otp", url.Values{"serial": {"TOTP-0002"}}, [2]any{}, 400, "Give the serial and two codes", ""},
		{"bind", "/settings/otp", url.Values{"serial": {"TOTP-0002"}, "code1": {"123456"}, "code2": {"234567"}}, [2]any{}, 200, "token is bound",
			`POST /api/v1/self/tools/otp {"code1":"123456","code2":"234567","serial":"TOTP-0002"}`},
		{"report lost", "/settings/lost", url.Values{"tool": {"gridcard"}, "id": {"GC0042"}}, [2]any{}, 200, "Reported lost", `POST /api/v1/self/tools/lost {"id":"GC0042","tool":"gridcard"}`},
		{"report lost twice", "/settings/lost", url.Values{"tool": {"gridcard"}, "id": {"GC0042"}}, [2]any{404, "no_such_tool"}, 404, "no such tool in use",
			`POST /api/v1/self/tools/lost {"id":"GC0042","tool":"gridcard"}`},
		{"wrong current password", "/settings/password", url.Values{"old_password": {"nope"}, "new_password": {"Green-Fox-93"}}, [2]any{401, "bad_credentials"}, 422, "current password is not correct",
			`POST /api/v1/password {"new_password":"Green-Fox-93","old_password":"nope"}`},
		{"weak password", "/settings/password", url.Values{"old_password": {"x"}, "new_password": {"alice1"}}, [2]any{422, "weak_password"}, 422, "too weak",
			`POST /api/v1/password {"new_password":"alice1","old_password":"x"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fp.mu.Lock()
			fp.calls, fp.refuse = nil, map[string][2]any{}
			if c.refuse[0] != nil {
				fp.refuse["/api"+strings.Replace(strings.Replace(strings.Replace(strings.Replace(c.path, "/settings/reserved-message", "/v1/self/reserved-message", 1),
					"/settings/limits", "/v1/self/limits", 1), "/settings/otp", "/v1/self/tools/otp", 1), "/settings/lost", "/v1/self/tools/lost", 1)] = c.refuse
				fp.refuse["/api/v1/password"] = c.refuse
			}
			fp.mu.Unlock()
			st, page := alice.do("POST", c.path, c.form)
			if st != c.status || !strings.Contains(page, c.want) {
				t.Errorf("%d %q, want %d with %q", st, page, c.status, c.want)
			}
			fp.wrote(t, c.call)
		})
	}
	if fp.reserved != "blue kite 7" || fp.own[2].PerTxn != 100_00 || fp.tools[1].Status != "revoked" {
		t.Errorf("passport state: %q %+v %+v", fp.reserved, fp.own, fp.tools)
	}
}

// The withdrawal PIN form: below level 3 the section offers the step-up
// to 3 and a POST sends nothing; at level 3 the form is there in both
// languages, two different PINs or a PIN not of 6 digits are refused
// before the passport is asked, the passport's weak_pin is said as a
// sentence, and a good PIN goes to PUT /api/v1/self/withdrawal-pin and is
// never shown back.
func TestSettingsWithdrawalPIN(t *testing.T) {
	r := newRig(t, storetest.SQLite(t))
	fp, pp := newFakePassport(t)
	r.pages.Passport = pp
	two := r.as(t, "p-alice", "en")
	u, _ := url.Parse(r.srv.URL)
	two.c.Jar.SetCookies(u, []*http.Cookie{{Name: "test_level", Value: "2"}})
	if st, page := two.do("GET", "/settings", nil); st != 200 || !strings.Contains(page, `id="wdpin-raise" href="/login?level=3"`) || strings.Contains(page, `name="pin"`) {
		t.Fatalf("level-2 settings: %d %s", st, page)
	}
	if st, page := two.do("POST", "/settings/withdrawal-pin", url.Values{"pin": {"385017"}, "pin_again": {"385017"}}); st != 403 || !strings.Contains(page, `data-code="step_up_required"`) || !strings.Contains(page, "needs level 3") {
		t.Fatalf("level-2 POST: %d %s", st, page)
	}
	fp.wrote(t, "")
	for lang, want := range map[string]string{"en": "New withdrawal PIN (6 digits)", "zh-CN": "新取款密码（6 位数字）"} {
		if _, page := r.as(t, "p-alice", lang).do("GET", "/settings", nil); !strings.Contains(page, want) || !strings.Contains(page, `name="pin_again"`) || strings.Contains(page, `id="wdpin-raise"`) {
			t.Errorf("%s level-3 settings lack the form:\n%s", lang, page)
		}
	}

	alice := r.as(t, "p-alice", "en")
	cases := []struct {
		name       string
		pin, again string
		refuse     [2]any
		status     int
		want       string
		call       string
	}{
		{"the two differ", "385017", "385018", [2]any{}, 400, "The two PINs differ", ""},
		{"five digits", "38501", "38501", [2]any{}, 400, "is 6 digits", ""},
		{"not digits", "38501a", "38501a", [2]any{}, 400, "is 6 digits", ""},
		{"weak", "654321", "654321", [2]any{422, "weak_pin"}, 422, "too easy to guess", `PUT /api/v1/self/withdrawal-pin {"pin":"654321"}`},
		{"good", "385017", "385017", [2]any{}, 200, "withdrawal PIN is set", `PUT /api/v1/self/withdrawal-pin {"pin":"385017"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fp.mu.Lock()
			fp.calls, fp.refuse = nil, map[string][2]any{}
			if c.refuse[0] != nil {
				fp.refuse["/api/v1/self/withdrawal-pin"] = c.refuse
			}
			fp.mu.Unlock()
			st, page := alice.do("POST", "/settings/withdrawal-pin", url.Values{"pin": {c.pin}, "pin_again": {c.again}})
			if st != c.status || !strings.Contains(page, c.want) || strings.Contains(page, c.pin) {
				t.Errorf("%d %q, want %d with %q and without the PIN", st, page, c.status, c.want)
			}
			fp.wrote(t, c.call)
		})
	}
}

// The login history and the alerts, in both languages: devices and places
// said for a person, times in Asia/Shanghai, amounts in yuan with grouping.
func TestLoginsAndAlertsPages(t *testing.T) {
	r := newRig(t, storetest.SQLite(t))
	fp, pp := newFakePassport(t)
	r.pages.Passport = pp
	at := time.Date(2026, 12, 3, 1, 2, 3, 0, time.UTC) // 09:02:03 in Shanghai
	body := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	fp.alerts = []Alert{
		{ID: "1", Kind: "login", At: at, Body: body(map[string]any{"client": "ebank", "device": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36", "ip": "203.0.113.5", "level": 2})},
		{ID: "2", Kind: "login_failed", At: at, Body: body(map[string]any{"client": "mall", "device": "curl/8.5", "ip": "127.0.0.1", "factor": "password"})},
		{ID: "3", Kind: "balance", At: at, Body: body(map[string]any{"account": "6299…0001", "amount": -123456789, "balance": 1000000, "currency": "CNY"})},
		{ID: "4", Kind: "tool", At: at, Body: body(map[string]any{"event": "lost", "tool": "gridcard", "ref": "…0042"})},
	}
	for _, c := range []struct {
		lang   string
		logins []string
		alerts []string
	}{
		{"zh-CN", []string{"2026-12-03 09:02:03", "Chrome（Windows）", "203.0.113.5", "登录失败：密码错误", "本机（127.0.0.1）", "商城"},
			[]string{"账户 6299…0001 转出 1,234,567.89 元，余额 10,000.00 元。", "您的密码卡（…0042）已挂失并停用。"}},
		{"en", []string{"2026-12-03 09:02:03", "Chrome on Windows", "failed: wrong password", "this computer (127.0.0.1)", "Mall"},
			[]string{"1,234,567.89 yuan out of 6299…0001; balance 10,000.00 yuan.", "Your Grid card (…0042) was reported lost"}},
	} {
		cl := r.as(t, "p-alice", c.lang)
		st, page := cl.do("GET", "/logins", nil)
		if st != 200 || strings.Contains(page, "data-kind=\"balance\"") {
			t.Errorf("%s logins: %d", c.lang, st)
		}
		for _, w := range c.logins {
			if !strings.Contains(page, w) {
				t.Errorf("%s logins lack %q:\n%s", c.lang, w, page)
			}
		}
		_, page = cl.do("GET", "/alerts", nil)
		for _, w := range c.alerts {
			if !strings.Contains(page, w) {
				t.Errorf("%s alerts lack %q:\n%s", c.lang, w, page)
			}
		}
	}
	// An expired access token: through the passport again.
	if st, _ := r.as(t, "p-bob", "en").do("GET", "/logins", nil); st != http.StatusFound {
		t.Errorf("bob's unknown token: %d", st)
	}
}

// The logged-in home page: who, at which level and with which tools said
// for a person (not the RFC 8176 codes), the accounts' available money and
// their total, in both languages.
func TestHomePage(t *testing.T) {
	r := newRig(t, storetest.SQLite(t))
	r.pages.Customer = func(req *http.Request) (Customer, bool) {
		return Customer{ID: "p-alice", Name: "alice", Level: 2, AMR: []string{"pwd", "sms", "mfa"}, AuthTime: time.Date(2026, 12, 3, 1, 2, 3, 0, time.UTC)}, true
	}
	srv := httptest.NewServer(r.pages.Home())
	defer srv.Close()
	for _, c := range []struct {
		lang string
		want []string
	}{
		{"zh-CN", []string{"<h1>alice，您好</h1>", `<b id="level">2</b> · 密码、短信验证码 · 登录时间 2026-12-03 09:02:03`, `id="total"><b>1,050,000.00</b>`, "可用余额合计"}},
		{"en", []string{"<h1>Welcome, alice</h1>", `<b id="level">2</b> · password, SMS code · since 2026-12-03 09:02:03`, `id="total"><b>1,050,000.00</b>`}},
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/", nil)
		req.Header.Set("Accept-Language", c.lang)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, w := range c.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s home lacks %q:\n%s", c.lang, w, b)
			}
		}
		if strings.Contains(string(b), "mfa") || strings.Contains(string(b), "pwd") {
			t.Errorf("%s home shows method codes", c.lang)
		}
	}
}

// A visitor's home page: the bank's welcome and the way to log in, no
// navigation to pages that need a login and no logout.
func TestVisitorHomePage(t *testing.T) {
	r := newRig(t, storetest.SQLite(t))
	r.pages.Customer = func(*http.Request) (Customer, bool) { return Customer{}, false }
	r.pages.Others = map[string]string{"mall": "http://mall.example"}
	srv := httptest.NewServer(r.pages.Home())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/?lang=en")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	for _, want := range []string{`<a class="button" id="login" href="/login">Log in with your passport</a>`, `<a href="http://mall.example">Mall</a>`, "<h1>eBank</h1>"} {
		if !strings.Contains(page, want) {
			t.Errorf("visitor home lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, `id="logout"`) || strings.Contains(page, `id="nav-accounts"`) {
		t.Errorf("visitor home offers logout or the accounts:\n%s", page)
	}
}

// Receive by mobile number: the customer's own number as the passport has
// it (never one from the form) is pointed at one of their accounts; another
// customer's account is refused and changes nothing.
func TestReceiveByMobile(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		_, pp := newFakePassport(t)
		r.pages.Passport = pp
		alice := r.as(t, "p-alice", "en")
		lookup := func() string {
			a, _, err := r.pages.Mobiles.Lookup(context.Background(), "13800138000")
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		if _, page := alice.do("GET", "/settings", nil); !strings.Contains(page, "Transfers to your mobile number 138****8000 go into account "+r.alice[0].Number) {
			t.Fatalf("settings page:\n%s", page)
		}
		cases := []struct {
			name   string
			form   url.Values
			status int
			want   string
			into   string
		}{
			{"into her savings", url.Values{"account": {r.alice[1].Number}}, 200, "now receives into that account", r.alice[1].Number},
			{"into bob's account", url.Values{"account": {r.bob[0].Number}}, 400, "choose one of your open accounts", r.alice[1].Number},
			{"a number from the form is not taken", url.Values{"account": {r.alice[0].Number}, "mobile": {"13900139000"}}, 200, "now receives", r.alice[0].Number},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if st, page := alice.do("POST", "/settings/mobile", c.form); st != c.status || !strings.Contains(page, c.want) {
					t.Errorf("%d, want %d with %q:\n%s", st, c.status, c.want, page)
				}
				if got := lookup(); got != c.into {
					t.Errorf("13800138000 receives into %s, want %s", got, c.into)
				}
			})
		}
		if bob, _, _ := r.pages.Mobiles.Lookup(context.Background(), "13900139000"); bob != r.bob[0].Number {
			t.Errorf("bob's number moved to %s", bob)
		}
	})
}
