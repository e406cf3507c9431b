package oath

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
)

// The real HSM path: devices/hsm over SoftHSM2, one directory per test binary.
func TestMain(m *testing.M) { hsmtest.Main(m) }

var _ HSM = (*hsm.Service)(nil)

// TestWithSoftHSM imports, verifies and replays with the HMAC computed in
// SoftHSM and compares the HSM's codes with the RFC 6238 vectors.
func TestWithSoftHSM(t *testing.T) {
	h := hsmtest.Open(t)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &clock{t: time.Unix(1111111109, 0)}
		svc := New(db, h, Config{}, clk.Now)
		path := filepath.Join(t.TempDir(), "t.pskc")
		writePSKC(t, path, testKeys(), pskc.WriterOptions{Key: []byte("0123456789abcdef"), KeyName: "transport"})
		sum, err := svc.ImportPSKC(ctx, opener(path), ImportOptions{PSKC: pskc.Options{Key: []byte("0123456789abcdef")}})
		if err != nil || sum.Imported != 3 {
			t.Fatalf("import = %+v, %v", sum, err)
		}
		tok, err := svc.TokenBySerial(ctx, "T0001", "")
		if err != nil {
			t.Fatal(err)
		}
		// RFC 6238 appendix B, SHA256, T = 1111111109.
		if _, err := svc.Verify(ctx, tok, "68084774"); err != nil {
			t.Fatalf("RFC 6238 vector through SoftHSM: %v", err)
		}
		tok, _ = svc.TokenBySerial(ctx, "T0001", "")
		if _, err := svc.Verify(ctx, tok, "68084774"); err == nil || !strings.Contains(err.Error(), "already used") {
			t.Fatalf("replay through SoftHSM: %v", err)
		}
		htok, _ := svc.TokenBySerial(ctx, "H0001", "")
		if _, err := svc.Verify(ctx, htok, "755224"); err != nil { // RFC 4226 counter 0
			t.Fatalf("RFC 4226 vector through SoftHSM: %v", err)
		}
	})
}

// BenchmarkOTPVerify compares like with like: the same SoftHSM token, the
// same stored token (T0001: TOTP, HMAC-SHA-256, 8 digits), the same wrapped
// seed and the same 3 HMACs per op (a ±1 step window).
//
//   - raw: the HSM work of one verification alone, one HMACWrapped call
//     (unwrap + 3 HMACs) over the token's wrapped seed;
//   - egate: a whole verification through the HTTP handler in process
//     (ServeHTTP with a request context that is cancelled afterwards, as
//     net/http does): JSON, counting the attempt and loading the token in one
//     statement, the same HSM call, the replay ledger's UPDATE, in SQLite;
//   - egate-loopback: the same over a real loopback TCP connection
//     (httptest server and keep-alive client), adding net/http's own cost;
//   - baseline-loopback: the composite floor of egate-loopback: a bare
//     JSON handler over the same kind of loopback connection that decodes
//     the request, makes the raw HMACs and one single-row UPDATE on the
//     same engine, and encodes a reply. egate-loopback / baseline-loopback
//     is what egate adds (issue 16 asks for >= 0.8 of its throughput).
//
// Each runs on SQLite and on PostgreSQL (EGATE_TEST_PG_DSN). The HSM keeps
// the token's unwrapped seed live in its session (hsm.Config.LiveSeeds),
// so raw is 3 HMACs.
//
// Figures, loaded 2-core machine shared with other engineers (-count=3,
// medians, 2026-12-03), egate-loopback against baseline-loopback:
// SQLite 198 µs vs 175 µs wall (0.88), 168 vs 129 µs CPU (0.77);
// PostgreSQL 582 vs 428 µs wall (0.73), 218 vs 150 µs CPU (0.69). The
// remaining gap on PostgreSQL is one more round trip by design: a
// verification writes twice, the attempt is counted (count-and-load,
// fast.go) before any HMAC is made so that a crash or a timeout cannot
// hand out free guesses, and the replay ledger's UPDATE follows the
// match; the baseline writes once. Merging them would weaken the guess
// bound of the hardening issue.
//
// The SQLite file is in the test's temporary directory ($TMPDIR): on a disk
// file system each of a verification's two commits waits in the kernel's
// write path (measured ≈40 µs off-CPU per commit on ext4 on a shared 2-core
// VM); with TMPDIR on tmpfs ns/op comes down to about cpu-ns/op.
//
// Codes are computed before the timer starts; each op is a fresh time step.
// Besides ns/op each reports cpu-ns/op, the process's CPU time (user and
// system, all threads) per op, which the load of a shared machine disturbs
// less than the wall clock.
func BenchmarkOTPVerify(b *testing.B) {
	h := hsmtest.Open(b)
	for _, eng := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		b.Run(eng.name, func(b *testing.B) { benchOTPVerify(b, h, eng.open(b)) })
	}
}

func benchOTPVerify(b *testing.B, h *hsm.Service, db *store.DB) {
	ctx := context.Background()
	tseed := []byte("12345678901234567890123456789012")
	clk := &clock{t: time.Unix(1700000000, 0)}
	svc := New(db, h, Config{}, clk.Now)
	path := filepath.Join(b.TempDir(), "t.pskc")
	writePSKC(b, path, testKeys(), pskc.WriterOptions{})
	if _, err := svc.ImportPSKC(ctx, opener(path), ImportOptions{}); err != nil {
		b.Fatal(err)
	}
	tok, err := svc.TokenBySerial(ctx, "T0001", "")
	if err != nil {
		b.Fatal(err)
	}
	p := tok.Params.TOTP()
	// bodies returns n requests, one per fresh time step from now on; the
	// clock moves one step per request as the handler takes them.
	bodies := func(b *testing.B) []string {
		out := make([]string, b.N)
		at := clk.Now()
		for i := range out {
			at = at.Add(p.Period)
			code, err := p.Code(ctx, otp.SoftwareMAC{Key: tseed}, at)
			if err != nil {
				b.Fatal(err)
			}
			out[i] = `{"serial":"T0001","code":"` + code + `"}`
		}
		return out
	}
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		defer testenv.ReportCPU(b)()
		for i := 0; i < b.N; i++ {
			step := p.Step(clk.Now()) + uint64(i)
			msgs := [][]byte{otp.CounterMessage(step - 1), otp.CounterMessage(step), otp.CounterMessage(step + 1)}
			if _, err := h.HMACWrapped(ctx, tok.wrapLabel, tok.wrapped, tok.Params.Hash, msgs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("egate", func(b *testing.B) {
		b.ReportAllocs()
		body := bodies(b)
		hd := svc.Handler()
		b.ResetTimer()
		defer testenv.ReportCPU(b)()
		for i := 0; i < b.N; i++ {
			clk.Add(p.Period)
			rctx, cancel := context.WithCancel(ctx)
			req, err := http.NewRequestWithContext(rctx, http.MethodPost, "/v1/otp/verify", strings.NewReader(body[i]))
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			hd.ServeHTTP(rec, req)
			cancel()
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
	b.Run("egate-loopback", func(b *testing.B) {
		b.ReportAllocs()
		body := bodies(b)
		srv := httptest.NewServer(svc.Handler())
		defer srv.Close()
		client := srv.Client()
		url := srv.URL + "/v1/otp/verify"
		b.ResetTimer()
		defer testenv.ReportCPU(b)()
		for i := 0; i < b.N; i++ {
			clk.Add(p.Period)
			resp, err := client.Post(url, "application/json", strings.NewReader(body[i]))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
	b.Run("baseline-loopback", func(b *testing.B) {
		b.ReportAllocs()
		body := bodies(b)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var in struct{ Serial, Code string }
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Serial == "" || in.Code == "" {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			step := p.Step(clk.Now())
			msgs := [][]byte{otp.CounterMessage(step - 1), otp.CounterMessage(step), otp.CounterMessage(step + 1)}
			if _, err := h.HMACWrapped(r.Context(), tok.wrapLabel, tok.wrapped, tok.Params.Hash, msgs); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if _, err := db.Exec(r.Context(), `UPDATE otp_tokens SET failures = 0 WHERE id = ?`, tok.ID); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(struct {
				OK bool `json:"ok"`
			}{true})
		}))
		defer srv.Close()
		client := srv.Client()
		url := srv.URL + "/v1/otp/verify"
		b.ResetTimer()
		defer testenv.ReportCPU(b)()
		for i := 0; i < b.N; i++ {
			clk.Add(p.Period)
			resp, err := client.Post(url, "application/json", strings.NewReader(body[i]))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}
