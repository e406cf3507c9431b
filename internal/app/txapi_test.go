package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/txauth"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/store"
)

// TestAuthsvcTxAPI: egate authsvc serves the transaction API to back-end
// clients with its scopes only, with the config's accounts and limit
// table: anonymous 401, a client without the scope 403, the platform's
// client gets a decision at the level of the configured table.
func TestAuthsvcTxAPI(t *testing.T) {
	const platformSecret = "ebank-platform-0123456789abcdef0123456789abcdef"
	cfg := config.Defaults()
	cfg.HSM = hsmtest.Config(t)
	cfg.Database = store.Config{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "egate.db")}
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Factors.Enabled = []string{"sms", "gridcard", "otp"}
	cfg.Factors.SMS.DevSink = true
	cfg.Authsvc.BackendClients = []backend.ClientConfig{
		{ID: "ebank", SecretSHA256: backend.HashSecret([]byte(platformSecret)), Scopes: []string{backend.ScopeTxAuthorize, backend.ScopeTxExecute}},
		{ID: "desk", SecretSHA256: backend.HashSecret([]byte(deskSecret)), Scopes: []string{backend.ScopeOTPResync}},
	}
	cfg.Transactions.Accounts = []txauth.AccountConfig{{Customer: "P1", Account: "6222000000000001"}}
	cfg.Transactions = cfg.Transactions.WithDefaults()
	cfg.Transactions.Limits[1].PerTxn = 50_00 // level 2: 50 yuan a transaction
	a, err := NewAuthsvc(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), AuthsvcOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a.Server.Start()
	t.Cleanup(func() { a.Server.HTTP.Close(); a.Close() })
	ctx := context.Background()
	in := intent.Intent{Customer: "P1", Channel: intent.App, Kind: intent.Payment, Payer: "6222000000000001", Payee: "MALL-0001",
		Amount: 100_00, Currency: "CNY", IdempotencyKey: "o-1"}

	resp, err := http.Post(a.Server.URL()+"/v1/tx/authorize", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d", resp.StatusCode)
	}
	desk := &txclient.Client{BaseURL: a.Server.URL(), ID: "desk", Secret: deskSecret}
	if _, err := desk.Authorize(ctx, in); txclient.Code(err) != "insufficient_scope" {
		t.Fatalf("desk: %v", err)
	}
	ebank := &txclient.Client{BaseURL: a.Server.URL(), ID: "ebank", Secret: platformSecret}
	d, err := ebank.Authorize(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if d.Decision != txclient.Allow || d.Level != 3 || len(d.Reasons) == 0 || d.Reasons[0].Max != 50_00 {
		t.Fatalf("decision %+v, want level 3 over the configured 50-yuan limit", d)
	}
	other := in
	other.Payer, other.IdempotencyKey = "6222000000000009", "o-2"
	if _, err := ebank.Authorize(ctx, other); txclient.Code(err) != "payer_not_customers" {
		t.Fatalf("someone else's account: %v", err)
	}
	if _, err := ebank.Balance(ctx, txclient.BalanceAlert{ID: "m1", Customer: "P1", Account: "6222000000000001", Amount: -1, Currency: "CNY"}); txclient.Code(err) != "insufficient_scope" {
		t.Fatalf("balance alert without alerts:balance: %v", err)
	}
	// The HSM's transaction-encryption key is published beside the
	// passport's JWKS, which stays the signing key's; an intent
	// encrypted to it is decided.
	sealed := *ebank
	k, err := sealed.FetchEncryptionKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sealed.EncryptTo = &k
	enc := in
	enc.IdempotencyKey = "o-3"
	if d, err := sealed.Authorize(ctx, enc); err != nil || d.Decision != txclient.Allow || d.Intent != enc.HashHex() {
		t.Fatalf("encrypted intent: %+v %v", d, err)
	}
	resp, err = http.Get(a.Server.URL() + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	var jwks struct {
		Keys []struct{ Kid, Use, Kty string } `json:"keys"`
	}
	json.NewDecoder(resp.Body).Decode(&jwks)
	resp.Body.Close()
	if len(jwks.Keys) == 0 {
		t.Fatalf("/keys: %d, no keys", resp.StatusCode)
	}
	for _, key := range jwks.Keys {
		if key.Kid == k.KeyID || key.Kty == "RSA" {
			t.Fatalf("the encryption key is in the signing JWKS: %+v", jwks)
		}
	}
}
