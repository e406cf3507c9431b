package oath

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/internal/store"
)

// The verification hot path (POST /v1/otp/verify) in two statements when
// all is well:
//
//  1. count-and-load: one UPDATE … SET failures = failures + 1 … RETURNING
//     the token's columns. The attempt is committed before any code is
//     compared, exactly as reserve does; the WHERE clause holds every
//     condition under which reserve would take the attempt (active, not
//     expired, an HOTP/TOTP token, a code of the token's length, below
//     MaxFailures, not locked, and the lookup naming exactly one token).
//  2. the replay ledger: advance (UPDATE … WHERE counter <= accepted), or
//     failed on a wrong code.
//
// When the first statement changes no row, nothing was counted and the
// request takes the general path (look up, check, reserve), which names
// the precise reason: unknown, ambiguous, revoked, expired, locked, OCRA,
// malformed. The fast path decides nothing the general path would not.
//
// Statements are prepared once per Service (per connection, by
// database/sql); SQLite would otherwise parse every statement again.

// Lookup names the token a code is for: its serial (with the key id when
// the device holds several keys), or the customer whose one HOTP/TOTP token
// it is. Exactly one of Serial and PassportID is set.
type Lookup struct {
	Serial     string
	KeyID      string
	PassportID string
	id         string // the token's row id (a challenge's token); the others empty
}

const countAndLoadSet = `UPDATE otp_tokens SET failures = failures + 1
 WHERE status = 'active' AND kind IN ('hotp', 'totp') AND digits = ? AND (not_after_ms = 0 OR not_after_ms >= ?) AND not_before_ms <= ? AND pin_mode = ''
 AND failures < ? AND locked_until_ms = 0 AND `

// verifyCols are the columns compare needs (each column read costs time in
// the SQLite driver, so not all of tokenCols).
const verifyCols = `id, serial, kind, hash, digits, period_s, t0, wrap_label, wrapped, counter, drift`

var (
	qCountBySerialKey = countAndLoadSet + `serial = ? AND key_id = ? RETURNING ` + verifyCols
	// Without a key id the serial must name one key, as in TokenBySerial.
	qCountBySerial = countAndLoadSet + `serial = ? AND (SELECT COUNT(*) FROM otp_tokens o WHERE o.serial = ?) = 1 RETURNING ` + verifyCols
	// The customer's one active HOTP/TOTP token, as in TokenOf.
	qCountByPassport = countAndLoadSet + `passport_id = ? AND (SELECT COUNT(*) FROM otp_tokens o WHERE o.passport_id = ? AND o.status = 'active' AND o.kind IN ('hotp', 'totp')) = 1 RETURNING ` + verifyCols
	// The token a challenge names.
	qCountByID = countAndLoadSet + `id = ? RETURNING ` + verifyCols
)

// scanVerifyToken reads verifyCols: an active, unexpired HOTP/TOTP token
// whose attempt was just counted.
func scanVerifyToken(r scanner) (*Token, error) {
	var (
		t              Token
		kind, hash     string
		digits, period int
		t0, counter    int64
	)
	if err := r.Scan(&t.ID, &t.Serial, &kind, &hash, &digits, &period, &t0, &t.wrapLabel, &t.wrapped, &counter, &t.Drift); err != nil {
		return nil, err
	}
	h, err := otp.ParseHash(hash)
	if err != nil {
		return nil, fmt.Errorf("token %s: %w", t.Serial, err)
	}
	t.Params = otp.Params{Kind: otp.Kind(kind), Hash: h, Digits: digits, Period: time.Duration(period) * time.Second, T0: t0}
	t.Counter = uint64(counter)
	t.Status = "active"
	return &t, nil
}

// VerifyCode finds the token l names and verifies code (HOTP or TOTP). It
// gives the same answers as looking the token up and calling Verify.
func (s *Service) VerifyCode(ctx context.Context, l Lookup, code string) (Accepted, error) {
	if (l.Serial == "") == (l.PassportID == "") {
		return Accepted{}, fmt.Errorf("%w: give exactly one of a serial and a passport id", ErrMalformed)
	}
	t, err := s.countAndLoad(ctx, l, code)
	if err != nil {
		return Accepted{}, err
	}
	if t != nil {
		return s.compare(ctx, t, code, "", nil)
	}
	if l.Serial != "" {
		t, err = s.TokenBySerial(ctx, l.Serial, l.KeyID)
	} else {
		t, err = s.TokenOf(ctx, l.PassportID, otp.KindHOTP, otp.KindTOTP)
	}
	if err != nil {
		return Accepted{}, err
	}
	return s.Verify(ctx, t, code)
}

// countAndLoad takes one attempt on the token l names and returns it, or
// nil (and changes nothing) when the general path must decide: code is not
// 4 to 10 digits, or the token is not one the fast path takes.
func (s *Service) countAndLoad(ctx context.Context, l Lookup, code string) (*Token, error) {
	return s.countAndLoadTx(ctx, nil, l, code)
}

// fastCode reports whether code is one the fast path takes (4 to 10
// digits); any other goes to the general path.
func fastCode(code string) bool {
	return otp.ValidCode(code, len(code)) && len(code) >= 4 && len(code) <= 10
}

// countAndLoadTx is countAndLoad inside tx (nil: on its own).
func (s *Service) countAndLoadTx(ctx context.Context, tx *store.Tx, l Lookup, code string) (*Token, error) {
	if !fastCode(code) {
		return nil, nil
	}
	var (
		q    string
		args = make([]any, 0, 6)
	)
	now := s.now().UnixMilli()
	args = append(args, len(code), now, now, s.cfg.MaxFailures)
	switch {
	case l.id != "":
		q = qCountByID
		args = append(args, l.id)
	case l.Serial != "" && l.KeyID != "":
		q = qCountBySerialKey
		args = append(args, l.Serial, l.KeyID)
	case l.Serial != "":
		q = qCountBySerial
		args = append(args, l.Serial, l.Serial)
	default:
		q = qCountByPassport
		args = append(args, l.PassportID, l.PassportID)
	}
	ctx, err := s.countCtx(ctx)
	if err != nil {
		return nil, fmt.Errorf("recording an attempt: %w", err)
	}
	var row *sql.Row
	if tx != nil {
		row = tx.QueryRow(ctx, q, args...)
	} else {
		st, err := s.prepared(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("recording an attempt: %w", err)
		}
		row = st.QueryRowContext(ctx, args...)
	}
	t, err := scanVerifyToken(row)
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("recording an attempt: %w", err)
	}
	return t, nil
}

// Contexts of the statements of a verification.
//
// The bookkeeping after the HSM has computed the codes (the ledger's
// advance, a failure and its lockout) must not be cut short by the client
// going away: a failure recorded without its lockout's end would leave the
// token locked until an operator unlocks it. It runs detached from the
// request's cancellation, bounded by bookkeepingTimeout on PostgreSQL (a
// network database) and by SQLite's busy_timeout on SQLite (a local file).
//
// The count-and-load statement follows the request on PostgreSQL. On SQLite
// it is refused if the request is already over and otherwise runs to its
// end: watching a cancellable context costs the SQLite driver and
// database/sql a goroutine each per statement, a measurable share of a
// verification (BenchmarkOTPVerify), for a statement that changes one row of
// a local file and cannot wait longer than busy_timeout.

// bookkeepingTimeout bounds a detached statement on PostgreSQL.
const bookkeepingTimeout = 10 * time.Second

func (s *Service) bookkeepingCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	d := context.WithoutCancel(ctx)
	if s.db.Driver() == store.SQLite {
		return d, func() {}
	}
	return context.WithTimeout(d, bookkeepingTimeout)
}

func (s *Service) countCtx(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.db.Driver() == store.SQLite {
		return context.WithoutCancel(ctx), nil
	}
	return ctx, nil
}

// stmtCache holds the statements of the hot path, prepared on first use.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// prepared returns q (with ? placeholders) prepared on the database. The
// lock is not held while preparing (a round trip on PostgreSQL); of two
// goroutines preparing the same statement at once, the first one stored wins.
func (s *Service) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	s.stmts.mu.Lock()
	st, ok := s.stmts.m[q]
	s.stmts.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, s.db.Rebind(q))
	if err != nil {
		return nil, err
	}
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	if won, ok := s.stmts.m[q]; ok {
		st.Close()
		return won, nil
	}
	if s.stmts.m == nil {
		s.stmts.m = make(map[string]*sql.Stmt)
	}
	s.stmts.m[q] = st
	return st, nil
}

// Close releases the prepared statements (the database stays open). The
// Service prepares them again if it is used after Close.
func (s *Service) Close() error {
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	var first error
	for q, st := range s.stmts.m {
		if err := st.Close(); err != nil && first == nil {
			first = err
		}
		delete(s.stmts.m, q)
	}
	return first
}
