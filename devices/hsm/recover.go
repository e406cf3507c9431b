package hsm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"
)

// health is the Service's view of the HSM: up, or down since a failure
// that a fresh session could not cure, with the time of the next attempt
// to reopen the module. See "Reopening an unreachable HSM" in the package
// doc.
type health struct {
	down  atomic.Bool
	dirty atomic.Bool   // reopened; the backoff is cleared by the next success
	turn  chan struct{} // one reopen at a time; guards the fields below
	cause error
	next  time.Time
	delay time.Duration
}

// suspect reports whether err may come from the HSM failing rather than
// from a verdict (a wrong type, a bad URI), bad configuration or the
// caller's context: only those send the Service to look at the token.
func suspect(err error) bool {
	for _, e := range []error{context.Canceled, context.DeadlineExceeded, ErrClosed, ErrUnavailable,
		ErrKeyType, ErrBadURI, ErrBadConfig, ErrPINIncorrect, ErrPINLocked, ErrOneWay} {
		if errors.Is(err, e) {
			return false
		}
	}
	return true
}

// guarded runs one operation (the body of do or c11do, with its own
// session-level recovery) under the read side of resetMu. An operation
// that fails in a way a verdict does not explain makes the Service ask
// the token for its info (a side-effect-free probe); if the module
// reported a device, token or general error, a lost session survived a
// fresh one, or the probe fails, the HSM is marked down and reopened at
// once (then with backoff), and the operation runs once more on the
// reopened module. A call that finds the HSM down and no attempt due
// fails at once with ErrUnavailable.
func (s *Service) guarded(ctx context.Context, op func() error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.inflight.Done()
	for attempt := 0; ; attempt++ {
		if s.h.down.Load() {
			if err := s.reopen(ctx); err != nil {
				return err
			}
		}
		s.resetMu.RLock()
		epoch := s.epoch
		err := op()
		s.resetMu.RUnlock()
		if err == nil {
			if s.h.dirty.Load() {
				s.settle()
			}
			return nil
		}
		if !suspect(err) {
			return err
		}
		if !deviceFault(err) && !errors.Is(err, ErrSessionLost) && s.probe() == nil {
			return err // the token answers: a verdict (no such key, a tampered blob), not a fault
		}
		if !s.markDown(err, epoch) {
			continue // the module was reopened meanwhile: the failure was the old one's
		}
		if attempt > 0 || ctx.Err() != nil {
			return &UnavailableError{Token: s.token, Err: err}
		}
	}
}

// probe asks the token for its info, which fails when the token is gone,
// unreachable or its module is not initialised.
func (s *Service) probe() error {
	s.resetMu.RLock()
	defer s.resetMu.RUnlock()
	return s.probeLocked()
}

func (s *Service) probeLocked() error {
	ti, err := s.p.GetTokenInfo(s.slot)
	if err != nil {
		return fmt.Errorf("token %q: C_GetTokenInfo: %w", s.token, err)
	}
	if l := strings.TrimRight(ti.Label, " \x00"); l != s.token {
		return fmt.Errorf("%w: the slot of token %q now holds %q", ErrTokenNotFound, s.token, l)
	}
	return nil
}

// markDown records that the HSM failed with cause in an operation that
// began in epoch (the count of reopenings then). The first reopen is due at
// once, unless the module was just reopened and failed again, in which
// case the current backoff applies. It reports false, and changes
// nothing, when the module was reopened since the operation began.
func (s *Service) markDown(cause error, epoch int64) bool {
	s.h.turn <- struct{}{}
	defer func() { <-s.h.turn }()
	if s.resets.Load() != epoch {
		return false
	}
	if s.h.down.Load() {
		return true
	}
	s.h.cause = cause
	s.h.next = s.now()
	if s.h.delay > 0 {
		s.h.next = s.h.next.Add(s.h.delay)
	}
	s.h.down.Store(true)
	return true
}

// settle clears the backoff after an operation succeeded on a reopened
// module.
func (s *Service) settle() {
	s.h.turn <- struct{}{}
	defer func() { <-s.h.turn }()
	if !s.h.down.Load() {
		s.h.delay = 0
		s.h.dirty.Store(false)
	}
}

// reopen brings a down HSM back, one caller at a time: when an attempt is
// due it reopens the module (reset); otherwise, or if that fails, it
// returns an *UnavailableError saying when the next attempt is due. Each
// failed attempt doubles the wait, from Config.RetryMin to RetryMax.
func (s *Service) reopen(ctx context.Context) error {
	select {
	case s.h.turn <- struct{}{}:
	case <-ctx.Done():
		return &UnavailableError{Token: s.token, Err: ctx.Err()}
	case <-s.done:
		return fmt.Errorf("%w: token %q", ErrClosed, s.token)
	}
	defer func() { <-s.h.turn }()
	if !s.h.down.Load() {
		return nil
	}
	now := s.now()
	if now.Before(s.h.next) {
		return &UnavailableError{Token: s.token, RetryAfter: s.h.next.Sub(now), Err: s.h.cause}
	}
	lo, hi := s.cfg.retryBounds()
	if s.h.delay == 0 {
		s.h.delay = lo
	} else {
		s.h.delay = min(2*s.h.delay, hi)
	}
	s.h.dirty.Store(true)
	s.attempts.Add(1)
	if err := s.reset(); err != nil {
		s.h.cause = err
		s.h.next = s.now().Add(s.h.delay)
		return &UnavailableError{Token: s.token, RetryAfter: s.h.delay, Err: err}
	}
	s.h.cause = nil
	s.h.down.Store(false)
	return nil
}

// reset reopens the module while no operation runs (resetMu): it closes
// every idle session of the miekg/pkcs11 pool and the crypto11 context,
// so that the process holds no session and, when this Service was the
// module's last crypto11 user, crypto11 finalises the module (SoftHSM2,
// and other modules that must be initialised again to see a token that
// came back). Then it configures a new crypto11 context, which
// initialises the module again if needed and logs in once, finds the
// token's slot again and swaps the context in. A refused PIN is never
// tried again.
func (s *Service) reset() error {
	s.resetMu.Lock()
	defer s.resetMu.Unlock()
	s.c11mu.Lock()
	defer s.c11mu.Unlock()
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
	if s.pinFailed != nil {
		return s.pinFailed
	}
	s.flushIdle()
	s.handles.Clear()
	old := s.gen.Load()
	if old.ctx != nil {
		_ = old.ctx.Close()
		s.gen.Store(&c11gen{n: old.n + 1}) // no context until one is configured
	}
	c, err := s.configureLocked(true)
	if err != nil {
		return err
	}
	slot, info, err := s.findToken()
	if err == nil && info.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
		err = fmt.Errorf("%w: token %q is not initialised", ErrTokenNotFound, s.token)
	}
	if err != nil {
		_ = c.Close()
		return err
	}
	s.slot = slot
	s.gen.Store(&c11gen{ctx: c, n: s.gen.Load().n + 1})
	s.epoch = s.resets.Add(1)
	return nil
}

// Check reports whether the HSM can be used now, for a readiness probe.
// It asks the token for its info (no session, no key is touched); when the
// HSM is down and an attempt is due it reopens the module first, so a
// readiness probe alone brings a recovered HSM back. It fails with
// ErrUnavailable (or ErrClosed).
func (s *Service) Check(ctx context.Context) error {
	err := s.guarded(ctx, s.probeLocked)
	if err != nil && !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrClosed) {
		err = &UnavailableError{Token: s.token, Err: err}
	}
	return err
}

// Reopened returns how many times the Service reopened the module after
// it became unreachable.
func (s *Service) Reopened() int64 { return s.resets.Load() }
