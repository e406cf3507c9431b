package authsvc

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/oath"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/httpx"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// The text of an HSM failure as devices/hsm words it: the module path, the
// token label and the PKCS#11 return value, none of which a customer or a
// platform may see.
var hsmFault = fmt.Errorf(`HSM unavailable: token "egate-test": opening token "egate-test" of module "/usr/lib/softhsm/libsofthsm2.so": pkcs11: 0x5: CKR_GENERAL_ERROR`)

var internals = []string{"libsofthsm2", "/usr/lib", "egate-test", "CKR_", "pkcs11", "0x5"}

func leaks(body string) string {
	for _, s := range internals {
		if strings.Contains(body, s) {
			return s
		}
	}
	return ""
}

// downOTPHSM fails every HMAC while down is set.
type downOTPHSM struct {
	oath.HSM
	down atomic.Bool
}

func (h *downOTPHSM) HMACWrapped(ctx context.Context, label string, wrapped []byte, hash crypto.Hash, msgs [][]byte) ([][]byte, error) {
	if h.down.Load() {
		return nil, hsmFault
	}
	return h.HSM.HMACWrapped(ctx, label, wrapped, hash, msgs)
}

// syncBuf is a log destination the server's goroutines may share.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestLoginFactorHSMFault: while the HSM cannot compute the token's codes,
// the login's token page answers 503 "temporarily unavailable, try again"
// with the same challenge, whatever the number of tries, and nothing is
// counted: the token's failures stay 0 and unlocked, the passport's
// factor slots are given back; the detail goes to the log. With the HSM
// back the same page logs the customer in.
func TestLoginFactorHSMFault(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		h := &downOTPHSM{HSM: hsmtest.Open(t)}
		var svc *oath.Service
		e := newEnvFactors(t, db, hsmSigner(t), func(e *env) []authn.Factor {
			svc = oath.New(db, h, oath.Config{MaxFailures: 3}, e.clk.Now)
			return []authn.Factor{oath.Factor{S: svc}}
		})
		logs := &syncBuf{}
		e.srv.log = slog.New(slog.NewJSONHandler(logs, nil))
		seed := make([]byte, 20)
		copy(seed, "12345678901234567890")
		path := filepath.Join(t.TempDir(), "t.pskc")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w, err := pskc.NewWriter(f, pskc.WriterOptions{})
		if err == nil {
			err = w.Add(&pskc.Key{ID: "1", Serial: "TOTP-0001", Manufacturer: "Acme", Params: totpParams, Secret: seed})
		}
		if err == nil {
			err = w.Close()
		}
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if sum, err := svc.ImportPSKC(ctx, func() (io.ReadCloser, error) { return os.Open(path) }, oath.ImportOptions{}); err != nil || sum.Imported != 1 {
			t.Fatalf("import: %+v %v", sum, err)
		}
		if err := svc.Assign(ctx, "TOTP-0001", "", e.pid); err != nil {
			t.Fatal(err)
		}

		b := e.browser()
		a := newAuthz("ebank", ebankRedirect)
		a.extra.Set("acr_values", "urn:egate:loa:3")
		r := b.passwordLogin(a, "alice", testPassword)
		id := formID(t, r.body)
		if m := factorRE.FindStringSubmatch(r.body); r.status != 200 || m == nil || m[1] != "otp" {
			t.Fatalf("want the token page: %d %s", r.status, r.body)
		}
		h.down.Store(true)
		for i := range 5 { // more than MaxFailures and the passport's limit
			r = b.post("/login/factor", url.Values{"id": {id}, "response": {totp(t, seed, e.clk.Now())}})
			if r.status != 503 || errorCode(r.body) != "unavailable" || !strings.Contains(r.body, "temporarily unavailable") || !strings.Contains(r.body, "try again") {
				t.Fatalf("try %d with the HSM down: %d %q\n%s", i, r.status, errorCode(r.body), r.body)
			}
			if m := factorRE.FindStringSubmatch(r.body); m == nil || m[1] != "otp" {
				t.Fatalf("try %d: the page does not keep the token's challenge:\n%s", i, r.body)
			}
			if s := leaks(r.body); s != "" {
				t.Fatalf("the page shows %q:\n%s", s, r.body)
			}
		}
		var failures int
		var until int64
		if err := db.QueryRow(ctx, `SELECT failures, locked_until_ms FROM otp_tokens WHERE serial = 'TOTP-0001'`).Scan(&failures, &until); err != nil {
			t.Fatal(err)
		}
		if failures != 0 || until != 0 {
			t.Fatalf("token failures %d, locked until %d; want 0, 0", failures, until)
		}
		if n, err := e.srv.Passport().Failures(ctx, "pid:"+e.pid, "otp"); err != nil || n != 0 {
			t.Fatalf("passport otp failures %d (%v), want 0", n, err)
		}
		if !strings.Contains(logs.String(), "CKR_GENERAL_ERROR") {
			t.Fatalf("the log does not carry the HSM's error: %s", logs.String())
		}
		h.down.Store(false)
		r = b.follow(b.post("/login/factor", url.Values{"id": {id}, "response": {totp(t, seed, e.clk.Now())}}))
		tk := e.exchange(a, a.codeFrom(t, r))
		if c, err := e.claims(tk.id); err != nil || c["acr"] != "urn:egate:loa:3" {
			t.Fatalf("claims after the HSM came back: %v %v", c, err)
		}
	})
}

// failingSigner fails like an HSM that is gone while down is set.
type failingSigner struct {
	crypto.Signer
	down atomic.Bool
}

func (s *failingSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	if s.down.Load() {
		return nil, fmt.Errorf(`signing with "egate-passport-signing": %w`, hsmFault)
	}
	return s.Signer.Sign(r, d, o)
}

// TestTokenEndpointHidesHSMFault: a code exchange whose token signing fails
// in the HSM is answered 503 temporarily_unavailable with the request id,
// without the module path, the token label or the return value, which go to
// the log with the same request id.
func TestTokenEndpointHidesHSMFault(t *testing.T) {
	sg := &failingSigner{Signer: hsmSigner(t)}
	e := newEnvSigner(t, storetest.SQLite(t), sg)
	logs := &syncBuf{}
	e.srv.log = slog.New(slog.NewJSONHandler(logs, nil))
	b := e.browser()
	a := newAuthz("ebank", ebankRedirect)
	code := a.codeFrom(t, b.passwordLogin(a, "alice", testPassword))
	sg.down.Store(true)
	// Through the request middleware, as egate serves it.
	pub := httptest.NewServer(httpx.Middleware(slog.New(slog.DiscardHandler), nil, e.srv))
	defer pub.Close()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.redirect}, "code_verifier": {a.verifier}}
	req, _ := http.NewRequest("POST", pub.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("ebank", url.QueryEscape(ebankSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]string
	if err := json.Unmarshal(raw, &body); err != nil || resp.StatusCode != 503 || body["error"] != "temporarily_unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("exchange with the HSM down: %d %s (%v)", resp.StatusCode, raw, err)
	}
	rid := resp.Header.Get("X-Request-Id")
	if s := leaks(string(raw)); s != "" || len(body) != 2 || rid == "" || !strings.Contains(body["error_description"], rid) {
		t.Fatalf("the answer shows %q or lacks the request id %q: %s", s, rid, raw)
	}
	var logged bool
	for _, line := range strings.Split(logs.String(), "\n") {
		logged = logged || (strings.Contains(line, `"request_id":"`+rid+`"`) && strings.Contains(line, "CKR_GENERAL_ERROR"))
	}
	if !logged {
		t.Fatalf("no log line with request id %s and the HSM's error: %s", rid, logs.String())
	}
	// The provider's other errors are unchanged.
	sg.down.Store(false)
	if tk := e.exchange(a, "not-a-code"); tk.status != 400 || tk.body["error"] != "invalid_grant" {
		t.Fatalf("bad code: %d %v", tk.status, tk.body)
	}
}
