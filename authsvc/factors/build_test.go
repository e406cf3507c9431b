package factors

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// autoCA is the demo's config: the CA made on the first start, SMS through
// the development sink.
func autoCA() Config { return Config{CA: CAConfig{AutoInit: true}, SMS: SMSConfig{DevSink: true}} }

// devSink is the development sink's SMS section.
var devSink = SMSConfig{DevSink: true}

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
		want := []nl{{"sms", 2}, {"gridcard", 2}, {"otp", 3}, {"phone", 3}, {"ushield", 4}, {"piv", 4}, {"ushield2", 5}}
		if !slices.Equal(got, want) {
			t.Fatalf("factors %v, want %v", got, want)
		}
		if set.SMS == nil || set.SMSSink == nil || set.GridCard == nil || set.OTP == nil || set.UShield == nil || set.PIV == nil || set.Phone == nil || set.CA == nil {
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
		if w := get(t, h, "POST", "/v1/otp/resync", `{`); w.Code != 400 || errCode(t, w) != "invalid_request" {
			t.Fatalf("/v1/otp/resync: %d %s", w.Code, w.Body)
		}
		// The development sink's page is the demo's, not the tools' API.
		for _, p := range []string{"/sim/sms/", "/sim/sms/messages.json"} {
			if w := get(t, h, "GET", p, ""); w.Code != 404 || errCode(t, w) != "not_found" {
				t.Fatalf("%s with the development sink: %d %s", p, w.Code, w.Body)
			}
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
		{"no HSM", Config{SMS: devSink}, Deps{DB: db}, []string{"no HSM"}, nil},
		{"no database", Config{SMS: devSink}, Deps{HSM: full}, []string{"no database"}, nil},
		{"HSM without the keys", Config{Enabled: []string{SMS}, SMS: devSink}, Deps{DB: db, HSM: empty}, []string{`"egate-hmac"`, "egate admin hsm init"}, hsm.ErrKeyNotFound},
		// A production config that forgot the SMS gateway fails at start
		// instead of keeping codes in the database.
		{"SMS with neither gateway nor sink", Config{}, Deps{DB: db, HSM: full}, []string{"factors.sms.gateway.url", "factors.sms.gateway.token-source", "factors.sms.dev-sink: true", "development only"}, ErrConfig},
		{"SMS with gateway and sink", Config{SMS: SMSConfig{DevSink: true, Gateway: SMSGatewayConfig{URL: "https://sms.example.com/send", TokenSource: "env:X"}}}, Deps{DB: db, HSM: full}, []string{"factors.sms.gateway.url and factors.sms.dev-sink are both set"}, ErrConfig},
		{"SMS gateway over plain http", Config{SMS: SMSConfig{Gateway: SMSGatewayConfig{URL: "http://sms.example.com/send", TokenSource: "env:X"}}}, Deps{DB: db, HSM: full}, []string{"sms.gateway.url", "must be https"}, ErrConfig},
		{"SMS gateway without a token source", Config{SMS: SMSConfig{Gateway: SMSGatewayConfig{URL: "https://sms.example.com/send"}}}, Deps{DB: db, HSM: full}, []string{"sms.gateway.token-source", "env:VARIABLE"}, ErrConfig},
		{"SMS gateway timeout too long", Config{SMS: SMSConfig{Gateway: SMSGatewayConfig{URL: "https://sms.example.com/send", TokenSource: "env:X", Timeout: time.Hour}}}, Deps{DB: db, HSM: full}, []string{"sms.gateway.timeout", "1h0m0s"}, ErrConfig},
		{"SMS gateway token unset", Config{SMS: SMSConfig{Gateway: SMSGatewayConfig{URL: "https://sms.example.com/send", TokenSource: "env:EGATE_TEST_NO_SUCH_SMS_TOKEN"}}}, Deps{DB: db, HSM: full}, []string{"sms.gateway", "EGATE_TEST_NO_SUCH_SMS_TOKEN", "is not set"}, sms.ErrGateway},
		{"OTP seeds under the sealing key", Config{Enabled: []string{OTP}, OTP: OTPConfig{WrapKeyLabel: hsm.LabelSecretsWrap}}, Deps{DB: db, HSM: full}, []string{"otp.wrap-key-label", "egate-secrets-wrap", "can decrypt", "egate-otp-seed-wrap"}, ErrConfig},
		{"OTP seeds under a plain AES key", Config{Enabled: []string{OTP}, OTP: OTPConfig{WrapKeyLabel: hsm.LabelATMPIN}}, Deps{DB: db, HSM: full}, []string{"otp.wrap-key-label", `"egate-atm-pin"`, "aes-256 key", "egate admin hsm init"}, hsm.ErrKeyType},
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
	// The defaults choose no SMS gateway: a config must name the operator's
	// API or, for development, the sink.
	err := Config{}.WithDefaults().Validate()
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "factors.sms.gateway.url") || !strings.Contains(err.Error(), "factors.sms.dev-sink") {
		t.Fatalf("defaults without an SMS gateway: Validate = %v", err)
	}
	for _, s := range []SMSConfig{{DevSink: true}, {Gateway: SMSGatewayConfig{URL: "https://sms.example.com/v1/send", TokenSource: "file:/etc/egate/sms-token"}}} {
		if err := (Config{SMS: s}).WithDefaults().Validate(); err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
	}
	if err := (Config{Enabled: []string{OTP}}).WithDefaults().Validate(); err != nil {
		t.Fatalf("sms off needs no gateway: %v", err)
	}
	c := Config{SMS: devSink}.WithDefaults()
	if !slices.Equal(c.Enabled, All) || c.SMS.TTL != 5*time.Minute || c.GridCard.MaxUses != 200 || c.OTP.WrapKeyLabel != hsm.LabelSeedWrap || c.CA.AutoInit ||
		c.SMS.Gateway.Timeout != 10*time.Second || c.SMS.Gateway.URL != "" {
		t.Fatalf("defaults: %+v", c)
	}
	off := Config{Enabled: []string{}}.WithDefaults()
	if len(off.Enabled) != 0 {
		t.Fatalf("an explicit empty list became %v", off.Enabled)
	}
}

// TestBuildHTTPGateway: with factors.sms.gateway set, codes go to the
// operator's HTTP API (a real server here) with the bearer token from the
// token source; there is no sink and no /sim/sms/ page.
func TestBuildHTTPGateway(t *testing.T) {
	const token = "operator-token-5Kx9"
	t.Setenv("EGATE_TEST_SMS_GATEWAY_TOKEN", token)
	type got struct {
		auth string
		body map[string]string
	}
	reqs := make(chan got, 4)
	var status atomic.Int32
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b map[string]string
		json.NewDecoder(r.Body).Decode(&b)
		reqs <- got{r.Header.Get("Authorization"), b}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	db := storetest.SQLite(t)
	cfg := Config{Enabled: []string{SMS}, SMS: SMSConfig{Gateway: SMSGatewayConfig{URL: srv.URL + "/send", TokenSource: "env:EGATE_TEST_SMS_GATEWAY_TOKEN"}}}
	set := build(t, db, cfg, Deps{})
	if _, ok := set.SMSGateway.(*sms.HTTPGateway); !ok || set.SMSSink != nil {
		t.Fatalf("gateway %T, sink %v", set.SMSGateway, set.SMSSink)
	}
	if w := get(t, set.Handler, "GET", "/sim/sms/", ""); w.Code != 404 {
		t.Fatalf("/sim/sms/ with an operator gateway: %d", w.Code)
	}
	pid := customer(t, db, "13812345678")
	f := set.Factor(SMS)
	ch, err := f.Begin(context.Background(), authn.BeginRequest{PassportID: pid, Purpose: authn.PurposeLogin, ClientIP: "10.1.1.1"})
	if err != nil {
		t.Fatal(err)
	}
	r := <-reqs
	if r.auth != "Bearer "+token || r.body["to"] != "13812345678" || r.body["id"] == "" {
		t.Fatalf("operator got %+v", r)
	}
	code := regexp.MustCompile(`\b\d{6}\b`).FindString(r.body["text"])
	if _, err := f.Verify(context.Background(), authn.VerifyRequest{PassportID: pid, ChallengeID: ch.ID, Response: []byte(code)}); err != nil {
		t.Fatalf("the code the operator got: %v", err)
	}
	var n int
	db.QueryRow(context.Background(), `SELECT COUNT(*) FROM sms_outbox`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d messages kept in the outbox", n)
	}
	// The operator refuses: no challenge, and the error names the status only.
	status.Store(503)
	_, err = f.Begin(context.Background(), authn.BeginRequest{PassportID: pid, Purpose: authn.PurposeLogin, ClientIP: "10.1.1.1"})
	r = <-reqs
	code = regexp.MustCompile(`\b\d{6}\b`).FindString(r.body["text"])
	if !errors.Is(err, sms.ErrGateway) || !strings.Contains(err.Error(), "503") || strings.Contains(err.Error(), code) || strings.Contains(err.Error(), token) {
		t.Fatalf("Begin with the operator refusing = %v", err)
	}
}
