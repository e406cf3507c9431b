package factors

import (
	"bytes"
	"context"
	"crypto"
	"io"
	"testing"

	"github.com/egate-bank/egate/authsvc/oath"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestBuildRewrapsSeeds: seeds stored under egate-secrets-wrap (a database
// from before the seed-wrap key) are moved under egate-otp-seed-wrap when
// the tools are built (every authsvc start), once.
func TestBuildRewrapsSeeds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		h := hsmtest.Open(t)
		cfg := Config{Enabled: []string{OTP}}
		set := build(t, db, cfg, Deps{HSM: h})
		var file bytes.Buffer
		w, err := pskc.NewWriter(&file, pskc.WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		seeds := map[string][]byte{"R0001": []byte("12345678901234567890"), "R0002": []byte("abcdefghijabcdefghij")}
		for serial, seed := range seeds {
			k := &pskc.Key{ID: "1", Serial: serial, Manufacturer: "Acme", Params: otp.Params{Kind: otp.KindHOTP, Hash: crypto.SHA1, Digits: 6}, Secret: bytes.Clone(seed)}
			if err := w.Add(k); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(file.Bytes())), nil }
		if _, err := set.OTP.ImportPSKC(ctx, open, oath.ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		if set.OTPRewrap.Total() != 0 || set.OTPRewrapErr != nil {
			t.Fatalf("first Build moved %+v, %v", set.OTPRewrap, set.OTPRewrapErr)
		}
		for serial, seed := range seeds {
			if _, err := db.Exec(ctx, `UPDATE otp_tokens SET wrap_label = ?, wrapped = ? WHERE serial = ?`, hsm.LabelSecretsWrap, hsmtest.LegacyWrap(t, hsm.LabelSecretsWrap, seed), serial); err != nil {
				t.Fatal(err)
			}
		}
		again := build(t, db, cfg, Deps{HSM: h})
		if again.OTPRewrapErr != nil || again.OTPRewrap.Rewrapped[hsm.LabelSecretsWrap] != 2 {
			t.Fatalf("Build over legacy seeds moved %+v, %v; want both", again.OTPRewrap, again.OTPRewrapErr)
		}
		var left int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM otp_tokens WHERE wrap_label <> ?`, hsm.LabelSeedWrap).Scan(&left); err != nil || left != 0 {
			t.Fatalf("%d seeds not under the seed-wrap key (%v)", left, err)
		}
		if err := again.OTP.Assign(ctx, "R0001", "", "P-1"); err != nil {
			t.Fatal(err)
		}
		tok, err := again.OTP.TokenBySerial(ctx, "R0001", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := again.OTP.Verify(ctx, tok, "755224"); err != nil { // RFC 4226 counter 0
			t.Fatalf("a moved seed: %v", err)
		}
		third := build(t, db, cfg, Deps{HSM: h})
		if third.OTPRewrap.Total() != 0 || third.OTPRewrapErr != nil {
			t.Fatalf("third Build moved %+v, %v; want nothing", third.OTPRewrap, third.OTPRewrapErr)
		}
	})
}
