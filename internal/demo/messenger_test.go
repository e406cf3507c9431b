package demo

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// payInMessenger: alice, logged in at ebank, opens the messenger without
// a password (single sign-on), finds the seeded group of alice, bob and
// carol, sends bob 12.34 yuan in it through the real transaction API (the
// SMS code from the sink) and ebank's transfers API as the demo's back-end
// client; her alert conversation holds the passport's login alerts; the
// ledger check passes.
func payInMessenger(t *testing.T, c *http.Client, passportURL string) {
	t.Helper()
	read := func(r *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return string(b)
	}
	m := "http://" + lastCfg.Platforms.Messenger.Listen
	if body := read(c.Get(m + "/login")); !strings.Contains(body, `id="chats"`) {
		t.Fatalf("no single sign-on into the messenger:\n%s", body)
	}
	body := read(c.Get(m + "/chats?lang=en"))
	g := regexp.MustCompile(`<a href="/chats/([0-9a-f]+)">Friends 朋友们</a>`).FindStringSubmatch(body)
	if g == nil {
		t.Fatalf("no seeded group:\n%s", body)
	}
	body = read(c.Get(m + "/chats/" + g[1]))
	bob := regexp.MustCompile(`<option value="([^"]+)">bob</option>`).FindStringSubmatch(body)
	key := regexp.MustCompile(`name="key" value="([^"]+)"`).FindStringSubmatch(body)
	if bob == nil || key == nil || !strings.Contains(body, "Hotpot on Friday") {
		t.Fatalf("group page:\n%s", body)
	}
	f := url.Values{"what": {"transfer"}, "conv": {g[1]}, "to": {bob[1]}, "amount": {"12.34"}, "memo": {"taxi"}, "key": {key[1]}}
	body = read(c.PostForm(m+"/pay", f))
	if !strings.Contains(body, `id="factor_sms"`) {
		t.Fatalf("no SMS among the tools of the decision:\n%s", body)
	}
	f.Set("factor", "sms")
	body = read(c.PostForm(m+"/pay/challenge", f))
	cid := regexp.MustCompile(`name="challenge_id" value="([^"]+)"`).FindStringSubmatch(body)
	if cid == nil {
		t.Fatalf("no challenge:\n%s", body)
	}
	alice := &demoPerson{t: t, name: "alice", mobile: "13800138000", passport: passportURL}
	f.Set("challenge_id", cid[1])
	f.Set("response", alice.smsCode()) // the newest code: a login alert may have come after it
	body = read(c.PostForm(m+"/pay/confirm", f))
	if !strings.Contains(body, `id="done"`) || !strings.Contains(body, "<b>alice</b> sent <b>bob</b> <b>12.34 yuan</b>") {
		t.Fatalf("friend transfer not made:\n%s", body)
	}
	if body := read(c.Get(m + "/alerts")); !strings.Contains(body, `data-kind="alert"`) || !strings.Contains(body, "Login to <b>ebank</b>") {
		t.Fatalf("alert conversation:\n%s", body)
	}
	db, err := store.Open(context.Background(), store.Config{Driver: lastCfg.Database.Driver, DSN: lastCfg.Database.DSN})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := ledger.Check(context.Background(), db); err != nil {
		t.Fatalf("ledger check after the friend transfer: %v", err)
	}
}
