package withdrawal

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/egate-bank/egate/internal/httpx"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// atmApp stands for the caller's authentication of the ATM application
// (internal/app gives the back-end client check): a request with the
// header Authorization: ATM-App goes through, any other is refused 401.
func atmApp(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "ATM-App" {
			httpx.WriteError(w, r, http.StatusUnauthorized, "unauthorized", "not the ATM application")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// TestHTTP: the API opens a session (only through the opener's
// authentication), approves it from the QR text, and refuses bad input
// with a status, a stable code and a message; a refusal moves no money.
func TestHTTP(t *testing.T) {
	r := newRig(t, storetest.SQLite(t))
	h := r.svc.Handler(atmApp)
	call := func(method, path, body string, hdr ...string) (int, map[string]any) {
		rr := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		h.ServeHTTP(rr, req)
		var m map[string]any
		json.Unmarshal(rr.Body.Bytes(), &m)
		return rr.Code, m
	}
	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"without the ATM application's authentication", h},
		{"on a handler given no opener check", r.svc.Handler(nil)},
	} {
		rr := httptest.NewRecorder()
		c.h.ServeHTTP(rr, httptest.NewRequest("POST", "/atm/withdrawals", strings.NewReader(`{"atm":"`+r.id+`"}`)))
		if rr.Code != 401 || !strings.Contains(rr.Body.String(), `"unauthorized"`) {
			t.Fatalf("open %s: %d %s", c.name, rr.Code, rr.Body)
		}
	}
	var opened int
	if err := r.db.QueryRow(context.Background(), `SELECT COUNT(*) FROM atm_withdrawals WHERE atm_id = ?`, r.id).Scan(&opened); err != nil || opened != 0 {
		t.Fatalf("a refused open opened %d sessions (%v)", opened, err)
	}
	code, m := call("POST", "/atm/withdrawals", `{"atm":"`+r.id+`"}`, "Authorization", "ATM-App")
	if code != 201 || m["state"] != "QR_SHOWN" {
		t.Fatalf("open: %d %v", code, m)
	}
	qr, session := m["qr"].(string), m["session"].(string)
	other := r.open(t) // a second session replaces the first
	for _, c := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"not JSON", `{`, 400, "bad_request"},
		{"not a QR", `{"qr":"hello","account":"acct-1","amount_fen":10000,"proof":"ok"}`, 400, "bad_request"},
		{"unknown session", `{"atm":"` + r.id + `","session":"00000000000000000000000000000000","account":"acct-1","amount_fen":10000,"proof":"ok"}`, 404, "unknown_session"},
		{"foreign", `{"atm":"ATM-X","session":"` + other.Session + `","account":"acct-1","amount_fen":10000,"proof":"ok"}`, 403, "foreign_session"},
		{"replaced", `{"qr":"` + qr + `","account":"acct-1","amount_fen":10000,"proof":"ok"}`, 409, "session_used"},
		{"odd amount", `{"atm":"` + r.id + `","session":"` + other.Session + `","account":"acct-1","amount_fen":10050,"proof":"ok"}`, 422, "cannot_make_amount"},
		{"wrong proof", `{"atm":"` + r.id + `","session":"` + other.Session + `","account":"acct-1","amount_fen":10000,"proof":"no"}`, 403, "refused"},
		{"no amount", `{"atm":"` + r.id + `","session":"` + other.Session + `","account":"acct-1","proof":"ok"}`, 400, "bad_request"},
	} {
		code, m := call("POST", "/atm/withdrawals/approve", c.body)
		e, _ := m["error"].(map[string]any)
		if code != c.status || e["code"] != c.code || e["message"] == "" {
			t.Errorf("%s: %d %v, want %d %s", c.name, code, m, c.status, c.code)
		}
	}
	if len(r.led.holds) != 0 || len(r.atm.dispenses) != 0 {
		t.Fatal("a refused approval moved money")
	}
	code, m = call("POST", "/atm/withdrawals/approve", `{"qr":"`+QRText(r.id, other.Session)+`","account":"acct-1","amount_fen":10000,"proof":"ok"}`)
	if code != 200 || m["state"] != "PRESENTED" || m["cash_out_fen"] != float64(10000) {
		t.Fatalf("approve: %d %v", code, m)
	}
	if code, _ := call("POST", "/atm/withdrawals", `{"atm":"`+r.id+`"}`, "Authorization", "ATM-App"); code != 409 {
		t.Fatalf("open with cash at the exit: %d", code)
	}
	if code, m := call("GET", "/atm/withdrawals/"+session, ""); code != 200 || m["state"] != "EXPIRED" {
		t.Fatalf("the replaced session: %d %v", code, m)
	}
}

// TestHTTPReadShowsAmountsOnlyToTheATMApp: on SQLite and PostgreSQL, the
// read of a withdrawal paid out shows a caller without credentials (anyone
// who photographed the QR on the ATM's screen) its state and expiry and
// nothing of the account, the amounts or the reason; credentials the
// ATM application's check refuses get its 401 and nothing of the
// withdrawal; the ATM application gets the whole withdrawal.
func TestHTTPReadShowsAmountsOnlyToTheATMApp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		wd, err := r.svc.Open(context.Background(), r.id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.Approve(context.Background(), Approval{ATM: r.id, Session: wd.Session, Account: "acct-1", AmountFen: 10000, Proof: "ok"}); err != nil {
			t.Fatal(err)
		}
		path := "/atm/withdrawals/" + wd.Session
		for _, c := range []struct {
			name   string
			h      http.Handler
			auth   string
			status int
			keys   []string // exactly these, when 200
			code   string
		}{
			{"anonymous", r.svc.Handler(atmApp), "", 200, []string{"atm", "expires_ms", "session", "state"}, ""},
			{"anonymous, no ATM application check", r.svc.Handler(nil), "", 200, []string{"atm", "expires_ms", "session", "state"}, ""},
			{"credentials the check refuses", r.svc.Handler(atmApp), "Bearer stolen", 401, nil, "unauthorized"},
			{"the ATM application, no check to pass", r.svc.Handler(nil), "ATM-App", 401, nil, "unauthorized"},
			{"the ATM application", r.svc.Handler(atmApp), "ATM-App", 200, []string{"amount_fen", "atm", "cash_out_fen", "expires_ms", "qr", "session", "state"}, ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				rr := httptest.NewRecorder()
				req := httptest.NewRequest("GET", path, nil)
				if c.auth != "" {
					req.Header.Set("Authorization", c.auth)
				}
				c.h.ServeHTTP(rr, req)
				var m map[string]any
				json.Unmarshal(rr.Body.Bytes(), &m)
				if rr.Code != c.status {
					t.Fatalf("%d %s, want %d", rr.Code, rr.Body, c.status)
				}
				if c.status != 200 {
					if !strings.Contains(rr.Body.String(), `"`+c.code+`"`) || strings.Contains(rr.Body.String(), "10000") || strings.Contains(rr.Body.String(), "PRESENTED") {
						t.Fatalf("refusal %s, want %s and nothing of the withdrawal", rr.Body, c.code)
					}
					return
				}
				keys := slices.Sorted(maps.Keys(m))
				if !slices.Equal(keys, c.keys) || m["state"] != string(Presented) {
					t.Fatalf("read %v, want the keys %v and state PRESENTED", m, c.keys)
				}
			})
		}
	})
}
