package oath

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// policyFile writes a PSKC file of keys and PIN keys (id → PIN).
func policyFile(t *testing.T, ks []*pskc.Key, pins map[string]string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.pskc")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pskc.NewWriter(f, pskc.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for id, pin := range pins { // before the keys that name them, as vendors do
		if err := w.AddPIN(id, "PIN-"+id, []byte(pin)); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range ks {
		if err := w.Add(k); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func hotpKey(serial string) *pskc.Key {
	return &pskc.Key{ID: "1", Serial: serial, Params: otp.Params{Kind: otp.KindHOTP, Hash: crypto.SHA1, Digits: 6}, Secret: append([]byte(nil), seed...)}
}

func totpKey(serial string) *pskc.Key {
	return &pskc.Key{ID: "1", Serial: serial, Params: otp.Params{Kind: otp.KindTOTP, Hash: crypto.SHA256, Digits: 8, Period: 30 * time.Second}, Secret: []byte("12345678901234567890123456789012")}
}

// TestStartDateAndTimeDrift: a TOTP key whose StartDate is in the future
// refuses its codes (general and fast path) until then; a key whose file
// says its clock drifts is verified around the drifted step from the first
// code on.
func TestStartDateAndTimeDrift(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &clock{t: time.Unix(1700000000, 0)}
		svc := New(db, newFakeHSM(), Config{}, clk.Now)
		later := totpKey("TLATER")
		later.StartDate = clk.Now().Add(24 * time.Hour)
		drifted := totpKey("TDRIFT")
		drifted.TimeDrift = 6 // six steps (three minutes) fast
		if _, err := svc.ImportPSKC(ctx, opener(policyFile(t, []*pskc.Key{later, drifted}, nil)), ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		tok, err := svc.TokenBySerial(ctx, "TLATER", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Verify(ctx, tok, totpCode(clk.Now())); !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), "not valid before") {
			t.Fatalf("code before StartDate: %v", err)
		}
		if _, err := svc.VerifyCode(ctx, Lookup{Serial: "TLATER"}, totpCode(clk.Now())); !errors.Is(err, ErrRevoked) {
			t.Fatalf("code before StartDate, fast path: %v", err)
		}
		clk.Add(24*time.Hour + time.Minute)
		if _, err := svc.VerifyCode(ctx, Lookup{Serial: "TLATER"}, totpCode(clk.Now())); err != nil {
			t.Fatalf("code after StartDate: %v", err)
		}

		dt, err := svc.TokenBySerial(ctx, "TDRIFT", "")
		if err != nil {
			t.Fatal(err)
		}
		if dt.Drift != 6 {
			t.Fatalf("stored drift %d, want 6", dt.Drift)
		}
		if _, err := svc.Verify(ctx, dt, totpCode(clk.Now())); !errors.Is(err, ErrWrongCode) {
			t.Fatalf("an undrifted code: %v", err)
		}
		if _, err := svc.VerifyCode(ctx, Lookup{Serial: "TDRIFT"}, totpCode(clk.Now().Add(6*30*time.Second))); err != nil {
			t.Fatalf("the drifted code: %v", err)
		}
	})
}

// TestPINUsageMode: a token whose file says PINUsageMode Append needs the
// code followed by the PIN (Prepend: the PIN then the code); the bare code
// and a wrong PIN are refused on both paths.
func TestPINUsageMode(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		hsm := newFakeHSM()
		svc := New(db, hsm, Config{MaxFailures: 20}, nil)
		app := hotpKey("HAPPEND")
		app.PIN = &pskc.PINPolicy{Mode: pskc.PINAppend, KeyID: "pin-a", Min: 4, Max: 6}
		pre := hotpKey("HPREPEND")
		pre.PIN = &pskc.PINPolicy{Mode: pskc.PINPrepend, KeyID: "pin-p", Min: 4, Max: 4}
		if _, err := svc.ImportPSKC(ctx, opener(policyFile(t, []*pskc.Key{app, pre}, map[string]string{"pin-a": "47110", "pin-p": "2580"})), ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		// No trace of the PIN in the row.
		var n int
		db.QueryRow(ctx, `SELECT COUNT(*) FROM otp_tokens WHERE pin_mac IS NOT NULL AND pin_mode IN ('Append', 'Prepend')`).Scan(&n)
		if n != 2 {
			t.Fatalf("%d tokens with a PIN check, want 2", n)
		}
		steps := []struct {
			name, serial, input string
			want                error
		}{
			{"append: bare code", "HAPPEND", hotpCode(0), ErrMalformed},
			{"append: wrong PIN", "HAPPEND", hotpCode(0) + "47111", ErrWrongCode},
			{"append: PIN before the code", "HAPPEND", "47110" + hotpCode(0), ErrWrongCode},
			{"append: code and PIN", "HAPPEND", hotpCode(0) + "47110", nil},
			{"append: replayed", "HAPPEND", hotpCode(0) + "47110", ErrReplay},
			{"prepend: bare code", "HPREPEND", hotpCode(0), ErrMalformed},
			{"prepend: wrong PIN", "HPREPEND", "2581" + hotpCode(0), ErrWrongCode},
			{"prepend: PIN and code", "HPREPEND", "2580" + hotpCode(0), nil},
		}
		for _, st := range steps {
			// Both the general path and VerifyCode.
			tok, err := svc.TokenBySerial(ctx, st.serial, "")
			if err != nil {
				t.Fatal(err)
			}
			_, err = svc.Verify(ctx, tok, st.input)
			if st.want == nil && err != nil || st.want != nil && !errors.Is(err, st.want) {
				t.Fatalf("%s: Verify: %v, want %v", st.name, err, st.want)
			}
			if st.want == nil {
				continue // a second accept would be a replay
			}
			_, err = svc.VerifyCode(ctx, Lookup{Serial: st.serial}, st.input)
			if !errors.Is(err, st.want) {
				t.Fatalf("%s: VerifyCode: %v, want %v", st.name, err, st.want)
			}
		}
		// The bare next code through VerifyCode (whose fast path checks no
		// PIN) is refused too.
		if _, err := svc.VerifyCode(ctx, Lookup{Serial: "HAPPEND"}, hotpCode(1)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("bare next code through VerifyCode: %v", err)
		}
		// Resync needs the PIN with both codes.
		tok, _ := svc.TokenBySerial(ctx, "HAPPEND", "")
		if _, err := svc.Resync(ctx, tok, hotpCode(30), hotpCode(31)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("resync without PIN: %v", err)
		}
		if _, err := svc.Resync(ctx, tok, hotpCode(30)+"47110", hotpCode(31)+"47110"); err != nil {
			t.Fatalf("resync with PIN: %v", err)
		}
	})
}

// TestImportPolicyRefusals: a key naming a PIN the file lacks or breaks is
// refused with its key id, and nothing of the file is imported; expired
// keys are skipped and listed unless ImportExpired.
func TestImportPolicyRefusals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &clock{t: time.Unix(1700000000, 0)}
		svc := New(db, newFakeHSM(), Config{}, clk.Now)
		count := func() int {
			var n int
			db.QueryRow(ctx, `SELECT COUNT(*) FROM otp_tokens`).Scan(&n)
			return n
		}
		noPIN := hotpKey("HNOPIN")
		noPIN.PIN = &pskc.PINPolicy{Mode: pskc.PINAppend, KeyID: "missing", Min: 4, Max: 4}
		shortPIN := hotpKey("HSHORT")
		shortPIN.PIN = &pskc.PINPolicy{Mode: pskc.PINAppend, KeyID: "p", Min: 6, Max: 8}
		for _, tc := range []struct {
			name string
			path string
			key  string
			msg  string
		}{
			{"PIN key missing", policyFile(t, []*pskc.Key{hotpKey("HOK"), noPIN}, nil), "HNOPIN", `PIN key "missing"`},
			{"PIN shorter than its policy", policyFile(t, []*pskc.Key{hotpKey("HOK"), shortPIN}, map[string]string{"p": "1234"}), "HSHORT", "6 to 8"},
		} {
			_, err := svc.ImportPSKC(ctx, opener(tc.path), ImportOptions{})
			var ee *pskc.EntryError
			if !errors.As(err, &ee) || ee.Serial != tc.key || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("%s: error %v, want one naming %s and %q", tc.name, err, tc.key, tc.msg)
			}
			if strings.Contains(err.Error(), "1234") {
				t.Fatalf("%s: the error shows the PIN: %v", tc.name, err)
			}
			if n := count(); n != 0 {
				t.Fatalf("%s: %d tokens imported from a refused file", tc.name, n)
			}
		}

		old := hotpKey("HOLD")
		old.ExpiryDate = clk.Now().Add(-time.Hour)
		path := policyFile(t, []*pskc.Key{hotpKey("HNEW"), old}, nil)
		sum, err := svc.ImportPSKC(ctx, opener(path), ImportOptions{})
		if err != nil || sum.Imported != 1 || len(sum.Expired) != 1 || sum.Expired[0].Serial != "HOLD" || sum.Expired[0].Index != 2 {
			t.Fatalf("import = %+v, %v", sum, err)
		}
		if _, err := svc.TokenBySerial(ctx, "HOLD", ""); !errors.Is(err, ErrUnknownToken) {
			t.Fatalf("expired key imported: %v", err)
		}
		sum, err = svc.ImportPSKC(ctx, opener(path), ImportOptions{ImportExpired: true})
		if err != nil || sum.Imported != 1 || sum.Duplicates != 1 || len(sum.Expired) != 1 {
			t.Fatalf("forced import = %+v, %v", sum, err)
		}
		if _, err := svc.TokenBySerial(ctx, "HOLD", ""); err != nil {
			t.Fatalf("forced expired key: %v", err)
		}
	})
}

// TestImportSigned: the vendor's signed file (signed by xmlsec1, see
// devices/otp/pskc/testdata/make-signed.sh) imports with the vendor's
// certificate; with another certificate, altered, or unsigned where a
// signature is demanded, nothing is imported.
func TestImportSigned(t *testing.T) {
	td := filepath.Join("..", "..", "devices", "otp", "pskc", "testdata")
	signed, err := os.ReadFile(filepath.Join(td, "signed.pskcxml"))
	if err != nil {
		t.Fatal(err)
	}
	cert := func(name string) *x509.Certificate {
		b, err := os.ReadFile(filepath.Join(td, name))
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	vendor, other := cert("signed-vendor-cert.pem"), cert("signed-other-cert.pem")
	write := func(name string, b []byte) string {
		p := filepath.Join(t.TempDir(), name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	good := write("signed.pskc", signed)
	altered := write("altered.pskc", bytes.Replace(signed, []byte("<PlainValue>5</PlainValue>"), []byte("<PlainValue>0</PlainValue>"), 1))
	unsigned := filepath.Join(t.TempDir(), "unsigned.pskc")
	writePSKC(t, unsigned, testKeys(), pskc.WriterOptions{})
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc := New(db, newFakeHSM(), Config{}, nil)
		for _, tc := range []struct {
			name  string
			path  string
			certs []*x509.Certificate
			want  error
		}{
			{"another vendor's certificate", good, []*x509.Certificate{other}, pskc.ErrSignature},
			{"altered after signing", altered, []*x509.Certificate{vendor}, pskc.ErrSignature},
			{"unsigned", unsigned, []*x509.Certificate{vendor}, pskc.ErrSignature},
			{"signed but not verified", good, nil, pskc.ErrUnsupported},
		} {
			if _, err := svc.ImportPSKC(ctx, opener(tc.path), ImportOptions{SignerCerts: tc.certs}); !errors.Is(err, tc.want) {
				t.Fatalf("%s: error %v, want %v", tc.name, err, tc.want)
			}
			var n int
			db.QueryRow(ctx, `SELECT COUNT(*) FROM otp_tokens`).Scan(&n)
			if n != 0 {
				t.Fatalf("%s: %d tokens imported", tc.name, n)
			}
		}
		sum, err := svc.ImportPSKC(ctx, opener(good), ImportOptions{SignerCerts: []*x509.Certificate{vendor}})
		if err != nil || sum.Imported != 2 {
			t.Fatalf("signed import = %+v, %v", sum, err)
		}
		tok, err := svc.TokenBySerial(ctx, "SIG0002", "")
		if err != nil || tok.Counter != 5 {
			t.Fatalf("SIG0002 = %+v, %v", tok, err)
		}
	})
}
