package atm

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"errors"
	"testing"
)

func TestPINBlock4RoundTrip(t *testing.T) {
	t.Parallel()
	key, _ := hex.DecodeString("00112233445566778899aabbccddeeff")
	for _, tc := range []struct{ name, pin, pan string }{
		{"4 digits, 16-digit PAN", "1234", "6222021234567890"},
		{"12 digits, 19-digit PAN", "123456789012", "6222021234567890123"},
		{"6 digits, 12-digit PAN", "000000", "123456789012"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b1, err := EncipherPINBlock4(key, tc.pin, tc.pan)
			if err != nil {
				t.Fatal(err)
			}
			b2, _ := EncipherPINBlock4(key, tc.pin, tc.pan)
			if b1 == b2 {
				t.Fatal("two blocks for one PIN are equal: random fill missing")
			}
			// Independent check of the layout with crypto/aes directly.
			c, _ := aes.NewCipher(key)
			var x [16]byte
			c.Decrypt(x[:], b1[:])
			pf, _ := panField4(tc.pan)
			for i := range x {
				x[i] ^= pf[i]
			}
			c.Decrypt(x[:], x[:])
			if x[0]>>4 != 4 || int(x[0]&0xF) != len(tc.pin) {
				t.Fatalf("control/length nibbles %02x", x[0])
			}
			if pf[0]>>4 != byte(len(tc.pan)-12) {
				t.Fatalf("PAN field first nibble %x", pf[0]>>4)
			}
			got, err := DecipherPINBlock4(key, b1, tc.pan)
			if err != nil || got != tc.pin {
				t.Fatalf("deciphered %q, %v", got, err)
			}
			if got, err := DecipherPINBlock4(key, b1, "9"+tc.pan[1:]); err == nil && got == tc.pin {
				t.Fatal("block deciphered under a different PAN")
			}
		})
	}
	if _, err := EncipherPINBlock4(key, "12a4", "6222021234567890"); !errors.Is(err, ErrPINBlock) {
		t.Fatalf("non-digit PIN: %v", err)
	}
	if _, err := EncipherPINBlock4(key, "1234", "123"); !errors.Is(err, ErrPINBlock) || bytes.Contains([]byte(err.Error()), []byte("1234")) {
		t.Fatalf("short PAN: %v", err)
	}
}
