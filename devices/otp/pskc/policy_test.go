package pskc

import (
	"bytes"
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/devices/otp"
)

// TestPolicies: what a vendor file says beyond the seed is read or the file
// is refused with a line naming the key and the reason.
func TestPolicies(t *testing.T) {
	t.Parallel()
	secret := bytes.Repeat([]byte{9}, 20)
	totp := func() *Key {
		return &Key{ID: "t1", Serial: "T1", Params: otp.Params{Kind: otp.KindTOTP, Hash: crypto.SHA1, Digits: 6, Period: 30 * time.Second}, Secret: append([]byte(nil), secret...)}
	}
	doc := func(mod func(k *Key)) string {
		k := totp()
		mod(k)
		return string(writeFile(t, WriterOptions{}, []*Key{k}))
	}
	ocra := string(writeFile(t, WriterOptions{}, []*Key{{ID: "o1", Serial: "O1", Params: otp.Params{Kind: otp.KindOCRA, Suite: "OCRA-1:HOTP-SHA1-6:QN08", Hash: crypto.SHA1, Digits: 6}, Secret: secret}}))
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		doc     string
		want    error  // nil: read
		wantMsg string // in the error
		check   func(t *testing.T, k *Key)
	}{
		{name: "TimeDrift is read", doc: doc(func(k *Key) { k.TimeDrift = -3 }), check: func(t *testing.T, k *Key) {
			if k.TimeDrift != -3 {
				t.Errorf("TimeDrift = %d", k.TimeDrift)
			}
		}},
		{name: "TimeDrift out of range", doc: doc(func(k *Key) { k.TimeDrift = maxTimeDrift + 1 }), want: ErrMalformed, wantMsg: "TimeDrift"},
		{name: "StartDate is read", doc: doc(func(k *Key) { k.StartDate = start }), check: func(t *testing.T, k *Key) {
			if !k.StartDate.Equal(start) {
				t.Errorf("StartDate = %v", k.StartDate)
			}
		}},
		{name: "StartDate after ExpiryDate", doc: doc(func(k *Key) { k.StartDate, k.ExpiryDate = start, start.Add(-time.Hour) }), want: ErrMalformed, wantMsg: "StartDate"},
		{name: "PIN appended", doc: doc(func(k *Key) { k.PIN = &PINPolicy{Mode: PINAppend, KeyID: "p1", Min: 4, Max: 6} }), check: func(t *testing.T, k *Key) {
			if k.PIN == nil || *k.PIN != (PINPolicy{Mode: PINAppend, KeyID: "p1", Min: 4, Max: 6}) {
				t.Errorf("PIN = %+v", k.PIN)
			}
		}},
		{name: "PIN prepended", doc: doc(func(k *Key) { k.PIN = &PINPolicy{Mode: PINPrepend, KeyID: "p1", Min: 4, Max: 4} }), check: func(t *testing.T, k *Key) {
			if k.PIN == nil || k.PIN.Mode != PINPrepend {
				t.Errorf("PIN = %+v", k.PIN)
			}
		}},
		{name: "PIN local", doc: doc(func(k *Key) { k.PIN = &PINPolicy{Mode: "Local", KeyID: "p1", Min: 4, Max: 4} }), check: func(t *testing.T, k *Key) {
			if k.PIN != nil {
				t.Errorf("a Local PIN policy gave %+v", k.PIN)
			}
		}},
		{name: "PIN algorithmic", doc: doc(func(k *Key) { k.PIN = &PINPolicy{Mode: "Algorithmic", KeyID: "p1", Min: 4, Max: 4} }), want: ErrUnsupported, wantMsg: "Algorithmic"},
		{name: "PIN mode missing", doc: strings.Replace(doc(func(k *Key) { k.PIN = &PINPolicy{Mode: PINAppend, KeyID: "p1", Min: 4, Max: 4} }), ` PINUsageMode="Append"`, "", 1), want: ErrMalformed, wantMsg: "PINUsageMode"},
		{name: "PIN append without PIN key", doc: doc(func(k *Key) { k.PIN = &PINPolicy{Mode: PINAppend, Min: 4, Max: 4} }), want: ErrMalformed, wantMsg: "PINKeyId"},
		{name: "PIN lengths reversed", doc: doc(func(k *Key) { k.PIN = &PINPolicy{Mode: PINAppend, KeyID: "p1", Min: 6, Max: 4} }), want: ErrMalformed, wantMsg: "MinLength"},
		{name: "PIN append on OCRA", doc: strings.Replace(ocra, "</Data>", `</Data><Policy><PINPolicy PINKeyId="p" PINUsageMode="Append"/></Policy>`, 1), want: ErrUnsupported, wantMsg: "OCRA"},
		{name: "OCRA-1 with a Suite element", doc: strings.Replace(ocra, AlgOCRA, "urn:ietf:params:xml:ns:keyprov:pskc#OCRA-1", 1), check: func(t *testing.T, k *Key) {
			if k.Params.Kind != otp.KindOCRA || k.Params.Suite != "OCRA-1:HOTP-SHA1-6:QN08" {
				t.Errorf("params = %+v", k.Params)
			}
		}},
		{name: "OCRA-1 without a suite", doc: strings.Replace(strings.Replace(ocra, AlgOCRA, "urn:ietf:params:xml:ns:keyprov:pskc#OCRA-1", 1), "<Suite>OCRA-1:HOTP-SHA1-6:QN08</Suite>", "", 1), want: ErrMalformed, wantMsg: "suite"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ks, _, err := readAll(strings.NewReader(tc.doc), Options{})
			if tc.want == nil {
				if err != nil || len(ks) != 1 {
					t.Fatalf("read %d keys, %v", len(ks), err)
				}
				tc.check(t, ks[0])
				return
			}
			var ee *EntryError
			if !errors.Is(err, tc.want) || !errors.As(err, &ee) || ee.Index != 1 || ee.KeyID == "" || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error = %v, want %v naming key package 1 and %q", err, tc.want, tc.wantMsg)
			}
		})
	}
}

// TestPINKeys: the PIN of a pskc:pin key reaches Options.PINKey (RFC 6030
// Figure 5) and is wiped after.
func TestPINKeys(t *testing.T) {
	t.Parallel()
	f, err := os.Open(filepath.Join("testdata", "rfc6030-figure5.pskcxml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []PINKey
	var seen []byte
	ks, rd, err := readAll(f, Options{PINKey: func(p PINKey) error {
		seen = p.Value
		p.Value = append([]byte(nil), p.Value...)
		got = append(got, p)
		return nil
	}})
	if err != nil || len(ks) != 1 || rd.SkippedPINKeys() != 1 {
		t.Fatalf("read %d keys, %d PIN keys, %v", len(ks), rd.SkippedPINKeys(), err)
	}
	if len(got) != 1 || got[0].ID != "123456781" || string(got[0].Value) != "1234" || got[0].Index != 2 || got[0].Serial != "987654321" {
		t.Fatalf("PIN keys = %+v", got)
	}
	if !bytes.Equal(seen, make([]byte, len(seen))) {
		t.Fatal("the PIN was not wiped after the callback")
	}
	if ks[0].PIN != nil {
		t.Fatalf("figure 5's Local policy gave %+v", ks[0].PIN)
	}
}

// TestKeyReferenceRefused: a key derived from a master key is refused with
// the reference named.
func TestKeyReferenceRefused(t *testing.T) {
	t.Parallel()
	f, err := os.Open(filepath.Join("testdata", "rfc6030-figure4.pskcxml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, _, err = readAll(f, Options{})
	var ee *EntryError
	if !errors.Is(err, ErrUnsupported) || !errors.As(err, &ee) || ee.KeyID != "12345678" || !strings.Contains(err.Error(), `"MasterKeyLabel"`) {
		t.Fatalf("error = %v", err)
	}
}
