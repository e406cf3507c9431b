package pkcs11uri

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func u64(n uint64) *uint64 { return &n }

func TestParseValid(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   string
		want URI
	}{
		// RFC 7512 section 3.3 examples (those that egate accepts).
		{"rfc empty", "pkcs11:", URI{}},
		{"rfc object type", "pkcs11:object=my-pubkey;type=public", URI{Object: "my-pubkey", Type: "public"}},
		{"rfc certificate with escapes", "pkcs11:object=my-key;type=private?pin-source=file:/etc/token", URI{Object: "my-key", Type: "private", PINSource: "file:/etc/token"}},
		{"rfc token with percent", "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin",
			URI{Token: "The Software PKCS#11 Softtoken", Manufacturer: "Snake Oil, Inc.", Model: "1.0", Object: "my-certificate", Type: "cert", ID: []byte{0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91}, PINSource: "file:/etc/token_pin"}},
		{"rfc module-name", "pkcs11:object=my-sign-key;type=private?module-name=mypkcs11", URI{Object: "my-sign-key", Type: "private", ModuleName: "mypkcs11"}},
		{"rfc module-path", "pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1", URI{Object: "my-sign-key", Type: "private", ModulePath: "/mnt/libmypkcs11.so.1"}},
		{"rfc token percent in value", "pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.", URI{Token: "Software PKCS#11 softtoken", Manufacturer: "Snake Oil, Inc."}},
		{"rfc library version", "pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;id=%01%02%03%Ba%dd%Ca%fe%04%05%06",
			URI{Token: "My token% created by Joe", LibraryVersion: "3", ID: []byte{1, 2, 3, 0xba, 0xdd, 0xca, 0xfe, 4, 5, 6}}},
		{"rfc utf8", "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert", URI{Token: "A name with a substring %;", Object: "my-certificate", Type: "cert"}},
		{"rfc acute", "pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-app%20key", URI{Token: "Name with a small A with acute: á", Object: "my-app key"}},
		{"rfc library", "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token;library-version=1.23", URI{LibraryManufacturer: "Snake Oil, Inc.", LibraryDescription: "Soft Token", LibraryVersion: "1.23"}},
		{"rfc slot", "pkcs11:slot-description=Sun%20Metaslot", URI{SlotDescription: "Sun Metaslot"}},
		{"slot id and manufacturer", "pkcs11:slot-manufacturer=ACME;slot-id=7;token=t", URI{SlotManufacturer: "ACME", SlotID: u64(7), Token: "t"}},
		{"reserved characters unescaped", "pkcs11:token=:[]@!$'()*+,=&?module-path=:[]@!$'()*+,=/?|", URI{Token: ":[]@!$'()*+,=&", ModulePath: ":[]@!$'()*+,=/?|"}},
		{"egate key", "pkcs11:token=egate;object=egate-passport-signing;id=%01%AB;type=private", URI{Token: "egate", Object: "egate-passport-signing", ID: []byte{1, 0xab}, Type: "private"}},
		{"env pin source", "pkcs11:token=egate?pin-source=env:EGATE_HSM_PIN", URI{Token: "egate", PINSource: "env:EGATE_HSM_PIN"}},
		{"vendor attributes", "pkcs11:token=t;x-vendor=a%20b?x-q=c", URI{Token: "t", VendorPath: map[string]string{"x-vendor": "a b"}, VendorQuery: map[string]string{"x-q": "c"}}},
		{"upper case scheme", "PKCS11:token=t", URI{Token: "t"}},
		{"empty id", "pkcs11:id=", URI{ID: []byte{}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("Parse(%q) =\n %+v\nwant\n %+v", tc.in, *got, tc.want)
			}
			again, err := Parse(got.String())
			if err != nil {
				t.Fatalf("Parse(String()=%q): %v", got.String(), err)
			}
			if !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip through %q: %+v, want %+v", got.String(), *again, *got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, wantInMsg string
	}{
		{"wrong scheme", "pkcs12:token=a", `must start with "pkcs11:"`},
		{"no scheme", "token=a", `must start with "pkcs11:"`},
		{"empty string", "", `must start with "pkcs11:"`},
		{"pin-value refused", "pkcs11:token=a?pin-value=123456", "never accepted inline"},
		{"unknown attribute", "pkcs11:objcet=a", `"objcet": unknown attribute`},
		{"rfc vendor without x- prefix", "pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a?pin-source=file:/etc/token&vendor-bbb=value-b", `"vendor-aaa": unknown attribute`},
		{"duplicate", "pkcs11:token=a;token=b", "more than once"},
		{"no equals", "pkcs11:token", `without "="`},
		{"empty attr", "pkcs11:token=a;;object=b", "empty attribute"},
		{"trailing separator", "pkcs11:token=a;", "empty attribute"},
		{"bad escape", "pkcs11:object=%zz", "bad percent escape"},
		{"truncated escape", "pkcs11:object=ab%4", "truncated percent escape"},
		{"space unescaped", "pkcs11:object=a b", "must be percent-encoded"},
		{"slash in path", "pkcs11:object=a/b", "must be percent-encoded"},
		{"ampersand in query", "pkcs11:?module-name=a&&", "empty attribute"},
		{"bad type", "pkcs11:type=secret", "must be one of"},
		{"bad slot id", "pkcs11:slot-id=abc", "decimal number"},
		{"huge slot id", "pkcs11:slot-id=99999999999999999999999", "out of range"},
		{"bad library version", "pkcs11:library-version=1.", "major.minor"},
		{"query attr in path", "pkcs11:pin-source=file:/x", "query attribute"},
		{"path attr in query", "pkcs11:?token=a", "path attribute"},
		{"empty query", "pkcs11:token=a?", "empty query"},
		{"empty pin-source", "pkcs11:?pin-source=", "is empty"},
		{"bad name char", "pkcs11:to.ken=a", "character outside"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u, err := Parse(tc.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tc.in, u)
			}
			if !errors.Is(err, ErrBadURI) {
				t.Errorf("error %v is not ErrBadURI", err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("error %v is not *Error", err)
			}
			if !strings.Contains(err.Error(), tc.wantInMsg) {
				t.Errorf("error %q does not say %q", err, tc.wantInMsg)
			}
		})
	}
}

func TestPINValueNeverEchoed(t *testing.T) {
	t.Parallel()
	_, err := Parse("pkcs11:token=a?pin-value=s3cr3t-pin")
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error %v must exist and not contain the PIN", err)
	}
}

func TestStringCanonical(t *testing.T) {
	t.Parallel()
	u := &URI{Token: "egate bank", Object: "k;1", ID: []byte{0, 0xff}, Type: TypePrivate, PINSource: "file:/etc/egate/pin", ModulePath: "/usr/lib/softhsm/libsofthsm2.so"}
	want := "pkcs11:token=egate%20bank;object=k%3B1;type=private;id=%00%FF?pin-source=file:/etc/egate/pin&module-path=/usr/lib/softhsm/libsofthsm2.so"
	if got := u.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"pkcs11:", "pkcs11:token=a;object=b;id=%01;type=private", "pkcs11:token=:[]@!$'()*+,=&?module-path=/a/b|c",
		"pkcs11:slot-id=3;library-version=1.2?pin-source=env:X&x-a=b", "pkcs11:object=%zz", "pkcs11:id=%0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrBadURI) {
				t.Fatalf("error %v is not ErrBadURI", err)
			}
			return
		}
		out := u.String()
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its String %q does not parse: %v", s, out, err)
		}
		if !reflect.DeepEqual(u, again) {
			t.Fatalf("round trip of %q through %q: %+v != %+v", s, out, *u, *again)
		}
		if again.String() != out {
			t.Fatalf("String not canonical: %q then %q", out, again.String())
		}
		if bytes.Contains([]byte(out), []byte("pin-value")) && !strings.Contains(s, "pin-value") {
			t.Fatalf("pin-value invented")
		}
	})
}
