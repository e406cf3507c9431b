package otp

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/devices/otp"
)

// Factor is the dynamic-password token as an authn.Factor (level 3).
type Factor struct{ S *Service }

var _ authn.Factor = Factor{}

// Name implements authn.Factor.
func (Factor) Name() string { return "otp" }

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
	id := newID()
	if _, err := s.db.Exec(ctx, `INSERT INTO otp_challenges (id, token_id, passport_id, purpose, question, tx_hash, created_ms, expires_ms) VALUES (?, ?, ?, ?, '', ?, ?, ?)`,
		id, t.ID, req.PassportID, string(req.Purpose), req.TxHash, now.UnixMilli(), now.Add(s.cfg.ChallengeTTL).UnixMilli()); err != nil {
		return authn.Challenge{}, fmt.Errorf("storing the challenge: %w", err)
	}
	return authn.Challenge{ID: id, Factor: f.Name(), Prompt: "Enter the code shown on your token " + maskSerial(t.Serial), ExpiresAt: now.Add(s.cfg.ChallengeTTL)}, nil
}

// Verify implements authn.Factor.
func (f Factor) Verify(ctx context.Context, req authn.VerifyRequest) (authn.Result, error) {
	s := f.S
	c, err := s.consume(ctx, req.ChallengeID, req.PassportID)
	if err != nil {
		return authn.Result{}, err
	}
	t, err := s.one(ctx, `SELECT `+tokenCols+` FROM otp_tokens WHERE id = ?`, c.tokenID)
	if err != nil {
		return authn.Result{}, err
	}
	code := strings.TrimSpace(string(req.Response))
	if t.Params.Kind == otp.KindOCRA {
		_, err = s.checkOCRA(ctx, t, c.question, code)
	} else {
		_, err = s.Verify(ctx, t, code)
	}
	if errors.Is(err, ErrUnavailable) {
		// Nothing was checked: the challenge stays open for the same answer.
		err = s.reopen(ctx, req.ChallengeID, req.PassportID, err)
	}
	if err != nil {
		return authn.Result{}, err
	}
	return authn.Result{Factor: f.Name(), Level: f.Level(), AMR: "otp"}, nil
}

func maskSerial(s string) string {
	if len(s) <= 4 {
		return s
	}
	return "…" + s[len(s)-4:]
}
