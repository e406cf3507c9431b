package authsvc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	gopiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/authsvc/factors"
	"github.com/egate-bank/egate/authsvc/oath"
	"github.com/egate-bank/egate/authsvc/pivauth"
	"github.com/egate-bank/egate/authsvc/ushield"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	devotp "github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/devices/piv"
	"github.com/egate-bank/egate/devices/pkcs11token"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// factorEnv is the server with every real tool from factors.Build over
// SoftHSM2 (the bank CA made by auto-init).
type factorEnv struct {
	*env
	set *factors.Set
}

func newFactorEnv(t testing.TB, db *store.DB, mutate ...func(*Config)) *factorEnv {
	t.Helper()
	h := hsmtest.Open(t)
	fe := &factorEnv{}
	fe.env = newEnvFactors(t, db, hsmSigner(t), func(e *env) []authn.Factor {
		set, err := factors.Build(context.Background(), factors.Config{CA: factors.CAConfig{AutoInit: true}, SMS: factors.SMSConfig{DevSink: true}}, factors.Deps{DB: db, HSM: h, Now: e.clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { set.Close() })
		fe.set = set
		return set.Factors
	}, mutate...)
	return fe
}

var totpParams = devotp.Params{Kind: devotp.KindTOTP, Hash: crypto.SHA1, Digits: 6, Period: 30 * time.Second}

// enrollTOTP imports a TOTP token through the PSKC path (the seed wrapped by
// the HSM key) and assigns it to the customer; it returns the seed, which
// only the customer's token and the test know.
func (fe *factorEnv) enrollTOTP(t testing.TB, serial string) []byte {
	t.Helper()
	seed := importStock(t, fe, serial)
	if err := fe.set.OTP.Assign(context.Background(), serial, "", fe.pid); err != nil {
		t.Fatal(err)
	}
	return seed
}

// importStock imports a TOTP token into the bank's stock (nobody's) through
// the PSKC path (the seed wrapped by the HSM key) and returns its seed.
func importStock(t testing.TB, fe *factorEnv, serial string) []byte {
	t.Helper()
	seed := make([]byte, 20)
	rand.Read(seed)
	path := filepath.Join(t.TempDir(), "tokens.pskc")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pskc.NewWriter(f, pskc.WriterOptions{})
	if err == nil {
		err = w.Add(&pskc.Key{ID: "1", Serial: serial, Manufacturer: "Acme", Params: totpParams, Secret: append([]byte(nil), seed...)})
	}
	if err == nil {
		err = w.Close()
	}
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := fe.set.OTP.ImportPSKC(context.Background(), func() (io.ReadCloser, error) { return os.Open(path) }, oath.ImportOptions{}); err != nil || sum.Imported != 1 {
		t.Fatalf("import: %+v %v", sum, err)
	}
	return seed
}

// loginAt logs alice in to ebank at level 1 (password) or 2 (password
// and SMS code) and returns the browser, the request and the last answer
// (the redirect with the code).
func (fe *factorEnv) loginAt(t testing.TB, level string) (*browser, *authz, resp) {
	t.Helper()
	b := fe.browser()
	a := newAuthz("ebank", ebankRedirect)
	a.extra.Set("acr_values", "urn:egate:loa:"+level)
	r := b.passwordLogin(a, "alice", testPassword)
	if level == "2" {
		id := formID(t, r.body)
		if choices(r.body) != nil {
			r = b.post("/login/factor/begin", url.Values{"id": {id}, "factor": {"sms"}})
		}
		msgs, _ := fe.set.SMSSink.List(context.Background(), "13812345678", 1)
		r = b.follow(b.post("/login/factor", url.Values{"id": {id}, "response": {smsRE.FindStringSubmatch(msgs[0].Body)[1]}}))
	}
	return b, a, r
}

// totp computes the code independently of the server (devices/otp with the
// seed in software).
func totp(t testing.TB, seed []byte, at time.Time) string {
	t.Helper()
	c, err := totpParams.TOTP().Code(context.Background(), devotp.SoftwareMAC{Key: seed}, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type softToken struct {
	key  crypto.Signer
	cert *x509.Certificate
}

func (s softToken) proof(t testing.TB, data []byte, confirmed bool) string {
	t.Helper()
	p, err := pkcs11token.SignProof(s.key, s.cert, data, confirmed)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(p)
}

func p256(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// enrollUShield binds a software key certified by the bank CA as a U-shield
// of a generation (the PKCS#11 token path is tested in authsvc/ushield).
func (fe *factorEnv) enrollUShield(t testing.TB, gen int) softToken {
	t.Helper()
	ctx := context.Background()
	k := p256(t)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: fe.pid}}, k)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := fe.set.UShield.Issuer(fe.pid).IssueToken(ctx, csr, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := fe.set.UShield.Bind(ctx, &ushield.Binding{CertSerial: ca.SerialHex(cert.SerialNumber), PassportID: fe.pid, Generation: gen,
		TokenLabel: "u" + string(rune('0'+gen)), TokenSerial: "US" + string(rune('0'+gen)), KeyID: []byte{byte(gen)}}); err != nil {
		t.Fatal(err)
	}
	return softToken{k, cert}
}

// enrollPIV certifies a software key as if a card had attested it (the
// card path runs in authsvc/pivauth on the simulator).
func (fe *factorEnv) enrollPIV(t testing.TB) softToken {
	t.Helper()
	ctx := context.Background()
	k := p256(t)
	const serial = 5150
	att := &gopiv.Attestation{Serial: serial, Slot: gopiv.SlotAuthentication, PINPolicy: gopiv.PINPolicyOnce, TouchPolicy: gopiv.TouchPolicyNever}
	cert, err := (&ca.PIVIssuer{CA: fe.set.CA, Owner: fe.pid, Serial: serial, Slot: gopiv.SlotAuthentication}).IssueCertificate(ctx, k.Public(), pkix.Name{}, &piv.Attestation{Attestation: att})
	if err != nil {
		t.Fatal(err)
	}
	if err := fe.set.PIV.Bind(ctx, &pivauth.Binding{CertSerial: ca.SerialHex(cert.SerialNumber), PassportID: fe.pid, CardSerial: serial, Slot: "9a",
		Firmware: "5.7.1", PINPolicy: "once", TouchPolicy: "never"}); err != nil {
		t.Fatal(err)
	}
	return softToken{k, cert}
}

var (
	choiceRE    = regexp.MustCompile(`name="factor" value="([^"]+)"`)
	challengeRE = regexp.MustCompile(`(?s)<pre class="sign" id="challenge">(.*?)</pre>`)
	factorRE    = regexp.MustCompile(`id="prompt" data-factor="([^"]+)"`)
	cellsRE     = regexp.MustCompile(`cells ([A-Z0-9, ]+) of your grid card`)
	smsRE       = regexp.MustCompile(`\] (\d{6}) is your code to log in`)
)

func choices(body string) []string {
	var out []string
	for _, m := range choiceRE.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestLoginWithEachTool logs in at each level with the real tools built by
// factors.Build: the choice page offers exactly the customer's tools at or
// above the level, each tool's page asks what it should, and the ID token
// carries the level reached and the tool's amr.
func TestLoginWithEachTool(t *testing.T) {
	db := storetest.SQLite(t)
	fe := newFactorEnv(t, db)
	ctx := context.Background()
	card, err := fe.set.GridCard.Issue(ctx, fe.pid)
	if err != nil {
		t.Fatal(err)
	}
	seed := fe.enrollTOTP(t, "TOTP-0001")
	us2 := fe.enrollUShield(t, 2)
	piv := fe.enrollPIV(t)

	answerSMS := func(t *testing.T, body string) string {
		msgs, err := fe.set.SMSSink.List(ctx, "13812345678", 1)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("SMS outbox: %v %v", msgs, err)
		}
		m := smsRE.FindStringSubmatch(msgs[0].Body)
		if m == nil || !strings.Contains(body, "Code sent to 138****5678") {
			t.Fatalf("SMS %q, page %s", msgs[0].Body, body)
		}
		return m[1]
	}
	answerGrid := func(t *testing.T, body string) string {
		m := cellsRE.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no cells on the page: %s", body)
		}
		var codes []string
		for _, cell := range strings.Split(m[1], ", ") {
			c, ok := card.Code(cell)
			if !ok {
				t.Fatalf("cell %q", cell)
			}
			codes = append(codes, c)
		}
		return strings.Join(codes, " ")
	}
	answerTOTP := func(t *testing.T, body string) string { return totp(t, seed, fe.clk.Now()) }
	// A signature tool's page follows a signing order that the device
	// answers (orders_login_test.go).
	signed := func(tok softToken, confirmed bool) func(t *testing.T, b *browser, id, body string) resp {
		return func(t *testing.T, b *browser, id, body string) resp {
			m := challengeRE.FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("no challenge text on the page: %s", body)
			}
			data := html.UnescapeString(m[1])
			if !strings.HasPrefix(data, "egate login for "+fe.pid+"\nChallenge: ") {
				t.Fatalf("challenge text %q", data)
			}
			return b.signPage(t, id, body, tok, confirmed)
		}
	}
	typed := func(answer func(t *testing.T, body string) string) func(t *testing.T, b *browser, id, body string) resp {
		return func(t *testing.T, b *browser, id, body string) resp {
			return b.follow(b.post("/login/factor", url.Values{"id": {id}, "response": {answer(t, body)}}))
		}
	}

	all := []string{"sms", "gridcard", "otp", "ushield", "piv", "ushield2"}
	cases := []struct {
		name    string
		level   int
		offered []string // nil: one tool, started at once
		pick    string
		answer  func(t *testing.T, b *browser, id, body string) resp
		amr     []string
	}{
		{"level 2 by SMS", 2, all, "sms", typed(answerSMS), []string{"pwd", "sms", "mfa"}},
		{"level 2 by grid card", 2, all, "gridcard", typed(answerGrid), []string{"pwd", "otp", "mfa"}},
		{"level 3 by TOTP token", 3, []string{"otp", "ushield", "piv", "ushield2"}, "otp", typed(answerTOTP), []string{"pwd", "otp", "mfa"}},
		{"level 4 by PIV", 4, []string{"ushield", "piv", "ushield2"}, "piv", signed(piv, false), []string{"pwd", "hwk", "mfa"}},
		{"level 4 by U-shield", 4, []string{"ushield", "piv", "ushield2"}, "ushield", signed(us2, false), []string{"pwd", "hwk", "mfa"}},
		{"level 5 by U-shield 2nd gen", 5, nil, "ushield2", signed(us2, true), []string{"pwd", "hwk", "mfa"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fe.clk.Add(time.Minute) // a fresh TOTP step and SMS window each time
			b := fe.browser()
			a := newAuthz("ebank", ebankRedirect)
			a.extra.Set("acr_values", "urn:egate:loa:"+string(rune('0'+tc.level)))
			r := b.passwordLogin(a, "alice", testPassword)
			id := formID(t, r.body)
			if tc.offered != nil {
				if got := choices(r.body); r.status != 200 || !slices.Equal(got, tc.offered) {
					t.Fatalf("offered %v, want %v (%d)", got, tc.offered, r.status)
				}
				r = b.post("/login/factor/begin", url.Values{"id": {id}, "factor": {tc.pick}})
			}
			if m := factorRE.FindStringSubmatch(r.body); r.status != 200 || m == nil || m[1] != tc.pick {
				t.Fatalf("want the %s page: %d %s", tc.pick, r.status, r.body)
			}
			r = tc.answer(t, b, id, r.body)
			tk := fe.exchange(a, a.codeFrom(t, r))
			c, err := fe.claims(tk.id)
			if err != nil || c["acr"] != "urn:egate:loa:"+string(rune('0'+tc.level)) || !slices.Equal(amrOf(c), tc.amr) {
				t.Fatalf("claims %v %v", c, err)
			}
		})
	}
	// The audit log says which tool decided each login, and whether the
	// customer confirmed on the device (only the 2nd-generation U-shield).
	rows, err := db.Query(ctx, `SELECT record FROM audit_log WHERE kind = 'login.factor'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	confirmed := map[string]string{}
	for rows.Next() {
		var rec string
		if err := rows.Scan(&rec); err != nil {
			t.Fatal(err)
		}
		var r struct{ Fields map[string]string }
		if err := json.Unmarshal([]byte(rec), &r); err != nil {
			t.Fatalf("audit record %s: %v", rec, err)
		}
		if r.Fields["outcome"] == "ok" {
			confirmed[r.Fields["factor"]] = r.Fields["confirmed_on_device"]
		}
	}
	want := map[string]string{"sms": "false", "gridcard": "false", "otp": "false", "piv": "false", "ushield": "false", "ushield2": "true"}
	if !maps.Equal(confirmed, want) {
		t.Fatalf("confirmed_on_device in the audit log %v, want %v", confirmed, want)
	}
}

// wrongTOTP is a code from the token's past (ten minutes back or earlier)
// that no step within five minutes of now also gives: wrong for any window
// the server may accept.
func wrongTOTP(t testing.TB, seed []byte, now time.Time) string {
	t.Helper()
	near := map[string]bool{}
	for d := -5 * time.Minute; d <= 5*time.Minute; d += 30 * time.Second {
		near[totp(t, seed, now.Add(d))] = true
	}
	for back := 10 * time.Minute; ; back += 30 * time.Second {
		if c := totp(t, seed, now.Add(-back)); !near[c] {
			return c
		}
	}
}

// TestLoginToolErrors: the pages' answers to wrong input with real tools.
func TestLoginToolErrors(t *testing.T) {
	db := storetest.SQLite(t)
	fe := newFactorEnv(t, db)
	seed := fe.enrollTOTP(t, "TOTP-0002")
	us := fe.enrollUShield(t, 1)
	start := func(t *testing.T, level int, pick string) (*browser, *authz, string, resp) {
		fe.clk.Add(time.Minute)
		b := fe.browser()
		a := newAuthz("ebank", ebankRedirect)
		a.extra.Set("acr_values", "urn:egate:loa:"+string(rune('0'+level)))
		r := b.passwordLogin(a, "alice", testPassword)
		var id string
		if m := idRE.FindStringSubmatch(r.body); m != nil {
			id = m[1]
		}
		if choices(r.body) != nil {
			r = b.post("/login/factor/begin", url.Values{"id": {id}, "factor": {pick}})
		}
		return b, a, id, r
	}

	t.Run("wrong TOTP code: new challenge at once, then the right code", func(t *testing.T) {
		b, a, id, _ := start(t, 3, "otp")
		// An old code of the token, but never one that also comes up within
		// five minutes of now (the seed is random: two steps' codes match
		// now and then), so the server can only refuse it.
		wrong := wrongTOTP(t, seed, fe.clk.Now())
		r := b.post("/login/factor", url.Values{"id": {id}, "response": {wrong}})
		if r.status != 401 || errorCode(r.body) != "wrong_answer" || !strings.Contains(r.body, `data-factor="otp"`) {
			t.Fatalf("wrong code: %d %s", r.status, r.body)
		}
		r = b.follow(b.post("/login/factor", url.Values{"id": {id}, "response": {totp(t, seed, fe.clk.Now())}}))
		a.codeFrom(t, r)
	})
	t.Run("replayed TOTP code", func(t *testing.T) {
		code := totp(t, seed, fe.clk.Now().Add(time.Minute)) // the step start() moves to
		b, a, id, _ := start(t, 3, "otp")
		a.codeFrom(t, b.follow(b.post("/login/factor", url.Values{"id": {id}, "response": {code}})))
		b, _, id, _ = start(t, 3, "otp")
		fe.clk.Add(-time.Minute) // back into the step just used
		r := b.post("/login/factor", url.Values{"id": {id}, "response": {code}})
		if r.status != 401 || errorCode(r.body) != "replay" {
			t.Fatalf("replay: %d %s", r.status, r.body)
		}
	})
	t.Run("U-shield: garbage, a proof over other bytes, then the right proof", func(t *testing.T) {
		b, a, id, r := start(t, 4, "ushield")
		for _, bad := range []struct {
			answer []byte
			code   string
		}{
			{[]byte("not a proof at all!"), "bad_response"},
			{[]byte("EGP1 truncated"), "bad_response"},
			{nil, "wrong_answer"}, // a proof over other bytes
		} {
			po := orderOf(t, r.body)
			op := fe.openOrder(t, po)
			var err error
			if bad.answer == nil {
				err = fe.signOrder(t, op, us, []byte(po.text+" "), false)
			} else {
				err = fe.device().Sign(context.Background(), op.Ref, op.DeviceToken, bad.answer)
			}
			if err == nil || !strings.Contains(err.Error(), bad.code) {
				t.Fatalf("%q: %v", bad.answer, err)
			}
			r = b.finishOrder(id, po.link.Ref)
			if r.status != 401 || errorCode(r.body) != bad.code || !strings.Contains(r.body, `id="autostart"`) {
				t.Fatalf("%q: %d %s", bad.answer, r.status, r.body)
			}
		}
		a.codeFrom(t, b.signPage(t, id, r.body, us, false))
	})
	t.Run("no tool at the level", func(t *testing.T) {
		_, _, _, r := start(t, 5, "")
		if r.status != 403 || errorCode(r.body) != "no_factor" {
			t.Fatalf("level 5 without a 2nd-generation U-shield: %d %s", r.status, r.body)
		}
	})
	// signWith answers the U-shield page in r through its order.
	signWith := func(t *testing.T, b *browser, id string, r resp) resp {
		t.Helper()
		return b.signPage(t, id, r.body, us, false)
	}
	t.Run("another tool instead of the one chosen", func(t *testing.T) {
		b, a, id, r := start(t, 3, "otp")
		if got := choices(r.body); r.status != 200 || !slices.Equal(got, []string{"ushield"}) || !strings.Contains(r.body, "Or use another of your tools") {
			t.Fatalf("the TOTP page offers %v: %d %s", got, r.status, r.body)
		}
		r = b.post("/login/factor/begin", url.Values{"id": {id}, "factor": {"ushield"}})
		if m := factorRE.FindStringSubmatch(r.body); r.status != 200 || m == nil || m[1] != "ushield" || !slices.Equal(choices(r.body), []string{"otp"}) {
			t.Fatalf("want the U-shield page offering the TOTP token: %d %s", r.status, r.body)
		}
		// The TOTP challenge was replaced: a right code now answers the
		// U-shield's step, which takes no code: the page starts a new order.
		r2 := b.post("/login/factor", url.Values{"id": {id}, "response": {totp(t, seed, fe.clk.Now())}})
		if r2.status != 400 || errorCode(r2.body) != "use_order" {
			t.Fatalf("TOTP code after switching: %d %s", r2.status, r2.body)
		}
		r = b.follow(signWith(t, b, id, r2))
		tk := fe.exchange(a, a.codeFrom(t, r))
		if c, err := fe.claims(tk.id); err != nil || !slices.Equal(amrOf(c), []string{"pwd", "hwk", "mfa"}) {
			t.Fatalf("claims %v %v", c, err)
		}
	})
	t.Run("a locked tool still offers the others", func(t *testing.T) {
		b, a, id, r := start(t, 3, "otp")
		for i := 0; r.status != 403; i++ {
			if i == 20 {
				t.Fatalf("the TOTP token never locked: %d %s", r.status, r.body)
			}
			// A wrong code of the right length: a malformed one checks
			// nothing and counts nothing on the token's counter.
			r = b.post("/login/factor", url.Values{"id": {id}, "response": {"000000"}})
		}
		if errorCode(r.body) != "locked" || !slices.Equal(choices(r.body), []string{"ushield"}) {
			t.Fatalf("locked page: %d %s", r.status, r.body)
		}
		r = b.post("/login/factor/begin", url.Values{"id": {id}, "factor": {"ushield"}})
		a.codeFrom(t, signWith(t, b, id, r))
	})
}
