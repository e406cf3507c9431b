package authsvc

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/authsvc/limits"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// The self-service API on both engines with the real tools: a level-1
// token is sent to step up and changes nothing; at level 2 the customer
// sees their tools and limits, changes the reserved message, lowers (never
// raises) a limit, binds a token of the bank's stock by its serial and two
// consecutive codes, and reports tools lost: revoked at once, an alert each.
func TestSelfServiceAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fe := newFactorEnv(t, db)
		counter, err := limits.NewCounter(db, limits.Default(), nil, fe.clk.Now)
		if err != nil {
			t.Fatal(err)
		}
		fe.srv.SetSelfService(SelfService{Tools: fe.set, Limits: counter})
		card, err := fe.set.GridCard.Issue(ctx, fe.pid)
		if err != nil {
			t.Fatal(err)
		}
		fe.enrollTOTP(t, "TOTP-0001")
		stock := importStock(t, fe, "TOTP-0002")

		token := func(level string) string {
			_, a, r := fe.loginAt(t, level)
			return fe.exchange(a, a.codeFrom(t, r)).access
		}
		call := func(tok, method, path, body string, out any) (int, string) {
			t.Helper()
			var rd io.Reader
			if body != "" {
				rd = strings.NewReader(body)
			}
			req, _ := http.NewRequest(method, fe.ts.URL+path, rd)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var e struct {
				Error struct{ Code string } `json:"error"`
			}
			json.Unmarshal(b, &e)
			if out != nil && resp.StatusCode < 300 {
				if err := json.Unmarshal(b, out); err != nil {
					t.Fatalf("%s %s: %v %s", method, path, err, b)
				}
			}
			return resp.StatusCode, e.Error.Code
		}
		low, high := token("1"), token("2")

		for _, c := range []struct{ method, path, body string }{
			{"GET", "/api/v1/self", ""},
			{"PUT", "/api/v1/self/reserved-message", `{"reserved_message":"stolen"}`},
			{"PUT", "/api/v1/self/limits", `{"level":2,"per_transaction":0,"per_day":0,"per_year":0}`},
			{"POST", "/api/v1/self/tools/lost", `{"tool":"gridcard","id":"` + card.Serial + `"}`},
		} {
			if st, code := call(low, c.method, c.path, c.body, nil); st != 403 || code != "step_up_required" {
				t.Errorf("level 1 %s %s: %d %q", c.method, c.path, st, code)
			}
		}
		if c, _ := fe.srv.Passport().Customer(ctx, fe.pid); c.ReservedMessage != "red lantern 88" {
			t.Fatalf("a level-1 token changed the reserved message: %q", c.ReservedMessage)
		}

		var self Self
		if st, _ := call(high, "GET", "/api/v1/self", "", &self); st != 200 || self.Level != 2 || self.ReservedMessage != "red lantern 88" || self.Mobile != "13812345678" || len(self.Limits) != 5 {
			t.Fatalf("self: %d %+v", st, self)
		}
		kinds := map[string]string{}
		for _, tl := range self.Tools {
			kinds[tl.Tool] = tl.Ref + " " + tl.Status
		}
		if kinds["sms"] != "138****5678 active" || kinds["gridcard"] == "" || kinds["otp"] != "TOTP-0001 active" {
			t.Fatalf("tools %+v", self.Tools)
		}

		cases := []struct {
			name, method, path, body string
			status                   int
			code                     string
		}{
			{"empty reserved message", "PUT", "/api/v1/self/reserved-message", `{"reserved_message":"  "}`, 400, "invalid_request"},
			{"reserved message too long", "PUT", "/api/v1/self/reserved-message", `{"reserved_message":"` + strings.Repeat("长", 65) + `"}`, 400, "invalid_request"},
			{"reserved message", "PUT", "/api/v1/self/reserved-message", `{"reserved_message":"blue kite 7"}`, 204, ""},
			{"raise a limit", "PUT", "/api/v1/self/limits", `{"level":3,"per_transaction":5000001,"per_day":50000000,"per_year":500000000}`, 422, "limit_above_bank"},
			{"limits out of order", "PUT", "/api/v1/self/limits", `{"level":3,"per_transaction":300,"per_day":200,"per_year":500}`, 400, "invalid_request"},
			{"no such level", "PUT", "/api/v1/self/limits", `{"level":9,"per_transaction":1,"per_day":1,"per_year":1}`, 400, "invalid_request"},
			{"lower a limit", "PUT", "/api/v1/self/limits", `{"level":3,"per_transaction":10000,"per_day":20000,"per_year":500000}`, 200, ""},
			{"bind an unknown serial", "POST", "/api/v1/self/tools/otp", `{"serial":"NOPE","code1":"123456","code2":"234567"}`, 404, "unknown_token"},
			{"bind one's own token again", "POST", "/api/v1/self/tools/otp", `{"serial":"TOTP-0001","code1":"123456","code2":"234567"}`, 409, "token_taken"},
			{"bind with wrong codes", "POST", "/api/v1/self/tools/otp", `{"serial":"TOTP-0002","code1":"000000","code2":"000001"}`, 401, "wrong_answer"},
			{"bind without codes", "POST", "/api/v1/self/tools/otp", `{"serial":"TOTP-0002"}`, 400, "invalid_request"},
			{"bind", "POST", "/api/v1/self/tools/otp", `{"serial":"TOTP-0002","code1":"` + totp(t, stock, fe.clk.Now()) + `","code2":"` + totp(t, stock, fe.clk.Now().Add(30*time.Second)) + `"}`, 201, ""},
			{"report the card lost", "POST", "/api/v1/self/tools/lost", `{"tool":"gridcard","id":"` + card.Serial + `"}`, 200, ""},
			{"report it lost again", "POST", "/api/v1/self/tools/lost", `{"tool":"gridcard","id":"` + card.Serial + `"}`, 404, "no_such_tool"},
			{"report the new token lost", "POST", "/api/v1/self/tools/lost", `{"tool":"otp","id":"TOTP-0002/1"}`, 200, ""},
			{"an unknown kind of tool", "POST", "/api/v1/self/tools/lost", `{"tool":"abacus","id":"1"}`, 400, "invalid_request"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if st, code := call(high, c.method, c.path, c.body, nil); st != c.status || code != c.code {
					t.Errorf("%d %q, want %d %q", st, code, c.status, c.code)
				}
			})
		}
		if c, _ := fe.srv.Passport().Customer(ctx, fe.pid); c.ReservedMessage != "blue kite 7" {
			t.Errorf("reserved message %q", c.ReservedMessage)
		}
		eff, _ := counter.Effective(ctx, fe.pid)
		if eff[2].PerTxn != 100_00 || eff[3].PerTxn != 1_000_000_00 {
			t.Errorf("own limits %+v", eff)
		}
		if cards, _ := fe.set.GridCard.Cards(ctx, fe.pid); len(cards) != 1 || cards[0].Status != "revoked" {
			t.Errorf("card %+v", cards)
		}
		if tk, err := fe.set.OTP.TokenBySerial(ctx, "TOTP-0002", ""); err != nil || tk.PassportID != fe.pid || tk.Status != "revoked" {
			t.Errorf("bound-then-lost token %+v %v", tk, err)
		}
		list, err := fe.srv.Alerts().ForCustomer(ctx, fe.pid, 50)
		if err != nil {
			t.Fatal(err)
		}
		events := map[string]int{}
		for _, a := range list {
			if a.Kind == alerts.KindTool {
				var b alerts.Tool
				json.Unmarshal(a.Body, &b)
				events[b.Event+" "+b.Tool]++
			}
		}
		if events["bound otp"] != 1 || events["lost gridcard"] != 1 || events["lost otp"] != 1 || len(events) != 3 {
			t.Errorf("tool alerts %v", events)
		}
	})
}
