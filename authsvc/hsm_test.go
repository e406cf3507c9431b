package authsvc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/json"
	"net/http"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/internal/store/storetest"
)

func TestMain(m *testing.M) { hsmtest.Main(m) }

// hsmSigner returns the passport signing key in a SoftHSM2 token, as
// production gets it from the HSM.
func hsmSigner(t testing.TB) crypto.Signer {
	t.Helper()
	s, err := hsmtest.Open(t).Signer(context.Background(), hsm.LabelPassportSigning)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestHSMSignedTokens logs in with the HSM key and checks the ID token
// against the HSM's public key and the JWKS, which serves exactly that key.
func TestHSMSignedTokens(t *testing.T) {
	signer := hsmSigner(t)
	e := newEnvSigner(t, storetest.SQLite(t), signer)
	b := e.browser()
	a := newAuthz("ebank", ebankRedirect)
	tk := e.exchange(a, a.codeFrom(t, b.passwordLogin(a, "alice", testPassword)))
	c, err := e.claims(tk.id)
	if err != nil || c["sub"] != e.pid || c["acr"] != "urn:egate:loa:1" {
		t.Fatalf("HSM-signed ID token: %v %v", c, err)
	}
	r, err := http.Get(e.ts.URL + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	json.NewDecoder(r.Body).Decode(&jwks)
	pub := signer.Public().(*ecdsa.PublicKey)
	if len(jwks.Keys) != 1 || jwks.Keys[0]["kid"] != DefaultSigningKey || jwks.Keys[0]["alg"] != "ES256" || jwks.Keys[0]["crv"] != "P-256" ||
		jwks.Keys[0]["x"] != b64(pub.X.FillBytes(make([]byte, 32))) || jwks.Keys[0]["y"] != b64(pub.Y.FillBytes(make([]byte, 32))) {
		t.Fatalf("JWKS: %v", jwks.Keys)
	}
}

// TestHSMSignedLogoutToken: the logout token is signed by the HSM key too,
// and verifies against its public key.
func TestHSMSignedLogoutToken(t *testing.T) {
	signer := hsmSigner(t)
	e := newEnvSigner(t, storetest.SQLite(t), signer)
	tok, err := e.srv.Storage().LogoutToken(context.Background(), e.ts.URL, "ebank", e.pid)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify(signer.Public())
	var c map[string]any
	if err != nil || json.Unmarshal(payload, &c) != nil || c["sub"] != e.pid || jws.Signatures[0].Header.KeyID != DefaultSigningKey {
		t.Fatalf("HSM-signed logout token: %v %v", c, err)
	}
}
