package authsvc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestParallelGuessesTwoServers: 1,000 (250 under -race) wrong passwords posted in parallel,
// from as many client addresses, to two authsvc servers (two database handles) on one PostgreSQL, each with
// a solved captcha, run at most max_failures argon2id verifications; every
// other guess is told the password is locked.
func TestParallelGuessesTwoServers(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var verifies atomic.Int64
	var answers sync.Map
	var srvs [2]*Server
	for i := range srvs {
		db, err := store.Open(ctx, store.Config{Driver: store.Postgres, DSN: dsn, MaxOpenConns: 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		srvs[i], err = New(ctx, testConfig("http://passport.test"), Deps{DB: db, Signer: key,
			PasswordHooks: passport.Hooks{OnVerify: func() { verifies.Add(1) }},
			CaptchaHook:   func(id, a string) { answers.Store(id, a) }})
		if err != nil {
			t.Fatal(err)
		}
	}
	c, err := srvs[0].Passport().Register(ctx, passport.NewCustomer{LoginName: "frank", ReservedMessage: "jade crane", Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := srvs[1].Passport().Lookup(ctx, "frank")
	n := 1000
	if raceEnabled {
		n = 250
	}
	reqs := make([]*http.Request, n)
	for i := range reqs {
		s := srvs[i%2]
		ar := newAuthRequest(t, s, "v")
		tok := oidcop.RandomToken()
		if err := s.storage.SetFlow(ctx, ar.ID, flow{Browser: sha(tok), Step: "password", SubjectKey: sub.Key, PassportID: c.PassportID, Reserved: sub.ReservedMessage}); err != nil {
			t.Fatal(err)
		}
		ch, err := s.captchas.Issue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ans, _ := answers.Load(ch.ID)
		form := url.Values{"id": {ar.ID}, "password": {"Wrong-Guess-" + string(rune('a'+i%26))}, "captcha_id": {ch.ID}, "captcha_answer": {ans.(string)}}
		req := httptest.NewRequest("POST", "/login/password", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: flowCookieName(ar.ID), Value: tok})
		// From many addresses, as a botnet guesses: the customer's own
		// counter is what must hold (the per-IP limit has its own test,
		// passport.TestParallelSprayingOneIP).
		req.RemoteAddr = fmt.Sprintf("10.0.%d.%d:40000", i/250, i%250+1)
		reqs[i] = req
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	start := make(chan struct{})
	for i, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rec := httptest.NewRecorder()
			srvs[i%2].ServeHTTP(rec, req)
			mu.Lock()
			codes[errorCode(rec.Body.String())]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	max := int64(srvs[0].Passport().Config().MaxFailures)
	t.Logf("verifications=%d outcomes=%v", verifies.Load(), codes)
	if verifies.Load() > max || int64(codes["bad_credentials"]) != verifies.Load() || codes["bad_credentials"]+codes["locked"] != n {
		t.Fatalf("%d verifications (max %d), outcomes %v", verifies.Load(), max, codes)
	}
}
