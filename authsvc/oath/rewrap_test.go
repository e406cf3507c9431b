package oath

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestRewrapSeedsWithSoftHSM stores the test tokens the way egate did
// before the seed-wrap key (under egate-secrets-wrap, made by raw PKCS#11),
// checks they verify, moves them with two RewrapSeeds running at once (two
// replicas starting), and checks every seed moved exactly once, verifies
// with the RFC vectors, and that a third run moves nothing.
func TestRewrapSeedsWithSoftHSM(t *testing.T) {
	h := hsmtest.Open(t, hsm.KeySpec{Label: "egate-test-otp-seed-wrap2", Type: hsm.KeySeedWrap})
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &clock{t: time.Unix(1111111109, 0)}
		svc := New(db, h, Config{}, clk.Now)
		path := filepath.Join(t.TempDir(), "t.pskc")
		keys := testKeys()
		writePSKC(t, path, testKeys(), pskc.WriterOptions{})
		if _, err := svc.ImportPSKC(ctx, opener(path), ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		// The database from before: every seed under egate-secrets-wrap,
		// but O0001's under another seed-wrap key, which must stay.
		for _, k := range keys {
			label, blob := hsm.LabelSecretsWrap, hsmtest.LegacyWrap(t, hsm.LabelSecretsWrap, k.Secret)
			if k.Serial == "O0001" {
				label = "egate-test-otp-seed-wrap2"
				var err error
				if blob, err = h.WrapSecret(ctx, label, k.Secret); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.Exec(ctx, `UPDATE otp_tokens SET wrap_label = ?, wrapped = ? WHERE serial = ?`, label, blob, k.Serial); err != nil {
				t.Fatal(err)
			}
		}
		htok, err := svc.TokenBySerial(ctx, "H0001", "")
		if err != nil || htok.wrapLabel != hsm.LabelSecretsWrap {
			t.Fatalf("H0001 before: %+v, %v", htok, err)
		}
		if _, err := svc.Verify(ctx, htok, "755224"); err != nil { // RFC 4226 counter 0
			t.Fatalf("a legacy seed before the move: %v", err)
		}

		var wg sync.WaitGroup
		sums := make([]RewrapSummary, 2)
		errs := make([]error, 2)
		for i := range sums {
			wg.Go(func() { sums[i], errs[i] = svc.RewrapSeeds(ctx) })
		}
		wg.Wait()
		total := 0
		for i := range sums {
			if errs[i] != nil {
				t.Fatalf("RewrapSeeds %d: %v", i, errs[i])
			}
			total += sums[i].Total()
			if sums[i].Kept["egate-test-otp-seed-wrap2"] > 1 {
				t.Errorf("run %d kept %v", i, sums[i].Kept)
			}
		}
		if total != 2 {
			t.Fatalf("the two runs moved %d seeds (%+v), want 2 between them", total, sums)
		}
		rows, err := db.Query(ctx, `SELECT serial, wrap_label FROM otp_tokens ORDER BY serial`)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for rows.Next() {
			var s, l string
			if err := rows.Scan(&s, &l); err != nil {
				t.Fatal(err)
			}
			got[s] = l
		}
		rows.Close()
		want := map[string]string{"H0001": hsm.LabelSeedWrap, "T0001": hsm.LabelSeedWrap, "O0001": "egate-test-otp-seed-wrap2"}
		for s, l := range want {
			if got[s] != l {
				t.Errorf("token %s is wrapped by %q, want %q", s, got[s], l)
			}
		}
		// The moved seeds give the RFC values.
		htok, _ = svc.TokenBySerial(ctx, "H0001", "")
		if _, err := svc.Verify(ctx, htok, "287082"); err != nil { // RFC 4226 counter 1
			t.Fatalf("H0001 after the move: %v", err)
		}
		ttok, _ := svc.TokenBySerial(ctx, "T0001", "")
		if _, err := svc.Verify(ctx, ttok, "68084774"); err != nil { // RFC 6238 SHA256 at 1111111109
			t.Fatalf("T0001 after the move: %v", err)
		}
		// Idempotent: nothing left to move.
		again, err := svc.RewrapSeeds(ctx)
		if err != nil || again.Total() != 0 || again.Kept["egate-test-otp-seed-wrap2"] != 1 {
			t.Fatalf("third run: %+v, %v; want nothing moved, O0001 kept", again, err)
		}
	})
}

// TestRewrapSeedsSkipsABadRow: a seed whose key is missing stays as it is,
// the error names its token, and the other seeds are moved.
func TestRewrapSeedsSkipsABadRow(t *testing.T) {
	h := hsmtest.Open(t)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc := New(db, h, Config{}, nil)
		path := filepath.Join(t.TempDir(), "t.pskc")
		writePSKC(t, path, testKeys()[:2], pskc.WriterOptions{})
		if _, err := svc.ImportPSKC(ctx, opener(path), ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, k := range testKeys()[:2] {
			label := hsm.LabelSecretsWrap
			if k.Serial == "H0001" {
				label = "egate-test-gone"
			}
			if _, err := db.Exec(ctx, `UPDATE otp_tokens SET wrap_label = ?, wrapped = ? WHERE serial = ?`, label, hsmtest.LegacyWrap(t, hsm.LabelSecretsWrap, k.Secret), k.Serial); err != nil {
				t.Fatal(err)
			}
		}
		sum, err := svc.RewrapSeeds(ctx)
		if err == nil || !errors.Is(err, hsm.ErrKeyNotFound) || !strings.Contains(err.Error(), "H0001") || !strings.Contains(err.Error(), "1 could not") {
			t.Fatalf("RewrapSeeds: %v, want ErrKeyNotFound naming H0001", err)
		}
		if sum.Rewrapped[hsm.LabelSecretsWrap] != 1 {
			t.Fatalf("moved %v, want T0001's seed", sum.Rewrapped)
		}
		for serial, want := range map[string]string{"H0001": "egate-test-gone", "T0001": hsm.LabelSeedWrap} {
			var l string
			if err := db.QueryRow(ctx, `SELECT wrap_label FROM otp_tokens WHERE serial = ?`, serial).Scan(&l); err != nil || l != want {
				t.Fatalf("%s after the run: %q, %v; want %q", serial, l, err, want)
			}
		}
	})
}
