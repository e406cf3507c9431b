package passport

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

var cheap = Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

func TestHashVerify(t *testing.T) {
	t.Parallel()
	h, err := HashPassword(cheap, "Correct-Horse-9")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("not a PHC argon2id string: %s", h)
	}
	if strings.Contains(h, "Correct") {
		t.Fatal("hash contains the password")
	}
	for _, tc := range []struct {
		name   string
		pw     string
		wantOK bool
	}{
		{"right", "Correct-Horse-9", true},
		{"wrong", "Correct-Horse-8", false},
		{"empty", "", false},
		{"prefix", "Correct-Horse-", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := VerifyPassword(h, tc.pw, cheap)
			if err != nil || ok != tc.wantOK || rehash {
				t.Fatalf("VerifyPassword = %v, %v, %v; want %v", ok, rehash, err, tc.wantOK)
			}
		})
	}
	if _, rehash, _ := VerifyPassword(h, "x", DefaultArgon2); !rehash {
		t.Fatal("changed params should ask for a rehash")
	}
}

// TestPHCReference checks the encoding against a key derived independently
// by argon2.IDKey with the same salt: the PHC layout must carry exactly those
// parameters and bytes.
func TestPHCReference(t *testing.T) {
	t.Parallel()
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte("pw"), salt, 2, 19456, 1, 32)
	s := encodePHC(DefaultArgon2, salt, key)
	want := "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$"
	if !strings.HasPrefix(s, want) {
		t.Fatalf("got %s want prefix %s", s, want)
	}
	ok, _, err := VerifyPassword(s, "pw", DefaultArgon2)
	if err != nil || !ok {
		t.Fatalf("verify reference: %v %v", ok, err)
	}
}

func TestParsePHCMalformed(t *testing.T) {
	t.Parallel()
	good, _ := HashPassword(cheap, "x")
	parts := strings.Split(good, "$")
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"bcrypt", "$2a$10$abcdefghijklmnopqrstuv"},
		{"argon2i", strings.Replace(good, "argon2id", "argon2i", 1)},
		{"version", strings.Replace(good, "v=19", "v=16", 1)},
		{"zero memory", strings.Replace(good, "m=64", "m=0", 1)},
		{"huge memory", strings.Replace(good, "m=64", "m=99999999", 1)},
		{"unknown param", strings.Replace(good, "p=1", "x=1", 1)},
		{"bad salt", strings.Join([]string{"", parts[1], parts[2], parts[3], "!!", parts[5]}, "$")},
		{"short key", strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], "AAAA"}, "$")},
		{"extra field", good + "$x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := VerifyPassword(tc.in, "x", cheap); !errors.Is(err, ErrBadHash) {
				t.Fatalf("got %v, want ErrBadHash", err)
			}
		})
	}
}

func TestStrength(t *testing.T) {
	t.Parallel()
	pd := PersonalData{LoginName: "zhangwei", Mobile: "+86 138 1234 5678", Birthday: "1990-05-21"}
	for _, tc := range []struct {
		name string
		pw   string
		want []string // nil: accepted
	}{
		{"good", "Blue-Kite-47", nil},
		{"good unicode", "银行Secure-密码42", nil},
		{"short", "Ab1!", []string{ViolationTooShort}},
		{"too long", strings.Repeat("Ab1!", 40), []string{ViolationTooLong}},
		{"one class", "abcdefghijkl", []string{ViolationClasses}},
		{"login name", "ZhangWei-2024!", []string{ViolationLoginName}},
		{"mobile full", "Xx!13812345678", []string{ViolationMobile}},
		{"mobile tail", "Kite!12345678a", []string{ViolationMobile}},
		{"birthday", "Kite!19900521a", []string{ViolationBirthday}},
		{"birthday short", "Kite!900521ab", []string{ViolationBirthday}},
		{"common", "qwertyuiop", []string{ViolationClasses, ViolationCommon}},
		{"common decorated", "Password123!", []string{ViolationCommon}},
		{"control", "Blue-Kite-47\x00", []string{ViolationControlChar}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckStrength(StrengthRules{}, tc.pw, pd)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var we *WeakPasswordError
			if !errors.As(err, &we) {
				t.Fatalf("got %v, want WeakPasswordError", err)
			}
			for _, w := range tc.want {
				if !slices.Contains(we.Violations, w) {
					t.Fatalf("violations %v miss %s", we.Violations, w)
				}
			}
			if strings.Contains(err.Error(), tc.pw) {
				t.Fatal("error message contains the password")
			}
		})
	}
}
