package hsm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/egate-bank/egate/devices/p11"
	"github.com/egate-bank/egate/devices/pinsource"
	"github.com/miekg/pkcs11"
)

// Service is the key service over one token of one PKCS#11 module. See the
// package doc for its concurrency model.
type Service struct {
	cfg     Config
	pin     pinsource.Source
	path    string // the module, absolute and symlink-free (crypto11's key)
	mod     *p11.Module
	p       p11.Ctx // mod.Ctx(); tests wrap it (p11test.Faulty)
	slot    uint
	token   string
	onLogin func() // tests: called before each C_Login egate asks for
	now     func() time.Time

	// resetMu: every operation holds its read side; reopening the module
	// (reset) holds the write side, so it runs while no operation does.
	resetMu  sync.RWMutex
	epoch    int64 // reopenings so far; written under resetMu
	h        health
	resets   atomic.Int64 // reopenings so far
	attempts atomic.Int64 // attempts to reopen, failed ones too

	loginMu   sync.Mutex
	pinFailed error // a refused login: never retried

	// The crypto11 side: the current generation, replaced by rebuild under
	// c11mu while no crypto11 operation runs; c11sem admits Config.Pool
	// operations at once.
	c11mu  sync.RWMutex
	gen    atomic.Pointer[c11gen]
	c11sem chan struct{}

	// The miekg/pkcs11 side: its own session pool.
	sem  chan struct{}             // one token per lent or idle-able session
	idle chan pkcs11.SessionHandle // sessions ready to lend

	closeMu  sync.RWMutex
	closed   bool
	done     chan struct{}
	inflight sync.WaitGroup

	keyMu   sync.Mutex // serialises generate-or-find
	handles sync.Map   // handleKey → pkcs11.ObjectHandle

	// Unwrapped seeds kept live, per pooled session (see HMACWrapped).
	liveMu sync.Mutex
	live   map[pkcs11.SessionHandle]*liveSeeds
}

type handleKey struct {
	class uint
	label string
}

// Open configures crypto11 on the module and token (which loads and
// initialises the module and logs in with the PIN from the pin-source),
// then opens the service's own miekg/pkcs11 handle on the same module.
// Nothing is created on the token.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	return open(ctx, cfg, nil)
}

// OpenWrapped is Open with the Service's own PKCS#11 calls (the
// miekg/pkcs11 path: finding and listing keys, Seal, Unseal, HMAC, the
// wrapping calls, the health probe) going through wrap(module) instead of
// the module itself: the seam for a test double or a recorder.
// p11test.Faulty, for one, makes any of those calls answer
// CKR_DEVICE_REMOVED or CKR_SESSION_HANDLE_INVALID on demand. crypto11's
// calls (login, key generation, signing) are not wrapped.
func OpenWrapped(ctx context.Context, cfg Config, wrap func(module p11.Ctx) p11.Ctx) (*Service, error) {
	return openWith(ctx, cfg, nil, wrap)
}

func open(ctx context.Context, cfg Config, onLogin func()) (*Service, error) {
	return openWith(ctx, cfg, onLogin, nil)
}

func openWith(ctx context.Context, cfg Config, onLogin func(), wrap func(p11.Ctx) p11.Ctx) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	src, _ := pinsource.Parse(cfg.PINSource)
	path, err := modulePath(cfg.Module)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, pin: src, path: path, token: cfg.Token, onLogin: onLogin,
		c11sem: make(chan struct{}, cfg.poolSize()),
		sem:    make(chan struct{}, cfg.poolSize()),
		idle:   make(chan pkcs11.SessionHandle, cfg.poolSize()),
		done:   make(chan struct{}),
		now:    time.Now,
		live:   make(map[pkcs11.SessionHandle]*liveSeeds),
	}
	s.h.turn = make(chan struct{}, 1)
	c, err := s.configureAtStart(ctx)
	if err != nil {
		return nil, err
	}
	mod, err := loadModule(path)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	s.mod, s.p = mod, mod.Ctx()
	if wrap != nil {
		s.p = wrap(s.p)
	}
	slot, info, err := s.findToken()
	if err == nil && info.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
		err = fmt.Errorf("%w: token %q is not initialised: initialise it with the HSM vendor's tool", ErrTokenNotFound, cfg.Token)
	}
	if err != nil {
		mod.Close()
		_ = c.Close()
		return nil, err
	}
	s.slot = slot
	s.gen.Store(&c11gen{ctx: c, n: 1})
	return s, nil
}

func (s *Service) findToken() (uint, pkcs11.TokenInfo, error) {
	sl, ti, err := p11.FindToken(s.p, s.cfg.Token)
	switch {
	case errors.Is(err, p11.ErrTokenNotFound):
		return 0, ti, fmt.Errorf("%w: no token labelled %q in module %q: fix hsm.token (--token) or create the token", ErrTokenNotFound, s.cfg.Token, s.cfg.Module)
	case err != nil:
		return 0, ti, fmt.Errorf("module %q: %w", s.cfg.Module, err)
	}
	return sl, ti, nil
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
	s.forgetLive(sh)      // a handle the module reuses inherits nothing
	gen := s.gen.Load().n // read first: if another caller rebuilds after this, rebuild(gen) does nothing
	if s.sessionLoggedIn(sh) {
		return sh, nil
	}
	// The token forgot the login (every session of the process was
	// closed, crypto11's too): rebuild the crypto11 context, which logs in
	// again once, under the login mutex, and holds the login from then on.
	err = s.rebuild(gen)
	if err == nil && !s.sessionLoggedIn(sh) {
		err = fmt.Errorf("%w: token %q is not logged in after logging in again", ErrSessionLost, s.token)
	}
	if err != nil {
		_ = s.p.CloseSession(sh)
		return 0, err
	}
	return sh, nil
}

func (s *Service) sessionLoggedIn(sh pkcs11.SessionHandle) bool {
	si, err := s.p.GetSessionInfo(sh)
	return err == nil && (si.State == pkcs11.CKS_RW_USER_FUNCTIONS || si.State == pkcs11.CKS_RO_USER_FUNCTIONS)
}

func (s *Service) put(sh pkcs11.SessionHandle) {
	select {
	case s.idle <- sh:
	default: // cannot happen: idle has room for every token
		s.closeSession(sh)
	}
	<-s.sem
}

func (s *Service) drop(sh pkcs11.SessionHandle) {
	s.closeSession(sh)
	<-s.sem
}

// flushIdle closes every idle session; after a lost session they are
// usually dead too, and each would cost an operation its one retry.
func (s *Service) flushIdle() {
	for {
		select {
		case sh := <-s.idle:
			s.closeSession(sh)
		default:
			return
		}
	}
}

// do runs fn with a session of its own, with the recovery described in the
// package doc.
func (s *Service) do(ctx context.Context, fn func(sh pkcs11.SessionHandle) error) error {
	return s.guarded(ctx, func() error { return s.doOnce(ctx, fn) })
}

// doOnce is do's session-level recovery: a lost session is dropped with
// every idle one and fn runs once more on a fresh session.
func (s *Service) doOnce(ctx context.Context, fn func(sh pkcs11.SessionHandle) error) error {
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

// Close waits for operations in flight, closes the miekg/pkcs11 sessions
// and handle, then the crypto11 context (crypto11 finalises the module when
// its last user closes). Later calls fail with ErrClosed. Close is
// idempotent.
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
	s.handles.Clear()
	s.mod.Close()
	s.c11mu.Lock()
	defer s.c11mu.Unlock()
	if c := s.gen.Load().ctx; c != nil {
		return c.Close()
	}
	return nil
}

// findObjects returns up to max handles matching the template.
func (s *Service) findObjects(sh pkcs11.SessionHandle, tmpl []*pkcs11.Attribute, max int) ([]pkcs11.ObjectHandle, error) {
	return p11.FindObjects(s.p, sh, tmpl, max)
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

// openAttempts bounds how often Open asks a module that answers a device
// fault (CKR_GENERAL_ERROR, CKR_DEVICE_ERROR, …) or loses the session while
// the service starts; openRetry is the first pause, doubled each time.
const (
	openAttempts = 3
	openRetry    = 200 * time.Millisecond
)

// configureAtStart configures the first crypto11 Context. A device fault
// or a lost session at that moment is asked again, up to openAttempts
// times: SoftHSM2 answered CKR_GENERAL_ERROR once to a process that opened
// its token while another process used it, and a network HSM can drop a
// connection as a process starts; once running, the
// Service reopens the module by itself (recover.go). A refused PIN is not a
// device fault and is never asked again.
func (s *Service) configureAtStart(ctx context.Context) (*crypto11.Context, error) {
	return askAgainAtStart(ctx, openRetry, func() (*crypto11.Context, error) {
		s.loginMu.Lock()
		defer s.loginMu.Unlock()
		return s.configureLocked(true)
	})
}

func askAgainAtStart(ctx context.Context, wait time.Duration, configure func() (*crypto11.Context, error)) (*crypto11.Context, error) {
	for attempt := 1; ; attempt++ {
		c, err := configure()
		if err == nil || attempt == openAttempts || !(deviceFault(err) || sessionLost(err)) {
			return c, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (and %w while asking again)", err, ctx.Err())
		case <-t.C:
		}
		wait *= 2
	}
}
