package oath

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// clock is a settable test clock.
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

var seed = []byte("12345678901234567890")

type fixture struct {
	svc   *Service
	hsm   *fakeHSM
	clk   *clock
	db    *store.DB
	hotp  *Token
	totp  *Token
	ocra  *Token
	seeds map[string][]byte
}

func testKeys() []*pskc.Key {
	return []*pskc.Key{
		{ID: "1", Serial: "H0001", Manufacturer: "Acme", Params: otp.Params{Kind: otp.KindHOTP, Hash: crypto.SHA1, Digits: 6}, Secret: append([]byte(nil), seed...)},
		{ID: "1", Serial: "T0001", Manufacturer: "Acme", Params: otp.Params{Kind: otp.KindTOTP, Hash: crypto.SHA256, Digits: 8, Period: 30 * time.Second}, Secret: []byte("12345678901234567890123456789012")},
		{ID: "1", Serial: "O0001", Manufacturer: "Acme", Params: otp.Params{Kind: otp.KindOCRA, Suite: "OCRA-1:HOTP-SHA256-8:C-QN16", Hash: crypto.SHA256, Digits: 8}, Secret: []byte("12345678901234567890123456789012")},
	}
}

func writePSKC(t testing.TB, path string, ks []*pskc.Key, o pskc.WriterOptions) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pskc.NewWriter(f, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		if err := w.Add(k); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func opener(path string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return os.Open(path) }
}

func setup(t *testing.T, db *store.DB, cfg Config) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{hsm: newFakeHSM(), clk: &clock{t: time.Unix(1700000000, 0)}, db: db}
	f.svc = New(db, f.hsm, cfg, f.clk.Now)
	path := filepath.Join(t.TempDir(), "tokens.pskc")
	writePSKC(t, path, testKeys(), pskc.WriterOptions{})
	sum, err := f.svc.ImportPSKC(ctx, opener(path), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Imported != 3 {
		t.Fatalf("imported %d", sum.Imported)
	}
	for _, s := range []string{"H0001", "T0001", "O0001"} {
		if err := f.svc.Assign(ctx, s, "", "P-"+s); err != nil {
			t.Fatal(err)
		}
	}
	f.hotp, _ = f.svc.TokenBySerial(ctx, "H0001", "")
	f.totp, _ = f.svc.TokenBySerial(ctx, "T0001", "")
	f.ocra, _ = f.svc.TokenBySerial(ctx, "O0001", "")
	return f
}

func (f *fixture) reload(t *testing.T, tok **Token) {
	t.Helper()
	n, err := f.svc.TokenBySerial(context.Background(), (*tok).Serial, "")
	if err != nil {
		t.Fatal(err)
	}
	*tok = n
}

func hotpCode(c uint64) string {
	s, _ := otp.HOTP(context.Background(), otp.SoftwareMAC{Key: seed}, crypto.SHA1, c, 6)
	return s
}

func totpCode(at time.Time) string {
	p := otp.TOTP{Hash: crypto.SHA256, Digits: 8, Period: 30 * time.Second}
	s, _ := p.Code(context.Background(), otp.SoftwareMAC{Key: []byte("12345678901234567890123456789012")}, at)
	return s
}

func TestHOTPVerify(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db, Config{})
		steps := []struct {
			name string
			code string
			want error
		}{
			{"counter 0", hotpCode(0), nil},
			{"replay of 0", hotpCode(0), ErrReplay},
			{"skip ahead to 5 (inside the window)", hotpCode(5), nil},
			{"skipped 3 is now used", hotpCode(3), ErrReplay},
			{"beyond the window", hotpCode(6 + 10), ErrWrongCode},
			{"wrong", "000000", ErrWrongCode},
			{"not digits", "12a456", ErrMalformed},
			{"too short", "12345", ErrMalformed},
			{"next", hotpCode(6), nil},
		}
		for _, st := range steps {
			f.reload(t, &f.hotp)
			_, err := f.svc.Verify(ctx, f.hotp, st.code)
			if st.want == nil && err != nil || st.want != nil && !errors.Is(err, st.want) {
				t.Fatalf("%s: error %v, want %v", st.name, err, st.want)
			}
		}
		if n := f.hsm.calls.Load(); n != 7 { // one HSM call per verification that got past input checks
			t.Errorf("HSM called %d times, want 7", n)
		}
	})
}

func TestTOTPVerifyAndDrift(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db, Config{})
		now := f.clk.Now()
		check := func(name, code string, want error) {
			t.Helper()
			f.reload(t, &f.totp)
			_, err := f.svc.Verify(ctx, f.totp, code)
			if want == nil && err != nil || want != nil && !errors.Is(err, want) {
				t.Fatalf("%s: error %v, want %v", name, err, want)
			}
		}
		check("previous step", totpCode(now.Add(-30*time.Second)), nil)
		check("same step again", totpCode(now.Add(-30*time.Second)), ErrReplay)
		check("current", totpCode(now), nil)
		check("current again", totpCode(now), ErrReplay)
		check("two steps ahead", totpCode(now.Add(60*time.Second)), ErrWrongCode)
		// The token's clock runs 10 minutes fast: resync learns the drift.
		fast := now.Add(10 * time.Minute)
		check("fast clock before resync", totpCode(fast), ErrWrongCode)
		f.reload(t, &f.totp)
		if _, err := f.svc.Resync(ctx, f.totp, totpCode(fast), totpCode(fast.Add(30*time.Second))); err != nil {
			t.Fatal(err)
		}
		check("resync codes replayed", totpCode(fast.Add(30*time.Second)), ErrReplay)
		f.clk.Add(60 * time.Second)
		check("fast clock after resync", totpCode(fast.Add(60*time.Second)), nil)
	})
}

func TestHOTPResync(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db, Config{MaxFailures: 10})
		if _, err := f.svc.Verify(ctx, f.hotp, hotpCode(50)); !errors.Is(err, ErrWrongCode) {
			t.Fatalf("outside the window: %v", err)
		}
		f.reload(t, &f.hotp)
		if _, err := f.svc.Resync(ctx, f.hotp, hotpCode(50), hotpCode(52)); !errors.Is(err, ErrWrongCode) {
			t.Fatalf("non-consecutive codes: %v", err)
		}
		f.reload(t, &f.hotp)
		acc, err := f.svc.Resync(ctx, f.hotp, hotpCode(50), hotpCode(51))
		if err != nil || acc.Counter != 51 {
			t.Fatalf("resync = %+v, %v", acc, err)
		}
		f.reload(t, &f.hotp)
		for _, c := range []uint64{50, 51, 10} {
			if _, err := f.svc.Verify(ctx, f.hotp, hotpCode(c)); !errors.Is(err, ErrReplay) && !errors.Is(err, ErrWrongCode) {
				t.Fatalf("code %d after resync: %v", c, err)
			}
			f.reload(t, &f.hotp)
		}
		// A resync can never go back to used codes.
		if _, err := f.svc.Resync(ctx, f.hotp, hotpCode(50), hotpCode(51)); !errors.Is(err, ErrWrongCode) {
			t.Fatalf("resync replay: %v", err)
		}
		f.reload(t, &f.hotp)
		if _, err := f.svc.Verify(ctx, f.hotp, hotpCode(52)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLockout(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db, Config{MaxFailures: 3, LockFor: time.Minute})
		for i := range 3 {
			f.reload(t, &f.hotp)
			if _, err := f.svc.Verify(ctx, f.hotp, "000000"); !errors.Is(err, ErrWrongCode) {
				t.Fatalf("attempt %d: %v", i, err)
			}
		}
		f.reload(t, &f.hotp)
		_, err := f.svc.Verify(ctx, f.hotp, hotpCode(0))
		var le *authn.LockedError
		if !errors.As(err, &le) || !errors.Is(err, authn.ErrLocked) || le.Until.IsZero() {
			t.Fatalf("right code while locked: %v", err)
		}
		f.clk.Add(61 * time.Second)
		f.reload(t, &f.hotp)
		if _, err := f.svc.Verify(ctx, f.hotp, hotpCode(0)); err != nil {
			t.Fatalf("after the lockout ran out: %v", err)
		}
		f.reload(t, &f.hotp)
		if f.hotp.Failures != 0 {
			t.Fatalf("failures %d after success", f.hotp.Failures)
		}
	})
}

// verifyBy verifies a code of H0001 by one of the three ways in: looked up
// then Verify, VerifyCode by serial, VerifyCode by customer.
func verifyBy(ctx context.Context, s *Service, i int, code string) error {
	switch (i / 2) % 3 {
	case 0:
		tok, err := s.TokenBySerial(ctx, "H0001", "")
		if err != nil {
			return err
		}
		_, err = s.Verify(ctx, tok, code)
		return err
	case 1:
		_, err := s.VerifyCode(ctx, Lookup{Serial: "H0001"}, code)
		return err
	}
	_, err := s.VerifyCode(ctx, Lookup{PassportID: "P-H0001"}, code)
	return err
}

// Parallel requests from two replicas (two *store.DB handles on one
// database), mixing the ways in: one code is accepted exactly once, and no
// more than MaxFailures wrong guesses are ever compared.
func TestParallelReplayAndLockout(t *testing.T) {
	engines := []struct {
		name string
		open func(t *testing.T) (*store.DB, *store.DB)
	}{
		{"sqlite", func(t *testing.T) (*store.DB, *store.DB) {
			p := filepath.Join(t.TempDir(), "e.db")
			a, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: p})
			if err != nil {
				t.Fatal(err)
			}
			b, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: p})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Close(); b.Close() })
			return a, b
		}},
		{"postgres", func(t *testing.T) (*store.DB, *store.DB) {
			dsn := storetest.PostgresDSN(t)
			a, err := store.Open(context.Background(), store.Config{Driver: store.Postgres, DSN: dsn})
			if err != nil {
				t.Fatal(err)
			}
			b, err := store.Open(context.Background(), store.Config{Driver: store.Postgres, DSN: dsn})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Close(); b.Close() })
			return a, b
		}},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := context.Background()
			a, b := e.open(t)
			f := setup(t, a, Config{MaxFailures: 5})
			replicas := []*Service{f.svc, New(b, f.hsm, Config{MaxFailures: 5}, f.clk.Now)}
			const n = 16
			var ok, replay, other atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := replicas[i%2]
					<-start
					err := verifyBy(ctx, s, i, hotpCode(0))
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, ErrReplay):
						replay.Add(1)
					default:
						other.Add(1)
						t.Logf("verify: %v", err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if ok.Load() != 1 || replay.Load()+other.Load() != n-1 {
				t.Fatalf("one code accepted %d times (%d replays, %d other)", ok.Load(), replay.Load(), other.Load())
			}
			// Parallel wrong guesses: at most MaxFailures are compared (the
			// HSM sees each compared guess), the rest find the token locked.
			f.svc.Unlock(ctx, "H0001", "")
			before := f.hsm.calls.Load()
			var wrong, locked atomic.Int64
			start = make(chan struct{})
			for i := range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := replicas[i%2]
					<-start
					err := verifyBy(ctx, s, i, fmt.Sprintf("%06d", 900000+i))
					switch {
					case errors.Is(err, ErrWrongCode):
						wrong.Add(1)
					case errors.Is(err, authn.ErrLocked):
						locked.Add(1)
					default:
						t.Errorf("guess: %v", err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if wrong.Load() != 5 || locked.Load() != 35 || f.hsm.calls.Load()-before != 5 {
				t.Fatalf("%d wrong, %d locked, %d compared; want 5, 35, 5", wrong.Load(), locked.Load(), f.hsm.calls.Load()-before)
			}
		})
	}
}

func TestOCRATransaction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db, Config{})
		txHash := bytes.Repeat([]byte{0xab}, 32)
		ch, err := f.svc.BeginOCRA(ctx, "P-O0001", authn.PurposeTransaction, txHash, &TxDetails{PayeeAccount: "6228 4800 1234 5678", AmountFen: 123456})
		if err != nil {
			t.Fatal(err)
		}
		d, err := otp.DecodeTransactionQuestion(ch.Question, otp.TxLayout{})
		if err != nil || d.PayeeTail != "5678" || d.AmountFen != 123456 {
			t.Fatalf("question %q decodes to %+v, %v", ch.Question, d, err)
		}
		// The customer's token computes the response (counter 0).
		su, _ := otp.ParseSuite("OCRA-1:HOTP-SHA256-8:C-QN16")
		resp, _ := su.Compute(ctx, otp.SoftwareMAC{Key: []byte("12345678901234567890123456789012")}, otp.OCRAInput{Question: ch.Question})
		for _, other := range [][]byte{bytes.Repeat([]byte{0xcd}, 32), nil} {
			if _, err := f.svc.VerifyOCRA(ctx, "P-O0001", ch.ID, other, resp); !errors.Is(err, authn.ErrUnknown) {
				t.Fatalf("another transaction's hash %x: %v", other, err)
			}
		}
		// Refused before anything changed: the challenge still answers for
		// its own transaction.
		if _, err := f.svc.VerifyOCRA(ctx, "P-O0001", ch.ID, txHash, resp); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.VerifyOCRA(ctx, "P-O0001", ch.ID, txHash, resp); !errors.Is(err, authn.ErrUsed) {
			t.Fatalf("reused challenge: %v", err)
		}
		// A response computed for another amount is refused.
		ch, _ = f.svc.BeginOCRA(ctx, "P-O0001", authn.PurposeTransaction, txHash, &TxDetails{PayeeAccount: "6228 4800 1234 5678", AmountFen: 123456})
		forged := otp.Transaction{Challenge: ch.Question[:4], PayeeAccount: "5678", AmountFen: 999}
		q2, _ := otp.TransactionQuestion(su, forged, otp.TxLayout{})
		resp, _ = su.Compute(ctx, otp.SoftwareMAC{Key: []byte("12345678901234567890123456789012")}, otp.OCRAInput{Question: q2, Counter: 1})
		if _, err := f.svc.VerifyOCRA(ctx, "P-O0001", ch.ID, txHash, resp); !errors.Is(err, ErrWrongCode) {
			t.Fatalf("response for another amount: %v", err)
		}
	})
}

func TestFactor(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db, Config{})
		fac := Factor{S: f.svc}
		if ok, err := fac.Enrolled(ctx, "P-H0001"); !ok || err != nil {
			t.Fatalf("Enrolled = %v, %v", ok, err)
		}
		if ok, _ := fac.Enrolled(ctx, "nobody"); ok {
			t.Fatal("nobody is enrolled")
		}
		if _, err := fac.Begin(ctx, authn.BeginRequest{PassportID: "nobody", Purpose: authn.PurposeLogin}); !errors.Is(err, authn.ErrNotEnrolled) {
			t.Fatalf("Begin for nobody: %v", err)
		}
		ch, err := fac.Begin(ctx, authn.BeginRequest{PassportID: "P-H0001", Purpose: authn.PurposeLogin})
		if err != nil {
			t.Fatal(err)
		}
		res, err := fac.Verify(ctx, authn.VerifyRequest{PassportID: "P-H0001", ChallengeID: ch.ID, Response: []byte(hotpCode(0))})
		if err != nil || res.Level != 3 || res.AMR != "otp" {
			t.Fatalf("Verify = %+v, %v", res, err)
		}
		if _, err := fac.Verify(ctx, authn.VerifyRequest{PassportID: "P-H0001", ChallengeID: ch.ID, Response: []byte(hotpCode(1))}); !errors.Is(err, authn.ErrUsed) {
			t.Fatalf("reused challenge: %v", err)
		}
		// An OCRA token answers the question in Challenge.Data.
		ch, err = fac.Begin(ctx, authn.BeginRequest{PassportID: "P-O0001", Purpose: authn.PurposeLogin})
		if err != nil || len(ch.Data) == 0 {
			t.Fatalf("OCRA Begin = %+v, %v", ch, err)
		}
		su, _ := otp.ParseSuite("OCRA-1:HOTP-SHA256-8:C-QN16")
		resp, _ := su.Compute(ctx, otp.SoftwareMAC{Key: []byte("12345678901234567890123456789012")}, otp.OCRAInput{Question: string(ch.Data)})
		if _, err := fac.Verify(ctx, authn.VerifyRequest{PassportID: "P-O0001", ChallengeID: ch.ID, Response: []byte(resp)}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestHTTP(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, Config{MaxFailures: 2})
		srv := httptest.NewServer(f.svc.Handler())
		defer srv.Close()
		post := func(path, body string) (int, string) {
			resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out struct {
				Error struct{ Code string } `json:"error"`
			}
			b, _ := io.ReadAll(resp.Body)
			json.Unmarshal(b, &out)
			return resp.StatusCode, out.Error.Code
		}
		cases := []struct {
			name, path, body string
			status           int
			code             string
		}{
			{"not json", "/v1/otp/verify", "{", 400, "invalid_request"},
			{"unknown field", "/v1/otp/verify", `{"serial":"H0001","code":"1","pin":"x"}`, 400, "invalid_request"},
			{"both ids", "/v1/otp/verify", `{"serial":"H0001","passport_id":"P-H0001","code":"123456"}`, 400, "invalid_request"},
			{"bad code", "/v1/otp/verify", `{"serial":"H0001","code":"12x456"}`, 400, "bad_response"},
			{"unknown token", "/v1/otp/verify", `{"serial":"nope","code":"123456"}`, 404, "unknown_token"},
			{"unknown customer", "/v1/otp/verify", `{"passport_id":"nobody","code":"123456"}`, 404, "unknown_token"},
			{"ok by passport", "/v1/otp/verify", `{"passport_id":"P-H0001","code":"` + hotpCode(0) + `"}`, 200, ""},
			{"replay", "/v1/otp/verify", `{"serial":"H0001","code":"` + hotpCode(0) + `"}`, 409, "replay"},
			{"wrong", "/v1/otp/verify", `{"serial":"H0001","code":"000000"}`, 401, "wrong_answer"},
			{"locked", "/v1/otp/verify", `{"serial":"H0001","code":"` + hotpCode(1) + `"}`, 423, "locked"},
			{"resync needs code2", "/v1/otp/resync", `{"serial":"T0001","code":"12345678"}`, 400, "invalid_request"},
			{"resync", "/v1/otp/resync", `{"serial":"T0001","code":"` + totpCode(f.clk.Now().Add(20*time.Minute)) + `","code2":"` + totpCode(f.clk.Now().Add(20*time.Minute+30*time.Second)) + `"}`, 200, ""},
		}
		for _, tc := range cases {
			st, code := post(tc.path, tc.body)
			if st != tc.status || code != tc.code {
				t.Errorf("%s: %d %q, want %d %q", tc.name, st, code, tc.status, tc.code)
			}
		}
	})
}

func TestImportBadFileImportsNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc := New(db, newFakeHSM(), Config{}, nil)
		dir := t.TempDir()
		good := filepath.Join(dir, "good.pskc")
		writePSKC(t, good, testKeys(), pskc.WriterOptions{})
		data, _ := os.ReadFile(good)
		cases := []struct {
			name  string
			doc   string
			opts  pskc.Options
			index int
		}{
			{"truncated", string(data[:bytes.LastIndex(data, []byte("<KeyPackage>"))+60]), pskc.Options{}, 3},
			{"bad third entry", strings.Replace(string(data), "OCRA-1:HOTP-SHA256-8:C-QN16", "OCRA-9", 1), pskc.Options{}, 3},
			{"duplicate entry", strings.Replace(string(data), "</KeyContainer>", string(data[bytes.Index(data, []byte("<KeyPackage>")):bytes.Index(data, []byte("</KeyPackage>"))+len("</KeyPackage>")])+"</KeyContainer>", 1), pskc.Options{}, 4},
		}
		for _, tc := range cases {
			p := filepath.Join(dir, "bad.pskc")
			os.WriteFile(p, []byte(tc.doc), 0o600)
			_, err := svc.ImportPSKC(ctx, opener(p), ImportOptions{})
			var ee *pskc.EntryError
			if !errors.As(err, &ee) || ee.Index != tc.index {
				t.Errorf("%s: error %v, want one naming entry %d", tc.name, err, tc.index)
			}
			var n int
			db.QueryRow(ctx, `SELECT COUNT(*) FROM otp_tokens`).Scan(&n)
			if n != 0 {
				t.Fatalf("%s: %d tokens stored from a bad file", tc.name, n)
			}
		}
		// Encrypted, wrong password: nothing.
		enc := filepath.Join(dir, "enc.pskc")
		writePSKC(t, enc, testKeys(), pskc.WriterOptions{Password: []byte("right"), Iterations: 1000})
		if _, err := svc.ImportPSKC(ctx, opener(enc), ImportOptions{PSKC: pskc.Options{Password: []byte("wrong")}}); err == nil {
			t.Fatal("wrong password imported")
		}
		sum, err := svc.ImportPSKC(ctx, opener(enc), ImportOptions{PSKC: pskc.Options{Password: []byte("right")}})
		if err != nil || sum.Imported != 3 {
			t.Fatalf("import = %+v, %v", sum, err)
		}
		sum, err = svc.ImportPSKC(ctx, opener(good), ImportOptions{})
		if err != nil || sum.Imported != 0 || sum.Duplicates != 3 {
			t.Fatalf("re-import = %+v, %v", sum, err)
		}
		// Seeds are stored wrapped only.
		rows, _ := db.Query(ctx, `SELECT wrapped FROM otp_tokens`)
		defer rows.Close()
		for rows.Next() {
			var w []byte
			rows.Scan(&w)
			if bytes.Contains(w, seed) || bytes.Contains(w, []byte("1234567890123456")) {
				t.Fatal("a seed is stored in the clear")
			}
		}
	})
}
