package challenge

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestOpenChecksTheBinding: a challenge opens only for the purpose and the
// transaction hash it was begun for; anything else is ErrOtherTransaction
// (an ErrUnknown), whether the challenge is open, used or expired, and
// changes nothing: the challenge is still consumed once by the right call.
func TestOpenChecksTheBinding(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.UnixMilli(1_800_000_000_000)
		s := New(db, func() time.Time { return now })
		a, b := []byte("intent A"), []byte("intent B")
		mk := func(t *testing.T, purpose authn.Purpose, hash []byte) *Record {
			t.Helper()
			r := &Record{Factor: "otp", PassportID: "alice", Purpose: purpose, TxHash: hash, Ref: "tok", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
			if err := s.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			return r
		}
		login := authn.VerifyRequest{PassportID: "alice", Purpose: authn.PurposeLogin}
		unset := authn.VerifyRequest{PassportID: "alice"}
		forA := authn.VerifyRequest{PassportID: "alice", Purpose: authn.PurposeTransaction, TxHash: a}
		forB := authn.VerifyRequest{PassportID: "alice", Purpose: authn.PurposeTransaction, TxHash: b}
		noHash := authn.VerifyRequest{PassportID: "alice", Purpose: authn.PurposeTransaction}
		cases := []struct {
			name    string
			purpose authn.Purpose
			hash    []byte
			as      authn.VerifyRequest
			want    error
		}{
			{"login challenge for a login", authn.PurposeLogin, nil, login, nil},
			{"login challenge, purpose unset", authn.PurposeLogin, nil, unset, nil},
			{"login challenge for a transaction", authn.PurposeLogin, nil, forA, authn.ErrOtherTransaction},
			{"transaction challenge for its intent", authn.PurposeTransaction, a, forA, nil},
			{"transaction challenge for another intent", authn.PurposeTransaction, a, forB, authn.ErrOtherTransaction},
			{"transaction challenge for a login", authn.PurposeTransaction, a, login, authn.ErrOtherTransaction},
			{"transaction challenge, purpose unset", authn.PurposeTransaction, a, unset, authn.ErrOtherTransaction},
			{"transaction challenge without a hash", authn.PurposeTransaction, nil, noHash, authn.ErrOtherTransaction},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := mk(t, tc.purpose, tc.hash)
				req := tc.as
				req.ChallengeID = r.ID
				got, err := s.Open(ctx, "otp", req)
				if !errors.Is(err, tc.want) {
					t.Fatalf("Open = %v, want %v", err, tc.want)
				}
				if tc.want != nil {
					if got != nil || !errors.Is(err, authn.ErrUnknown) {
						t.Fatalf("refused Open gave %+v, %v", got, err)
					}
					// Refused while used, too, and nothing changed.
					if err := s.Consume(ctx, "otp", "alice", r.ID); err != nil {
						t.Fatalf("Consume after a refused Open: %v", err)
					}
					if _, err := s.Open(ctx, "otp", req); !errors.Is(err, authn.ErrOtherTransaction) {
						t.Fatalf("Open of the used challenge = %v", err)
					}
					return
				}
				if got.Ref != "tok" || got.Purpose != tc.purpose {
					t.Fatalf("record %+v", got)
				}
				if err := s.Consume(ctx, "otp", "alice", r.ID); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Open(ctx, "otp", req); !errors.Is(err, authn.ErrUsed) {
					t.Fatalf("Open of the used challenge = %v, want ErrUsed", err)
				}
			})
		}
		t.Run("another factor's or customer's challenge", func(t *testing.T) {
			r := mk(t, authn.PurposeLogin, nil)
			if _, err := s.Open(ctx, "sms", authn.VerifyRequest{PassportID: "alice", ChallengeID: r.ID}); !errors.Is(err, authn.ErrUnknown) || errors.Is(err, authn.ErrOtherTransaction) {
				t.Fatalf("another factor: %v", err)
			}
			if _, err := s.Open(ctx, "otp", authn.VerifyRequest{PassportID: "bob", ChallengeID: r.ID}); !errors.Is(err, authn.ErrUnknown) || errors.Is(err, authn.ErrOtherTransaction) {
				t.Fatalf("another customer: %v", err)
			}
		})
	})
}
