package txauth

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/jwe"
	"github.com/egate-bank/egate/authsvc/risk"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
)

// encRig is a second service over the rig's database whose intents and
// proofs may arrive as JWE to the transaction-encryption key in SoftHSM2,
// and which requires it on the app channel.
type encRig struct {
	*rig
	srv   *httptest.Server
	enc   *txclient.Client // sends intents and proofs encrypted
	clear *txclient.Client // the same client, in clear
	pub   jose.JSONWebKey  // as GET /keys/encryption published it
	dec   *hsm.Decrypter
}

func newEncRig(t *testing.T, db *store.DB) *encRig {
	t.Helper()
	ctx := context.Background()
	hs := hsmtest.Open(t, hsm.KeySpec{Label: hsm.LabelTxEncryption, Type: hsm.KeyRSA2048Decrypt})
	r := newRig(t, db, rigOpt{hsm: hs})
	dec, err := hs.Decrypter(ctx, hsm.LabelTxEncryption)
	if err != nil {
		t.Fatal(err)
	}
	h, err := dec.OAEPHash(ctx)
	if err != nil {
		t.Fatal(err)
	}
	alg := jwe.AlgRSAOAEP256
	if h == crypto.SHA1 {
		alg = jwe.AlgRSAOAEP // SoftHSM2 2.6 does OAEP with SHA-1 only
	}
	op, err := jwe.New(dec, alg)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := risk.NewEngine(nil, map[string][]byte{"test.yaml": []byte(testRules)})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{RequireEncryption: []intent.Channel{intent.App, intent.ATM}},
		Deps{DB: db, Tools: FromFactors(r.set), Accounts: r.accounts, Risk: eng, Now: r.clk.Now, Encryption: op})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := backend.New([]backend.ClientConfig{{ID: clientID, SecretSHA256: backend.HashSecret([]byte(clientSecret)),
		Scopes: []string{backend.ScopeTxAuthorize, backend.ScopeTxExecute}}})
	if err != nil {
		t.Fatal(err)
	}
	e := &encRig{rig: r, srv: httptest.NewServer(svc.Handler(reg)), dec: dec}
	t.Cleanup(e.srv.Close)
	e.clear = &txclient.Client{BaseURL: e.srv.URL, ID: clientID, Secret: clientSecret, HTTP: e.srv.Client()}
	e.enc = &txclient.Client{BaseURL: e.srv.URL, ID: clientID, Secret: clientSecret, HTTP: e.srv.Client()}
	if e.pub, err = e.enc.FetchEncryptionKey(ctx); err != nil {
		t.Fatal(err)
	}
	e.enc.EncryptTo = &e.pub
	return e
}

// postJOSE posts body to url as the rig's client with Content-Type
// application/jose and returns the status and error code.
func postJOSE(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.SetBasicAuth(clientID, clientSecret)
	req.Header.Set("Content-Type", jwe.ContentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode >= 400 && e.Error.Message == "" {
		t.Fatalf("%d without a message", resp.StatusCode)
	}
	return resp.StatusCode, e.Error.Code
}

func sealTo(t *testing.T, alg jose.KeyAlgorithm, enc jose.ContentEncryption, key any, kid string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	e, err := jose.NewEncrypter(enc, jose.Recipient{Algorithm: alg, Key: key, KeyID: kid}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := e.Encrypt(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// alter flips a bit in part i of a compact JWE (3 ciphertext, 4 tag).
func alter(t *testing.T, s string, i int) string {
	parts := strings.Split(s, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	parts[i] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// TestEncryptedIntentAndProof: GET /keys/encryption publishes the HSM key
// (use enc, its kid the RFC 7638 thumbprint); an intent and a proof sent
// as JWE through txclient are opened by the HSM and go the whole way to a
// grant and its execution; the same intent in clear on a channel that
// requires encryption, and a clear proof of it, are refused with
// encryption_required, and nothing is stored, counted or granted.
func TestEncryptedIntentAndProof(t *testing.T) {
	testenv.NeedCommand(t, "oathtool", "oathtool")
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEncRig(t, db)
		ctx := context.Background()
		kid, err := jwe.Thumbprint(e.dec.Public().(*rsa.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		if e.pub.KeyID != kid || e.pub.Use != "enc" || !e.pub.IsPublic() || e.pub.Key.(*rsa.PublicKey).N.Cmp(e.dec.Public().(*rsa.PublicKey).N) != 0 {
			t.Fatalf("published %+v, want the HSM key with kid %s", e.pub, kid)
		}
		c := e.customer(t, "gridcard", "otp")
		in := c.intent(2_000*yuan, "k-"+randHex(4))
		in.Channel = intent.App

		_, err = e.clear.Authorize(ctx, in)
		wantCode(t, err, "encryption_required")
		if n := e.count(t, `SELECT COUNT(*) FROM tx_intents WHERE customer = ?`, c.pid); n != 0 {
			t.Fatalf("a clear intent was stored (%d)", n)
		}
		d, err := e.enc.Authorize(ctx, in)
		if err != nil || d.Decision != "allow" || d.Intent != in.HashHex() || d.Level != 3 {
			t.Fatalf("encrypted intent: %+v %v", d, err)
		}
		ch, err := e.enc.Challenge(ctx, d.Intent, txclient.ChallengeRequest{Factor: "otp"})
		if err != nil {
			t.Fatal(err)
		}
		answer := e.answer(t, c, ch)
		_, err = e.clear.Proof(ctx, d.Intent, txclient.ProofRequest{ChallengeID: ch.ID, Response: answer, Intent: &in})
		wantCode(t, err, "encryption_required")
		if e.usage(t, c.pid) != 0 || e.count(t, `SELECT COUNT(*) FROM tx_intents WHERE hash = ? AND grant_hash IS NOT NULL`, d.Intent) != 0 {
			t.Fatal("a clear proof counted or granted")
		}
		g, err := e.enc.Proof(ctx, d.Intent, txclient.ProofRequest{ChallengeID: ch.ID, Response: answer, Intent: &in})
		if err != nil || g.Level != 3 {
			t.Fatalf("encrypted proof: %+v %v", g, err)
		}
		if e.usage(t, c.pid) != 2_000*yuan {
			t.Fatalf("usage %d", e.usage(t, c.pid))
		}
		if ex, err := e.enc.Execute(ctx, g.Token, in); err != nil || ex.State != txclient.StateExecuted {
			t.Fatalf("%+v %v", ex, err)
		}
		// The web channel does not require encryption: in clear it passes.
		web := c.intent(10*yuan, "k-"+randHex(4))
		if d, err := e.clear.Authorize(ctx, web); err != nil || d.Decision != "allow" {
			t.Fatalf("clear web intent: %+v %v", d, err)
		}
		// The rig's service has no key: a JWE is refused, none published.
		if st, code := postJOSE(t, e.rig.srv.URL+"/v1/tx/authorize", sealTo(t, jose.KeyAlgorithm(e.pub.Algorithm), jose.A256GCM, e.pub.Key, e.pub.KeyID, web)); st != http.StatusUnsupportedMediaType || code != "encryption_not_configured" {
			t.Fatalf("JWE to a service without the key: %d %s", st, code)
		}
		if _, err := e.rig.c.FetchEncryptionKey(ctx); txclient.Code(err) != "not_found" {
			t.Fatalf("key of a service without one: %v", err)
		}
	})
}

// TestBadJWEChangesNothing: a JWE for another key, with an algorithm or
// encryption not accepted, altered, or not a JWE at all, is refused with
// its code before anything is decided: no intent stored, nothing counted
// or granted.
func TestBadJWEChangesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEncRig(t, db)
		ctx := context.Background()
		other, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		otherKID, _ := jwe.Thumbprint(&other.PublicKey)
		c := e.customer(t, "gridcard")
		in := c.intent(100*yuan, "k-"+randHex(4))
		in.Channel = intent.App
		alg := jose.KeyAlgorithm(e.pub.Algorithm)
		otherAlg := jose.RSA_OAEP
		if alg == jose.RSA_OAEP {
			otherAlg = jose.RSA_OAEP_256
		}
		good := sealTo(t, alg, jose.A256GCM, e.pub.Key, e.pub.KeyID, in)
		bad := in
		bad.Amount = -1
		for _, tc := range []struct {
			name, body, code string
		}{
			{"to another key", sealTo(t, alg, jose.A256GCM, &other.PublicKey, otherKID, in), "jwe_wrong_key"},
			{"no kid", sealTo(t, alg, jose.A256GCM, e.pub.Key, "", in), "jwe_wrong_key"},
			{"another key under egate's kid", sealTo(t, alg, jose.A256GCM, &other.PublicKey, e.pub.KeyID, in), "jwe_undecryptable"},
			{"RSA1_5", sealTo(t, jose.RSA1_5, jose.A256GCM, e.pub.Key, e.pub.KeyID, in), "jwe_algorithm_not_allowed"},
			{"the other OAEP", sealTo(t, otherAlg, jose.A256GCM, e.pub.Key, e.pub.KeyID, in), "jwe_algorithm_not_allowed"},
			{"dir", sealTo(t, jose.DIRECT, jose.A256GCM, make([]byte, 32), e.pub.KeyID, in), "jwe_algorithm_not_allowed"},
			{"A128CBC-HS256", sealTo(t, alg, jose.A128CBC_HS256, e.pub.Key, e.pub.KeyID, in), "jwe_algorithm_not_allowed"},
			{"ciphertext altered", alter(t, good, 3), "jwe_undecryptable"},
			{"tag altered", alter(t, good, 4), "jwe_undecryptable"},
			{"not a JWE", `{"customer":"x"}`, "jwe_malformed"},
			{"a bad intent inside", sealTo(t, alg, jose.A256GCM, e.pub.Key, e.pub.KeyID, bad), "bad_amount"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, code := postJOSE(t, e.srv.URL+"/v1/tx/authorize", tc.body)
				if st != http.StatusBadRequest || code != tc.code {
					t.Fatalf("%d %s, want 400 %s", st, code, tc.code)
				}
			})
		}
		if n := e.count(t, `SELECT COUNT(*) FROM tx_intents WHERE customer = ?`, c.pid); n != 0 {
			t.Fatalf("%d intents stored", n)
		}
		// A proof: altered or for another key, nothing granted or counted,
		// and no attempt of the tool spent (the right proof then works).
		d, err := e.enc.Authorize(ctx, in)
		if err != nil || d.Decision != "allow" {
			t.Fatalf("%+v %v", d, err)
		}
		ch, err := e.enc.Challenge(ctx, d.Intent, txclient.ChallengeRequest{Factor: "gridcard"})
		if err != nil {
			t.Fatal(err)
		}
		proof := txclient.ProofRequest{ChallengeID: ch.ID, Response: gridAnswer(t, c, ch), Intent: &in}
		path := e.srv.URL + "/v1/tx/" + d.Intent + "/proof"
		for _, body := range []string{
			alter(t, sealTo(t, alg, jose.A256GCM, e.pub.Key, e.pub.KeyID, proof), 3),
			sealTo(t, alg, jose.A256GCM, &other.PublicKey, otherKID, proof),
		} {
			if st, code := postJOSE(t, path, body); st != http.StatusBadRequest || !strings.HasPrefix(code, "jwe_") {
				t.Fatalf("bad proof: %d %s", st, code)
			}
		}
		if e.usage(t, c.pid) != 0 || e.count(t, `SELECT COUNT(*) FROM tx_intents WHERE hash = ? AND grant_hash IS NOT NULL`, d.Intent) != 0 {
			t.Fatal("a bad JWE proof counted or granted")
		}
		if _, err := e.enc.Proof(ctx, d.Intent, proof); err != nil {
			t.Fatalf("the right proof after the bad ones: %v", err)
		}
	})
}

// TestRequireEncryptionConfig: an unknown or repeated channel is refused;
// requiring encryption without the key is refused at New.
func TestRequireEncryptionConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cs   []intent.Channel
		want string
	}{
		{"unknown channel", []intent.Channel{"fax"}, `require-encryption[0] "fax"`},
		{"twice", []intent.Channel{intent.App, intent.App}, "listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Config{RequireEncryption: tc.cs}.Validate()
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want %q", err, tc.want)
			}
		})
	}
	db := storetest.SQLite(t)
	_, err := New(Config{RequireEncryption: []intent.Channel{intent.ATM}}, Deps{DB: db})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "egate-tx-encryption") {
		t.Fatalf("require-encryption without a key: %v", err)
	}
}
