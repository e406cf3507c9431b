package atm

import (
	"crypto/aes"
	"crypto/rand"
	"errors"
	"fmt"
)

// ErrPINBlock means a PIN, PAN or PIN block is malformed. It never carries
// the PIN itself.
var ErrPINBlock = errors.New("atm: malformed PIN block")

// EncipherPINBlock4 builds an ISO 9564-1 format 4 PIN block for pin bound to
// pan under the AES key (PROTOCOL.md §6.5). The PIN pad does this; the host
// side only needs DecipherPINBlock4 inside its HSM boundary.
func EncipherPINBlock4(key []byte, pin, pan string) ([16]byte, error) {
	var out [16]byte
	c, err := aes.NewCipher(key)
	if err != nil {
		return out, fmt.Errorf("PIN key: %w", err)
	}
	if len(pin) < 4 || len(pin) > 12 || !digits(pin) {
		return out, fmt.Errorf("PIN length or digits: %w", ErrPINBlock)
	}
	panField, err := panField4(pan)
	if err != nil {
		return out, err
	}
	var nib [32]byte
	nib[0], nib[1] = 4, byte(len(pin))
	for i := 2; i < 16; i++ {
		nib[i] = 0xA
		if i-2 < len(pin) {
			nib[i] = pin[i-2] - '0'
		}
	}
	var field [16]byte
	for i := range 8 {
		field[i] = nib[2*i]<<4 | nib[2*i+1]
	}
	if _, err := rand.Read(field[8:]); err != nil {
		return out, err
	}
	c.Encrypt(out[:], field[:])
	for i := range out {
		out[i] ^= panField[i]
	}
	c.Encrypt(out[:], out[:])
	return out, nil
}

// DecipherPINBlock4 recovers the PIN from a format 4 block.
func DecipherPINBlock4(key []byte, block [16]byte, pan string) (string, error) {
	c, err := aes.NewCipher(key)
	if err != nil {
		return "", fmt.Errorf("PIN key: %w", err)
	}
	panField, err := panField4(pan)
	if err != nil {
		return "", err
	}
	var f [16]byte
	c.Decrypt(f[:], block[:])
	for i := range f {
		f[i] ^= panField[i]
	}
	c.Decrypt(f[:], f[:])
	pin, err := ParsePINField4(f)
	clear(f[:])
	return string(pin), err
}

// PANField4 is the format 4 PAN field of pan (12–19 digits): what an HSM
// XORs between its two decryptions of a block (PROTOCOL.md §6.5).
func PANField4(pan string) ([16]byte, error) { return panField4(pan) }

// ParsePINField4 reads the PIN digits out of a deciphered format 4 plain
// PIN field. The caller clears both when done; the error never carries a
// digit.
func ParsePINField4(f [16]byte) ([]byte, error) {
	nib := func(i int) byte { return f[i/2] >> (4 * (1 - i%2)) & 0xF }
	n := int(nib(1))
	if nib(0) != 4 || n < 4 || n > 12 {
		return nil, ErrPINBlock
	}
	pin := make([]byte, n)
	for i := range n {
		d := nib(2 + i)
		if d > 9 {
			clear(pin)
			return nil, ErrPINBlock
		}
		pin[i] = '0' + d
	}
	for i := 2 + n; i < 16; i++ {
		if nib(i) != 0xA {
			clear(pin)
			return nil, ErrPINBlock
		}
	}
	return pin, nil
}

func panField4(pan string) ([16]byte, error) {
	var f [16]byte
	if len(pan) < 12 || len(pan) > 19 || !digits(pan) {
		return f, fmt.Errorf("PAN length or digits: %w", ErrPINBlock)
	}
	nib := append([]byte{byte(len(pan) - 12)}, []byte(pan)...)
	for i := 1; i < len(nib); i++ {
		nib[i] -= '0'
	}
	for i, v := range nib {
		f[i/2] |= v << (4 * (1 - i%2))
	}
	return f, nil
}

func digits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
