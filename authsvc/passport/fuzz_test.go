package passport

import (
	"errors"
	"testing"
)

// FuzzVerifyPassword feeds arbitrary stored hashes: a malformed one is
// ErrBadHash, never a panic or an unbounded argon2 cost.
func FuzzVerifyPassword(f *testing.F) {
	good, _ := HashPassword(cheap, "x")
	for _, s := range []string{good, "", "$argon2id$v=19$m=64,t=1,p=1$$", "$argon2id$v=19$m=99999999,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA"} {
		f.Add(s, "x")
	}
	f.Fuzz(func(t *testing.T, stored, pw string) {
		h, err := parsePHC(stored)
		if err != nil {
			if !errors.Is(err, ErrBadHash) {
				t.Fatalf("error %v is not ErrBadHash", err)
			}
			return
		}
		if h.params.MemoryKiB > 1<<14 || h.params.Iterations > 4 || h.params.Parallelism > 4 {
			return // valid but too costly to run in a fuzz loop
		}
		if _, _, err := VerifyPassword(stored, pw, cheap); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzCheckStrength: any input is accepted or refused with named rules.
func FuzzCheckStrength(f *testing.F) {
	f.Add("Blue-Kite-47", "alice", "13812345678", "1990-05-21")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, pw, name, mobile, birthday string) {
		err := CheckStrength(StrengthRules{}, pw, PersonalData{LoginName: name, Mobile: mobile, Birthday: birthday})
		var we *WeakPasswordError
		if err != nil && (!errors.As(err, &we) || len(we.Violations) == 0) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}
