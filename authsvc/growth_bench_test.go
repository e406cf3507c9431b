package authsvc

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/authsvc/passport"
)

// BenchmarkLoginClients: password logins through the HTTP handler in
// process (the auth request and flow that /authorize and the name page
// make, then POST /login/password: captcha check, counters, argon2id at
// the default parameters, session, alert, audit, redirect) from 1, 2, 4
// and 8 concurrent clients, each its own customer at its own address (the
// passport rightly asks for a captcha when password checks from one
// address overlap). ns/op is wall time per login of all clients together,
// logins/s its inverse: argon2id (19 MiB, t=2) keeps a core busy per
// login, so on 2 cores the curve flattens from 2 clients on.
func BenchmarkLoginClients(b *testing.B) {
	s, _ := benchServer(b, memKey(b))
	ctx := context.Background()
	pids := make([]string, 8)
	for c := range pids {
		cu, err := s.Passport().Register(ctx, passport.NewCustomer{LoginName: fmt.Sprintf("client%d", c), ReservedMessage: "red lantern", Password: testPassword})
		if err != nil {
			b.Fatal(err)
		}
		pids[c] = cu.PassportID
	}
	login := func(b *testing.B, c int) {
		ar := newAuthRequest(b, s, "v")
		tok := oidcop.RandomToken()
		pid := pids[c]
		if err := s.storage.SetFlow(ctx, ar.ID, flow{Browser: sha(tok), Step: "password", SubjectKey: "pid:" + pid, PassportID: pid, Reserved: "red lantern"}); err != nil {
			b.Error(err)
			return
		}
		req := httptest.NewRequest("POST", "/login/password", strings.NewReader(url.Values{"id": {ar.ID}, "password": {testPassword}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: flowCookie, Value: tok})
		req.RemoteAddr = fmt.Sprintf("192.0.2.%d:40000", c+1)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusSeeOther {
			b.Errorf("client %d: status %d: %s", c, rec.Code, rec.Body)
		}
	}
	for _, clients := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("clients-%d", clients), func(b *testing.B) {
			var left atomic.Int64
			left.Store(int64(b.N))
			var wg sync.WaitGroup
			for c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for left.Add(-1) >= 0 {
						login(b, c)
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
		})
	}
}
