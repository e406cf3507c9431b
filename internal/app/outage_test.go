package app

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/authsvc/oath"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	devotp "github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/store"
)

// internals are what an answer must not show of an HSM failure: the
// module, the token label, PKCS#11 return values.
var internals = []string{"CKR_", "libsofthsm2", hsmtest.Token, "pkcs11"}

// outageSeed is every test token's seed (RFC 4226's).
var outageSeed = []byte("12345678901234567890")

func hotp(t testing.TB, c uint64) string {
	s, err := devotp.HOTP(context.Background(), devotp.SoftwareMAC{Key: outageSeed}, crypto.SHA1, c, 6)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestHSMOutageRecovers runs `egate authsvc` (NewAuthsvc, as the command
// does) on SoftHSM2 and makes the token directory unreachable while
// goroutines verify OTP codes through the HTTP API, then restores it. While
// it is gone, verifications answer 503 "unavailable" and /readyz says only
// that the hsm check failed; after it is back /readyz turns ready by itself
// (no restart), every verification from then on succeeds, and no token has
// a failure counted or a lock.
func TestHSMOutageRecovers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	secretFile := filepath.Join(t.TempDir(), "core-secret")
	if err := os.WriteFile(secretFile, []byte(coreSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.HSM = hsmtest.Config(t) // keeps no Service open: the authsvc's is the module's only user
	cfg.HSM.RetryMin, cfg.HSM.RetryMax = 10*time.Millisecond, 200*time.Millisecond
	cfg.Database = store.Config{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "egate.db")}
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Factors.Enabled = []string{"otp"}
	cfg.Authsvc.BackendClients = []backend.ClientConfig{{ID: "core", SecretSource: "file:" + secretFile, Scopes: []string{backend.ScopeOTPVerify}}}
	var logs strings.Builder
	var logMu sync.Mutex
	log := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), nil))
	a, err := NewAuthsvc(ctx, cfg, log, AuthsvcOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	root := t.TempDir()
	const workers = 4
	path := filepath.Join(root, "tokens.pskc")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pskc.NewWriter(f, pskc.WriterOptions{})
	for i := range workers {
		if err == nil {
			err = w.Add(&pskc.Key{ID: "1", Serial: fmt.Sprintf("H%04d", i), Manufacturer: "Acme",
				Params: devotp.Params{Kind: devotp.KindHOTP, Hash: crypto.SHA1, Digits: 6}, Secret: append([]byte(nil), outageSeed...)})
		}
	}
	if err == nil {
		err = w.Close()
	}
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := a.Factors.OTP.ImportPSKC(ctx, func() (io.ReadCloser, error) { return os.Open(path) }, oath.ImportOptions{}); err != nil || sum.Imported != workers {
		t.Fatalf("import: %+v %v", sum, err)
	}
	a.Server.Start()
	defer a.Server.HTTP.Shutdown(context.Background())
	base := a.Server.URL()

	ready := func() (int, map[string]string, string) {
		t.Helper()
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out struct {
			Checks map[string]string `json:"checks"`
		}
		json.Unmarshal(b, &out)
		return resp.StatusCode, out.Checks, string(b)
	}
	if code, checks, body := ready(); code != 200 || checks["hsm"] != "ok" {
		t.Fatalf("readyz before the outage: %d %s", code, body)
	}

	// phase: 0 before the outage, 1 from the rename until /readyz is
	// ready again, 2 after.
	var phase atomic.Int32
	var ok [3]atomic.Int32
	var failed503 atomic.Int32
	progress := make(chan struct{}, 64)
	errs := make(chan error, workers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serial := fmt.Sprintf("H%04d", i)
			var counter uint64
			for {
				select {
				case <-stop:
					return
				default:
				}
				p := phase.Load()
				req, _ := http.NewRequest("POST", base+"/v1/otp/verify", strings.NewReader(`{"serial":"`+serial+`","code":"`+hotp(t, counter)+`"}`))
				req.Header.Set("Content-Type", "application/json")
				req.SetBasicAuth("core", coreSecret)
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 && phase.Load() != p {
					p = 1 // in flight when the outage began or ended
				}
				switch {
				case resp.StatusCode == 200:
					counter++ // the next code; a 503 retries the same one
					ok[p].Add(1)
					select {
					case progress <- struct{}{}:
					default:
					}
				case p == 1 && resp.StatusCode == 503 && strings.Contains(string(b), `"unavailable"`):
					failed503.Add(1)
					for _, s := range internals {
						if strings.Contains(string(b), s) {
							errs <- fmt.Errorf("the 503 shows %q: %s", s, b)
							return
						}
					}
				default:
					errs <- fmt.Errorf("phase %d: %s: %d %s", p, serial, resp.StatusCode, b)
					return
				}
			}
		}()
	}
	var stopOnce sync.Once
	stopWorkers := func() { stopOnce.Do(func() { close(stop); wg.Wait() }) }
	defer stopWorkers()
	waitOK := func(p int, n int32) {
		t.Helper()
		for ok[p].Load() < n {
			select {
			case <-progress:
			case err := <-errs:
				t.Fatal(err)
			case <-ctx.Done():
				t.Fatalf("phase %d: %d verifications succeeded, want %d", p, ok[p].Load(), n)
			}
		}
	}
	waitOK(0, 20)

	phase.Store(1)
	restore := hsmtest.Unreachable(t)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	// SoftHSM2 goes on computing with the objects it has in memory after
	// its directory went (the workers' seeds live in their sessions,
	// hsm.live-seeds), so a verification alone may never notice; the
	// readiness probe asks the token itself, as an orchestrator's probe
	// every few seconds would, and from its failure on the service
	// answers 503 until the token is back.
	for failed503.Load() == 0 {
		ready()
		select {
		case <-tick.C:
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("no verification was answered 503 while the token directory was gone")
		}
	}
	code, checks, body := ready()
	if code != 503 || checks["hsm"] != "fail" || checks["database"] != "ok" {
		t.Fatalf("readyz during the outage: %d %s", code, body)
	}
	for _, s := range internals {
		if strings.Contains(body, s) {
			t.Fatalf("/readyz shows %q: %s", s, body)
		}
	}
	restore()
	for {
		code, _, _ := ready()
		if code == 200 {
			break
		}
		select {
		case <-tick.C:
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("/readyz did not turn ready after the token directory came back")
		}
	}
	phase.Store(2)
	waitOK(2, 20)
	stopWorkers() // no attempt in flight: its count would be taken
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	for i := range workers {
		var failures int
		var until int64
		if err := a.DB.QueryRow(ctx, `SELECT failures, locked_until_ms FROM otp_tokens WHERE serial = ?`, fmt.Sprintf("H%04d", i)).Scan(&failures, &until); err != nil {
			t.Fatal(err)
		}
		if failures != 0 || until != 0 {
			t.Fatalf("token H%04d: failures %d, locked until %d; want 0, 0", i, failures, until)
		}
	}
	if a.HSM.Reopened() < 1 {
		t.Fatal("the HSM was never reopened")
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), `"check":"hsm"`) {
		t.Fatalf("the log does not say why /readyz failed: %s", logs.String())
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
