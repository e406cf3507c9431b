package challenge

import (
	"context"
	"errors"
	"fmt"
	"reflect"
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

// TestOpenConsume: OpenConsume gives what Open then Consume give, on twin
// challenges (the same fields, another id), for every binding, a used,
// an expired and an unknown challenge, another customer's and another
// factor's; a refused one is left as it was (a used one used, an open one
// still open for the right call).
func TestOpenConsume(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.UnixMilli(1_800_000_000_000)
		s := New(db, func() time.Time { return now })
		a, b := []byte("intent A"), []byte("intent B")
		used := func(t *testing.T, id string) bool {
			t.Helper()
			var n int
			if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM auth_challenges WHERE id = ? AND used_ms IS NOT NULL`, id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 1
		}
		cases := []struct {
			name     string
			purpose  authn.Purpose
			hash     []byte
			as       authn.VerifyRequest
			factor   string
			used     bool
			expired  bool
			unknown  bool
			accepted bool
		}{
			{name: "login for a login", purpose: authn.PurposeLogin, as: authn.VerifyRequest{PassportID: "alice", Purpose: authn.PurposeLogin}, accepted: true},
			{name: "login, purpose unset", purpose: authn.PurposeLogin, as: authn.VerifyRequest{PassportID: "alice"}, accepted: true},
			{name: "transaction for its intent", purpose: authn.PurposeTransaction, hash: a, as: authn.VerifyRequest{PassportID: "alice", Purpose: authn.PurposeTransaction, TxHash: a}, accepted: true},
			{name: "transaction for another intent", purpose: authn.PurposeTransaction, hash: a, as: authn.VerifyRequest{PassportID: "alice", Purpose: authn.PurposeTransaction, TxHash: b}},
			{name: "login for a transaction", purpose: authn.PurposeLogin, as: authn.VerifyRequest{PassportID: "alice", Purpose: authn.PurposeTransaction, TxHash: a}},
			{name: "transaction for a login", purpose: authn.PurposeTransaction, hash: a, as: authn.VerifyRequest{PassportID: "alice", Purpose: authn.PurposeLogin}},
			{name: "transaction without a hash", purpose: authn.PurposeTransaction, as: authn.VerifyRequest{PassportID: "alice", Purpose: authn.PurposeTransaction}},
			{name: "another customer", purpose: authn.PurposeLogin, as: authn.VerifyRequest{PassportID: "bob"}},
			{name: "another factor", purpose: authn.PurposeLogin, as: authn.VerifyRequest{PassportID: "alice"}, factor: "sms"},
			{name: "used", purpose: authn.PurposeTransaction, hash: a, as: authn.VerifyRequest{PassportID: "alice", Purpose: authn.PurposeTransaction, TxHash: a}, used: true},
			{name: "expired", purpose: authn.PurposeTransaction, hash: a, as: authn.VerifyRequest{PassportID: "alice", Purpose: authn.PurposeTransaction, TxHash: a}, expired: true},
			{name: "unknown", purpose: authn.PurposeLogin, as: authn.VerifyRequest{PassportID: "alice"}, unknown: true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				factor := tc.factor
				if factor == "" {
					factor = "otp"
				}
				var ids [2]string
				for i := range ids {
					r := &Record{Factor: "otp", PassportID: "alice", Purpose: tc.purpose, TxHash: tc.hash, Data: []byte("q"), Ref: "tok", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
					if tc.expired {
						r.CreatedAt, r.ExpiresAt = now.Add(-2*time.Minute), now.Add(-time.Minute)
					}
					if err := s.Create(ctx, r); err != nil {
						t.Fatal(err)
					}
					if tc.used {
						if err := s.Consume(ctx, "otp", "alice", r.ID); err != nil {
							t.Fatal(err)
						}
					}
					ids[i] = r.ID
					if tc.unknown {
						ids[i] = NewID()
					}
				}
				// The two steps on the first twin, OpenConsume on the second.
				req := tc.as
				req.ChallengeID = ids[0]
				want, wantErr := s.Open(ctx, factor, req)
				if wantErr == nil {
					wantErr = s.Consume(ctx, factor, req.PassportID, req.ChallengeID)
				}
				req.ChallengeID = ids[1]
				wasUsed := used(t, ids[1])
				got, err := s.OpenConsume(ctx, factor, req)
				if (err == nil) != tc.accepted || fmt.Sprint(err) != fmt.Sprint(wantErr) {
					t.Fatalf("OpenConsume = %v, Open and Consume = %v; want accepted %v", err, wantErr, tc.accepted)
				}
				if !tc.accepted {
					if got != nil || used(t, ids[1]) != wasUsed {
						t.Fatalf("refused, yet %+v, used %v (was %v)", got, used(t, ids[1]), wasUsed)
					}
					if !tc.used && !tc.expired && !tc.unknown && tc.hash != nil {
						right := authn.VerifyRequest{PassportID: "alice", Purpose: tc.purpose, TxHash: tc.hash, ChallengeID: ids[1]}
						if _, err := s.OpenConsume(ctx, "otp", right); err != nil {
							t.Fatalf("the right call after a refused one: %v", err)
						}
					}
					return
				}
				want.ID = got.ID
				if !used(t, ids[1]) || !reflect.DeepEqual(got, want) {
					t.Fatalf("record %+v, want %+v (used %v)", got, want, used(t, ids[1]))
				}
				if _, err := s.OpenConsume(ctx, factor, req); !errors.Is(err, authn.ErrUsed) {
					t.Fatalf("second OpenConsume = %v, want ErrUsed", err)
				}
			})
		}
	})
}

// TestCreateWithCompanion: a challenge created with a context from
// WithCompanion commits with what the companion stores, in one
// transaction: the companion sees the challenge with its ID and, inside
// the transaction, its row; when the companion fails, neither stays.
func TestCreateWithCompanion(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.UnixMilli(1_800_000_000_000)
		s := New(db, func() time.Time { return now })
		refused := errors.New("companion refused")
		for _, tc := range []struct {
			name    string
			fail    bool
			wantRow int
		}{
			{"companion stores", false, 1},
			{"companion fails", true, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var saw string
				cctx := WithCompanion(ctx, func(ctx context.Context, tx *store.Tx, r *Record) error {
					var n int
					if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM auth_challenges WHERE id = ?`, r.ID).Scan(&n); err != nil || n != 1 {
						return fmt.Errorf("the challenge's row in the transaction: %d, %v", n, err)
					}
					saw = r.ID
					if tc.fail {
						return refused
					}
					return nil
				})
				r := &Record{Factor: "otp", PassportID: "alice", Purpose: authn.PurposeLogin, Ref: "tok", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
				err := s.Create(cctx, r)
				if tc.fail != errors.Is(err, refused) || (!tc.fail && err != nil) {
					t.Fatalf("Create: %v", err)
				}
				if saw == "" || saw != r.ID {
					t.Fatalf("the companion saw %q, the challenge is %q", saw, r.ID)
				}
				var n int
				if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM auth_challenges WHERE id = ?`, r.ID).Scan(&n); err != nil || n != tc.wantRow {
					t.Fatalf("%d rows (%v), want %d", n, err, tc.wantRow)
				}
			})
		}
	})
}
