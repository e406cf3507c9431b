package oath

import (
	"context"
	"crypto"
	"crypto/hmac"
	"errors"
	"fmt"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/challenge"
	"github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/store"
)

// Accepted says what a verification consumed.
type Accepted struct {
	Serial string
	// Counter is the HOTP/OCRA counter or TOTP time step that was accepted;
	// the ledger now refuses it and everything before it.
	Counter uint64
}

func (s *Service) usable(t *Token) error {
	if t.Status != "active" {
		return fmt.Errorf("token %s: %w", t.Serial, ErrRevoked)
	}
	if !t.NotAfter.IsZero() && s.now().After(t.NotAfter) {
		return fmt.Errorf("token %s expired on %s: %w", t.Serial, t.NotAfter.UTC().Format(time.DateOnly), ErrRevoked)
	}
	if !t.NotBefore.IsZero() && s.now().Before(t.NotBefore) {
		return fmt.Errorf("token %s is not valid before %s (the vendor file's StartDate): %w", t.Serial, t.NotBefore.UTC().Format(time.RFC3339), ErrRevoked)
	}
	return nil
}

// pinMessage is what the HSM MACs with a token's seed to check the PIN
// typed with its codes; the prefix keeps it apart from every HOTP, TOTP
// (8-byte counter) and OCRA ("OCRA-1:…") message.
func pinMessage(pin string) []byte {
	return append([]byte("egate-otp-pin-v1\x00"), pin...)
}

// splitCode separates the OTP from the PIN of a token whose PIN the server
// checks (PSKC PINUsageMode Append: code then PIN; Prepend: PIN then code).
// Without a PIN mode the whole input is the code.
func splitCode(t *Token, input string) (code, pin string, err error) {
	if t.PINMode == "" {
		if !otp.ValidCode(input, t.Params.Digits) {
			return "", "", fmt.Errorf("%w: the code must be %d digits", ErrMalformed, t.Params.Digits)
		}
		return input, "", nil
	}
	d := t.Params.Digits
	if !otp.ValidCode(input, len(input)) || len(input) < d+t.PINMin || len(input) > d+t.PINMax {
		where := "followed by"
		if t.PINMode == pskc.PINPrepend {
			where = "before"
		}
		return "", "", fmt.Errorf("%w: token %s needs the %d-digit code %s its PIN (%d to %d digits)", ErrMalformed, t.Serial, d, where, t.PINMin, t.PINMax)
	}
	if t.PINMode == pskc.PINPrepend {
		return input[len(input)-d:], input[:len(input)-d], nil
	}
	return input[:d], input[d:], nil
}

// pinOK checks the PIN in the HSM. A token without a PIN mode has none to
// check.
func (s *Service) pinOK(ctx context.Context, t *Token, pin string) (bool, error) {
	if t.PINMode == "" {
		return true, nil
	}
	if len(t.pinMAC) == 0 {
		return false, fmt.Errorf("token %s: PIN mode %s but no PIN stored", t.Serial, t.PINMode)
	}
	macs, err := s.macOf(t).MAC(ctx, t.Params.Hash, [][]byte{pinMessage(pin)})
	if err != nil {
		return false, err
	}
	return len(macs) == 1 && hmac.Equal(macs[0], t.pinMAC), nil
}

// reserve counts one attempt before any code is compared, so parallel
// guesses cannot exceed MaxFailures; success clears the count.
func (s *Service) reserve(ctx context.Context, t *Token) error {
	var n int
	err := s.db.QueryRow(ctx, `UPDATE otp_tokens SET failures = failures + 1 WHERE id = ? AND failures < ? AND locked_until_ms = 0 RETURNING failures`,
		t.ID, s.cfg.MaxFailures).Scan(&n)
	if err == nil {
		t.Failures = n
		return nil
	}
	if !isNoRows(err) {
		return fmt.Errorf("recording an attempt: %w", err)
	}
	now := s.now().UnixMilli()
	// A lockout that has run out: clear it and take this attempt, atomically.
	err = s.db.QueryRow(ctx, `UPDATE otp_tokens SET failures = 1, locked_until_ms = 0 WHERE id = ? AND locked_until_ms > 0 AND locked_until_ms <= ? RETURNING failures`,
		t.ID, now).Scan(&n)
	if err == nil {
		t.Failures = n
		return nil
	}
	if !isNoRows(err) {
		return fmt.Errorf("recording an attempt: %w", err)
	}
	var until int64
	if err := s.db.QueryRow(ctx, `SELECT locked_until_ms FROM otp_tokens WHERE id = ?`, t.ID).Scan(&until); err != nil {
		return fmt.Errorf("reading lockout: %w", err)
	}
	le := &authn.LockedError{Factor: "token " + t.Serial}
	switch {
	case until > 0:
		le.Until = time.UnixMilli(until)
	case until == 0:
		// The failure that locked is being recorded, or its lockout never
		// was (a process that stopped between counting and recording):
		// record it now, so the lockout runs out as configured.
		if err := s.failed(ctx, t); err != nil {
			return err
		}
		if s.cfg.LockFor > 0 {
			le.Until = s.now().Add(s.cfg.LockFor)
		}
	}
	return le
}

// unreserve gives back the attempt reserve (or count-and-load) took when
// the code could not be checked (the HSM failed): an attempt that checked
// nothing is no failure. The guards keep a lockout in place and the count
// from going below zero.
func (s *Service) unreserve(ctx context.Context, t *Token, cause error) error {
	ctx, cancel := s.bookkeepingCtx(ctx)
	defer cancel()
	if _, err := s.db.Exec(ctx, `UPDATE otp_tokens SET failures = failures - 1 WHERE id = ? AND failures > 0 AND locked_until_ms = 0`, t.ID); err != nil {
		return fmt.Errorf("%w (and giving back the attempt: %w)", cause, err)
	}
	return cause
}

// unchecked is the error of a verification whose codes could not be
// computed: the attempt is given back and the error matches
// ErrUnavailable.
func (s *Service) unchecked(ctx context.Context, t *Token, err error) error {
	if !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return s.unreserve(ctx, t, fmt.Errorf("token %s: %w", t.Serial, err))
}

// wrong is the error of a wrong code whose failure was recorded: what is
// left of the token's counter (t.Failures is what reserve counted), and
// when the lock ends if this failure locked it.
func (s *Service) wrong(t *Token) error {
	we := &authn.WrongAnswerError{Tool: "token " + t.Serial, Left: max(s.cfg.MaxFailures-t.Failures, 0)}
	if we.Left == 0 && s.cfg.LockFor > 0 {
		we.Until = s.now().Add(s.cfg.LockFor)
	}
	return we
}

// failed records that the reserved attempt failed, locking at the limit.
func (s *Service) failed(ctx context.Context, t *Token) error {
	ctx, cancel := s.bookkeepingCtx(ctx)
	defer cancel()
	until := int64(-1)
	if s.cfg.LockFor > 0 {
		until = s.now().Add(s.cfg.LockFor).UnixMilli()
	}
	st, err := s.prepared(ctx, `UPDATE otp_tokens SET locked_until_ms = ? WHERE id = ? AND failures >= ? AND locked_until_ms = 0`)
	if err == nil {
		_, err = st.ExecContext(ctx, until, t.ID, s.cfg.MaxFailures)
	}
	if err != nil {
		return fmt.Errorf("recording a failure: %w", err)
	}
	return nil
}

// advance is the replay ledger: it accepts counter c (and everything before
// it) exactly once across all replicas, clearing the failures.
func (s *Service) advance(ctx context.Context, t *Token, c uint64, drift *int64) error {
	ctx, cancel := s.bookkeepingCtx(ctx)
	defer cancel()
	return s.advanceIn(ctx, nil, t, c, drift)
}

// advanceIn is advance's statement, inside tx (nil: on its own).
func (s *Service) advanceIn(ctx context.Context, tx *store.Tx, t *Token, c uint64, drift *int64) error {
	q := qAdvance
	args := []any{int64(c + 1), t.ID, int64(c)}
	if drift != nil {
		q = `UPDATE otp_tokens SET counter = ?, failures = 0, drift = ? WHERE id = ? AND counter <= ?`
		args = []any{int64(c + 1), *drift, t.ID, int64(c)}
	}
	exec := s.db.Exec
	if tx != nil {
		exec = tx.Exec
	}
	res, err := exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("recording the accepted code: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("token %s: %w", t.Serial, ErrReplay)
	}
	return nil
}

// qAdvance moves the replay ledger past an accepted counter.
const qAdvance = `UPDATE otp_tokens SET counter = ?, failures = 0 WHERE id = ? AND counter <= ?`

// Verify checks a code of an HOTP or TOTP token.
func (s *Service) Verify(ctx context.Context, t *Token, code string) (Accepted, error) {
	if err := s.usable(t); err != nil {
		return Accepted{}, err
	}
	if t.Params.Kind != otp.KindHOTP && t.Params.Kind != otp.KindTOTP {
		return Accepted{}, fmt.Errorf("%w: token %s answers challenges (OCRA); start a challenge first", ErrMalformed, t.Serial)
	}
	code, pin, err := splitCode(t, code)
	if err != nil {
		return Accepted{}, err
	}
	if err := s.reserve(ctx, t); err != nil {
		return Accepted{}, err
	}
	return s.compare(ctx, t, code, pin, nil)
}

// compare checks code (and the PIN, for a token with a PIN mode) of an
// HOTP/TOTP token whose attempt is already counted, then moves the ledger
// (success) or records the failure. A wrong PIN and a wrong code give the
// same answer after the same HSM work. settle (may be nil) commits with
// the ledger's move (advanceSettled).
func (s *Service) compare(ctx context.Context, t *Token, code, pin string, settle func(context.Context, *store.Tx) error) (Accepted, error) {
	pinGood, err := s.pinOK(ctx, t, pin)
	if err != nil {
		return Accepted{}, err
	}
	from, n := s.window(t)
	codes, hit, err := s.windowCodes(ctx, t, from, n, code)
	if err != nil {
		return Accepted{}, s.unchecked(ctx, t, err)
	}
	match := -1
	for i, c := range codes { // compare all, in constant time each
		if otp.Equal(c, code) && match < 0 {
			match = i
		}
	}
	if hit >= 0 {
		match = hit
	}
	if match < 0 || !pinGood {
		if err := s.failed(ctx, t); err != nil {
			return Accepted{}, err
		}
		return Accepted{}, s.wrong(t)
	}
	c := from + uint64(match)
	if c < t.Counter {
		s.failed(ctx, t)
		return Accepted{}, fmt.Errorf("token %s: %w", t.Serial, ErrReplay)
	}
	if err := s.advanceSettled(ctx, t, c, settle); err != nil {
		var se *challenge.SettleError
		if !errors.As(err, &se) {
			s.failed(ctx, t)
		}
		return Accepted{}, err
	}
	return Accepted{Serial: t.Serial, Counter: c}, nil
}

// advanceSettled is advance with settle (nil: advance alone) in the same
// transaction. When settle fails, its work is rolled back and the ledger
// moved alone: the right code stays used up, and the error is a
// *challenge.SettleError.
func (s *Service) advanceSettled(ctx context.Context, t *Token, c uint64, settle func(context.Context, *store.Tx) error) error {
	if settle == nil {
		return s.advance(ctx, t, c, nil)
	}
	ctx, cancel := s.bookkeepingCtx(ctx)
	defer cancel()
	var settleErr error
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := s.advanceIn(ctx, tx, t, c, nil); err != nil {
			return err
		}
		settleErr = settle(ctx, tx)
		return settleErr
	})
	if settleErr == nil {
		return err
	}
	if err := s.advance(ctx, t, c, nil); err != nil {
		return err
	}
	return &challenge.SettleError{Err: settleErr}
}

// untilHSM is an HSM that stops a batch of HMACs early (devices/hsm).
type untilHSM interface {
	HMACWrappedUntil(ctx context.Context, wrapKeyLabel string, wrapped []byte, h crypto.Hash, msgs [][]byte, stop func(i int, mac []byte) bool) ([][]byte, error)
}

// windowCodes computes the codes of the window [from, from+n) in one HSM
// call. For a token without a PIN, when the HSM can stop early, the
// expected counter (HOTP: the ledger's next; TOTP: now's step, unless the
// ledger is past it) is computed first and, when its code is code, alone:
// hit is then its index in the window and codes is nil. A right code at
// the expected counter costs one HMAC instead of the window's; any other
// answer (wrong, replayed, ahead in the window) computes the whole window
// as before, so the time taken tells only what the answer says. A token
// with a PIN always computes the whole window: a wrong PIN and a wrong
// code must cost the same.
func (s *Service) windowCodes(ctx context.Context, t *Token, from uint64, n int, code string) (codes []string, hit int, err error) {
	hit = -1
	expected := t.Counter
	if t.Params.Kind == otp.KindTOTP {
		expected = uint64(int64(t.Params.TOTP().Step(s.now())) + t.Drift)
	}
	u, ok := s.hsm.(untilHSM)
	if !ok || t.PINMode != "" || expected < t.Counter || expected < from || expected >= from+uint64(n) {
		if t.Params.Kind == otp.KindHOTP {
			codes, err = otp.HOTPWindow(ctx, s.macOf(t), t.Params.Hash, from, n, t.Params.Digits)
		} else {
			codes, err = t.Params.TOTP().Codes(ctx, s.macOf(t), from, n)
		}
		return codes, hit, err
	}
	first := int(expected - from)
	// The expected counter first, then the window in order without it.
	msgs := make([][]byte, 0, n)
	msgs = append(msgs, otp.CounterMessage(expected))
	for i := range n {
		if i != first {
			msgs = append(msgs, otp.CounterMessage(from+uint64(i)))
		}
	}
	var truncErr error
	macs, err := u.HMACWrappedUntil(ctx, t.wrapLabel, t.wrapped, t.Params.Hash, msgs, func(i int, mac []byte) bool {
		if i != 0 {
			return false
		}
		c, err := otp.Truncate(mac, t.Params.Digits)
		truncErr = err
		return err == nil && otp.Equal(c, code)
	})
	if err != nil {
		return nil, hit, fmt.Errorf("%w: HSM HMAC: %w", authn.ErrUnavailable, err)
	}
	if truncErr != nil {
		return nil, hit, truncErr
	}
	if len(macs) == 1 && n > 1 {
		return nil, first, nil
	}
	if len(macs) != n {
		return nil, hit, fmt.Errorf("%w: HSM HMAC: %d values for %d messages", authn.ErrUnavailable, len(macs), n)
	}
	codes = make([]string, n)
	for j, mac := range macs {
		i := j // back in window order
		switch {
		case j == 0:
			i = first
		case j <= first:
			i = j - 1
		}
		if codes[i], err = otp.Truncate(mac, t.Params.Digits); err != nil {
			return nil, hit, err
		}
	}
	return codes, hit, nil
}

// window is the range of counters (HOTP) or steps (TOTP) to compute: the
// look-ahead window plus a little look-behind so that a replayed code is
// told apart from a wrong one.
func (s *Service) window(t *Token) (from uint64, n int) {
	if t.Params.Kind == otp.KindHOTP {
		from = t.Counter
		back := uint64(s.cfg.HOTPLookBehind)
		if from < back {
			back = from
		}
		return from - back, int(back) + s.cfg.HOTPWindow
	}
	step := int64(t.Params.TOTP().Step(s.now())) + t.Drift
	lo := step - int64(s.cfg.TOTPSteps)
	if lo < 0 {
		lo = 0
	}
	return uint64(lo), int(step+int64(s.cfg.TOTPSteps)-lo) + 1
}

// Resync finds two consecutive codes in a wide window and moves the token's
// counter (HOTP) or drift (TOTP) there. Codes before the ledger's mark are
// never accepted, so a resync cannot replay old codes.
func (s *Service) Resync(ctx context.Context, t *Token, code1, code2 string) (Accepted, error) {
	if err := s.usable(t); err != nil {
		return Accepted{}, err
	}
	if t.Params.Kind != otp.KindHOTP && t.Params.Kind != otp.KindTOTP {
		return Accepted{}, fmt.Errorf("%w: only HOTP and TOTP tokens are resynchronised", ErrMalformed)
	}
	code1, pin1, err1 := splitCode(t, code1)
	code2, pin2, err2 := splitCode(t, code2)
	if err1 != nil || err2 != nil {
		if t.PINMode != "" {
			return Accepted{}, fmt.Errorf("%w: each code must be %d digits with the token's PIN (%s)", ErrMalformed, t.Params.Digits, t.PINMode)
		}
		return Accepted{}, fmt.Errorf("%w: each code must be %d digits", ErrMalformed, t.Params.Digits)
	}
	if err := s.reserve(ctx, t); err != nil {
		return Accepted{}, err
	}
	pinGood, err := s.pinOK(ctx, t, pin1)
	if err != nil {
		return Accepted{}, err
	}
	pinGood = pinGood && pin1 == pin2
	var (
		from  uint64
		codes []string
		now   uint64
	)
	if t.Params.Kind == otp.KindHOTP {
		from = t.Counter
		codes, err = otp.HOTPWindow(ctx, s.macOf(t), t.Params.Hash, from, s.cfg.ResyncWindow+1, t.Params.Digits)
	} else {
		now = t.Params.TOTP().Step(s.now())
		lo := int64(now) - int64(s.cfg.ResyncWindow)
		if lo < int64(t.Counter) {
			lo = int64(t.Counter)
		}
		if lo < 0 {
			lo = 0
		}
		from = uint64(lo)
		hi := int64(now) + int64(s.cfg.ResyncWindow) + 1
		if hi <= lo {
			hi = lo + 1
		}
		codes, err = t.Params.TOTP().Codes(ctx, s.macOf(t), from, int(hi-lo)+1)
	}
	if err != nil {
		return Accepted{}, s.unchecked(ctx, t, err)
	}
	match := -1
	for i := 0; i+1 < len(codes); i++ {
		if otp.Equal(codes[i], code1) && otp.Equal(codes[i+1], code2) && match < 0 {
			match = i
		}
	}
	if match < 0 || !pinGood {
		if err := s.failed(ctx, t); err != nil {
			return Accepted{}, err
		}
		return Accepted{}, fmt.Errorf("token %s: %w (no two consecutive codes match)", t.Serial, ErrWrongCode)
	}
	second := from + uint64(match) + 1
	var drift *int64
	if t.Params.Kind == otp.KindTOTP {
		d := int64(second) - int64(now)
		drift = &d
	}
	// The first code must not have been used either: require counter <= first.
	if err := s.advanceResync(ctx, t, second-1, drift); err != nil {
		s.failed(ctx, t)
		return Accepted{}, err
	}
	return Accepted{Serial: t.Serial, Counter: second}, nil
}

func (s *Service) advanceResync(ctx context.Context, t *Token, first uint64, drift *int64) error {
	ctx, cancel := s.bookkeepingCtx(ctx)
	defer cancel()
	q := qAdvance
	args := []any{int64(first + 2), t.ID, int64(first)}
	if drift != nil {
		q = `UPDATE otp_tokens SET counter = ?, failures = 0, drift = ? WHERE id = ? AND counter <= ?`
		args = []any{int64(first + 2), *drift, t.ID, int64(first)}
	}
	res, err := s.db.Exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("recording the resync: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("token %s: %w", t.Serial, ErrReplay)
	}
	return nil
}
