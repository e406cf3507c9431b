package pskc

import (
	"bytes"
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/devices/otp"
)

func readAll(r io.Reader, o Options) ([]*Key, *Reader, error) {
	rd := NewReader(r, o)
	var keys []*Key
	for {
		k, err := rd.Next()
		if err == io.EOF {
			return keys, rd, nil
		}
		if err != nil {
			return keys, rd, err
		}
		keys = append(keys, k)
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestRFC6030Figures(t *testing.T) {
	t.Parallel()
	rfcSecret := []byte("12345678901234567890")
	cases := []struct {
		file      string
		opts      Options
		wantErr   error
		wantIndex int    // entry named by the error
		wantID    string // key id named by the error
		keys      int
		pinSkips  int
		check     func(t *testing.T, ks []*Key)
	}{
		{file: "rfc6030-figure2.pskcxml", wantErr: ErrWeakSecret, wantIndex: 1, wantID: "12345678"},
		{file: "rfc6030-figure2.pskcxml", opts: Options{MinSecretBytes: 1}, keys: 1, check: func(t *testing.T, ks []*Key) {
			if string(ks[0].Secret) != "1234" || ks[0].Serial != "12345678" || ks[0].Params.Digits != 6 {
				t.Errorf("figure 2 key = %+v", ks[0])
			}
		}},
		{file: "rfc6030-figure3.pskcxml", keys: 1, check: func(t *testing.T, ks []*Key) {
			k := ks[0]
			if !bytes.Equal(k.Secret, rfcSecret) || k.Serial != "987654321" || k.ID != "12345678" || k.Params.Digits != 8 || k.Params.Kind != otp.KindHOTP || k.UserID != "UID=jsmith,DC=example-bank,DC=net" {
				t.Errorf("figure 3 key = %+v", k)
			}
			// RFC 4226 appendix D, counter 0, eight digits.
			code, err := otp.HOTP(context.Background(), otp.SoftwareMAC{Key: k.Secret}, k.Params.Hash, k.Counter, k.Params.Digits)
			if err != nil || code != "84755224" {
				t.Errorf("HOTP = %q, %v", code, err)
			}
		}},
		{file: "rfc6030-figure4.pskcxml", wantErr: ErrUnsupported, wantIndex: 1, wantID: "12345678"},
		{file: "rfc6030-figure5.pskcxml", keys: 1, pinSkips: 1},
		{file: "rfc6030-figure6.pskcxml", wantErr: ErrNeedKey},
		{file: "rfc6030-figure6.pskcxml", opts: Options{Key: mustHex("12345678901234567890123456789012")}, keys: 1, check: func(t *testing.T, ks []*Key) {
			if !bytes.Equal(ks[0].Secret, rfcSecret) || ks[0].Params.Digits != 8 {
				t.Errorf("figure 6 key = %+v", ks[0])
			}
		}},
		{file: "rfc6030-figure6.pskcxml", opts: Options{Key: mustHex("12345678901234567890123456789013")}, wantErr: errWrongKey},
		{file: "rfc6030-figure6.pskcxml", opts: Options{Key: mustHex("1234567890123456789012345678901234567890123456789012345678901234")}, wantErr: ErrDecrypt},
		{file: "rfc6030-figure7.pskcxml", wantErr: ErrNeedKey},
		{file: "rfc6030-figure7.pskcxml", opts: Options{Password: []byte("qwerty")}, keys: 1, check: func(t *testing.T, ks []*Key) {
			if !bytes.Equal(ks[0].Secret, rfcSecret) || ks[0].ID != "123456" || ks[0].Serial != "987654321" {
				t.Errorf("figure 7 key = %+v", ks[0])
			}
		}},
		{file: "rfc6030-figure7.pskcxml", opts: Options{Password: []byte("qwertz")}, wantErr: errWrongKey},
		{file: "rfc6030-figure10.pskcxml", keys: 4, check: func(t *testing.T, ks []*Key) {
			want := []string{"654321/1", "123456/2", "9999999/3", "9999999/4"}
			for i, k := range ks {
				if got := k.Serial + "/" + k.ID; got != want[i] || k.Index != i+1 {
					t.Errorf("key %d = %s (index %d), want %s", i, got, k.Index, want[i])
				}
			}
			if !ks[2].StartDate.Equal(time.Date(2006, 3, 1, 0, 0, 0, 0, time.UTC)) || !ks[2].ExpiryDate.Equal(time.Date(2006, 3, 31, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("key 3 dates %v %v", ks[2].StartDate, ks[2].ExpiryDate)
			}
		}},
	}
	for _, tc := range cases {
		name := tc.file
		if tc.wantErr != nil {
			name += "/" + tc.wantErr.Error()
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f, err := os.Open(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ks, rd, err := readAll(f, tc.opts)
			if tc.wantErr != nil {
				if !errorsIs(err, tc.wantErr) {
					t.Fatalf("error = %v, want %v", err, tc.wantErr)
				}
				if tc.wantIndex > 0 {
					var ee *EntryError
					if !errors.As(err, &ee) || ee.Index != tc.wantIndex || ee.KeyID != tc.wantID {
						t.Fatalf("error %v does not name entry %d key %q", err, tc.wantIndex, tc.wantID)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ks) != tc.keys || rd.SkippedPINKeys() != tc.pinSkips {
				t.Fatalf("got %d keys, %d PIN keys skipped; want %d, %d", len(ks), rd.SkippedPINKeys(), tc.keys, tc.pinSkips)
			}
			if tc.check != nil {
				tc.check(t, ks)
			}
		})
	}
}

// errWrongKey matches either symptom of a wrong key: bad padding or a MAC
// that does not match (a wrong key gives valid padding once in 16).
var errWrongKey = errors.New("wrong key")

func errorsIs(err, target error) bool {
	if target == errWrongKey {
		return errors.Is(err, ErrDecrypt) || errors.Is(err, ErrMAC)
	}
	return errors.Is(err, target)
}

func sampleKeys(n int) []*Key {
	var ks []*Key
	for i := range n {
		secret := bytes.Repeat([]byte{byte(i + 1)}, 20+i%3*6)
		p := otp.Params{Kind: otp.KindHOTP, Hash: crypto.SHA1, Digits: 6}
		switch i % 3 {
		case 1:
			p = otp.Params{Kind: otp.KindTOTP, Hash: crypto.SHA256, Digits: 8, Period: 60 * time.Second}
		case 2:
			p = otp.Params{Kind: otp.KindOCRA, Suite: "OCRA-1:HOTP-SHA256-8:QN16-T1M", Hash: crypto.SHA256, Digits: 8}
		}
		ks = append(ks, &Key{ID: fmt.Sprintf("k%d", i), Serial: fmt.Sprintf("SN%06d", i), Manufacturer: "Acme & Co", Issuer: "egate", Params: p, Secret: secret, Counter: uint64(i)})
	}
	return ks
}

func writeFile(t testing.TB, o WriterOptions, ks []*Key) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		if err := w.Add(k); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	k128 := mustHex("000102030405060708090a0b0c0d0e0f")
	k256 := bytes.Repeat([]byte{7}, 32)
	cases := []struct {
		name string
		w    WriterOptions
		r    Options
	}{
		{"plain", WriterOptions{}, Options{}},
		{"aes128-cbc hmac-sha1", WriterOptions{Key: k128, KeyName: "transport", MACHash: crypto.SHA1}, Options{Key: k128}},
		{"aes128-cbc hmac-sha256", WriterOptions{Key: k128, KeyName: "transport"}, Options{Key: k128}},
		{"aes256-cbc hmac-sha256", WriterOptions{Key: k256, KeyName: "transport"}, Options{Key: k256}},
		{"pbkdf2", WriterOptions{Password: []byte("correct horse"), Iterations: 2000}, Options{Password: []byte("correct horse")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := sampleKeys(6)
			data := writeFile(t, tc.w, want)
			got, _, err := readAll(bytes.NewReader(data), tc.r)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("read %d keys, wrote %d", len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				if !bytes.Equal(g.Secret, w.Secret) || g.ID != w.ID || g.Serial != w.Serial || g.Params != w.Params || g.Manufacturer != w.Manufacturer || g.Index != i+1 {
					t.Errorf("key %d: got %+v, want %+v", i, g, w)
				}
				if w.Params.Kind != otp.KindTOTP && g.Counter != w.Counter {
					t.Errorf("key %d counter %d, want %d", i, g.Counter, w.Counter)
				}
			}
		})
	}
}

func TestBadFiles(t *testing.T) {
	t.Parallel()
	key := mustHex("000102030405060708090a0b0c0d0e0f")
	enc := string(writeFile(t, WriterOptions{Key: key, KeyName: "k"}, sampleKeys(5)))
	plain := string(writeFile(t, WriterOptions{}, sampleKeys(5)))
	// Flip one character inside the third key's cipher value.
	third := strings.Index(enc, `Key Id="k2"`)
	cv := third + strings.Index(enc[third:], "<xenc:CipherValue>") + len("<xenc:CipherValue>") + 30
	// Always another base64 letter: the IV is random, so a bit flip could
	// give a character outside the alphabet and test the decoder instead.
	repl := "A"
	if enc[cv] == 'A' {
		repl = "B"
	}
	flipped := enc[:cv] + repl + enc[cv+1:]
	cases := []struct {
		name  string
		doc   string
		opts  Options
		want  error
		index int
		keyID string
	}{
		{name: "empty", doc: "", want: ErrMalformed},
		{name: "not xml", doc: "hello, world", want: ErrMalformed},
		{name: "wrong root", doc: `<Foo xmlns="urn:ietf:params:xml:ns:keyprov:pskc" Version="1.0"/>`, want: ErrMalformed},
		{name: "old draft namespace", doc: `<KeyContainer xmlns="urn:ietf:params:xml:ns:keyprov:pskc:1.0" Version="1.0"></KeyContainer>`, want: ErrUnsupported},
		{name: "wrong version", doc: `<KeyContainer xmlns="urn:ietf:params:xml:ns:keyprov:pskc" Version="2.0"></KeyContainer>`, want: ErrUnsupported},
		{name: "truncated in the middle", doc: plain[:len(plain)*3/5], want: ErrMalformed, index: 3},
		{name: "truncated before the end tag", doc: strings.TrimSuffix(plain, "</KeyContainer>\n"), want: ErrMalformed},
		{name: "garbage after the container", doc: plain + "<x/>", want: ErrMalformed},
		{name: "altered ciphertext", doc: flipped, opts: Options{Key: key}, want: ErrMAC, index: 3, keyID: "k2"},
		{name: "wrong key", doc: enc, opts: Options{Key: mustHex("ff0102030405060708090a0b0c0d0e0f")}, want: errWrongKey},
		{name: "no key", doc: enc, want: ErrNeedKey},
		{name: "unsupported algorithm", doc: strings.Replace(plain, AlgTOTP, "urn:ietf:params:xml:ns:keyprov:pskc:securid-aes", 1), want: ErrUnsupported, index: 2, keyID: "k1"},
		{name: "bad counter", doc: strings.Replace(plain, "<Counter><PlainValue>3</PlainValue>", "<Counter><PlainValue>three</PlainValue>", 1), want: ErrMalformed, index: 4, keyID: "k3"},
		{name: "bad base64", doc: strings.Replace(plain, "<PlainValue>AQEBAQEBAQEBAQEBAQEBAQEBAQE=", "<PlainValue>!!!!", 1), want: ErrMalformed, index: 1, keyID: "k0"},
		{name: "bad OCRA suite", doc: strings.Replace(plain, "OCRA-1:HOTP-SHA256-8:QN16-T1M", "OCRA-1:HOTP-MD5-8:QN16", 1), want: otp.ErrUnsupported, index: 3, keyID: "k2"},
		{name: "alphanumeric response", doc: strings.Replace(plain, `Encoding="DECIMAL"`, `Encoding="ALPHANUMERIC"`, 1), want: ErrUnsupported, index: 1, keyID: "k0"},
		{name: "unsupported cipher", doc: strings.ReplaceAll(enc, "xmlenc#aes128-cbc", "xmlenc#tripledes-cbc"), opts: Options{Key: key}, want: ErrUnsupported},
		{name: "two keys in a package", doc: strings.Replace(plain, "</Key></KeyPackage>", `</Key><Key Id="x" Algorithm="`+AlgHOTP+`"/></KeyPackage>`, 1), want: ErrMalformed, index: 1, keyID: "k0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := readAll(strings.NewReader(tc.doc), tc.opts)
			if !errorsIs(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
			if tc.index > 0 {
				var ee *EntryError
				if !errors.As(err, &ee) || ee.Index != tc.index || (tc.keyID != "" && ee.KeyID != tc.keyID) {
					t.Fatalf("error %q does not name entry %d (key %q)", err, tc.index, tc.keyID)
				}
			}
			if strings.Contains(err.Error(), "AQEBAQEB") {
				t.Fatalf("error leaks secret material: %v", err)
			}
		})
	}
}

func FuzzPSKC(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.pskcxml")
	for _, fn := range files {
		b, err := os.ReadFile(fn)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	key := mustHex("12345678901234567890123456789012")
	f.Add(writeFile(f, WriterOptions{Key: key, KeyName: "k"}, sampleKeys(3)))
	f.Add(writeFile(f, WriterOptions{}, sampleKeys(3)))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, _, err := readAll(bytes.NewReader(data), Options{Key: key, Password: []byte("qwerty"), MinSecretBytes: 1})
		for i, k := range ks {
			if k.Index < 1 || len(k.Secret) == 0 || len(k.Secret) > maxSecretBytes || k.Params.Validate() != nil {
				t.Fatalf("key %d returned without being valid: %+v", i, k)
			}
		}
		var ee *EntryError
		if errors.As(err, &ee) && ee.Index < 1 {
			t.Fatalf("entry error with index %d", ee.Index)
		}
	})
}
