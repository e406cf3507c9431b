package orders

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// sigVerifier accepts the response "signed:"+Data: a stand-in for the
// tools' verification (tested with real tokens in authsvc), counting calls.
type sigVerifier struct{ calls atomic.Int64 }

func (v *sigVerifier) verify(_ context.Context, o *Order, resp []byte, _ string) (Verified, error) {
	v.calls.Add(1)
	if string(resp) != "signed:"+string(o.Data) {
		return Verified{}, authn.ErrWrongAnswer
	}
	return Verified{Result: authn.Result{Factor: o.Factor, Level: 4, AMR: "hwk"}}, nil
}

type fixture struct {
	svc *Service
	clk *clock
	v   *sigVerifier
	cl  *Client
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	f := &fixture{clk: &clock{t: time.Unix(1_800_000_000, 0)}, v: &sigVerifier{}}
	f.svc = New(db, f.clk.Now, f.v.verify)
	ts := httptest.NewServer(f.svc.DeviceAPI("", nil))
	t.Cleanup(ts.Close)
	f.cl = &Client{Base: ts.URL}
	return f
}

func (f *fixture) create(t *testing.T, text string) (*Order, string) {
	t.Helper()
	o, auto, err := f.svc.Create(context.Background(), CreateRequest{Kind: KindLogin, PassportID: "P1", Factor: "ushield", ChallengeID: "c1",
		Context: "ar1", Text: text, Challenge: []byte("0123456789abcdef"), Browser: BrowserHash("browser-a"), ExpiresAt: f.clk.Now().Add(2 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	return o, auto
}

// TestOrderLifecycle walks an order from creation to its result through the
// device API, and every refusal on the way, on SQLite and PostgreSQL.
func TestOrderLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		browser := BrowserHash("browser-a")
		other := BrowserHash("browser-b")

		t.Run("autostart, sign, collect, finish once", func(t *testing.T) {
			f := newFixture(t, db)
			o, auto := f.create(t, "egate login for P1")
			if got, err := f.svc.Collect(ctx, o.Ref, browser); err != nil || got.State != Pending {
				t.Fatalf("collect pending: %v %v", got, err)
			}
			if _, err := f.cl.Open(ctx, OpenRequest{Ref: o.Ref, AutostartToken: auto + "x"}); code(err) != "unknown_order" {
				t.Fatalf("wrong autostart token: %v", err)
			}
			op, err := f.cl.Open(ctx, OpenRequest{Ref: o.Ref, AutostartToken: auto})
			if err != nil {
				t.Fatal(err)
			}
			data, err := op.SignedData()
			if err != nil || string(data) != "egate login for P1\nChallenge: 30313233343536373839616263646566" || op.Text != "egate login for P1" {
				t.Fatalf("opened %+v: %q %v", op, data, err)
			}
			if got, _ := f.svc.Collect(ctx, o.Ref, browser); got.State != UserSign {
				t.Fatalf("state after open: %s", got.State)
			}
			if _, err := f.cl.Open(ctx, OpenRequest{Ref: o.Ref, AutostartToken: auto}); code(err) != "order_in_use" {
				t.Fatalf("second open: %v", err)
			}
			if err := f.cl.Sign(ctx, o.Ref, "another-device", []byte("signed:"+string(data))); code(err) != "order_in_use" {
				t.Fatalf("sign by a device that did not open it: %v", err)
			}
			if _, err := f.svc.Finish(ctx, o.Ref, browser); !errors.Is(err, ErrNotComplete) {
				t.Fatalf("finish before signing: %v", err)
			}
			if err := f.cl.Sign(ctx, o.Ref, op.DeviceToken, []byte("signed:"+string(data))); err != nil {
				t.Fatal(err)
			}
			if err := f.cl.Sign(ctx, o.Ref, op.DeviceToken, []byte("signed:"+string(data))); code(err) != "order_done" {
				t.Fatalf("second completion: %v", err)
			}
			if n := f.v.calls.Load(); n != 1 {
				t.Fatalf("the tool verified %d times, want 1", n)
			}
			if _, err := f.svc.Collect(ctx, o.Ref, other); !errors.Is(err, ErrUnknown) {
				t.Fatalf("collect by another browser: %v", err)
			}
			if _, err := f.svc.Finish(ctx, o.Ref, other); !errors.Is(err, ErrUnknown) {
				t.Fatalf("finish by another browser: %v", err)
			}
			got, err := f.svc.Finish(ctx, o.Ref, browser)
			if err != nil || got.State != Complete || got.Result.Level != 4 || got.Result.AMR != "hwk" {
				t.Fatalf("finish: %+v %v", got, err)
			}
			if _, err := f.svc.Finish(ctx, o.Ref, browser); !errors.Is(err, ErrCollected) {
				t.Fatalf("second finish: %v", err)
			}
			if err := f.svc.CancelByBrowser(ctx, o.Ref, browser); !errors.Is(err, ErrDone) {
				t.Fatalf("cancel a completed order: %v", err)
			}
		})

		t.Run("a signature over other text fails the order", func(t *testing.T) {
			f := newFixture(t, db)
			o, auto := f.create(t, "Pay 100.00 CNY to Bob")
			op, err := f.cl.Open(ctx, OpenRequest{Ref: o.Ref, AutostartToken: auto})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.cl.Sign(ctx, o.Ref, op.DeviceToken, []byte("signed:Pay 900.00 CNY to Mallory")); code(err) != "wrong_answer" {
				t.Fatalf("other text: %v", err)
			}
			got, _ := f.svc.Collect(ctx, o.Ref, browser)
			if got.State != Failed || got.FailCode != "wrong_answer" {
				t.Fatalf("after a refused signature: %s %s", got.State, got.FailCode)
			}
			d, _ := op.SignedData()
			if err := f.cl.Sign(ctx, o.Ref, op.DeviceToken, []byte("signed:"+string(d))); code(err) != "order_failed" {
				t.Fatalf("the right signature after failing: %v", err)
			}
		})

		t.Run("expired", func(t *testing.T) {
			f := newFixture(t, db)
			o, auto := f.create(t, "egate login for P1")
			op, err := f.cl.Open(ctx, OpenRequest{Ref: o.Ref, AutostartToken: auto})
			if err != nil {
				t.Fatal(err)
			}
			f.clk.Add(2 * time.Minute)
			d, _ := op.SignedData()
			if err := f.cl.Sign(ctx, o.Ref, op.DeviceToken, []byte("signed:"+string(d))); code(err) != "order_expired" {
				t.Fatalf("sign after expiry: %v", err)
			}
			if got, _ := f.svc.Collect(ctx, o.Ref, browser); got.State != Expired {
				t.Fatalf("state %s", got.State)
			}
			o2, auto2 := f.create(t, "egate login for P1")
			f.clk.Add(3 * time.Minute)
			if _, err := f.cl.Open(ctx, OpenRequest{Ref: o2.Ref, AutostartToken: auto2}); code(err) != "order_expired" {
				t.Fatalf("open after expiry: %v", err)
			}
			if f.v.calls.Load() != 0 {
				t.Fatal("an expired order reached the tool")
			}
		})

		t.Run("cancelled by the page, then by the device", func(t *testing.T) {
			f := newFixture(t, db)
			o, auto := f.create(t, "egate login for P1")
			if err := f.svc.CancelByBrowser(ctx, o.Ref, other); !errors.Is(err, ErrUnknown) {
				t.Fatalf("cancel by another browser: %v", err)
			}
			if err := f.svc.CancelByBrowser(ctx, o.Ref, browser); err != nil {
				t.Fatal(err)
			}
			if _, err := f.cl.Open(ctx, OpenRequest{Ref: o.Ref, AutostartToken: auto}); code(err) != "order_cancelled" {
				t.Fatalf("open a cancelled order: %v", err)
			}
			o2, auto2 := f.create(t, "egate login for P1")
			op, err := f.cl.Open(ctx, OpenRequest{Ref: o2.Ref, AutostartToken: auto2})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.cl.Cancel(ctx, o2.Ref, "not-the-device", "declined"); code(err) != "order_not_open" {
				t.Fatalf("cancel by another device: %v", err)
			}
			if err := f.cl.Cancel(ctx, o2.Ref, op.DeviceToken, "token_removed"); err != nil {
				t.Fatal(err)
			}
			d, _ := op.SignedData()
			if err := f.cl.Sign(ctx, o2.Ref, op.DeviceToken, []byte("signed:"+string(d))); code(err) != "order_cancelled" {
				t.Fatalf("sign a cancelled order: %v", err)
			}
			if got, _ := f.svc.Collect(ctx, o2.Ref, browser); got.State != Cancelled || got.FailCode != "token_removed" {
				t.Fatalf("state %s (%s)", got.State, got.FailCode)
			}
		})

		t.Run("one of many concurrent signatures completes", func(t *testing.T) {
			f := newFixture(t, db)
			o, auto := f.create(t, "egate login for P1")
			_, dev, err := f.svc.Open(ctx, OpenRequest{Ref: o.Ref, AutostartToken: auto})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var ok atomic.Int64
			for range 8 {
				wg.Go(func() {
					if _, err := f.svc.Sign(ctx, o.Ref, dev, []byte("signed:"+string(o.Data)), "ip"); err == nil {
						ok.Add(1)
					} else if !errors.Is(err, ErrDone) {
						t.Errorf("a losing signature: %v", err)
					}
				})
			}
			wg.Wait()
			if ok.Load() != 1 {
				t.Fatalf("%d signatures completed the order, want 1", ok.Load())
			}
		})
	})
}

func code(err error) string {
	var e *APIError
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestAnimatedQR: the QR's content changes every second; a code is accepted
// up to QRWindow after it was drawn, and a photo of it relayed later, a
// forged or another order's code are refused.
func TestAnimatedQR(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := context.Background()
	cases := []struct {
		name   string
		age    time.Duration // between drawing and presenting
		mutate func(qr string, other string) string
		want   string
	}{
		{"presented at once", 0, nil, ""},
		{"presented 3 s later", 3 * time.Second, nil, ""},
		{"photo taken at second 0, presented at second 10", 10 * time.Second, nil, "qr_stale"},
		{"presented 4 s later", 4 * time.Second, nil, "qr_stale"},
		{"forged MAC", 0, func(qr, _ string) string { return qr[:len(qr)-1] + flip(qr[len(qr)-1]) }, "qr_malformed"},
		{"a later second with this second's MAC", 0, func(qr, _ string) string {
			p := strings.Split(qr, ".")
			p[2] = "1"
			return strings.Join(p, ".")
		}, "qr_malformed"},
		{"another order's ref with this MAC", 0, func(qr, other string) string {
			p := strings.Split(qr, ".")
			p[1] = other
			return strings.Join(p, ".")
		}, "qr_malformed"},
		{"not an order code", 0, func(string, string) string { return "https://example.com/" }, "qr_malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, db)
			o, _ := f.create(t, "egate login for P1")
			other, _ := f.create(t, "egate login for P1")
			qr0 := f.svc.QRContent(o)
			f.clk.Add(time.Second)
			if qr1 := f.svc.QRContent(o); qr1 == qr0 {
				t.Fatalf("the QR did not change after a second: %s", qr1)
			}
			f.clk.Add(-time.Second)
			qr := qr0
			if tc.mutate != nil {
				qr = tc.mutate(qr, other.Ref)
			}
			f.clk.Add(tc.age)
			op, err := f.cl.Open(ctx, OpenRequest{QR: qr})
			if tc.want == "" {
				if err != nil || op.Ref != o.Ref {
					t.Fatalf("open by QR: %+v %v", op, err)
				}
				return
			}
			if code(err) != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
			if got, _ := f.svc.Collect(ctx, o.Ref, BrowserHash("browser-a")); got.State != Pending {
				t.Fatalf("a refused QR changed the order: %s", got.State)
			}
		})
	}
}

func flip(c byte) string {
	if c == '0' {
		return "1"
	}
	return "0"
}

func TestSplitSigned(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, text string
		ch         []byte
	}{
		{"login", "egate login for P1", []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{"two lines", "Pay 1.00 CNY\nto Bob", []byte("0123456789abcdef")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, ch, ok := SplitSigned(SignedText(tc.text, tc.ch))
			if !ok || text != tc.text || string(ch) != string(tc.ch) {
				t.Fatalf("%q %x %v", text, ch, ok)
			}
		})
	}
	if _, _, ok := SplitSigned([]byte("no challenge line")); ok {
		t.Fatal("split a text without a challenge")
	}
}

func TestParseLink(t *testing.T) {
	t.Parallel()
	l, err := ParseLink(AutostartLink("http://127.0.0.1:8080", "REF", "TOK"))
	if err != nil || l.Ref != "REF" || l.Token != "TOK" || l.Server != "http://127.0.0.1:8080" {
		t.Fatalf("%+v %v", l, err)
	}
	for _, bad := range []string{"https://x/order?ref=a&token=b", "egate://order?ref=a", "egate://other?ref=a&token=b", "egate:orderx?ref=a&token=b", "egate://order/x?ref=a&token=b"} {
		if _, err := ParseLink(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
