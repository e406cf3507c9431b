package sms

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/devices/pinsource"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

const testToken = "tok-S3cr3t-operator-7Q"

// operator is an SMS operator's HTTP API on a real listener: it records
// each request and answers what status says.
type operator struct {
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []opReq
	status  int
	arrived chan struct{} // one value per request, when hold is set
	hold    bool          // answer only when the request's context ends
}

type opReq struct {
	method, auth, ctype string
	body                map[string]any
	raw                 string
}

func newOperator(t *testing.T, status int, tls bool) *operator {
	o := &operator{status: status, arrived: make(chan struct{}, 16)}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		json.Unmarshal(raw, &body)
		o.mu.Lock()
		o.reqs = append(o.reqs, opReq{method: r.Method, auth: r.Header.Get("Authorization"), ctype: r.Header.Get("Content-Type"), body: body, raw: string(raw)})
		hold, status := o.hold, o.status
		o.mu.Unlock()
		if hold {
			o.arrived <- struct{}{}
			<-r.Context().Done()
			return
		}
		w.WriteHeader(status)
		// An operator that echoes the message in its answer: egate must not
		// repeat it in an error.
		w.Write([]byte(`{"error":"rejected","echo":` + strconvQuote(string(raw)) + `}`))
	})
	if tls {
		o.srv = httptest.NewTLSServer(h)
	} else {
		o.srv = httptest.NewServer(h)
	}
	t.Cleanup(o.srv.Close)
	return o
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

func (o *operator) requests() []opReq {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]opReq(nil), o.reqs...)
}

// tokenFile writes the token to a 0600 file and returns its pin-source.
func tokenFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "sms-token")
	if err := os.WriteFile(p, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return "file:" + p
}

func newGW(t *testing.T, o *operator, timeout time.Duration) *HTTPGateway {
	t.Helper()
	cfg := HTTPGatewayConfig{URL: o.srv.URL + "/v1/sms", TokenSource: tokenFile(t), Timeout: timeout}
	if strings.HasPrefix(o.srv.URL, "https:") {
		cfg.Client = o.srv.Client()
	}
	g, err := NewHTTPGateway(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// leaks fails when an error's text holds the code, the message text or the token.
func leaks(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, testToken) {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("error %q contains %q", err, s)
		}
	}
}

func TestHTTPGatewaySend(t *testing.T) {
	const code = "739154"
	msg := Message{To: "13800005678", Body: "[egate Bank] " + code + " is your code to log in."}
	cases := []struct {
		name    string
		status  int
		tls     bool
		wantErr bool
	}{
		{name: "200 over http to loopback", status: 200},
		{name: "202 over https", status: 202, tls: true},
		{name: "204", status: 204},
		{name: "302 is not followed", status: 302, wantErr: true},
		{name: "400", status: 400, wantErr: true},
		{name: "401", status: 401, wantErr: true},
		{name: "429", status: 429, wantErr: true},
		{name: "500", status: 500, wantErr: true},
		{name: "503", status: 503, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := newOperator(t, tc.status, tc.tls)
			g := newGW(t, o, 0)
			err := g.Send(context.Background(), msg)
			err2 := g.Send(context.Background(), msg)
			reqs := o.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want 2", len(reqs))
			}
			r := reqs[0]
			if r.method != "POST" || r.auth != "Bearer "+testToken || r.ctype != "application/json" {
				t.Fatalf("request %s, Authorization %q, Content-Type %q", r.method, r.auth, r.ctype)
			}
			if len(r.body) != 3 || r.body["to"] != msg.To || r.body["text"] != msg.Body {
				t.Fatalf("body %s", r.raw)
			}
			id, _ := r.body["id"].(string)
			if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) || reqs[1].body["id"] == id {
				t.Fatalf("message ids %v, %v: want a new 128-bit hex id per message", id, reqs[1].body["id"])
			}
			if !tc.wantErr {
				if err != nil || err2 != nil {
					t.Fatalf("Send = %v, %v", err, err2)
				}
				return
			}
			var ge *GatewayError
			if !errors.As(err, &ge) || ge.Status != tc.status || !errors.Is(err, ErrGateway) {
				t.Fatalf("Send = %v, want a GatewayError with status %d", err, tc.status)
			}
			if want := o.srv.Listener.Addr().String(); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), http.StatusText(tc.status)) {
				t.Fatalf("error %q does not name the host %s and the status", err, want)
			}
			leaks(t, err, code, msg.Body, msg.To)
		})
	}
}

func TestHTTPGatewayNoAnswer(t *testing.T) {
	const code = "406281"
	msg := Message{To: "13800005678", Body: "[egate Bank] " + code + " is your code to log in."}
	t.Run("timeout", func(t *testing.T) {
		o := newOperator(t, 200, false)
		o.hold = true
		g := newGW(t, o, 150*time.Millisecond)
		err := g.Send(context.Background(), msg)
		var ge *GatewayError
		if !errors.As(err, &ge) || !ge.Timeout || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrGateway) {
			t.Fatalf("Send = %#v, want a timeout", err)
		}
		leaks(t, err, code, msg.Body, msg.To)
	})
	t.Run("ctx cancelled", func(t *testing.T) {
		o := newOperator(t, 200, false)
		o.hold = true
		g := newGW(t, o, time.Minute)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.Send(ctx, msg) }()
		<-o.arrived
		cancel()
		err := <-done
		var ge *GatewayError
		if !errors.As(err, &ge) || ge.Timeout || !errors.Is(err, context.Canceled) {
			t.Fatalf("Send = %v, want context.Canceled", err)
		}
		leaks(t, err, code, msg.Body, msg.To)
	})
	t.Run("connection refused", func(t *testing.T) {
		o := newOperator(t, 200, false)
		g := newGW(t, o, time.Minute)
		o.srv.Close()
		err := g.Send(context.Background(), msg)
		var ge *GatewayError
		if !errors.As(err, &ge) || ge.Status != 0 || !errors.Is(err, ErrGateway) {
			t.Fatalf("Send = %v, want a transport GatewayError", err)
		}
		if strings.Contains(err.Error(), "/v1/sms") {
			t.Fatalf("error %q repeats the URL", err)
		}
		leaks(t, err, code, msg.Body, msg.To)
	})
	t.Run("https with an unknown certificate", func(t *testing.T) {
		o := newOperator(t, 200, true)
		g, err := NewHTTPGateway(HTTPGatewayConfig{URL: o.srv.URL, TokenSource: tokenFile(t)})
		if err != nil {
			t.Fatal(err)
		}
		err = g.Send(context.Background(), msg)
		if !errors.Is(err, ErrGateway) || len(o.requests()) != 0 {
			t.Fatalf("Send = %v with %d requests; want a refused TLS handshake", err, len(o.requests()))
		}
		leaks(t, err, code, msg.Body, msg.To)
	})
}

func TestNewHTTPGatewayRefuses(t *testing.T) {
	t.Setenv("EGATE_TEST_SMS_TOKEN", testToken)
	t.Setenv("EGATE_TEST_SMS_BAD_TOKEN", "tok with space")
	open := filepath.Join(t.TempDir(), "open-token")
	os.WriteFile(open, []byte(testToken), 0o644)
	cases := []struct {
		name, url, src string
		want           string
	}{
		{"http to another host", "http://sms.example.com/send", "env:EGATE_TEST_SMS_TOKEN", "must be https"},
		{"ftp", "ftp://sms.example.com/send", "env:EGATE_TEST_SMS_TOKEN", `scheme "ftp"`},
		{"relative", "/send", "env:EGATE_TEST_SMS_TOKEN", "absolute https URL"},
		{"user in the URL", "https://user:" + testToken + "@sms.example.com/", "env:EGATE_TEST_SMS_TOKEN", "token-source"},
		{"no token source", "https://sms.example.com/", "", "pin-source"},
		{"token inline", "https://sms.example.com/", testToken, "unknown kind"},
		{"token variable unset", "https://sms.example.com/", "env:EGATE_TEST_SMS_NOPE", "EGATE_TEST_SMS_NOPE"},
		{"token file open to all", "https://sms.example.com/", "file:" + open, "chmod 600"},
		{"token with a space", "https://sms.example.com/", "env:EGATE_TEST_SMS_BAD_TOKEN", "printable ASCII"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewHTTPGateway(HTTPGatewayConfig{URL: tc.url, TokenSource: tc.src})
			if !errors.Is(err, ErrGateway) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewHTTPGateway = %v, want an error saying %q", err, tc.want)
			}
			leaks(t, err, "tok with space")
		})
	}
	for _, u := range []string{"https://sms.example.com/v1/send", "http://127.0.0.1:8099/send", "http://localhost/send", "http://[::1]:80/"} {
		if _, err := NewHTTPGateway(HTTPGatewayConfig{URL: u, TokenSource: "env:EGATE_TEST_SMS_TOKEN"}); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	if _, err := pinsource.Parse("env:EGATE_TEST_SMS_TOKEN"); err != nil {
		t.Fatal(err)
	}
}

// TestBeginGatewayFails: a send the operator refused or never answered
// leaves no usable challenge, and the error holds neither the code nor the
// token.
func TestBeginGatewayFails(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		// The timeout must let the request reach the operator, whose copy of
		// the code is checked below: a gateway timeout that ran out while the
		// request was still being dialled or written (a loaded machine) left
		// the operator with no request. An operator that answers never
		// hits it; one that holds the request waits it out.
		cases := []struct {
			name    string
			hold    bool
			timeout time.Duration
			want    error
		}{
			{name: "503", timeout: time.Minute, want: ErrGateway},
			{name: "timeout", hold: true, timeout: 2 * time.Second, want: context.DeadlineExceeded},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				o := newOperator(t, 503, false)
				o.hold = tc.hold
				g := newGW(t, o, tc.timeout)
				clk := &clock{}
				who := []string{"alice", "bob"}[i]
				s := New(db, g, phones{"alice": "13800005678", "bob": "13900001234"}, KeyMAC("test key"), Config{}, clk.Now)
				_, err := s.Factor().Begin(ctx, authn.BeginRequest{PassportID: who, Purpose: authn.PurposeLogin, ClientIP: "10.0.0.1"})
				if !errors.Is(err, tc.want) || !errors.Is(err, ErrGateway) {
					t.Fatalf("Begin = %v, want %v", err, tc.want)
				}
				if tc.hold {
					select {
					case <-o.arrived:
					default:
						t.Fatalf("Begin = %v before the request reached the operator", err)
					}
				}
				reqs := o.requests()
				if len(reqs) != 1 {
					t.Fatalf("%d requests", len(reqs))
				}
				m := codeRE.FindStringSubmatch(reqs[0].body["text"].(string))
				if m == nil {
					t.Fatalf("no code in %q", reqs[0].raw)
				}
				leaks(t, err, m[1])
				// The operator got the code (it may deliver it after all), but
				// the challenge it belongs to is spent.
				var id string
				if err := db.QueryRow(ctx, `SELECT id FROM auth_challenges WHERE factor = 'sms' AND passport_id = ?`, who).Scan(&id); err != nil {
					t.Fatal(err)
				}
				_, err = s.Factor().Verify(ctx, authn.VerifyRequest{PassportID: who, ChallengeID: id, Response: []byte(m[1])})
				if !errors.Is(err, authn.ErrUsed) {
					t.Fatalf("Verify with the code of a failed send = %v, want ErrUsed", err)
				}
			})
		}
	})
}
