package passport

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters. The defaults are OWASP's
// minimum recommendation for argon2id (19 MiB, 2 passes, 1 lane).
type Argon2Params struct {
	MemoryKiB   uint32 `yaml:"memory-kib"`
	Iterations  uint32 `yaml:"iterations"`
	Parallelism uint8  `yaml:"parallelism"`
	SaltLen     int    `yaml:"salt-len"`
	KeyLen      int    `yaml:"key-len"`
}

// DefaultArgon2 is OWASP's argon2id minimum: m=19456 KiB, t=2, p=1.
var DefaultArgon2 = Argon2Params{MemoryKiB: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// Validate refuses parameters below OWASP's floor unless allowWeak is set
// (tests and benchmarks of the lockout logic use cheap parameters).
func (p Argon2Params) Validate(allowWeak bool) error {
	if p.MemoryKiB == 0 || p.Iterations == 0 || p.Parallelism == 0 {
		return errors.New("argon2: memory-kib, iterations and parallelism must be positive")
	}
	if p.SaltLen < 16 || p.KeyLen < 16 {
		return errors.New("argon2: salt-len and key-len must be at least 16")
	}
	if !allowWeak && (p.MemoryKiB < DefaultArgon2.MemoryKiB || p.Iterations < DefaultArgon2.Iterations) {
		return fmt.Errorf("argon2: parameters below OWASP minimum (m=%d KiB, t=%d)", DefaultArgon2.MemoryKiB, DefaultArgon2.Iterations)
	}
	return nil
}

// ErrBadHash is returned for a stored hash that is not a well-formed argon2id
// PHC string.
var ErrBadHash = errors.New("stored password hash is malformed")

// HashPassword returns the PHC string
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt b64>$<key b64>.
func HashPassword(p Argon2Params, password string) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("reading salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(p.KeyLen))
	return encodePHC(p, salt, key), nil
}

func encodePHC(p Argon2Params, salt, key []byte) string {
	b := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism, b.EncodeToString(salt), b.EncodeToString(key))
}

// phc is a parsed argon2id PHC string.
type phc struct {
	params Argon2Params
	salt   []byte
	key    []byte
}

func parsePHC(s string) (phc, error) {
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return phc{}, ErrBadHash
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return phc{}, ErrBadHash
	}
	var out phc
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return phc{}, ErrBadHash
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return phc{}, ErrBadHash
		}
		switch k {
		case "m":
			out.params.MemoryKiB = uint32(n)
		case "t":
			out.params.Iterations = uint32(n)
		case "p":
			if n > 255 {
				return phc{}, ErrBadHash
			}
			out.params.Parallelism = uint8(n)
		default:
			return phc{}, ErrBadHash
		}
	}
	if out.params.MemoryKiB == 0 || out.params.Iterations == 0 || out.params.Parallelism == 0 {
		return phc{}, ErrBadHash
	}
	// Refuse absurd costs from a tampered row rather than exhaust memory.
	if out.params.MemoryKiB > 4<<20 || out.params.Iterations > 64 {
		return phc{}, ErrBadHash
	}
	var err error
	if out.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(out.salt) < 8 {
		return phc{}, ErrBadHash
	}
	if out.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(out.key) < 16 || len(out.key) > 128 {
		return phc{}, ErrBadHash
	}
	out.params.SaltLen, out.params.KeyLen = len(out.salt), len(out.key)
	return out, nil
}

// VerifyPassword reports whether password matches the PHC string, in
// constant time over the derived key. needsRehash is true when the stored
// parameters differ from want (the caller may store a fresh hash).
func VerifyPassword(stored, password string, want Argon2Params) (ok, needsRehash bool, err error) {
	h, err := parsePHC(stored)
	if err != nil {
		return false, false, err
	}
	key := argon2.IDKey([]byte(password), h.salt, h.params.Iterations, h.params.MemoryKiB, h.params.Parallelism, uint32(len(h.key)))
	ok = subtle.ConstantTimeCompare(key, h.key) == 1
	needsRehash = h.params.MemoryKiB != want.MemoryKiB || h.params.Iterations != want.Iterations || h.params.Parallelism != want.Parallelism || len(h.key) != want.KeyLen
	return ok, needsRehash, nil
}
