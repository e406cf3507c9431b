package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	"github.com/egate-bank/egate/platform/ebank/web"
)

// The ebank platform serves the holds API to the back-end clients of
// authsvc.backend-clients with the scope ebank:holds, and nobody else,
// and has opened the bank's own accounts.
func TestEbankServesHoldsAPI(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "egate.db")
	cfg, err := config.Load(config.Sources{Sets: []string{"database.dsn=" + dsn}})
	if err != nil {
		t.Fatal(err)
	}
	const secret = "mall-secret-0123456789abcdef0123456789"
	cfg.Authsvc.BackendClients = []backend.ClientConfig{
		{ID: "mall", SecretSHA256: backend.HashSecret([]byte(secret)), Scopes: []string{backend.ScopeEbankHolds}},
		{ID: "desk", SecretSHA256: backend.HashSecret([]byte(secret)), Scopes: []string{backend.ScopeOTPVerify}},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := NewServer("ebank", "127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := mountEbank(ctx, cfg, s, log, nil); err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.HTTP.Close()

	db, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l := ledger.New(db, nil)
	if _, err := l.BankAccount(ctx, ebank.LabelATMCash); err != nil {
		t.Fatalf("the bank's accounts were not opened: %v", err)
	}
	alice, err := ebank.OpenCustomerAccounts(ctx, l, "p-alice", "Alice", ebank.Opening{Current: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := ebank.OpenCustomerAccounts(ctx, l, "p-bob", "Bob", ebank.Opening{})
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"key":"order-7","debit_account":%q,"credit_account":%q,"amount":2500,"grant":"g-7","code":"checkout"}`, alice[0].Number, bob[0].Number)
	for _, tc := range []struct {
		name, user string
		status     int
		says       string
	}{
		{"anonymous", "", 401, `"unauthorized"`},
		{"a client without the scope", "desk", 403, "ebank:holds"},
		{"the mall", "mall", 201, `"kind":"pending"`},
		{"the mall again", "mall", 200, `"replayed":true`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", s.URL()+"/v1/holds", strings.NewReader(body))
			if tc.user != "" {
				req.SetBasicAuth(tc.user, secret)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.says) {
				t.Fatalf("%d %s; want %d saying %s", resp.StatusCode, b, tc.status, tc.says)
			}
		})
	}
	if a, err := l.Account(ctx, alice[0].Number); err != nil || a.Available() != 7500 {
		t.Fatalf("alice %+v, %v", a, err)
	}
	resp, err := http.Get(s.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "database") {
		t.Fatalf("readyz %d %s", resp.StatusCode, b)
	}
}

// ebank warns at start when the Chinese PDF statement's font is missing,
// and is silent when it is there (fonts-droid-fallback, the default).
func TestEbankWarnsOfAMissingStatementFont(t *testing.T) {
	if _, err := os.Stat(web.DefaultStatementFont); err != nil {
		testenv.Missing(t, "the Chinese font "+web.DefaultStatementFont, "apt-get install fonts-droid-fallback")
	}
	for _, tc := range []struct {
		name, path string
		warns      bool
	}{
		{"the default, installed", "", false},
		{"missing", filepath.Join(t.TempDir(), "none.ttf"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			warnStatementFont(tc.path, slog.New(slog.NewTextHandler(&buf, nil)))
			got := buf.String()
			if warns := strings.Contains(got, "level=WARN") && strings.Contains(got, "platforms.ebank.statement-font"); warns != tc.warns {
				t.Fatalf("log %q, want a warning: %v", got, tc.warns)
			}
			if tc.warns && !strings.Contains(got, "none.ttf") {
				t.Errorf("the warning does not name the file: %q", got)
			}
		})
	}
}

// A platform given a database handle (PlatformOptions.DB, as egate demo
// gives them the passport's) uses it and opens none of its own: here the
// configured database cannot be opened at all.
func TestEbankUsesTheSharedDatabase(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		cfg := config.Defaults()
		cfg.Database = store.Config{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "missing", "egate.db")}
		const secret = "mall-secret-0123456789abcdef0123456789"
		cfg.Authsvc.BackendClients = []backend.ClientConfig{
			{ID: "mall", SecretSHA256: backend.HashSecret([]byte(secret)), Scopes: []string{backend.ScopeEbankHolds}},
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for _, tc := range []struct {
			name   string
			shared *store.DB
			ok     bool
		}{
			{"no handle: the configured database, which cannot be opened", nil, false},
			{"the shared handle", db, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, err := NewServer("ebank", "127.0.0.1:0", log)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Listener.Close()
				l, got, err := mountEbank(ctx, cfg, s, log, tc.shared)
				if (err == nil) != tc.ok {
					t.Fatalf("mountEbank: %v, want success %v", err, tc.ok)
				}
				if !tc.ok {
					return
				}
				if got != db {
					t.Fatal("ebank did not answer with the shared handle")
				}
				// The bank's accounts were opened through the shared handle.
				if _, err := ledger.New(db, nil).BankAccount(ctx, ebank.LabelATMCash); err != nil {
					t.Fatalf("the bank's accounts are not in the shared database: %v", err)
				}
				alice, err := ebank.OpenCustomerAccounts(ctx, l, "p-alice", "Alice", ebank.Opening{Current: 10_000})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ledger.New(db, nil).Account(ctx, alice[0].Number); err != nil {
					t.Fatalf("ebank's ledger is not on the shared handle: %v", err)
				}
			})
		}
	})
}
