package oathtoken

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"testing"
	"time"

	devotp "github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
)

func file(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := pskc.NewWriter(&b, pskc.WriterOptions{Password: []byte("pw"), Iterations: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*pskc.Key{
		{ID: "1", Serial: "H1", Params: devotp.Params{Kind: devotp.KindHOTP, Hash: crypto.SHA1, Digits: 6}, Secret: []byte("12345678901234567890")},
		{ID: "1", Serial: "T1", Params: devotp.Params{Kind: devotp.KindTOTP, Hash: crypto.SHA256, Digits: 8, Period: 30 * time.Second}, Secret: []byte("12345678901234567890123456789012")},
		{ID: "1", Serial: "O1", Params: devotp.Params{Kind: devotp.KindOCRA, Suite: "OCRA-1:HOTP-SHA1-6:QN08", Hash: crypto.SHA1, Digits: 6}, Secret: []byte("12345678901234567890")},
	} {
		if err := w.Add(k); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	return b.Bytes()
}

func TestSimulatedTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := file(t)
	o := pskc.Options{Password: []byte("pw")}
	h, err := Load(bytes.NewReader(data), o, "H1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"755224", "287082", "359152"} { // RFC 4226 appendix D
		if got, _, err := h.Press(ctx, time.Now()); err != nil || got != want {
			t.Fatalf("Press = %q, %v; want %q", got, err, want)
		}
	}
	tt, _ := Load(bytes.NewReader(data), o, "T1")
	code, left, err := tt.Press(ctx, time.Unix(1111111109, 0))
	if err != nil || code != "68084774" || left != time.Second { // RFC 6238 appendix B
		t.Fatalf("TOTP = %q, %v, %v", code, left, err)
	}
	oc, _ := Load(bytes.NewReader(data), o, "O1")
	if r, err := oc.Respond(ctx, "00000000", time.Now()); err != nil || r != "237653" { // RFC 6287 C.1
		t.Fatalf("OCRA = %q, %v", r, err)
	}
	if _, err := Load(bytes.NewReader(data), o, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown serial: %v", err)
	}
}
