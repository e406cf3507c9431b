package oath

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/challenge"
	"github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/internal/store"
)

// Factor is the dynamic-password token as an authn.Factor (level 3).
type Factor struct{ S *Service }

var _ authn.Factor = Factor{}

// Name is the factor's name (and its challenges' in authsvc/challenge).
const Name = "otp"

// Name implements authn.Factor.
func (Factor) Name() string { return Name }

// Level implements authn.Factor.
func (Factor) Level() authn.Level { return 3 }

// Enrolled implements authn.Factor.
func (f Factor) Enrolled(ctx context.Context, passportID string) (bool, error) {
	var n int
	if err := f.S.db.QueryRow(ctx, `SELECT COUNT(*) FROM otp_tokens WHERE passport_id = ? AND status = 'active'`, passportID).Scan(&n); err != nil {
		return false, fmt.Errorf("looking up tokens: %w", err)
	}
	return n > 0, nil
}

// Begin implements authn.Factor. An OCRA token gets a question (for a
// transaction, bound to req.TxHash; the question carries transaction data
// only through BeginOCRA with TxDetails); an HOTP/TOTP token gets a prompt.
func (f Factor) Begin(ctx context.Context, req authn.BeginRequest) (authn.Challenge, error) {
	s := f.S
	t, err := s.TokenOf(ctx, req.PassportID)
	if errors.Is(err, ErrAmbiguous) { // several tokens: prefer OCRA for transactions, else the code tokens
		if req.Purpose == authn.PurposeTransaction {
			t, err = s.TokenOf(ctx, req.PassportID, otp.KindOCRA)
		}
		if err != nil {
			t, err = s.TokenOf(ctx, req.PassportID, otp.KindHOTP, otp.KindTOTP)
		}
	}
	if errors.Is(err, ErrUnknownToken) {
		return authn.Challenge{}, authn.ErrNotEnrolled
	}
	if err != nil {
		return authn.Challenge{}, err
	}
	if err := s.usable(t); err != nil {
		return authn.Challenge{}, err
	}
	now := s.now()
	if t.Params.Kind == otp.KindOCRA {
		oc, err := s.BeginOCRA(ctx, req.PassportID, req.Purpose, req.TxHash, nil)
		if err != nil {
			return authn.Challenge{}, err
		}
		return authn.Challenge{ID: oc.ID, Factor: f.Name(), Prompt: oc.Display, Data: []byte(oc.Question), ExpiresAt: now.Add(s.cfg.ChallengeTTL)}, nil
	}
	rec := &challenge.Record{Factor: Name, PassportID: req.PassportID, Purpose: req.Purpose, TxHash: req.TxHash, Ref: t.ID,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.ChallengeTTL)}
	if err := s.ch.Create(ctx, rec); err != nil {
		return authn.Challenge{}, err
	}
	return authn.Challenge{ID: rec.ID, Factor: f.Name(), Prompt: "Enter the code shown on your token " + maskSerial(t.Serial), ExpiresAt: rec.ExpiresAt}, nil
}

// Verify implements authn.Factor. The challenge is opened (customer,
// purpose and transaction checked: another transaction's challenge costs
// nothing) and then used up before the code is compared, so a guessed or
// replayed code is never checked twice against one challenge; an answer
// that could not be checked (the HSM failed) gives it back.
//
// A challenge.Settle in ctx (challenge.WithSettle) is committed in the
// transaction that moves the replay ledger for a right HOTP/TOTP code
// taken by the fast path; any other answer leaves it to the caller.
func (f Factor) Verify(ctx context.Context, req authn.VerifyRequest) (authn.Result, error) {
	s := f.S
	res := authn.Result{Factor: f.Name(), Level: f.Level(), AMR: "otp"}
	var settle func(context.Context, *store.Tx) error
	if st := challenge.SettleFrom(ctx); st != nil {
		settle = func(ctx context.Context, tx *store.Tx) error { return st(ctx, tx, res) }
	}
	if _, err := s.verifyChallenge(ctx, req, settle); err != nil {
		return authn.Result{}, err
	}
	return res, nil
}

// verifyChallenge checks the answer to one of the customer's challenges,
// of any token kind.
func (s *Service) verifyChallenge(ctx context.Context, req authn.VerifyRequest, settle func(context.Context, *store.Tx) error) (Accepted, error) {
	code := strings.TrimSpace(string(req.Response))
	// An HOTP/TOTP token's attempt is counted as it is loaded, as on the
	// verify API's fast path (fast.go); any other token, or a token the
	// fast path does not take, is looked up and checked in full.
	rec, t, err := s.consumeAndCount(ctx, req, code)
	if err != nil {
		return Accepted{}, err
	}
	var acc Accepted
	switch {
	case t != nil:
		acc, err = s.compare(ctx, t, code, "", settle)
	default:
		if t, err = s.one(ctx, `SELECT `+tokenCols+` FROM otp_tokens WHERE id = ?`, rec.Ref); err != nil {
			return Accepted{}, err
		}
		if t.Params.Kind == otp.KindOCRA {
			acc, err = s.checkOCRA(ctx, t, string(rec.Data), code)
		} else {
			acc, err = s.Verify(ctx, t, code)
		}
	}
	if errors.Is(err, ErrUnavailable) {
		// Nothing was checked: the challenge stays open for the same answer.
		err = s.reopen(ctx, req, err)
	}
	return acc, err
}

// consumeAndCount uses the challenge up and takes the attempt on the
// token it names (the fast path's count-and-load) in one transaction:
// one commit, and no crash between the two leaves the challenge used
// with nothing counted. The token is nil when the fast path does not take
// it (the challenge is used up all the same). A challenge that is not
// usable or does not bind req changes nothing here and gets
// OpenConsume's refusal.
func (s *Service) consumeAndCount(ctx context.Context, req authn.VerifyRequest, code string) (*challenge.Record, *Token, error) {
	if fastCode(code) {
		tctx, err := s.countCtx(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("recording an attempt: %w", err)
		}
		var rec *challenge.Record
		var t *Token
		err = s.db.InTx(tctx, func(tx *store.Tx) error {
			if rec, err = s.ch.OpenConsumeTx(tctx, tx, Name, req); rec == nil || err != nil {
				return err // nothing changed: OpenConsume below says why
			}
			t, err = s.countAndLoadTx(tctx, tx, Lookup{id: rec.Ref}, code)
			return err
		})
		if err != nil {
			return nil, nil, err
		}
		if rec != nil {
			return rec, t, nil
		}
	}
	rec, err := s.ch.OpenConsume(ctx, Name, req)
	if err != nil {
		return nil, nil, err
	}
	t, err := s.countAndLoad(ctx, Lookup{id: rec.Ref}, code)
	return rec, t, err
}

func maskSerial(s string) string {
	if len(s) <= 4 {
		return s
	}
	return "…" + s[len(s)-4:]
}
