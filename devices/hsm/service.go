package hsm

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/egate-bank/egate/devices/pinsource"
	"github.com/miekg/pkcs11"
)

// Service is the key service over one token of one PKCS#11 module. See the
// package doc for its concurrency model.
type Service struct {
	cfg   Config
	pin   pinsource.Source
	mod   *loadedModule
	p     p11
	slot  uint
	token string

	loginMu   sync.Mutex
	pinFailed error                // a refused login: never retried
	anchor    pkcs11.SessionHandle // keeps the login alive; guarded by loginMu

	sem  chan struct{}             // one token per lent or idle-able session
	idle chan pkcs11.SessionHandle // sessions ready to lend

	closeMu  sync.RWMutex
	closed   bool
	done     chan struct{}
	inflight sync.WaitGroup

	keyMu   sync.Mutex // serialises generate-or-find
	handles sync.Map   // handleKey → pkcs11.ObjectHandle
}

type handleKey struct {
	class uint
	label string
}

// Open loads the module, finds the token by label and logs in with the PIN
// from the pin-source. Nothing is created on the token.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	return open(ctx, cfg, nil)
}

func open(ctx context.Context, cfg Config, wrap func(p11) p11) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	src, _ := pinsource.Parse(cfg.PINSource)
	mod, err := loadModule(cfg.Module)
	if err != nil {
		return nil, err
	}
	var p p11 = mod.ctx
	if wrap != nil {
		p = wrap(p)
	}
	s := &Service{
		cfg: cfg, pin: src, mod: mod, p: p, token: cfg.Token,
		sem:  make(chan struct{}, cfg.poolSize()),
		idle: make(chan pkcs11.SessionHandle, cfg.poolSize()),
		done: make(chan struct{}),
	}
	ok := false
	defer func() {
		if !ok {
			mod.release()
		}
	}()
	slot, info, err := s.findToken()
	if err != nil {
		return nil, err
	}
	s.slot = slot
	if info.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
		return nil, fmt.Errorf("%w: token %q is not initialised: initialise it with the HSM vendor's tool", ErrTokenNotFound, cfg.Token)
	}
	anchor, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return nil, fmt.Errorf("opening a session on token %q: %w", cfg.Token, err)
	}
	s.anchor = anchor
	s.loginMu.Lock()
	err = s.loginLocked(anchor)
	s.loginMu.Unlock()
	if err != nil {
		_ = p.CloseSession(anchor)
		return nil, err
	}
	ok = true
	return s, nil
}

func (s *Service) findToken() (uint, pkcs11.TokenInfo, error) {
	slots, err := s.p.GetSlotList(true)
	if err != nil {
		return 0, pkcs11.TokenInfo{}, fmt.Errorf("listing slots of module %q: %w", s.cfg.Module, err)
	}
	var labels []string
	for _, sl := range slots {
		ti, err := s.p.GetTokenInfo(sl)
		if err != nil {
			continue
		}
		l := strings.TrimRight(ti.Label, " \x00")
		if l == s.cfg.Token {
			return sl, ti, nil
		}
		if l != "" {
			labels = append(labels, fmt.Sprintf("%q", l))
		}
	}
	sort.Strings(labels)
	have := "the module has no initialised token"
	if len(labels) > 0 {
		have = "tokens present: " + strings.Join(labels, ", ")
	}
	return 0, pkcs11.TokenInfo{}, fmt.Errorf("%w: no token labelled %q in module %q (%s): fix hsm.token (--token) or create the token", ErrTokenNotFound, s.cfg.Token, s.cfg.Module, have)
}

// loginLocked logs in through sh unless the token already considers this
// application logged in. Called with loginMu held, so never in parallel.
func (s *Service) loginLocked(sh pkcs11.SessionHandle) error {
	if s.pinFailed != nil {
		return s.pinFailed
	}
	si, err := s.p.GetSessionInfo(sh)
	if err != nil {
		return fmt.Errorf("reading session state of token %q: %w", s.token, err)
	}
	if si.State == pkcs11.CKS_RW_USER_FUNCTIONS || si.State == pkcs11.CKS_RO_USER_FUNCTIONS {
		return nil
	}
	ti, err := s.p.GetTokenInfo(s.slot)
	if err != nil {
		return fmt.Errorf("reading token %q: %w", s.token, err)
	}
	if ti.Flags&pkcs11.CKF_USER_PIN_LOCKED != 0 {
		s.pinFailed = &PINError{Token: s.token, Locked: true}
		return s.pinFailed
	}
	pin, err := s.pin.Read()
	if err != nil {
		return fmt.Errorf("reading the PIN of token %q: %w", s.token, err)
	}
	err = s.p.Login(sh, pkcs11.CKU_USER, string(pin))
	pinsource.Wipe(pin)
	switch {
	case err == nil, isRV(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN):
		return nil
	case isRV(err, pkcs11.CKR_PIN_INCORRECT), isRV(err, pkcs11.CKR_PIN_LEN_RANGE), isRV(err, pkcs11.CKR_PIN_INVALID):
		pe := &PINError{Token: s.token, Err: err}
		if ti2, err2 := s.p.GetTokenInfo(s.slot); err2 == nil {
			pe.FinalTry = ti2.Flags&pkcs11.CKF_USER_PIN_FINAL_TRY != 0
			pe.Locked = ti2.Flags&pkcs11.CKF_USER_PIN_LOCKED != 0
		}
		s.pinFailed = pe
		return pe
	case isRV(err, pkcs11.CKR_PIN_LOCKED):
		s.pinFailed = &PINError{Token: s.token, Locked: true, Err: err}
		return s.pinFailed
	default:
		return fmt.Errorf("logging in to token %q: %w", s.token, err)
	}
}

// Token returns the label of the token.
func (s *Service) Token() string { return s.token }

// enter registers an operation in flight, or fails after Close.
func (s *Service) enter() error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return fmt.Errorf("%w: token %q: open a new hsm.Service", ErrClosed, s.token)
	}
	s.inflight.Add(1)
	return nil
}

// get lends a session: an idle one, or a fresh one while the pool has room.
func (s *Service) get(ctx context.Context) (pkcs11.SessionHandle, error) {
	select {
	case s.sem <- struct{}{}:
	default:
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting for an HSM session: %w", ctx.Err())
		case <-s.done:
			return 0, fmt.Errorf("%w: token %q", ErrClosed, s.token)
		}
	}
	select {
	case sh := <-s.idle:
		return sh, nil
	default:
	}
	sh, err := s.openSession()
	if err != nil {
		<-s.sem
		return 0, err
	}
	return sh, nil
}

func (s *Service) openSession() (pkcs11.SessionHandle, error) {
	sh, err := s.p.OpenSession(s.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		if sessionLost(err) {
			return 0, fmt.Errorf("%w: opening a session on token %q: %w", ErrSessionLost, s.token, err)
		}
		return 0, fmt.Errorf("opening a session on token %q: %w", s.token, err)
	}
	si, err := s.p.GetSessionInfo(sh)
	if err == nil && (si.State == pkcs11.CKS_RW_USER_FUNCTIONS || si.State == pkcs11.CKS_RO_USER_FUNCTIONS) {
		return sh, nil
	}
	// The token forgot the login (every session was closed): log in again,
	// once, under the login mutex, and re-anchor it.
	s.loginMu.Lock()
	err = s.loginLocked(sh)
	if err == nil {
		s.reanchorLocked()
	}
	s.loginMu.Unlock()
	if err != nil {
		_ = s.p.CloseSession(sh)
		return 0, err
	}
	return sh, nil
}

// reanchorLocked replaces the anchor session if the module lost it.
func (s *Service) reanchorLocked() {
	if _, err := s.p.GetSessionInfo(s.anchor); err == nil {
		return
	}
	if sh, err := s.p.OpenSession(s.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION); err == nil {
		s.anchor = sh
	}
}

func (s *Service) put(sh pkcs11.SessionHandle) {
	select {
	case s.idle <- sh:
	default: // cannot happen: idle has room for every token
		_ = s.p.CloseSession(sh)
	}
	<-s.sem
}

func (s *Service) drop(sh pkcs11.SessionHandle) {
	_ = s.p.CloseSession(sh)
	<-s.sem
}

// flushIdle closes every idle session; after a lost session they are
// usually dead too, and each would cost an operation its one retry.
func (s *Service) flushIdle() {
	for {
		select {
		case sh := <-s.idle:
			_ = s.p.CloseSession(sh)
		default:
			return
		}
	}
}

// do runs fn with a session of its own, with the recovery described in the
// package doc.
func (s *Service) do(ctx context.Context, fn func(sh pkcs11.SessionHandle) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.inflight.Done()
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var sh pkcs11.SessionHandle
		sh, err = s.get(ctx)
		if err != nil {
			if attempt == 0 && errors.Is(err, ErrSessionLost) {
				continue
			}
			return err
		}
		err = fn(sh)
		switch {
		case err == nil:
			s.put(sh)
			return nil
		case sessionLost(err):
			s.drop(sh)
			s.flushIdle()
			s.handles.Clear()
		case staleHandle(err):
			s.put(sh)
			s.handles.Clear()
		default:
			s.put(sh)
			return err
		}
	}
	if sessionLost(err) {
		return fmt.Errorf("%w: token %q, after one fresh session: %w", ErrSessionLost, s.token, err)
	}
	return err
}

// Close waits for operations in flight, closes the sessions and releases the
// module. Later calls fail with ErrClosed. Close is idempotent.
func (s *Service) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.closeMu.Unlock()
	s.inflight.Wait()
	s.flushIdle()
	s.loginMu.Lock()
	_ = s.p.CloseSession(s.anchor)
	s.loginMu.Unlock()
	s.handles.Clear()
	s.mod.release()
	return nil
}

// findObjects returns up to max handles matching the template.
func (s *Service) findObjects(sh pkcs11.SessionHandle, tmpl []*pkcs11.Attribute, max int) ([]pkcs11.ObjectHandle, error) {
	if err := s.p.FindObjectsInit(sh, tmpl); err != nil {
		return nil, err
	}
	var out []pkcs11.ObjectHandle
	var ferr error
	for len(out) < max {
		hs, _, err := s.p.FindObjects(sh, max-len(out))
		if err != nil {
			ferr = err
			break
		}
		if len(hs) == 0 {
			break
		}
		out = append(out, hs...)
	}
	if err := s.p.FindObjectsFinal(sh); err != nil && ferr == nil {
		ferr = err
	}
	return out, ferr
}

// handle finds the one object of a class with a label, through the cache.
func (s *Service) handle(sh pkcs11.SessionHandle, class uint, label string) (pkcs11.ObjectHandle, error) {
	k := handleKey{class, label}
	if h, ok := s.handles.Load(k); ok {
		return h.(pkcs11.ObjectHandle), nil
	}
	hs, err := s.findObjects(sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}, 2)
	if err != nil {
		return 0, err
	}
	switch len(hs) {
	case 0:
		return 0, &KeyNotFoundError{Token: s.token, Label: label}
	case 1:
		s.handles.Store(k, hs[0])
		return hs[0], nil
	default:
		return 0, fmt.Errorf("%w: more than one %s object labelled %q on token %q: remove the duplicate", ErrKeyType, className(class), label, s.token)
	}
}

func className(c uint) string {
	switch c {
	case pkcs11.CKO_PRIVATE_KEY:
		return "private key"
	case pkcs11.CKO_PUBLIC_KEY:
		return "public key"
	case pkcs11.CKO_SECRET_KEY:
		return "secret key"
	}
	return fmt.Sprintf("class %#x", c)
}
