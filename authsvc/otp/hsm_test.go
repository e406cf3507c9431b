package otp

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/simulators/softhsm"
)

// The real HSM path: devices/hsm over SoftHSM2. SOFTHSM2_CONF is read once
// per process, so one directory serves every test and benchmark here.
var softHSM struct {
	once sync.Once
	svc  *hsm.Service
	err  error
}

func realHSM(tb testing.TB) *hsm.Service {
	tb.Helper()
	softHSM.once.Do(func() {
		root, err := os.MkdirTemp("", "egate-otp-hsm-")
		if err != nil {
			softHSM.err = err
			return
		}
		d, err := softhsm.New(filepath.Join(root, "softhsm"))
		if err != nil {
			softHSM.err = err
			return
		}
		if err := d.Activate(); err != nil {
			softHSM.err = err
			return
		}
		ctx := context.Background()
		if _, _, err := d.InitToken(ctx, "egate-otp-test", "5678", "1234"); err != nil {
			softHSM.err = err
			return
		}
		pin := filepath.Join(root, "pin")
		os.WriteFile(pin, []byte("1234\n"), 0o600)
		s, err := hsm.Open(ctx, hsm.Config{Module: d.Module, Token: "egate-otp-test", PINSource: "file:" + pin, Pool: 4})
		if err != nil {
			softHSM.err = err
			return
		}
		if _, _, err := s.EnsureKey(ctx, hsm.KeySpec{Label: hsm.LabelSecretsWrap, Type: hsm.KeyAES256}); err != nil {
			softHSM.err = err
			return
		}
		softHSM.svc = s
	})
	if softHSM.err != nil {
		testenv.Missing(tb, "SoftHSM2", fmt.Sprintf("apt-get install softhsm2 (%v)", softHSM.err))
	}
	return softHSM.svc
}

var _ HSM = (*hsm.Service)(nil)

// TestWithSoftHSM imports, verifies and replays with the HMAC computed in
// SoftHSM and compares the HSM's codes with the RFC 6238 vectors.
func TestWithSoftHSM(t *testing.T) {
	h := realHSM(t)
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

// BenchmarkOTPVerify: raw is the HSM work one TOTP verification needs (one
// HMACWrapped call over the 3 steps of a ±1 window, in SoftHSM); egate is a
// whole verification through the HTTP API: JSON, token lookup, attempt
// reservation, the same HSM call, and the replay ledger update in SQLite.
func BenchmarkOTPVerify(b *testing.B) {
	h := realHSM(b)
	ctx := context.Background()
	tseed := []byte("12345678901234567890123456789012")
	b.Run("raw", func(b *testing.B) {
		wrapped, err := h.WrapSecret(ctx, hsm.LabelSecretsWrap, tseed)
		if err != nil {
			b.Fatal(err)
		}
		msgs := [][]byte{otp.CounterMessage(1), otp.CounterMessage(2), otp.CounterMessage(3)}
		b.ResetTimer()
		for b.Loop() {
			if _, err := h.HMACWrapped(ctx, hsm.LabelSecretsWrap, wrapped, crypto.SHA256, msgs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("egate", func(b *testing.B) {
		db := storetest.SQLite(b)
		clk := &clock{t: time.Unix(1700000000, 0)}
		svc := New(db, h, Config{}, clk.Now)
		path := filepath.Join(b.TempDir(), "t.pskc")
		writePSKC(b, path, testKeys(), pskc.WriterOptions{})
		if _, err := svc.ImportPSKC(ctx, opener(path), ImportOptions{}); err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(svc.Handler())
		defer srv.Close()
		client := srv.Client()
		p := otp.TOTP{Hash: crypto.SHA256, Digits: 8, Period: 30 * time.Second}
		b.ResetTimer()
		for b.Loop() {
			clk.Add(30 * time.Second) // a fresh time step each round
			code, _ := p.Code(ctx, otp.SoftwareMAC{Key: tseed}, clk.Now())
			resp, err := client.Post(srv.URL+"/v1/otp/verify", "application/json", strings.NewReader(`{"serial":"T0001","code":"`+code+`"}`))
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
