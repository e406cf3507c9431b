package factors

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/authsvc/sms"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

func TestMain(m *testing.M) { hsmtest.Main(m) }

// gateway is an operator SMS gateway double.
type gateway struct {
	mu   sync.Mutex
	sent []sms.Message
}

func (g *gateway) Send(_ context.Context, m sms.Message) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sent = append(g.sent, m)
	return nil
}

func autoCA() Config { return Config{CA: CAConfig{AutoInit: true}} }

func build(t testing.TB, db *store.DB, cfg Config, deps Deps) *Set {
	t.Helper()
	deps.DB = db
	if deps.HSM == nil {
		deps.HSM = hsmtest.Open(t)
	}
	set, err := Build(context.Background(), cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	return set
}

func get(t *testing.T, h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func errCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("not the JSON error shape: %d %q", w.Code, w.Body.String())
	}
	return e.Error.Code
}

func TestBuild(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		set := build(t, db, autoCA(), Deps{})
		type nl struct {
			name  string
			level authn.Level
		}
		var got []nl
		for _, f := range set.Factors {
			got = append(got, nl{f.Name(), f.Level()})
		}
		want := []nl{{"sms", 2}, {"gridcard", 2}, {"otp", 3}, {"ushield", 4}, {"piv", 4}, {"ushield2", 5}}
		if !slices.Equal(got, want) {
			t.Fatalf("factors %v, want %v", got, want)
		}
		if set.SMS == nil || set.SMSSink == nil || set.GridCard == nil || set.OTP == nil || set.UShield == nil || set.PIV == nil || set.CA == nil {
			t.Fatalf("services missing: %+v", set)
		}
		if set.Factor("otp") == nil || set.Factor("password") != nil {
			t.Fatal("Factor by name")
		}

		// A second Build over the same database loads the CA AutoInit made.
		again := build(t, db, autoCA(), Deps{})
		if !again.CA.Root().Equal(set.CA.Root()) {
			t.Fatal("a second Build made another CA")
		}

		h := set.Handler
		root := get(t, h, "GET", "/ca/root.pem", "")
		blk, _ := pem.Decode(root.Body.Bytes())
		if root.Code != 200 || blk == nil {
			t.Fatalf("/ca/root.pem: %d %q", root.Code, root.Body.String())
		}
		if c, err := x509.ParseCertificate(blk.Bytes); err != nil || !c.Equal(set.CA.Root()) {
			t.Fatalf("/ca/root.pem is not the CA's root: %v", err)
		}
		crl := get(t, h, "GET", "/ca/crl", "")
		if crl.Code != 200 || crl.Header().Get("Content-Type") != "application/pkix-crl" {
			t.Fatalf("/ca/crl: %d %s", crl.Code, crl.Header())
		}
		if _, err := x509.ParseRevocationList(crl.Body.Bytes()); err != nil {
			t.Fatalf("/ca/crl: %v", err)
		}
		if w := get(t, h, "POST", "/v1/otp/verify", `{"serial":"NOPE","code":"123456"}`); w.Code != 404 || errCode(t, w) != "unknown_token" {
			t.Fatalf("/v1/otp/verify: %d %s", w.Code, w.Body)
		}
		if w := get(t, h, "POST", "/v1/otp/resync", `{`); w.Code != 400 || errCode(t, w) != "malformed" {
			t.Fatalf("/v1/otp/resync: %d %s", w.Code, w.Body)
		}
		if w := get(t, h, "GET", "/sim/sms/messages.json", ""); w.Code != 200 || strings.TrimSpace(w.Body.String()) != "[]" {
			t.Fatalf("/sim/sms/messages.json: %d %s", w.Code, w.Body)
		}
		if w := get(t, h, "GET", "/sim/sms/", ""); w.Code != 200 || !strings.Contains(w.Body.String(), "SMS sink") {
			t.Fatalf("/sim/sms/: %d", w.Code)
		}
		if w := get(t, h, "GET", "/elsewhere", ""); w.Code != 404 || errCode(t, w) != "not_found" {
			t.Fatalf("/elsewhere: %d %s", w.Code, w.Body)
		}
	})
}

// TestBuildOperatorGateway: with a real gateway there is no sink and no
// /sim/sms/ page, and codes go to the gateway.
func TestBuildOperatorGateway(t *testing.T) {
	db := storetest.SQLite(t)
	gw := &gateway{}
	set := build(t, db, Config{Enabled: []string{SMS}}, Deps{SMS: gw})
	if set.SMSSink != nil || len(set.Factors) != 1 || set.CA != nil {
		t.Fatalf("set: %+v", set)
	}
	if w := get(t, set.Handler, "GET", "/sim/sms/", ""); w.Code != 404 {
		t.Fatalf("/sim/sms/ with an operator gateway: %d", w.Code)
	}
	if w := get(t, set.Handler, "GET", "/ca/crl", ""); w.Code != 503 || errCode(t, w) != "not_initialized" {
		t.Fatalf("/ca/crl without a CA: %d %s", w.Code, w.Body)
	}
	if w := get(t, set.Handler, "POST", "/v1/otp/verify", "{}"); w.Code != 404 {
		t.Fatalf("/v1/otp/verify with otp off: %d", w.Code)
	}
	pid := customer(t, db, "13812345678")
	if _, err := set.Factors[0].Begin(context.Background(), authn.BeginRequest{PassportID: pid, Purpose: authn.PurposeLogin}); err != nil {
		t.Fatal(err)
	}
	if len(gw.sent) != 1 || gw.sent[0].To != "13812345678" {
		t.Fatalf("gateway got %v", gw.sent)
	}
}

func TestBuildRefuses(t *testing.T) {
	// A token with the standard keys (egate admin hsm init) and one without any key.
	full, empty := hsmtest.Open(t), hsmtest.OpenEmpty(t)
	db := storetest.SQLite(t)
	cases := []struct {
		name string
		cfg  Config
		deps Deps
		want []string // substrings of the error
		is   error
	}{
		{"unknown tool", Config{Enabled: []string{"sms", "fingerprint"}}, Deps{DB: db, HSM: full}, []string{"enabled", `"fingerprint"`, "ushield2"}, ErrConfig},
		{"tool twice", Config{Enabled: []string{"otp", "otp"}}, Deps{DB: db, HSM: full}, []string{"enabled", `"otp" twice`}, ErrConfig},
		{"grid too wide", Config{GridCard: GridCardConfig{Cols: 30}}, Deps{DB: db, HSM: full}, []string{"gridcard.cols", "30", "between 2 and 26"}, ErrConfig},
		{"SMS code too long-lived", Config{SMS: SMSConfig{TTL: 2 * time.Hour}}, Deps{DB: db, HSM: full}, []string{"sms.ttl", "2h0m0s"}, ErrConfig},
		{"negative OTP failures", Config{OTP: OTPConfig{MaxFailures: -1}}, Deps{DB: db, HSM: full}, []string{"otp.max-failures", "-1"}, ErrConfig},
		{"no HSM", Config{}, Deps{DB: db}, []string{"no HSM"}, nil},
		{"no database", Config{}, Deps{HSM: full}, []string{"no database"}, nil},
		{"HSM without the keys", Config{Enabled: []string{SMS}}, Deps{DB: db, HSM: empty}, []string{`"egate-hmac"`, "egate admin hsm init"}, hsm.ErrKeyNotFound},
		{"certificate tools without a CA", Config{Enabled: []string{OTP, PIV}}, Deps{DB: db, HSM: full}, []string{"piv need the bank CA", "egate admin ca init", "auto-init"}, ca.ErrNotInitialized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set, err := Build(context.Background(), tc.cfg, tc.deps)
			if err == nil {
				set.Close()
				t.Fatal("built")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
	// Nothing was created: the database has no CA after the refusals.
	if _, err := ca.Load(context.Background(), db, nil, nil); !errors.Is(err, ca.ErrNotInitialized) {
		t.Fatalf("a refused Build left a CA: %v", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Enabled, All) || c.SMS.TTL != 5*time.Minute || c.GridCard.MaxUses != 200 || c.OTP.WrapKeyLabel != hsm.LabelSecretsWrap || c.CA.AutoInit {
		t.Fatalf("defaults: %+v", c)
	}
	off := Config{Enabled: []string{}}.WithDefaults()
	if len(off.Enabled) != 0 {
		t.Fatalf("an explicit empty list became %v", off.Enabled)
	}
}
