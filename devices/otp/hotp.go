package otp

import (
	"context"
	"crypto"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"strconv"
)

var pow10 = [...]uint32{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000}

// Truncate is RFC 4226 §5.3 dynamic truncation of an HMAC value to a decimal
// code of digits digits (4 to 10; 10 keeps the whole 31-bit value).
func Truncate(mac []byte, digits int) (string, error) {
	if digits < 4 || digits > 10 {
		return "", fmt.Errorf("%w: %d digits (want 4 to 10)", ErrUnsupported, digits)
	}
	if len(mac) < 20 {
		return "", fmt.Errorf("%w: HMAC of %d bytes", ErrInvalid, len(mac))
	}
	off := int(mac[len(mac)-1] & 0x0f)
	bin := binary.BigEndian.Uint32(mac[off:off+4]) & 0x7fffffff
	if digits < 10 {
		bin %= pow10[digits]
	}
	s := strconv.FormatUint(uint64(bin), 10)
	for len(s) < digits {
		s = "0" + s
	}
	return s, nil
}

// CounterMessage is the 8-byte big-endian moving factor HOTP MACs.
func CounterMessage(c uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], c)
	return b[:]
}

// HOTP computes the RFC 4226 code for counter c.
func HOTP(ctx context.Context, m MAC, h crypto.Hash, c uint64, digits int) (string, error) {
	codes, err := HOTPWindow(ctx, m, h, c, 1, digits)
	if err != nil {
		return "", err
	}
	return codes[0], nil
}

// HOTPWindow computes the codes for counters from, from+1, … from+n-1 with
// one call to m.
func HOTPWindow(ctx context.Context, m MAC, h crypto.Hash, from uint64, n, digits int) ([]string, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: window of %d", ErrInvalid, n)
	}
	if digits < 4 || digits > 10 {
		return nil, fmt.Errorf("%w: %d digits (want 4 to 10)", ErrUnsupported, digits)
	}
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = CounterMessage(from + uint64(i))
	}
	macs, err := m.MAC(ctx, h, msgs)
	if err != nil {
		return nil, fmt.Errorf("computing HOTP: %w", err)
	}
	if len(macs) != n {
		return nil, fmt.Errorf("computing HOTP: MAC returned %d values for %d messages", len(macs), n)
	}
	codes := make([]string, n)
	for i, mac := range macs {
		if codes[i], err = Truncate(mac, digits); err != nil {
			return nil, err
		}
	}
	return codes, nil
}

// Equal compares two codes in constant time.
func Equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// ValidCode reports whether s looks like a code of digits decimal digits.
func ValidCode(s string, digits int) bool {
	if len(s) != digits {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
