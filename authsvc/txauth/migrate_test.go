package txauth

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// migration0630 keeps grants in their intent's row instead of tx_grants.
const migration0630 = "0630_txauth_grant_in_intent"

// TestGrantsCarriedIntoIntents: grants issued before migration 0630 (in
// tx_grants) work after it as they did: a live one executes its intent
// once, another intent's is refused as a mismatch and not consumed, a used
// one is refused as used and an expired one as expired; tx_grants is gone.
// The database is migrated up to 0630 by marking 0630 applied, then 0630
// alone once the old grants are in.
func TestGrantsCarriedIntoIntents(t *testing.T) {
	for _, e := range []struct {
		name string
		cfg  func(t *testing.T) store.Config
	}{
		{"sqlite", func(t *testing.T) store.Config {
			return store.Config{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "egate.db"), NoMigrate: true}
		}},
		{"postgres", func(t *testing.T) store.Config {
			return store.Config{Driver: store.Postgres, DSN: storetest.PostgresDSN(t), NoMigrate: true}
		}},
	} {
		t.Run(e.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, e.cfg(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := db.Exec(ctx, q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			exec(`CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_ms BIGINT NOT NULL)`)
			exec(`INSERT INTO schema_migrations (name, applied_ms) VALUES (?, 0)`, migration0630)
			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}

			r := newRig(t, db, rigOpt{})
			now := r.clk.Now()
			c := r.customer(t)
			// Each intent authorized, then granted as the code before 0630
			// did: the intent's state and a row of tx_grants.
			grant := func(key, token string, expires time.Time, used bool) txclient.Decision {
				t.Helper()
				d, err := r.c.Authorize(ctx, c.intent(20*yuan, key))
				if err != nil || d.Decision != "allow" {
					t.Fatalf("%+v %v", d, err)
				}
				state, usedMS := txclient.StateGranted, any(nil)
				if used {
					state, usedMS = txclient.StateExecuted, now.UnixMilli()
				}
				exec(`UPDATE tx_intents SET state = ?, proved_level = 2, proved_factor = 'sms' WHERE hash = ?`, state, d.Intent)
				exec(`INSERT INTO tx_grants (token_hash, intent_hash, created_ms, expires_ms, used_ms) VALUES (?, ?, ?, ?, ?)`,
					tokenHash(token), d.Intent, now.UnixMilli(), expires.UnixMilli(), usedMS)
				return d
			}
			live := grant("k-live", "live-grant-token", now.Add(time.Minute), false)
			grant("k-used", "used-grant-token", now.Add(time.Minute), true)
			grant("k-expired", "expired-grant-token", now.Add(-time.Second), false)
			other := grant("k-other", "other-grant-token", now.Add(time.Minute), false)

			exec(`DELETE FROM schema_migrations WHERE name = ?`, migration0630)
			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM tx_grants`).Scan(&n); err == nil {
				t.Fatal("tx_grants is still there after migration 0630")
			}

			_, err = r.c.Execute(ctx, "live-grant-token", c.intent(20*yuan, "k-other"))
			wantCode(t, err, "grant_mismatch")
			for _, tc := range []struct{ name, token, key, code string }{
				{"used", "used-grant-token", "k-used", "grant_used"},
				{"expired", "expired-grant-token", "k-expired", "grant_expired"},
				{"live", "live-grant-token", "k-live", ""},
				{"live again", "live-grant-token", "k-live", "grant_used"},
			} {
				ex, err := r.c.Execute(ctx, tc.token, c.intent(20*yuan, tc.key))
				if tc.code != "" {
					wantCode(t, err, tc.code)
					continue
				}
				if err != nil || ex.State != txclient.StateExecuted || ex.Intent != live.Intent {
					t.Fatalf("%s: %+v %v", tc.name, ex, err)
				}
			}
			if ex, err := r.c.Execute(ctx, "other-grant-token", c.intent(20*yuan, "k-other")); err != nil || ex.Intent != other.Intent {
				t.Fatalf("the grant refused as a mismatch was consumed: %+v %v", ex, err)
			}
		})
	}
}
