package oath

import (
	"context"
	"crypto"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

var benchEngines = []struct {
	name string
	open func(testing.TB) *store.DB
}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}}

// growthService imports the test keys (H0001 is HOTP, SHA-1, 6 digits,
// seed "1234…") into db through the HSM and copies H0001's row, its
// wrapped seed included, to rows more tokens B1…Bn in one statement: each
// copy has its own replay ledger (counter) and verifies the same codes.
func growthService(b *testing.B, db *store.DB, rows int) *Service {
	b.Helper()
	ctx := context.Background()
	svc := New(db, hsmtest.Open(b), Config{}, time.Now)
	path := filepath.Join(b.TempDir(), "t.pskc")
	writePSKC(b, path, testKeys(), pskc.WriterOptions{})
	if _, err := svc.ImportPSKC(ctx, opener(path), ImportOptions{}); err != nil {
		b.Fatal(err)
	}
	if rows == 0 {
		return svc
	}
	r, err := db.Query(ctx, `SELECT * FROM otp_tokens WHERE 1 = 0`)
	if err != nil {
		b.Fatal(err)
	}
	cols, err := r.Columns()
	r.Close()
	if err != nil {
		b.Fatal(err)
	}
	exprs := make([]string, len(cols))
	for i, c := range cols {
		switch c {
		case "id":
			exprs[i] = "'bulk-' || n"
		case "serial":
			exprs[i] = "'B' || n"
		case "passport_id":
			exprs[i] = "NULL"
		default:
			exprs[i] = "t." + c
		}
	}
	list := strings.Join(cols, ", ")
	sel := strings.Join(exprs, ", ")
	q := `WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ?)
		INSERT INTO otp_tokens (` + list + `) SELECT ` + sel + ` FROM otp_tokens t, s WHERE t.serial = 'H0001'`
	if db.Driver() == store.Postgres {
		q = `INSERT INTO otp_tokens (` + list + `) SELECT ` + sel + ` FROM otp_tokens t, generate_series(1, ?::bigint) AS n WHERE t.serial = 'H0001'`
	}
	if _, err := db.Exec(ctx, q, rows); err != nil {
		b.Fatal(err)
	}
	return svc
}

// hotpBody is a verify request for token serial with the code of counter
// c (computed in software from the test seed, about a microsecond).
func hotpBody(b *testing.B, serial string, c int) string {
	code, err := otp.HOTP(context.Background(), otp.SoftwareMAC{Key: seed}, crypto.SHA1, uint64(c), 6)
	if err != nil {
		b.Fatal(err)
	}
	return `{"serial":"` + serial + `","code":"` + code + `"}`
}

func verifyOnce(b *testing.B, h http.Handler, body string) {
	req := httptest.NewRequest(http.MethodPost, "/v1/otp/verify", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Errorf("status %d: %s", rec.Code, rec.Body)
	}
}

// BenchmarkOTPLedgerGrowth: one HOTP verification through the handler in
// process (count the attempt and load the token, three HMACs in the HSM,
// the replay ledger's UPDATE … WHERE counter <= accepted) as otp_tokens
// holds 10k, 100k and 1M tokens, on each engine. The ledger is a column of
// the token's row, reached by its key, so the cost should stay flat. The
// rows are inserted in the setup (one INSERT … SELECT); -short skips 1M on
// PostgreSQL.
func BenchmarkOTPLedgerGrowth(b *testing.B) {
	for _, eng := range benchEngines {
		for _, rows := range []int{10_000, 100_000, 1_000_000} {
			b.Run(fmt.Sprintf("%s/rows-%d", eng.name, rows), func(b *testing.B) {
				if testing.Short() && rows >= 1_000_000 && eng.name == "postgres" {
					b.Skip("1M rows on PostgreSQL: without -short")
				}
				svc := growthService(b, eng.open(b), rows)
				h := svc.Handler()
				serial := fmt.Sprintf("B%d", rows/2)
				c := 0
				for b.Loop() {
					verifyOnce(b, h, hotpBody(b, serial, c))
					c++
				}
			})
		}
	}
}

// BenchmarkOTPVerifyClients: HOTP verifications through the handler in
// process from 1, 2, 4 and 8 concurrent clients, each verifying its own
// token's codes (one token's ledger takes its codes in order), on each
// engine. ns/op is wall time per verification of all clients together,
// verifies/s its inverse; on 2 cores the curve flattens where the HSM and
// the database's single writer (SQLite) are busy.
func BenchmarkOTPVerifyClients(b *testing.B) {
	for _, eng := range benchEngines {
		b.Run(eng.name, func(b *testing.B) {
			svc := growthService(b, eng.open(b), 8)
			h := svc.Handler()
			// used[c] is how many codes token B(c+1) has had accepted:
			// each run of a sub-benchmark (b.N grows) continues its codes.
			used := make([]int, 8)
			for _, clients := range []int{1, 2, 4, 8} {
				b.Run(fmt.Sprintf("clients-%d", clients), func(b *testing.B) {
					var left atomic.Int64
					left.Store(int64(b.N))
					var wg sync.WaitGroup
					for c := range clients {
						wg.Add(1)
						go func() {
							defer wg.Done()
							serial := fmt.Sprintf("B%d", c+1)
							for left.Add(-1) >= 0 {
								verifyOnce(b, h, hotpBody(b, serial, used[c]))
								used[c]++
							}
						}()
					}
					wg.Wait()
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
				})
			}
		})
	}
}
