package orders

import (
	"strings"
	"testing"
)

// FuzzParseQR: any scanned text is either refused as ErrBadQR or parses
// into a code that prints back to the same text; never a panic.
func FuzzParseQR(f *testing.F) {
	for _, s := range []string{"EGQ1.abc.0.00112233445566778899aabbccddeeff", "EGQ1.abc.12.", "EGQ1...", "EGQ1.a.-1.00", "https://x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := parseQR(s)
		if err != nil {
			if err != ErrBadQR {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if q.ref == "" || q.t < 0 || len(q.mac) != 16 || !strings.Contains(s, q.ref) {
			t.Fatalf("%q parsed to %+v", s, q)
		}
	})
}

// FuzzParseLink: any link either parses with a ref and a token or is
// refused; never a panic.
func FuzzParseLink(f *testing.F) {
	for _, s := range []string{"egate://order?ref=a&token=b&server=http%3A%2F%2Fx", "egate://order?ref=a", "egate:order?ref=a&token=b", "%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLink(s)
		if err == nil && (l.Ref == "" || l.Token == "") {
			t.Fatalf("%q parsed to %+v", s, l)
		}
	})
}

// FuzzSplitSigned: what SplitSigned accepts joins back to the same bytes.
func FuzzSplitSigned(f *testing.F) {
	f.Add([]byte("egate login for P1\nChallenge: 00FF"))
	f.Add([]byte("x\nChallenge: "))
	f.Fuzz(func(t *testing.T, b []byte) {
		text, ch, ok := SplitSigned(b)
		if ok && string(SignedText(text, ch)) != string(b) {
			t.Fatalf("%q split to %q %x", b, text, ch)
		}
	})
}
