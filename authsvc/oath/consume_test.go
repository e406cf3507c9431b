package oath

import (
	"context"
	"errors"
	"testing"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestChallengeUsedUpWithTheAttempt: a challenge's answer uses the
// challenge up and counts the token's attempt in one transaction. When
// counting fails (a trigger refuses the token's update, as a crash
// between the two would leave it), the challenge is not used up either:
// the same challenge then takes the right code. Before, the challenge was
// committed used first and the retry was refused as used.
func TestChallengeUsedUpWithTheAttempt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db, Config{})
		fac := Factor{S: f.svc}
		ch, err := fac.Begin(ctx, authn.BeginRequest{PassportID: "P-H0001", Purpose: authn.PurposeLogin})
		if err != nil {
			t.Fatal(err)
		}
		refuse, allow := []string{
			`CREATE TRIGGER otp_refuse BEFORE UPDATE ON otp_tokens BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`,
		}, []string{`DROP TRIGGER otp_refuse`}
		if db.Driver() == store.Postgres {
			refuse = []string{
				`CREATE FUNCTION otp_refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql`,
				`CREATE TRIGGER otp_refuse BEFORE UPDATE ON otp_tokens FOR EACH ROW EXECUTE FUNCTION otp_refuse()`,
			}
			allow = []string{`DROP TRIGGER otp_refuse ON otp_tokens`}
		}
		for _, q := range refuse {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		req := authn.VerifyRequest{PassportID: "P-H0001", ChallengeID: ch.ID, Response: []byte(hotpCode(0))}
		if _, err := fac.Verify(ctx, req); err == nil {
			t.Fatal("verified with the token's update refused")
		}
		for _, q := range allow {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		res, err := fac.Verify(ctx, req)
		if errors.Is(err, authn.ErrUsed) {
			t.Fatal("the challenge was used up by the answer whose attempt was not counted")
		}
		if err != nil || res.Level != 3 {
			t.Fatalf("Verify = %+v, %v", res, err)
		}
		if _, err := fac.Verify(ctx, req); !errors.Is(err, authn.ErrUsed) {
			t.Fatalf("the challenge answered twice: %v", err)
		}
	})
}
