package pkcs11token

import (
	"bytes"
	"errors"
	"testing"
)

func TestProofRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		p    Proof
	}{
		{"plain", Proof{CertDER: []byte{0x30, 1, 2}, Sig: []byte{9, 9}}},
		{"confirmed", Proof{Confirmed: true, CertDER: bytes.Repeat([]byte{1}, MaxCertLen), Sig: bytes.Repeat([]byte{2}, MaxSigLen)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.p.Encode()
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeProof(b)
			if err != nil || got.Confirmed != tc.p.Confirmed || !bytes.Equal(got.CertDER, tc.p.CertDER) || !bytes.Equal(got.Sig, tc.p.Sig) {
				t.Fatalf("round trip: %+v, %v", got, err)
			}
		})
	}
}

func TestDecodeProofRefuses(t *testing.T) {
	good, _ := Proof{CertDER: []byte{1, 2, 3}, Sig: []byte{4, 5}}.Encode()
	cases := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"wrong magic", append([]byte("EGP2"), good[4:]...)},
		{"unknown flag", append(append([]byte{}, good[:4]...), append([]byte{0x02}, good[5:]...)...)},
		{"truncated cert", good[:8]},
		{"truncated signature", good[:len(good)-1]},
		{"trailing byte", append(append([]byte{}, good...), 0)},
		{"zero cert length", []byte{'E', 'G', 'P', '1', 0, 0, 0, 0, 1, 1}},
		{"cert too long", []byte{'E', 'G', 'P', '1', 0, 0x10, 0x01}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeProof(tc.in); !errors.Is(err, ErrBadProof) {
				t.Fatalf("DecodeProof = %v, want ErrBadProof", err)
			}
		})
	}
}

func FuzzProof(f *testing.F) {
	good, _ := Proof{Confirmed: true, CertDER: []byte{0x30, 0x03, 1, 2, 3}, Sig: []byte{0x30, 0x02, 1, 1}}.Encode()
	f.Add(good)
	f.Add([]byte("EGP1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeProof(b)
		if err != nil {
			if !errors.Is(err, ErrBadProof) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := p.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decode/encode not canonical: %x vs %x (%v)", b, again, err)
		}
	})
}
