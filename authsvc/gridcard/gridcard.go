// Package gridcard is the printed matrix card factor (level 2): a card of
// Cols × Rows cells (A–H × 1–10 by default) each holding a random 3-digit
// code. The codes are stored sealed by the HSM's secret-wrapping key (the
// sealed blob is bound to the card serial); a challenge asks for 3 distinct
// random cells and is single use; a card stops working after MaxUses
// successful answers; wrong answers count toward a lockout that only the
// bank lifts (issuing a new card).
//
// Single use and lockout are atomic: Verify first claims the challenge (one
// UPDATE … WHERE used_ms IS NULL; a wrong answer releases it so the customer
// may correct a typo), then reserves an attempt with one UPDATE … WHERE
// attempts < max_attempts before comparing, so concurrent wrong answers (on
// any number of replicas) never get more than MaxAttempts comparisons. A
// right answer resets the counter.
package gridcard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/challenge"
	"github.com/egate-bank/egate/internal/store"
)

// Name is the factor's name.
const Name = "gridcard"

// SealKeyLabel is the HSM key that seals the codes (AES-GCM, Seal and
// Unseal): egate-secrets-wrap (devices/hsm LabelSecretsWrap), never the
// seed-wrap key, which cannot encrypt.
const SealKeyLabel = "egate-secrets-wrap"

// Sealer seals and unseals secrets with an HSM key (devices/hsm.Service).
type Sealer interface {
	Seal(ctx context.Context, keyLabel string, plaintext, aad []byte) ([]byte, error)
	Unseal(ctx context.Context, keyLabel string, sealed, aad []byte) ([]byte, error)
}

// Config of cards and challenges.
type Config struct {
	Cols        int           // 8 (A–H); at most 26
	Rows        int           // 10; at most 99
	Cells       int           // cells asked per challenge: 3
	MaxUses     int           // successful answers before the card expires: 200
	MaxAttempts int           // wrong answers before lockout: 5
	TTL         time.Duration // challenge lifetime: 3 minutes
}

func (c *Config) defaults() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Cols, 8)
	def(&c.Rows, 10)
	def(&c.Cells, 3)
	def(&c.MaxUses, 200)
	def(&c.MaxAttempts, 5)
	if c.TTL == 0 {
		c.TTL = 3 * time.Minute
	}
	if c.Cols < 2 || c.Cols > 26 || c.Rows < 2 || c.Rows > 99 || c.Cells < 1 || c.Cells > c.Cols*c.Rows || c.MaxUses < 1 || c.MaxAttempts < 1 {
		return fmt.Errorf("gridcard config: %+v out of range", *c)
	}
	return nil
}

// Errors beyond authn's.
var (
	ErrExhausted = errors.New("the grid card has reached its number of uses; ask the bank for a new card")
)

// Service issues cards and is the factor.
type Service struct {
	db     *store.DB
	sealer Sealer
	ch     *challenge.Store
	now    func() time.Time
	cfg    Config
}

// New returns the service.
func New(db *store.DB, sealer Sealer, cfg Config, now func() time.Time) (*Service, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, sealer: sealer, ch: challenge.New(db, now), now: now, cfg: cfg}, nil
}

// Card is an issued card, with its codes in clear: only Issue returns one,
// for printing.
type Card struct {
	Serial     string
	PassportID string
	Cols, Rows int
	Codes      []string // row-major: Codes[r*Cols+c] is cell (c, r)
	IssuedAt   time.Time
}

// Code returns the code of a cell like "B3".
func (c *Card) Code(cell string) (string, bool) {
	col, row, ok := parseCell(cell, c.Cols, c.Rows)
	if !ok {
		return "", false
	}
	return c.Codes[row*c.Cols+col], true
}

func randInt(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return int(v.Int64())
}

func aad(serial string) []byte { return []byte("egate gridcard " + serial) }

// Issue makes a new card for the customer; their earlier cards stop working.
func (s *Service) Issue(ctx context.Context, passportID string) (*Card, error) {
	if passportID == "" {
		return nil, fmt.Errorf("issuing a grid card: no customer")
	}
	card := &Card{PassportID: passportID, Cols: s.cfg.Cols, Rows: s.cfg.Rows, IssuedAt: s.now()}
	var sb strings.Builder
	for i := 0; i < 12; i++ {
		sb.WriteByte(byte('0' + randInt(10)))
	}
	card.Serial = sb.String()
	var plain strings.Builder
	for i := 0; i < card.Cols*card.Rows; i++ {
		code := fmt.Sprintf("%03d", randInt(1000))
		card.Codes = append(card.Codes, code)
		plain.WriteString(code)
	}
	sealed, err := s.sealer.Seal(ctx, SealKeyLabel, []byte(plain.String()), aad(card.Serial))
	if err != nil {
		return nil, fmt.Errorf("sealing the grid card: %w", err)
	}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE gridcards SET status = 'revoked' WHERE passport_id = ? AND status = 'active'`, passportID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO gridcards (serial, passport_id, cols, rows_n, sealed, uses, max_uses, attempts, max_attempts, status, issued_ms)
			VALUES (?, ?, ?, ?, ?, 0, ?, 0, ?, 'active', ?)`, card.Serial, passportID, card.Cols, card.Rows, sealed, s.cfg.MaxUses, s.cfg.MaxAttempts, card.IssuedAt.UnixMilli())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("storing the grid card: %w", err)
	}
	return card, nil
}

// Factor returns the authn.Factor.
func (s *Service) Factor() authn.Factor { return factor{s} }

type factor struct{ s *Service }

func (factor) Name() string       { return Name }
func (factor) Level() authn.Level { return 2 }

// CountsOwnFailures: the grid card's one lockout counter is the card's own
// (attempts of max_attempts; a new card lifts it), at login and for
// transactions alike (authn.Counted).
func (factor) CountsOwnFailures() bool { return true }

type cardRow struct {
	serial                         string
	cols, rows                     int
	uses, maxUses, attempts, maxAt int
	sealed                         []byte
}

func (s *Service) active(ctx context.Context, passportID string) (*cardRow, error) {
	var c cardRow
	err := s.db.QueryRow(ctx, `SELECT serial, cols, rows_n, uses, max_uses, attempts, max_attempts, sealed FROM gridcards
		WHERE passport_id = ? AND status = 'active'`, passportID).
		Scan(&c.serial, &c.cols, &c.rows, &c.uses, &c.maxUses, &c.attempts, &c.maxAt, &c.sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("grid card: %w", authn.ErrNotEnrolled)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the grid card: %w", err)
	}
	return &c, nil
}

func (c *cardRow) usable() error {
	if c.attempts >= c.maxAt {
		return &authn.LockedError{Factor: "grid card"}
	}
	if c.uses >= c.maxUses {
		return fmt.Errorf("%w: %w", authn.ErrRevoked, ErrExhausted)
	}
	return nil
}

func (f factor) Enrolled(ctx context.Context, passportID string) (bool, error) {
	c, err := f.s.active(ctx, passportID)
	if errors.Is(err, authn.ErrNotEnrolled) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return c.usable() == nil, nil
}

func cellName(col, row int) string { return string(rune('A'+col)) + strconv.Itoa(row+1) }

func parseCell(s string, cols, rows int) (col, row int, ok bool) {
	if len(s) < 2 || s[0] < 'A' || int(s[0]-'A') >= cols {
		return 0, 0, false
	}
	n, err := strconv.Atoi(s[1:])
	if err != nil || n < 1 || n > rows || strconv.Itoa(n) != s[1:] {
		return 0, 0, false
	}
	return int(s[0] - 'A'), n - 1, true
}

func (f factor) Begin(ctx context.Context, req authn.BeginRequest) (authn.Challenge, error) {
	s := f.s
	if req.Purpose != authn.PurposeLogin && req.Purpose != authn.PurposeTransaction {
		return authn.Challenge{}, fmt.Errorf("grid card challenge: unknown purpose %q", req.Purpose)
	}
	c, err := s.active(ctx, req.PassportID)
	if err != nil {
		return authn.Challenge{}, err
	}
	if err := c.usable(); err != nil {
		return authn.Challenge{}, err
	}
	picked := map[int]bool{}
	var cells []string
	for len(cells) < s.cfg.Cells && len(cells) < c.cols*c.rows {
		i := randInt(c.cols * c.rows)
		if picked[i] {
			continue
		}
		picked[i] = true
		cells = append(cells, cellName(i%c.cols, i/c.cols))
	}
	now := s.now()
	rec := &challenge.Record{Factor: Name, PassportID: req.PassportID, Purpose: req.Purpose, TxHash: req.TxHash,
		Secret: []byte(strings.Join(cells, ",")), Ref: c.serial, CreatedAt: now, ExpiresAt: now.Add(s.cfg.TTL)}
	if err := s.ch.Create(ctx, rec); err != nil {
		return authn.Challenge{}, err
	}
	prompt := fmt.Sprintf("Enter the codes of cells %s of your grid card ending %s", strings.Join(cells, ", "), c.serial[len(c.serial)-4:])
	return authn.Challenge{ID: rec.ID, Factor: Name, Prompt: prompt, Data: []byte(strings.Join(cells, ",")), ExpiresAt: rec.ExpiresAt}, nil
}

// normalise accepts the codes with optional spaces, commas or dashes between them.
func normalise(b []byte, n int) (string, bool) {
	var out []byte
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			out = append(out, c)
		case c == ' ' || c == ',' || c == '-':
		default:
			return "", false
		}
	}
	return string(out), len(out) == 3*n
}

func (f factor) Verify(ctx context.Context, req authn.VerifyRequest) (authn.Result, error) {
	s := f.s
	rec, err := s.ch.Open(ctx, Name, req)
	if err != nil {
		return authn.Result{}, err
	}
	cells := strings.Split(string(rec.Secret), ",")
	answer, ok := normalise(req.Response, len(cells))
	if !ok {
		return authn.Result{}, fmt.Errorf("%w: give the %d three-digit codes in the order asked", authn.ErrBadResponse, len(cells))
	}
	// Claim the challenge: one answer per challenge is checked at a time,
	// and a right answer keeps it used.
	if err := s.ch.Consume(ctx, Name, req.PassportID, req.ChallengeID); err != nil {
		return authn.Result{}, err
	}
	release := func() { s.ch.Release(context.WithoutCancel(ctx), Name, req.PassportID, req.ChallengeID) }
	// Reserve an attempt before comparing.
	var attempts int
	err = s.db.QueryRow(ctx, `UPDATE gridcards SET attempts = attempts + 1
		WHERE serial = ? AND passport_id = ? AND status = 'active' AND attempts < max_attempts AND uses < max_uses
		RETURNING attempts`, rec.Ref, req.PassportID).Scan(&attempts)
	if errors.Is(err, sql.ErrNoRows) {
		release()
		c, aerr := s.active(ctx, req.PassportID)
		if aerr != nil || c.serial != rec.Ref {
			return authn.Result{}, fmt.Errorf("grid card: %w", authn.ErrRevoked)
		}
		if uerr := c.usable(); uerr != nil {
			return authn.Result{}, uerr
		}
		return authn.Result{}, fmt.Errorf("grid card: %w", authn.ErrLocked)
	}
	if err != nil {
		release()
		return authn.Result{}, fmt.Errorf("counting the grid card attempt: %w", err)
	}
	c, err := s.active(ctx, req.PassportID)
	if err != nil {
		release()
		return authn.Result{}, err
	}
	plain, err := s.sealer.Unseal(ctx, SealKeyLabel, c.sealed, aad(c.serial))
	if err != nil {
		// The HSM failed: nothing was checked, so the attempt is given
		// back with the challenge and the customer tries again.
		release()
		err = fmt.Errorf("%w: unsealing the grid card: %w", authn.ErrUnavailable, err)
		if _, gerr := s.db.Exec(context.WithoutCancel(ctx), `UPDATE gridcards SET attempts = attempts - 1 WHERE serial = ? AND attempts > 0`, c.serial); gerr != nil {
			return authn.Result{}, fmt.Errorf("%w (and giving back the attempt: %w)", err, gerr)
		}
		return authn.Result{}, err
	}
	var want strings.Builder
	for _, cell := range cells {
		col, row, ok := parseCell(cell, c.cols, c.rows)
		if !ok || len(plain) != 3*c.cols*c.rows {
			release()
			return authn.Result{}, fmt.Errorf("grid card: stored challenge or card is inconsistent")
		}
		i := 3 * (row*c.cols + col)
		want.Write(plain[i : i+3])
	}
	clear(plain)
	if subtle.ConstantTimeCompare([]byte(want.String()), []byte(answer)) != 1 {
		release()
		if attempts >= c.maxAt {
			return authn.Result{}, fmt.Errorf("%w; %w", authn.ErrWrongAnswer, &authn.LockedError{Factor: "grid card"})
		}
		return authn.Result{}, &authn.WrongAnswerError{Tool: "grid card", Left: c.maxAt - attempts}
	}
	// Count the use only while the card has uses left: two right answers
	// to two challenges at once must not take a card past MaxUses.
	res, err := s.db.Exec(ctx, `UPDATE gridcards SET attempts = 0, uses = uses + 1 WHERE serial = ? AND uses < max_uses`, c.serial)
	if err != nil {
		return authn.Result{}, fmt.Errorf("counting the grid card use: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return authn.Result{}, fmt.Errorf("counting the grid card use: %w", err)
	} else if n == 0 {
		// A parallel answer took the last use; this right answer is no
		// failure, so its attempt is given back.
		if _, err := s.db.Exec(ctx, `UPDATE gridcards SET attempts = attempts - 1 WHERE serial = ? AND attempts > 0`, c.serial); err != nil {
			return authn.Result{}, fmt.Errorf("grid card: %w: %w (and giving back the attempt: %w)", authn.ErrRevoked, ErrExhausted, err)
		}
		return authn.Result{}, fmt.Errorf("grid card: %w: %w", authn.ErrRevoked, ErrExhausted)
	}
	return authn.Result{Factor: Name, Level: 2, AMR: "otp"}, nil
}
