package helper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// fakeTool fails or signs as told: a stand-in for a token in a unit test
// of the helper's handling (the real tokens run in cmd/egate's
// TestHelperBrowserLogin).
type fakeTool struct {
	factor string
	err    error
	signed []byte
}

func (f *fakeTool) Describe() string           { return "test token" }
func (f *fakeTool) Answers(factor string) bool { return factor == f.factor }
func (f *fakeTool) Sign(ctx context.Context, data []byte, pin PINFunc) ([]byte, error) {
	p, err := pin(ctx, f.Describe(), 3)
	if err != nil {
		return nil, err
	}
	clear(p)
	if f.err != nil {
		return nil, f.err
	}
	f.signed = data
	return append([]byte("signed:"), data...), nil
}

type fakeUI struct {
	out     bytes.Buffer
	confirm bool
	pins    int
}

func (u *fakeUI) Show(o *orders.Opened, data []byte, tool string) {
	fmt.Fprintf(&u.out, "SHOW %s\n", data)
}
func (u *fakeUI) Confirm(context.Context) (bool, error) { return u.confirm, nil }
func (u *fakeUI) PIN(context.Context, string, int) ([]byte, error) {
	u.pins++
	return []byte("123456"), nil
}
func (u *fakeUI) Say(msg string) { fmt.Fprintln(&u.out, msg) }

// TestHelperRun: what the helper does with each outcome on the device, and
// what the order then says to the page.
func TestHelperRun(t *testing.T) {
	db := storetest.SQLite(t)
	svc := orders.New(db, nil, func(_ context.Context, o *orders.Order, resp []byte, _ string) (orders.Verified, error) {
		if string(resp) != "signed:"+string(o.Data) {
			return orders.Verified{}, authn.ErrWrongAnswer
		}
		return orders.Verified{Result: authn.Result{Level: 4, AMR: "hwk"}}, nil
	})
	ts := httptest.NewServer(svc.DeviceAPI("", nil))
	t.Cleanup(ts.Close)
	browser := orders.BrowserHash("b")
	cases := []struct {
		name      string
		factor    string // the tool's
		err       error
		confirm   bool
		state     orders.State
		failCode  string
		say, want string
	}{
		{"signed", "ushield", nil, true, orders.Complete, "", "Signed.", ""},
		{"declined", "ushield", nil, false, orders.Cancelled, "declined", "Declined", "declined"},
		{"wrong PIN with retries left", "ushield", &WrongPINError{Retries: 2}, true, orders.Cancelled, "wrong_pin", "wrong PIN: 2 tries left", "wrong PIN"},
		{"blocked PIN", "ushield", ErrPINBlocked, true, orders.Cancelled, "pin_blocked", "Unblock it with its PUK", "blocked"},
		{"token pulled mid-signature", "ushield", fmt.Errorf("%w: CKR_DEVICE_REMOVED", ErrTokenRemoved), true, orders.Cancelled, "token_removed", "was removed", "removed"},
		{"no token for the order", "piv", nil, true, orders.Cancelled, "no_token", "needs a U-shield", "no token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, auto, err := svc.Create(context.Background(), orders.CreateRequest{Kind: orders.KindLogin, PassportID: "P1", Factor: "ushield", ChallengeID: "c",
				Text: "egate login for P1", Challenge: []byte("0123456789abcdef"), Browser: browser, ExpiresAt: time.Now().Add(time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			tool := &fakeTool{factor: tc.factor, err: tc.err}
			ui := &fakeUI{confirm: tc.confirm}
			h := &Helper{Client: &orders.Client{Base: ts.URL}, Tools: []Tool{tool}, UI: ui}
			res, err := h.Run(context.Background(), orders.OpenRequest{Ref: o.Ref, AutostartToken: auto})
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Run: %v, want %q", err, tc.want)
			}
			if res.State != tc.state || !strings.Contains(ui.out.String(), tc.say) {
				t.Fatalf("state %s, said %q", res.State, ui.out.String())
			}
			got, err := svc.Collect(context.Background(), o.Ref, browser)
			if err != nil || got.State != tc.state || got.FailCode != tc.failCode {
				t.Fatalf("the order: %+v %v", got, err)
			}
			if tc.state == orders.Complete && (string(tool.signed) != string(o.Data) || ui.pins != 1 || !strings.Contains(ui.out.String(), "SHOW "+string(o.Data))) {
				t.Fatalf("signed %q after showing %q", tool.signed, ui.out.String())
			}
		})
	}
	t.Run("a link naming another server", func(t *testing.T) {
		err := CheckServer(orders.Link{Ref: "r", Token: "t", Server: "https://phish.example"}, "https://passport.bank.example")
		if !errors.Is(err, ErrServer) {
			t.Fatal(err)
		}
	})
}

func TestDesktopEntry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"plain", []string{"--server", "https://passport.bank.example", "--piv"}, "Exec=/opt/egate/egate helper --server https://passport.bank.example --piv %u\n"},
		{"quoted", []string{"--token", "alice's key", "--module", "/usr/lib/x 1.so"}, `Exec=/opt/egate/egate helper --token "alice's key" --module "/usr/lib/x 1.so" %u` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := DesktopEntry("/opt/egate/egate", tc.args)
			if !strings.Contains(e, tc.want) || !strings.Contains(e, "MimeType=x-scheme-handler/egate;\n") || !strings.Contains(e, "Terminal=true\n") {
				t.Fatalf("entry:\n%s", e)
			}
		})
	}
}
