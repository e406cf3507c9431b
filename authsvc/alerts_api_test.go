package authsvc

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// The alert inbox API answers the messenger's access token with the
// customer's login alerts, refuses another platform's token and a missing
// or forged one.
func TestAlertsAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		b := e.browser()
		a := newAuthz("ebank", ebankRedirect)
		ebankTok := e.exchange(a, a.codeFrom(t, b.passwordLogin(a, "alice", testPassword)))
		e.factor.enrolled[e.pid] = true
		g := newAuthz("messenger", messengerRedirect)
		r := b.follow(b.get(g.url()))
		id := formID(t, r.body)
		r = b.follow(b.post("/login/factor", url.Values{"id": {id}, "response": {"246810"}}))
		msgTok := e.exchange(g, g.codeFrom(t, r))
		m := newAuthz("mall", mallRedirect)
		mallTok := e.exchange(m, m.codeFrom(t, b.follow(b.get(m.url()))))

		call := func(tok string) (int, map[string]any, string) {
			req, _ := http.NewRequest("GET", e.ts.URL+"/api/v1/alerts", nil)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]any
			json.NewDecoder(resp.Body).Decode(&m)
			return resp.StatusCode, m, resp.Header.Get("WWW-Authenticate")
		}
		// The bearer guard (RFC 6750 §3): the challenge says what was wrong.
		tests := []struct {
			name          string
			tok           string
			status        int
			code, wwwAuth string
		}{
			{"no token", "", http.StatusUnauthorized, "unauthorized", `Bearer`},
			{"forged token", msgTok.access[:len(msgTok.access)-4] + "AAAA", http.StatusUnauthorized, "invalid_token", `Bearer error="invalid_token"`},
			{"another platform's token", mallTok.access, http.StatusForbidden, "wrong_client", `Bearer error="insufficient_scope"`},
			{"ebank's token (the login history)", ebankTok.access, http.StatusOK, "", ""},
			{"messenger's token", msgTok.access, http.StatusOK, "", ""},
		}
		// ebank's reading is not the messenger's delivery.
		if p, err := e.srv.Alerts().Pending(t.Context(), "messenger", 10); err != nil || len(p) != 3 {
			t.Fatalf("messenger pending before: %d %v", len(p), err)
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				status, body, wwwAuth := call(tc.tok)
				if tc.tok == ebankTok.access {
					if p, err := e.srv.Alerts().Pending(t.Context(), "messenger", 10); err != nil || len(p) != 3 {
						t.Fatalf("ebank's reading marked %d alerts delivered to the messenger (%v)", 3-len(p), err)
					}
				}
				ee, _ := body["error"].(map[string]any)
				code, _ := ee["code"].(string)
				if status != tc.status || code != tc.code || wwwAuth != tc.wwwAuth {
					t.Fatalf("%d %q %q, want %d %q %q: %v", status, code, wwwAuth, tc.status, tc.code, tc.wwwAuth, body)
				}
				if status == http.StatusOK {
					list, _ := body["alerts"].([]any)
					if len(list) != 3 {
						t.Fatalf("want the 3 login alerts (ebank, messenger, mall): %v", body)
					}
				}
			})
		}
		// What the inbox read counts as delivered to the messenger.
		p, err := e.srv.Alerts().Pending(t.Context(), "messenger", 10)
		if err != nil || len(p) != 0 {
			t.Fatalf("messenger pending after reading the inbox: %d %v", len(p), err)
		}
	})
}
