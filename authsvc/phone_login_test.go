package authsvc

import (
	"bytes"
	"context"
	"encoding/base64"
	"html"
	"image/png"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/internal/store/storetest"
	simphone "github.com/egate-bank/egate/simulators/phone"
)

var qrImgRE = regexp.MustCompile(`id="qr" class="qr" alt="[^"]*" src="data:image/png;base64,([^"]+)"`)

// scanPage reads the animated QR off the page's image, as the phone's
// camera would (gozxing), never from the order itself.
func scanPage(t testing.TB, body string) string {
	t.Helper()
	m := qrImgRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no QR image on the page: %s", body)
	}
	b, err := base64.StdEncoding.DecodeString(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	qr, err := simphone.Scan(img)
	if err != nil {
		t.Fatal(err)
	}
	return qr
}

type phoneUI struct {
	pin   string
	shown string
	said  strings.Builder
}

func (u *phoneUI) Show(o *orders.Opened, data []byte)    { u.shown = string(data) }
func (u *phoneUI) Confirm(context.Context) (bool, error) { return true, nil }
func (u *phoneUI) PIN(context.Context) ([]byte, error)   { return []byte(u.pin), nil }
func (u *phoneUI) Say(msg string)                        { u.said.WriteString(msg + "\n") }

// TestPhoneApp binds the phone app (password and SMS code through the
// binding API), logs in at level 3 by scanning the page's QR image, and
// refuses a photo of the QR presented 10 s later, another order's page
// after the login, and wrong app PINs, counted to a lockout.
func TestPhoneApp(t *testing.T) {
	db := storetest.SQLite(t)
	fe := newFactorEnv(t, db)
	ctx := context.Background()
	smsCode := func(prompt string) (string, error) {
		msgs, err := fe.set.SMSSink.List(ctx, "13812345678", 1)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("SMS outbox: %v %v", msgs, err)
		}
		return smsRE.FindStringSubmatch(msgs[0].Body)[1], nil
	}
	if _, err := simphone.Bind(ctx, nil, fe.ts.URL, "alice", testPassword, func(string) (string, error) { return "000000", nil }, []byte("2468"), "x"); err == nil || !strings.Contains(err.Error(), "wrong_answer") {
		t.Fatalf("bind with a wrong SMS code: %v", err)
	}
	fe.clk.Add(time.Minute)
	if _, err := simphone.Bind(ctx, nil, fe.ts.URL, "alice", "wrong password", smsCode, []byte("2468"), "test phone"); err == nil || !strings.Contains(err.Error(), "bad_credentials") {
		t.Fatalf("bind with a wrong password: %v", err)
	}
	// After the wrong password the login page would ask a captcha, which
	// the app cannot show: binding waits for a sign-in on the page.
	if _, err := simphone.Bind(ctx, nil, fe.ts.URL, "alice", testPassword, smsCode, []byte("2468"), "x"); err == nil || !strings.Contains(err.Error(), "captcha_required") {
		t.Fatalf("bind after a wrong password: %v", err)
	}
	fe.browser().passwordLogin(newAuthz("mall", mallRedirect), "alice", testPassword)
	fe.clk.Add(time.Minute)
	app, err := simphone.Bind(ctx, nil, fe.ts.URL, "alice", testPassword, smsCode, []byte("2468"), "test phone")
	if err != nil {
		t.Fatal(err)
	}
	startAny := func(t *testing.T) (*browser, *authz, string, resp) {
		b := fe.browser()
		a := newAuthz("ebank", ebankRedirect)
		a.extra.Set("acr_values", "urn:egate:loa:3")
		r := b.passwordLogin(a, "alice", testPassword)
		var id string
		if m := idRE.FindStringSubmatch(r.body); m != nil {
			id = m[1]
		}
		return b, a, id, r
	}
	start := func(t *testing.T) (*browser, *authz, string, resp) {
		b, a, id, r := startAny(t)
		if m := factorRE.FindStringSubmatch(r.body); m == nil || m[1] != "phone" || strings.Contains(r.body, `id="autostart"`) {
			t.Fatalf("want the phone page with its QR: %s", r.body)
		}
		return b, a, id, r
	}

	t.Run("scan the page's QR and log in at level 3", func(t *testing.T) {
		b, a, id, r := start(t)
		// The page's next image (from collect) differs a second later.
		fe.clk.Add(time.Second)
		_, st, _ := b.collect(id, orderOf2(t, r.body))
		if st.QR == "" || strings.TrimPrefix(st.QR, "data:image/png;base64,") == html.UnescapeString(qrImgRE.FindStringSubmatch(r.body)[1]) {
			t.Fatalf("the collect poll gave no new QR image: %+v", st)
		}
		ui := &phoneUI{pin: "2468"}
		if err := app.Answer(ctx, nil, scanPage(t, r.body), ui); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ui.shown, "egate login for "+fe.pid+"\nChallenge: ") {
			t.Fatalf("the app showed %q", ui.shown)
		}
		tk := fe.exchange(a, a.codeFrom(t, b.finishOrder(id, orderOf2(t, r.body))))
		if c, err := fe.claims(tk.id); err != nil || c["acr"] != "urn:egate:loa:3" || !slicesEq(amrOf(c), []string{"pwd", "swk", "mfa"}) {
			t.Fatalf("claims %v %v", c, err)
		}
	})
	t.Run("a photo of the QR taken at second 0 and presented at second 10", func(t *testing.T) {
		_, _, _, r := start(t)
		qr := scanPage(t, r.body)
		fe.clk.Add(10 * time.Second)
		if err := app.Answer(ctx, nil, qr, &phoneUI{pin: "2468"}); err == nil || !strings.Contains(err.Error(), "qr_stale") {
			t.Fatalf("stale photo: %v", err)
		}
	})
	t.Run("a QR of another session", func(t *testing.T) {
		// Session 2's order named with session 1's time and MAC (a code
		// drawn for another browser's order): refused before the order is
		// opened; session 2's order stays pending and nothing is signed.
		b2, _, id2, r2 := start(t)
		_, _, _, r1 := start(t)
		one, two := strings.Split(scanPage(t, r1.body), "."), strings.Split(scanPage(t, r2.body), ".")
		forged := strings.Join([]string{two[0], two[1], one[2], one[3]}, ".")
		ui := &phoneUI{pin: "2468"}
		if err := app.Answer(ctx, nil, forged, ui); err == nil || !strings.Contains(err.Error(), "qr_malformed") || ui.shown != "" {
			t.Fatalf("another session's code: %v (shown %q)", err, ui.shown)
		}
		if _, st, raw := b2.collect(id2, orderOf2(t, r2.body)); st.State != "pending" {
			t.Fatalf("session 2's order after the forged code: %s", raw)
		}
		// Session 1's own code opens session 1's order only: the phone
		// shows that order's text, never session 2's.
		if err := app.Answer(ctx, nil, strings.Join(one, "."), ui); err != nil || !strings.HasPrefix(ui.shown, "egate login for "+fe.pid) {
			t.Fatalf("session 1's own code: %v", err)
		}
		if _, st, raw := b2.collect(id2, orderOf2(t, r2.body)); st.State != "pending" {
			t.Fatalf("session 2's order after session 1 signed: %s", raw)
		}
	})
	t.Run("wrong app PINs are counted and lock the phone", func(t *testing.T) {
		b, _, id, r := start(t)
		var last string
		for i := 0; ; i++ {
			if i == 20 {
				t.Fatal("the phone never locked")
			}
			err := app.Answer(ctx, nil, scanPage(t, r.body), &phoneUI{pin: "1111"})
			if err == nil || !strings.Contains(err.Error(), "wrong_answer") {
				t.Fatalf("wrong PIN %d: %v", i, err)
			}
			last = r.body
			r = b.finishOrder(id, orderOf2(t, r.body))
			if r.status == 403 {
				break
			}
			if r.status != 401 || errorCode(r.body) != "wrong_answer" {
				t.Fatalf("the page after a wrong PIN: %d %s", r.status, r.body)
			}
		}
		// Locked: the page says so and makes no new order for the phone;
		// the last order stays failed, even for the right PIN.
		if errorCode(r.body) != "locked" || strings.Contains(r.body, `id="qr"`) {
			t.Fatalf("the page after the lockout: %d %s", r.status, r.body)
		}
		if err := app.Answer(ctx, nil, scanPage(t, last), &phoneUI{pin: "2468"}); err == nil || !strings.Contains(err.Error(), "order_failed") {
			t.Fatalf("the right PIN on the failed order: %v", err)
		}
		// A new login is refused at the phone step too.
		_, _, _, r = startAny(t)
		if r.status != 403 || errorCode(r.body) != "locked" {
			t.Fatalf("a new login with a locked phone: %d %s", r.status, r.body)
		}
	})
}

var orderRefRE = regexp.MustCompile(`id="order" data-ref="([^"]+)"`)

// orderOf2 is the order ref of a page (with or without an autostart link).
func orderOf2(t testing.TB, body string) string {
	t.Helper()
	m := orderRefRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no order on the page: %s", body)
	}
	return m[1]
}

func slicesEq(a, b []string) bool { return strings.Join(a, " ") == strings.Join(b, " ") }
