package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/egate-bank/egate/atm/gateway"
	"github.com/egate-bank/egate/atm/withdrawal"
	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/devices/agent/dclink"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// wdATM is an ATM as the withdrawal service sees it through the gateway
// (the real one runs end to end in atm/withdrawal and internal/demo): four
// full cassettes, QR shown and cancelled, the PIN pad (pad, when set; its
// beforePIN runs first), and each dispense counted and paid out in full.
type wdATM struct {
	mu        sync.Mutex
	pad       *pinPad
	beforePIN func()
	shown     int
	dispenses int
}

func (a *wdATM) Send(ctx context.Context, cmd gateway.Command) (json.RawMessage, error) {
	switch cmd.Op {
	case dclink.OpStatus:
		return json.RawMessage(`{"up":true,"notes_at_exit":0,"cassettes":[{"id":1,"denomination_fen":10000,"count":50},{"id":2,"denomination_fen":5000,"count":50}]}`), nil
	case dclink.OpShowQR:
		a.mu.Lock()
		a.shown++
		a.mu.Unlock()
		return json.RawMessage(`{"mode":1}`), nil
	case dclink.OpCancelQR:
		return json.RawMessage(`{"mode":0}`), nil
	case dclink.OpPIN:
		if a.pad == nil {
			return nil, errors.New("no PIN pad")
		}
		if a.beforePIN != nil {
			a.beforePIN()
		}
		return a.pad.Send(ctx, cmd)
	case dclink.OpDispense:
		a.mu.Lock()
		a.dispenses++
		a.mu.Unlock()
		return nil, errors.New("this test's ATM pays nothing out")
	}
	return nil, errors.New("unexpected op " + cmd.Op)
}

func (a *wdATM) counts() (shown, dispenses int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.shown, a.dispenses
}

// TestWithdrawalsHandlerOpenNeedsATMApp: on SQLite and PostgreSQL, only a
// back-end client with atm:withdrawals opens a session (201, the QR shown);
// anybody else gets the back-end APIs' refusals (401 with WWW-Authenticate,
// 403 insufficient_scope) and no session is opened. The phone's approval
// takes no back-end client: it reaches the authorizer, which asks for its
// own proof (bad_proof without one).
func TestWithdrawalsHandlerOpenNeedsATMApp(t *testing.T) {
	const (
		appSecret   = "atm-application-0123456789abcdef0123456789abcdef"
		otherSecret = "core-banking-0123456789abcdef0123456789abcdef"
	)
	reg, err := backend.New([]backend.ClientConfig{
		{ID: "atm-app", SecretSHA256: backend.HashSecret([]byte(appSecret)), Scopes: []string{backend.ScopeATMWithdrawals}},
		{ID: "core", SecretSHA256: backend.HashSecret([]byte(otherSecret)), Scopes: []string{backend.ScopeTxAuthorize, backend.ScopeTxExecute, backend.ScopeEbankHolds}},
	})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := ledger.New(db, nil)
		if _, err := ebank.EnsureBankAccounts(ctx, l); err != nil {
			t.Fatal(err)
		}
		wl, err := NewWithdrawalLedger(ctx, &ebank.Holds{Ledger: l, Grants: ebank.RequireGrant{}})
		if err != nil {
			t.Fatal(err)
		}
		dev := &wdATM{}
		svc, err := withdrawal.New(withdrawal.Options{DB: db, ATM: dev, Ledger: wl, Authorizer: &WithdrawalAuthorizer{Ledger: l, ATM: dev, DB: db}})
		if err != nil {
			t.Fatal(err)
		}
		h := WithdrawalsHandler(svc, reg)
		call := func(path, body string, auth func(*http.Request)) (*httptest.ResponseRecorder, map[string]any) {
			rr := httptest.NewRecorder()
			req := httptest.NewRequest("POST", path, strings.NewReader(body))
			if auth != nil {
				auth(req)
			}
			h.ServeHTTP(rr, req)
			var m map[string]any
			json.Unmarshal(rr.Body.Bytes(), &m)
			return rr, m
		}
		basic := func(id, secret string) func(*http.Request) {
			return func(r *http.Request) { r.SetBasicAuth(id, secret) }
		}
		for _, tc := range []struct {
			name      string
			auth      func(*http.Request)
			status    int
			code      string
			challenge bool
		}{
			{"anonymous", nil, http.StatusUnauthorized, "unauthorized", true},
			{"a bearer token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") }, http.StatusUnauthorized, "unauthorized", true},
			{"a wrong secret", basic("atm-app", otherSecret), http.StatusUnauthorized, "invalid_client", true},
			{"an unknown client", basic("mallory", appSecret), http.StatusUnauthorized, "invalid_client", true},
			{"a client without atm:withdrawals", basic("core", otherSecret), http.StatusForbidden, "insufficient_scope", false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				rr, m := call("/atm/withdrawals", `{"atm":"ATM-AUTH-1"}`, tc.auth)
				e, _ := m["error"].(map[string]any)
				if rr.Code != tc.status || e["code"] != tc.code || e["message"] == "" {
					t.Fatalf("%d %s, want %d %s", rr.Code, rr.Body, tc.status, tc.code)
				}
				if got := rr.Header().Get("WWW-Authenticate"); (got != "") != tc.challenge || tc.challenge && !strings.HasPrefix(got, "Basic ") {
					t.Fatalf("WWW-Authenticate %q", got)
				}
				var n int
				if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM atm_withdrawals WHERE atm_id = 'ATM-AUTH-1'`).Scan(&n); err != nil || n != 0 {
					t.Fatalf("%d sessions opened (%v)", n, err)
				}
				if shown, _ := dev.counts(); shown != 0 {
					t.Fatalf("the ATM was told to show a QR %d times", shown)
				}
			})
		}
		rr, m := call("/atm/withdrawals", `{"atm":"ATM-AUTH-1"}`, basic("atm-app", appSecret))
		if rr.Code != http.StatusCreated || m["state"] != "QR_SHOWN" {
			t.Fatalf("the ATM application's open: %d %s", rr.Code, rr.Body)
		}
		if shown, _ := dev.counts(); shown != 1 {
			t.Fatalf("the ATM showed %d QRs, want 1", shown)
		}
		// The read: the state to anybody, the whole withdrawal to the ATM
		// application only.
		for _, tc := range []struct {
			name   string
			auth   func(*http.Request)
			status int
			code   string
			full   bool
		}{
			{"anonymous", nil, http.StatusOK, "", false},
			{"a wrong secret", basic("atm-app", otherSecret), http.StatusUnauthorized, "invalid_client", false},
			{"a client without atm:withdrawals", basic("core", otherSecret), http.StatusForbidden, "insufficient_scope", false},
			{"the ATM application", basic("atm-app", appSecret), http.StatusOK, "", true},
		} {
			t.Run("read, "+tc.name, func(t *testing.T) {
				rr := httptest.NewRecorder()
				req := httptest.NewRequest("GET", "/atm/withdrawals/"+m["session"].(string), nil)
				if tc.auth != nil {
					tc.auth(req)
				}
				h.ServeHTTP(rr, req)
				var got map[string]any
				json.Unmarshal(rr.Body.Bytes(), &got)
				e, _ := got["error"].(map[string]any)
				_, full := got["qr"]
				if rr.Code != tc.status || tc.code != "" && e["code"] != tc.code || tc.code == "" && (got["state"] != "QR_SHOWN" || full != tc.full) {
					t.Fatalf("%d %s, want %d %s (whole withdrawal %v)", rr.Code, rr.Body, tc.status, tc.code, tc.full)
				}
			})
		}
		// The phone: no back-end client, its own proof.
		rr, m = call("/atm/withdrawals/approve", `{"qr":"`+m["qr"].(string)+`","account":"6299000000000000001","amount_fen":10000,"proof":"{}"}`, nil)
		if e, _ := m["error"].(map[string]any); rr.Code != http.StatusBadRequest || e["code"] != "bad_proof" {
			t.Fatalf("an approval without the phone's proof: %d %s", rr.Code, rr.Body)
		}
		if _, n := dev.counts(); n != 0 {
			t.Fatalf("%d dispenses", n)
		}
	})
}
