package hsm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/ThalesGroup/crypto11"
	"github.com/egate-bank/egate/devices/pin"
	"github.com/egate-bank/egate/devices/pinsource"
	"github.com/miekg/pkcs11"
)

// poolWaitTimeout bounds crypto11's own wait for a pooled session. egate
// admits at most Config.Pool crypto11 operations at once (c11sem), so that
// wait only happens if something else holds crypto11's sessions.
const poolWaitTimeout = 30 * time.Second

// c11gen is one generation of the crypto11 context. A lost session retires
// the generation: a new Context is configured, swapped in, and the old one
// closed. Keys found in a generation belong to it.
type c11gen struct {
	ctx *crypto11.Context
	n   uint64
	// signers caches crypto11 key pairs by id and label.
	signers sync.Map // signerKey → crypto11.Signer
}

type signerKey struct{ id, label string }

// signer finds the key pair of k in this generation, through crypto11.
func (g *c11gen) signer(token string, k Key) (crypto11.Signer, error) {
	sk := signerKey{string(k.ID), k.Label}
	if v, ok := g.signers.Load(sk); ok {
		return v.(crypto11.Signer), nil
	}
	cs, err := g.ctx.FindKeyPair(k.ID, []byte(k.Label))
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return nil, &KeyNotFoundError{Token: token, Label: k.Label}
	}
	v, _ := g.signers.LoadOrStore(sk, cs)
	return v.(crypto11.Signer), nil
}

// configureLocked creates a crypto11 context on the token. With login it
// reads the PIN from the pin-source, lets crypto11 log in (one C_Login, on
// its long-lived session) and wipes the PIN; without, crypto11 does not log
// in (the token already considers this process logged in). A refused PIN
// is remembered and never tried again. Called with loginMu held.
func (s *Service) configureLocked(login bool) (*crypto11.Context, error) {
	if s.pinFailed != nil {
		return nil, s.pinFailed
	}
	cfg := &crypto11.Config{
		Path:              s.path,
		TokenLabel:        s.token,
		MaxSessions:       s.cfg.poolSize() + 1, // the pool, plus crypto11's long-lived session
		PoolWaitTimeout:   poolWaitTimeout,
		LoginNotSupported: !login,
		GCMIVLength:       gcmIVLen,
	}
	var pin []byte
	if login {
		var err error
		pin, err = s.pin.Read()
		if err != nil {
			return nil, fmt.Errorf("reading the PIN of token %q: %w", s.token, err)
		}
		if len(pin) > 0 {
			// The string shares pin's bytes, so wiping pin wipes it;
			// crypto11 reads Config.Pin only inside Configure.
			cfg.Pin = unsafe.String(&pin[0], len(pin))
		}
		if s.onLogin != nil {
			s.onLogin()
		}
	}
	c, err := crypto11.Configure(cfg)
	cfg.Pin = ""
	pinsource.Wipe(pin)
	if err != nil {
		return nil, s.configureError(err)
	}
	return c, nil
}

// configureError turns a crypto11.Configure failure into egate's typed
// errors, by the PKCS#11 return value where there is one and otherwise by
// looking at the module (crypto11's own errors are untyped strings).
func (s *Service) configureError(err error) error {
	var pe pkcs11.Error
	if errors.As(err, &pe) {
		switch uint(pe) {
		case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_LEN_RANGE, pkcs11.CKR_PIN_INVALID:
			perr := s.pinError(false, pe)
			if ok, ti, _, err2 := probeToken(s.path, s.token); err2 == nil && ok {
				perr = s.pinError(ti.Flags&pkcs11.CKF_USER_PIN_LOCKED != 0, pe)
				if ti.Flags&pkcs11.CKF_USER_PIN_FINAL_TRY != 0 && !perr.Locked {
					perr.Retries = 1
				}
			}
			s.pinFailed = perr
			return perr
		case pkcs11.CKR_PIN_LOCKED:
			s.pinFailed = s.pinError(true, pe)
			return s.pinFailed
		case pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED:
			return fmt.Errorf("initialising PKCS#11 module %q: another component of this process initialised it outside crypto11; open the HSM service before it: %w", s.cfg.Module, pe)
		}
		if sessionLost(err) {
			return fmt.Errorf("%w: opening token %q: %w", ErrSessionLost, s.token, pe)
		}
		return fmt.Errorf("opening token %q of module %q: %w", s.token, s.cfg.Module, pe)
	}
	found, _, have, perr := probeToken(s.path, s.token)
	switch {
	case perr != nil:
		if errors.Is(perr, ErrModuleNotFound) {
			return errNotLibrary(s.cfg.Module)
		}
		return perr
	case !found:
		return fmt.Errorf("%w: no token labelled %q in module %q (%s): fix hsm.token (--token) or create the token", ErrTokenNotFound, s.token, s.cfg.Module, have)
	}
	return fmt.Errorf("opening token %q of module %q through crypto11: %w", s.token, s.cfg.Module, err)
}

// pinError is the refused login on this Service's token: never retried.
func (s *Service) pinError(locked bool, cause error) *pin.Error {
	e := &pin.Error{Device: fmt.Sprintf("HSM token %q", s.token), Retries: -1, Locked: locked, Err: cause,
		Advice: "fix the PIN in the pin-source (egate does not retry a wrong PIN)"}
	if locked {
		e.Retries = 0
		e.Advice = "the token refuses logins until the security officer unlocks the user PIN"
	}
	return e
}

// loggedIn reports whether the token considers this process logged in, by
// the state of a fresh session of the miekg/pkcs11 handle.
func (s *Service) loggedIn() (bool, error) {
	sh, err := s.p.OpenSession(s.slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		return false, err
	}
	defer s.p.CloseSession(sh)
	si, err := s.p.GetSessionInfo(sh)
	if err != nil {
		return false, err
	}
	return si.State == pkcs11.CKS_RW_USER_FUNCTIONS || si.State == pkcs11.CKS_RO_USER_FUNCTIONS, nil
}

// rebuild replaces crypto11 generation failed with a new one: configure a
// new Context first (the module stays initialised: crypto11 counts its
// users), logging in only if the token forgot the login, swap it in, then
// close the old Context. If another caller already replaced that
// generation, rebuild does nothing. No crypto11 operation runs meanwhile
// (c11mu).
func (s *Service) rebuild(failed uint64) error {
	s.c11mu.Lock()
	defer s.c11mu.Unlock()
	old := s.gen.Load()
	if old.n != failed {
		return nil
	}
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
	if s.pinFailed != nil {
		return s.pinFailed
	}
	in, err := s.loggedIn()
	if err != nil {
		if sessionLost(err) {
			return fmt.Errorf("%w: token %q: %w", ErrSessionLost, s.token, err)
		}
		return fmt.Errorf("reopening token %q: %w", s.token, err)
	}
	nc, err := s.configureLocked(!in)
	if err != nil {
		return err
	}
	s.gen.Store(&c11gen{ctx: nc, n: old.n + 1})
	if old.ctx != nil {
		_ = old.ctx.Close()
	}
	return nil
}

// c11do runs fn with the current crypto11 generation. At most Config.Pool
// calls run at once (the rest wait for their turn or their context). When
// fn fails because the module lost its session (or the key handle went
// stale with the login), the generation is rebuilt and fn runs once more; a
// second loss is ErrSessionLost.
func (s *Service) c11do(ctx context.Context, fn func(g *c11gen) error) error {
	return s.guarded(ctx, func() error { return s.c11once(ctx, fn) })
}

func (s *Service) c11once(ctx context.Context, fn func(g *c11gen) error) error {
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		select {
		case s.c11sem <- struct{}{}:
		default:
			select {
			case s.c11sem <- struct{}{}:
			case <-ctx.Done():
				return fmt.Errorf("waiting for an HSM session: %w", ctx.Err())
			case <-s.done:
				return fmt.Errorf("%w: token %q", ErrClosed, s.token)
			}
		}
		var g *c11gen
		g, err = s.c11run(fn)
		// A session crypto11's pool opened after the login was lost sees
		// no private objects, so a lost login can also show as an invalid
		// key handle; a new generation re-finds its keys either way.
		if err == nil || !(sessionLost(err) || staleHandle(err)) {
			return err
		}
		if attempt == 0 {
			if rerr := s.rebuild(g.n); rerr != nil {
				return rerr
			}
		}
	}
	if !sessionLost(err) {
		return err
	}
	return fmt.Errorf("%w: token %q, after one fresh crypto11 context: %w", ErrSessionLost, s.token, err)
}

// c11run runs fn under the read side of c11mu, holding one c11sem token
// (taken by the caller), and releases both even if fn panics (crypto11's
// AEAD and HMAC report errors by panicking).
func (s *Service) c11run(fn func(g *c11gen) error) (*c11gen, error) {
	defer func() { <-s.c11sem }()
	s.c11mu.RLock()
	defer s.c11mu.RUnlock()
	g := s.gen.Load()
	if g.ctx == nil { // a reopen failed: guarded reopens before the next call
		return g, &UnavailableError{Token: s.token, Err: errors.New("the module is not open")}
	}
	return g, fn(g)
}
