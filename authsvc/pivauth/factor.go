package pivauth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/authsvc/challenge"
	"github.com/egate-bank/egate/authsvc/ushield"
	"github.com/egate-bank/egate/devices/pkcs11token"
)

// Factor returns the PIV token as an authn.Factor (level 4, AMR "hwk").
func (s *Service) Factor() authn.Factor { return factor{s} }

type factor struct{ s *Service }

var _ authn.Factor = factor{}

func (factor) Name() string       { return Name }
func (factor) Level() authn.Level { return Level }

// Enrolled reports whether the customer has an active PIV key whose
// certificate is neither revoked nor expired.
func (f factor) Enrolled(ctx context.Context, passportID string) (bool, error) {
	var n int
	err := f.s.db.QueryRow(ctx, `SELECT COUNT(*) FROM piv_tokens p JOIN ca_certs c ON c.serial = p.cert_serial
		WHERE p.passport_id = ? AND p.status = 'active' AND c.revoked_ms IS NULL AND c.not_after_ms > ?`,
		passportID, f.s.now().UnixMilli()).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("checking PIV enrollment: %w", err)
	}
	return n > 0, nil
}

// Begin makes a challenge whose Data is exactly what the card signs: the
// transaction text (or the login line), a newline and "Challenge: " with 32
// hex digits of a fresh nonce, as for a U-shield (ushield.SignedText).
func (f factor) Begin(ctx context.Context, req authn.BeginRequest) (authn.Challenge, error) {
	text, err := ushield.ChallengeText(req, "PIV")
	if err != nil {
		return authn.Challenge{}, err
	}
	ok, err := f.Enrolled(ctx, req.PassportID)
	if err != nil {
		return authn.Challenge{}, err
	}
	if !ok {
		return authn.Challenge{}, fmt.Errorf("%s: %w", Name, authn.ErrNotEnrolled)
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	now := f.s.now()
	rec := &challenge.Record{Factor: Name, PassportID: req.PassportID, Purpose: req.Purpose, TxHash: req.TxHash,
		Data: ushield.SignedText(text, nonce), ExpiresAt: now.Add(f.s.TTL), CreatedAt: now}
	if err := f.s.ch.Create(ctx, rec); err != nil {
		return authn.Challenge{}, err
	}
	return authn.Challenge{ID: rec.ID, Factor: Name, Prompt: "Insert your PIV card, check the text and sign with your PIN",
		Data: rec.Data, ExpiresAt: rec.ExpiresAt}, nil
}

// Verify checks an EGP1 proof (devices/pkcs11token) in this order: it
// decodes; the challenge exists, is this customer's and this factor's,
// unused and unexpired; the certificate chains to the bank's issuing CA, is
// valid and allows signatures (shared with the U-shield); it is bound to a
// PIV key of this customer that is neither lost nor revoked (read from the
// database on every request); the signature covers exactly the challenge's
// bytes; then the challenge is consumed, atomically, once. A refused proof
// leaves the challenge usable until it expires.
func (f factor) Verify(ctx context.Context, req authn.VerifyRequest) (authn.Result, error) {
	p, err := pkcs11token.DecodeProof(req.Response)
	if err != nil {
		return authn.Result{}, fmt.Errorf("%w: %w", authn.ErrBadResponse, err)
	}
	rec, err := f.s.ch.Open(ctx, Name, req)
	if err != nil {
		return authn.Result{}, err
	}
	cert, err := f.s.us.VerifyCertificate(p.CertDER)
	if err != nil {
		return authn.Result{}, err
	}
	var owner, status string
	var revoked sql.NullInt64
	err = f.s.db.QueryRow(ctx, `SELECT p.passport_id, p.status, c.revoked_ms FROM piv_tokens p
		JOIN ca_certs c ON c.serial = p.cert_serial WHERE p.cert_serial = ?`, ca.SerialHex(cert.SerialNumber)).Scan(&owner, &status, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return authn.Result{}, fmt.Errorf("%w: the certificate is not bound to a PIV card", authn.ErrNotEnrolled)
	}
	if err != nil {
		return authn.Result{}, fmt.Errorf("checking the PIV binding: %w", err)
	}
	if owner != req.PassportID {
		return authn.Result{}, fmt.Errorf("%w: the PIV card belongs to another customer", authn.ErrWrongAnswer)
	}
	if status != "active" || revoked.Valid {
		return authn.Result{}, fmt.Errorf("%w: %w", authn.ErrRevoked, ca.ErrCertRevoked)
	}
	if err := pkcs11token.VerifySignature(cert.PublicKey, rec.Data, p.Sig); err != nil {
		return authn.Result{}, fmt.Errorf("%w: %w", authn.ErrWrongAnswer, err)
	}
	if err := f.s.ch.Consume(ctx, Name, req.PassportID, req.ChallengeID); err != nil {
		return authn.Result{}, err
	}
	return authn.Result{Factor: Name, Level: Level, AMR: "hwk"}, nil
}
