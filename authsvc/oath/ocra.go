package oath

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/challenge"
	"github.com/egate-bank/egate/devices/otp"
)

// OCRAChallenge is a question for the customer's OCRA token.
type OCRAChallenge struct {
	ID       string
	Serial   string
	Question string
	// Display is what to show the customer beside the question.
	Display string
}

// TxDetails are the parts of a transaction an OCRA question carries.
type TxDetails struct {
	PayeeAccount string
	AmountFen    int64
}

// BeginOCRA makes a single-use OCRA challenge for the customer's OCRA
// token. With tx, the question carries the payee's last digits and the
// amount (otp.TransactionQuestion); txHash binds the challenge to the
// intent so it cannot be used for another one.
func (s *Service) BeginOCRA(ctx context.Context, passportID string, purpose authn.Purpose, txHash []byte, tx *TxDetails) (OCRAChallenge, error) {
	t, err := s.TokenOf(ctx, passportID, otp.KindOCRA)
	if err != nil {
		return OCRAChallenge{}, err
	}
	if err := s.usable(t); err != nil {
		return OCRAChallenge{}, err
	}
	su, err := otp.ParseSuite(t.Params.Suite)
	if err != nil {
		return OCRAChallenge{}, err
	}
	if su.PINHash != 0 || su.SessionLen > 0 {
		return OCRAChallenge{}, fmt.Errorf("%w: suite %s needs a PIN or session data the bank does not hold", otp.ErrUnsupported, su.Raw)
	}
	var q, display string
	if tx != nil {
		ch, err := otp.NewChallenge(nil, s.layout().ChallengeDigits)
		if err != nil {
			return OCRAChallenge{}, err
		}
		q, err = otp.TransactionQuestion(su, otp.Transaction{Challenge: ch, PayeeAccount: tx.PayeeAccount, AmountFen: tx.AmountFen}, s.cfg.TxLayout)
		if err != nil {
			return OCRAChallenge{}, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		display = fmt.Sprintf("Type %s on token %s: challenge, payee's last digits, amount in fen", q, t.Serial)
	} else {
		q, err = randomQuestion(su)
		if err != nil {
			return OCRAChallenge{}, err
		}
		display = fmt.Sprintf("Type %s on token %s and enter the response", q, t.Serial)
	}
	now := s.now()
	rec := &challenge.Record{Factor: Name, PassportID: passportID, Purpose: purpose, TxHash: txHash, Ref: t.ID, Data: []byte(q),
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.ChallengeTTL)}
	if err := s.ch.Create(ctx, rec); err != nil {
		return OCRAChallenge{}, err
	}
	return OCRAChallenge{ID: rec.ID, Serial: t.Serial, Question: q, Display: display}, nil
}

func (s *Service) layout() otp.TxLayout {
	l := s.cfg.TxLayout
	if l.ChallengeDigits == 0 {
		l.ChallengeDigits = 4
	}
	return l
}

func randomQuestion(su *otp.Suite) (string, error) {
	n := min(su.QLen, 8)
	if su.QType == 'H' {
		b := make([]byte, (n+1)/2)
		rand.Read(b)
		return strings.ToUpper(hex.EncodeToString(b))[:n], nil
	}
	return otp.NewChallenge(nil, n)
}

// VerifyOCRA checks the response to an OCRA challenge. txHash must be the
// hash the challenge was made for (nil for a login challenge): another
// transaction's challenge is refused (authn.ErrOtherTransaction) before it
// is used, so it changes nothing.
func (s *Service) VerifyOCRA(ctx context.Context, passportID, challengeID string, txHash []byte, response string) (Accepted, error) {
	req := authn.VerifyRequest{PassportID: passportID, ChallengeID: challengeID, Response: []byte(response), Purpose: authn.PurposeLogin}
	if len(txHash) > 0 {
		req.Purpose, req.TxHash = authn.PurposeTransaction, txHash
	}
	return s.verifyChallenge(ctx, req, nil)
}

// reopen gives back a challenge that verifyChallenge used when its answer
// could not be checked (the HSM or the database failed), so that the
// customer answers the same question again; cause is returned, matching
// ErrUnavailable.
func (s *Service) reopen(ctx context.Context, req authn.VerifyRequest, cause error) error {
	if !errors.Is(cause, ErrUnavailable) {
		cause = fmt.Errorf("%w: %w", ErrUnavailable, cause)
	}
	ctx, cancel := s.bookkeepingCtx(ctx)
	defer cancel()
	if err := s.ch.Release(ctx, Name, req.PassportID, req.ChallengeID); err != nil {
		return fmt.Errorf("%w (and giving back the challenge: %w)", cause, err)
	}
	return cause
}

func (s *Service) checkOCRA(ctx context.Context, t *Token, question, response string) (Accepted, error) {
	if err := s.usable(t); err != nil {
		return Accepted{}, err
	}
	su, err := otp.ParseSuite(t.Params.Suite)
	if err != nil {
		return Accepted{}, err
	}
	if !otp.ValidCode(response, su.Digits) {
		return Accepted{}, fmt.Errorf("%w: the response must be %d digits", ErrMalformed, su.Digits)
	}
	if err := s.reserve(ctx, t); err != nil {
		return Accepted{}, err
	}
	counters := []uint64{0}
	if su.Counter {
		counters = counters[:0]
		for i := 0; i < s.cfg.OCRACounterAhead; i++ {
			counters = append(counters, t.Counter+uint64(i))
		}
	}
	steps := []uint64{0}
	if su.TimeStep > 0 {
		now := su.TimeSteps(s.now())
		steps = []uint64{now, now - 1, now + 1}
	}
	var ins []otp.OCRAInput
	for _, c := range counters {
		for _, st := range steps {
			ins = append(ins, otp.OCRAInput{Counter: c, Question: question, Timestamp: st})
		}
	}
	got, err := su.ComputeBatch(ctx, s.macOf(t), ins)
	if err != nil {
		return Accepted{}, s.unchecked(ctx, t, err)
	}
	match := -1
	for i, r := range got {
		if otp.Equal(r, response) && match < 0 {
			match = i
		}
	}
	if match < 0 {
		if err := s.failed(ctx, t); err != nil {
			return Accepted{}, err
		}
		return Accepted{}, s.wrong(t)
	}
	acc := Accepted{Serial: t.Serial}
	if su.Counter {
		acc.Counter = ins[match].Counter
		if err := s.advance(ctx, t, acc.Counter, nil); err != nil {
			s.failed(ctx, t)
			return Accepted{}, err
		}
		return acc, nil
	}
	// No counter: the single-use challenge is the replay protection.
	if _, err := s.db.Exec(ctx, `UPDATE otp_tokens SET failures = 0 WHERE id = ?`, t.ID); err != nil {
		return Accepted{}, err
	}
	return acc, nil
}
