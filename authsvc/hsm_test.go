package authsvc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/simulators/softhsm"
)

// SoftHSM2 reads SOFTHSM2_CONF once per process, so the test binary has one
// token, made on first use and removed by TestMain.
var hsmEnv struct {
	once   sync.Once
	root   string
	signer crypto.Signer
	svc    *hsm.Service
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if hsmEnv.svc != nil {
		hsmEnv.svc.Close()
	}
	if hsmEnv.root != "" {
		os.RemoveAll(hsmEnv.root)
	}
	os.Exit(code)
}

// testHSM returns the SoftHSM2 token holding egate's standard keys.
func testHSM(t testing.TB) *hsm.Service {
	t.Helper()
	hsmSigner(t)
	return hsmEnv.svc
}

// hsmSigner returns the passport signing key in a SoftHSM2 token, as
// production gets it from the HSM.
func hsmSigner(t testing.TB) crypto.Signer {
	t.Helper()
	hsmEnv.once.Do(func() {
		ctx := context.Background()
		root, err := os.MkdirTemp("", "egate-authsvc-hsm-")
		if err != nil {
			hsmEnv.err = err
			return
		}
		hsmEnv.root = root
		d, err := softhsm.New(filepath.Join(root, "softhsm"))
		if err == nil {
			err = d.Activate()
		}
		if err == nil {
			_, _, err = d.InitToken(ctx, "egate-authsvc", "5678", "1234")
		}
		pin := filepath.Join(root, "pin")
		if err == nil {
			err = os.WriteFile(pin, []byte("1234\n"), 0o600)
		}
		if err != nil {
			hsmEnv.err = err
			return
		}
		s, err := hsm.Open(ctx, hsm.Config{Module: d.Module, Token: "egate-authsvc", PINSource: "file:" + pin, Pool: 4})
		if err != nil {
			hsmEnv.err = err
			return
		}
		hsmEnv.svc = s
		// egate admin hsm init: the passport key and the keys of the second factors.
		if _, err = s.InitStandardKeys(ctx); err != nil {
			hsmEnv.err = err
			return
		}
		hsmEnv.signer, hsmEnv.err = s.Signer(ctx, hsm.LabelPassportSigning)
	})
	if hsmEnv.err != nil {
		testenv.Missing(t, "SoftHSM2", fmt.Sprintf("apt-get install softhsm2 (%v)", hsmEnv.err))
	}
	return hsmEnv.signer
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
