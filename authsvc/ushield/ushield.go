// Package ushield verifies U-shield proofs: the login and transaction
// factors of 1st-generation (level 4) and 2nd-generation (level 5) tokens.
//
// A challenge's Data is exactly what the token signs and what a
// 2nd-generation token displays: for a transaction, the transaction text, a
// newline and "Challenge: " with 32 hex digits of a fresh nonce; for a login,
// "egate login for <passport id>" in place of the text. Verify decodes the
// proof (devices/pkcs11token), checks the certificate chains to the bank's
// issuing CA and is valid, that it is bound to this customer and neither
// revoked nor reported lost (read from the database on every request), that
// the signature covers exactly the challenge's Data, and finally consumes the
// challenge (atomic, single use). A 2nd-generation factor accepts only
// tokens enrolled as 2nd generation, whose keys sign only after the customer
// pressed confirm on the token, and reports Result.ConfirmedOnDevice.
package ushield

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/authsvc/challenge"
	"github.com/egate-bank/egate/devices/pkcs11token"
	"github.com/egate-bank/egate/internal/store"
)

// Factor names.
const (
	NameGen1 = "ushield"
	NameGen2 = "ushield2"
)

// MaxTxText bounds the transaction text a token is asked to show and sign.
const MaxTxText = 1024

// Errors beyond authn's.
var (
	ErrGeneration = errors.New("this U-shield is not a 2nd-generation token with a display")
	ErrBadTxText  = errors.New("the transaction text is not printable text of at most 1024 bytes")
)

// Service keeps U-shield bindings and verifies proofs.
type Service struct {
	db  *store.DB
	ca  *ca.CA
	ch  *challenge.Store
	now func() time.Time
	TTL time.Duration // challenge lifetime; 2 minutes by default

	certs  sync.Map // [32]byte → *x509.Certificate
	ncerts atomic.Int64

	stmtMu sync.Mutex
	stmt   *sql.Stmt
}

// New returns a service over the database and the bank CA.
func New(db *store.DB, c *ca.CA, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, ca: c, ch: challenge.New(db, now), now: now, TTL: 2 * time.Minute}
}

// Binding is one enrolled token.
type Binding struct {
	CertSerial  string
	PassportID  string
	Generation  int
	TokenLabel  string
	TokenSerial string
	KeyID       []byte
	Lost        bool
}

// Issuer returns the pkcs11token.Issuer through which an enrollment has the
// bank CA sign a certificate for passportID's token.
func (s *Service) Issuer(passportID string) pkcs11token.Issuer { return issuer{s, passportID} }

type issuer struct {
	s  *Service
	id string
}

func (i issuer) IssueToken(ctx context.Context, csr []byte, key crypto.PublicKey) (*x509.Certificate, error) {
	return i.s.ca.Issue(ctx, ca.IssueRequest{Kind: ca.KindToken, Owner: i.id, CSR: csr, TokenKey: key})
}

// Enroll enrolls a logged-in token for passportID: key on the token, CSR,
// certificate from the bank CA written back, binding recorded.
func (s *Service) Enroll(ctx context.Context, tok *pkcs11token.Token, passportID string, generation int, opt pkcs11token.EnrollOptions) (*Binding, error) {
	if generation != 1 && generation != 2 {
		return nil, fmt.Errorf("U-shield generation %d: want 1 or 2", generation)
	}
	if opt.Subject == "" {
		opt.Subject = passportID
	}
	e, err := pkcs11token.Enroll(ctx, tok, s.Issuer(passportID), opt)
	if err != nil {
		return nil, err
	}
	b := &Binding{CertSerial: ca.SerialHex(e.Cert.SerialNumber), PassportID: passportID, Generation: generation,
		TokenLabel: e.Token.Label, TokenSerial: e.Token.Serial, KeyID: e.KeyID}
	if err := s.Bind(ctx, b); err != nil {
		// The certificate is on the token but bound to nobody: revoke it.
		s.ca.Revoke(context.WithoutCancel(ctx), b.CertSerial, ca.ReasonCessation)
		return nil, err
	}
	return b, nil
}

// Bind records that a certificate issued by the bank CA belongs to a
// customer's token.
func (s *Service) Bind(ctx context.Context, b *Binding) error {
	_, err := s.db.Exec(ctx, `INSERT INTO ushield_tokens (cert_serial, passport_id, generation, token_label, token_serial, key_id, status, enrolled_ms)
		VALUES (?, ?, ?, ?, ?, ?, 'active', ?)`, b.CertSerial, b.PassportID, b.Generation, b.TokenLabel, b.TokenSerial, b.KeyID, s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("binding the U-shield to %s: %w", b.PassportID, err)
	}
	return nil
}

// ReportLost marks the customer's token lost and revokes its certificate;
// the next Verify refuses it.
func (s *Service) ReportLost(ctx context.Context, passportID, certSerial string) error {
	res, err := s.db.Exec(ctx, `UPDATE ushield_tokens SET status = 'lost', lost_ms = ? WHERE cert_serial = ? AND passport_id = ?`,
		s.now().UnixMilli(), certSerial, passportID)
	if err != nil {
		return fmt.Errorf("reporting the U-shield lost: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("U-shield %s of %s: %w", certSerial, passportID, authn.ErrNotEnrolled)
	}
	return s.ca.Revoke(ctx, certSerial, ca.ReasonKeyCompromise)
}

// Tokens lists the customer's tokens.
func (s *Service) Tokens(ctx context.Context, passportID string) ([]Binding, error) {
	rows, err := s.db.Query(ctx, `SELECT cert_serial, generation, token_label, token_serial, key_id, status FROM ushield_tokens WHERE passport_id = ? ORDER BY enrolled_ms`, passportID)
	if err != nil {
		return nil, fmt.Errorf("listing U-shields: %w", err)
	}
	defer rows.Close()
	var out []Binding
	for rows.Next() {
		b := Binding{PassportID: passportID}
		var status string
		if err := rows.Scan(&b.CertSerial, &b.Generation, &b.TokenLabel, &b.TokenSerial, &b.KeyID, &status); err != nil {
			return nil, err
		}
		b.Lost = status != "active"
		out = append(out, b)
	}
	return out, rows.Err()
}

// Factor returns the authn.Factor of a generation (1: level 4, 2: level 5).
func (s *Service) Factor(generation int) authn.Factor {
	if generation == 2 {
		return &factor{s: s, gen: 2, name: NameGen2, level: 5}
	}
	return &factor{s: s, gen: 1, name: NameGen1, level: 4}
}

type factor struct {
	s     *Service
	gen   int
	name  string
	level authn.Level
}

func (f *factor) Name() string       { return f.name }
func (f *factor) Level() authn.Level { return f.level }

func (f *factor) Enrolled(ctx context.Context, passportID string) (bool, error) {
	var n int
	err := f.s.db.QueryRow(ctx, `SELECT COUNT(*) FROM ushield_tokens WHERE passport_id = ? AND status = 'active' AND generation >= ?`, passportID, f.gen).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("checking U-shield enrollment: %w", err)
	}
	return n > 0, nil
}

// SignedText returns the bytes a token signs (and a 2nd-generation token
// shows) for a text and a nonce.
func SignedText(text string, nonce []byte) []byte {
	return []byte(text + "\nChallenge: " + strings.ToUpper(hex.EncodeToString(nonce)))
}

func validText(s string) bool {
	if s == "" || len(s) > MaxTxText || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' || r == 0x7f {
			return false
		}
	}
	return true
}

func (f *factor) Begin(ctx context.Context, req authn.BeginRequest) (authn.Challenge, error) {
	text, err := ChallengeText(req, "U-shield")
	if err != nil {
		return authn.Challenge{}, err
	}
	ok, err := f.Enrolled(ctx, req.PassportID)
	if err != nil {
		return authn.Challenge{}, err
	}
	if !ok {
		return authn.Challenge{}, fmt.Errorf("%s: %w", f.name, authn.ErrNotEnrolled)
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	now := f.s.now()
	rec := &challenge.Record{Factor: f.name, PassportID: req.PassportID, Purpose: req.Purpose, TxHash: req.TxHash,
		Data: SignedText(text, nonce), ExpiresAt: now.Add(f.s.TTL), CreatedAt: now}
	if err := f.s.ch.Create(ctx, rec); err != nil {
		return authn.Challenge{}, err
	}
	prompt := "Insert your U-shield and sign with it"
	if f.gen == 2 {
		prompt = "Check the transaction on your U-shield's display and press its confirm button"
	}
	return authn.Challenge{ID: rec.ID, Factor: f.name, Prompt: prompt, Data: rec.Data, ExpiresAt: rec.ExpiresAt}, nil
}

// Verify checks a proof; see the package doc for the order of checks. A
// refused proof leaves the challenge usable (until it expires).
func (f *factor) Verify(ctx context.Context, req authn.VerifyRequest) (authn.Result, error) {
	p, err := pkcs11token.DecodeProof(req.Response)
	if err != nil {
		return authn.Result{}, fmt.Errorf("%w: %w", authn.ErrBadResponse, err)
	}
	rec, err := f.s.ch.Open(ctx, f.name, req)
	if err != nil {
		return authn.Result{}, err
	}
	if f.gen == 2 && !p.Confirmed {
		return authn.Result{}, fmt.Errorf("%w: the proof does not say the customer confirmed on the device", authn.ErrWrongAnswer)
	}
	if err := f.s.check(ctx, f.gen, req.PassportID, p, rec.Data); err != nil {
		return authn.Result{}, err
	}
	if err := f.s.ch.Consume(ctx, f.name, req.PassportID, req.ChallengeID); err != nil {
		return authn.Result{}, err
	}
	return authn.Result{Factor: f.name, Level: f.level, AMR: "hwk", ConfirmedOnDevice: f.gen == 2}, nil
}

// parseCert parses a certificate, from a cache of certificates already seen
// (the DER's SHA-256 is the key; a cached value is immutable).
func (s *Service) parseCert(der []byte) (*x509.Certificate, error) {
	h := sha256.Sum256(der)
	if c, ok := s.certs.Load(h); ok {
		return c.(*x509.Certificate), nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: the certificate does not parse", authn.ErrBadResponse)
	}
	if s.ncerts.Add(1) > maxCachedCerts {
		s.certs.Clear()
		s.ncerts.Store(0)
	}
	s.certs.Store(h, cert)
	return cert, nil
}

const maxCachedCerts = 100000

// bindingStmt is the binding and revocation lookup of every Verify,
// prepared once (it is on the hot path; see BenchmarkUShieldVerify).
func (s *Service) bindingStmt(ctx context.Context) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if s.stmt != nil {
		return s.stmt, nil
	}
	const q = `SELECT u.passport_id, u.generation, u.status, c.revoked_ms FROM ushield_tokens u
		JOIN ca_certs c ON c.serial = u.cert_serial WHERE u.cert_serial = ?`
	st, err := s.db.Reader().PrepareContext(ctx, s.db.Rebind(q)) // a read: on SQLite's readers, beside the writer
	if err != nil {
		return nil, err
	}
	s.stmt = st
	return st, nil
}

// check verifies a decoded proof over data for the customer, without
// touching the challenge.
func (s *Service) check(ctx context.Context, gen int, passportID string, p pkcs11token.Proof, data []byte) error {
	cert, err := s.parseCert(p.CertDER)
	if err != nil {
		return err
	}
	if err := s.ca.VerifyChain(cert); err != nil {
		if errors.Is(err, ca.ErrCertExpired) {
			return fmt.Errorf("%w: %w", authn.ErrRevoked, err)
		}
		return fmt.Errorf("%w: %w", authn.ErrWrongAnswer, err)
	}
	var owner, status string
	var generation int
	var revoked sql.NullInt64
	stmt, err := s.bindingStmt(ctx)
	if err != nil {
		return fmt.Errorf("checking the U-shield binding: %w", err)
	}
	err = stmt.QueryRowContext(ctx, ca.SerialHex(cert.SerialNumber)).Scan(&owner, &generation, &status, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: the certificate is not bound to a U-shield", authn.ErrNotEnrolled)
	}
	if err != nil {
		return fmt.Errorf("checking the U-shield binding: %w", err)
	}
	if owner != passportID {
		return fmt.Errorf("%w: the U-shield belongs to another customer", authn.ErrWrongAnswer)
	}
	if status != "active" || revoked.Valid {
		return fmt.Errorf("%w: %w", authn.ErrRevoked, ca.ErrCertRevoked)
	}
	if generation < gen {
		return fmt.Errorf("%w: %w", authn.ErrWrongAnswer, ErrGeneration)
	}
	if err := pkcs11token.VerifySignature(cert.PublicKey, data, p.Sig); err != nil {
		return fmt.Errorf("%w: %w", authn.ErrWrongAnswer, err)
	}
	return nil
}
