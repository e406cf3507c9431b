package passport

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/internal/store"
)

// Config is the passport's section of the authsvc config.
type Config struct {
	Argon2   Argon2Params  `yaml:"argon2"`
	Strength StrengthRules `yaml:"strength"`
	// MaxFailures per customer per factor per day before the factor locks
	// (default 6).
	MaxFailures int `yaml:"max-failures"`
	// MaxIPFailures per client IP per day before that IP is refused
	// (default 100).
	MaxIPFailures int `yaml:"max-ip-failures"`
	// TimeZone whose midnight ends a lockout day (IANA name, default UTC).
	TimeZone string `yaml:"time-zone"`
	// AllowWeakArgon2 admits argon2 parameters below OWASP's floor. Tests
	// only; not settable from YAML.
	AllowWeakArgon2 bool `yaml:"-"`
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.Argon2 == (Argon2Params{}) {
		c.Argon2 = DefaultArgon2
	}
	if c.Argon2.SaltLen == 0 {
		c.Argon2.SaltLen = DefaultArgon2.SaltLen
	}
	if c.Argon2.KeyLen == 0 {
		c.Argon2.KeyLen = DefaultArgon2.KeyLen
	}
	if c.MaxFailures == 0 {
		c.MaxFailures = 6
	}
	if c.MaxIPFailures == 0 {
		c.MaxIPFailures = 100
	}
	if c.TimeZone == "" {
		c.TimeZone = "UTC"
	}
	return c
}

// Validate checks the section (after WithDefaults).
func (c Config) Validate() error {
	if err := c.Argon2.Validate(c.AllowWeakArgon2); err != nil {
		return err
	}
	if c.MaxFailures < 1 || c.MaxIPFailures < 1 {
		return errors.New("passport: max-failures and max-ip-failures must be positive")
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		return fmt.Errorf("passport: time-zone %q: %w", c.TimeZone, err)
	}
	return nil
}

// Errors of the login steps. None says whether a login name exists.
var (
	// ErrBadCredentials: the login name or the password is not correct.
	ErrBadCredentials = errors.New("the login name or the password is not correct")
	// ErrIPLimited: too many failures from this network address today.
	ErrIPLimited = errors.New("too many failed logins from this network today; try again tomorrow")
	// ErrNotFound: no such customer (operator and platform APIs only; the
	// login steps never return it).
	ErrNotFound = errors.New("no such customer")
	// ErrLoginNameTaken on registration.
	ErrLoginNameTaken = errors.New("this login name is already taken")
	// ErrInvalid: a malformed field on registration.
	ErrInvalid = errors.New("invalid customer data")
)

// BadCredentialsError is a wrong password (errors.Is ErrBadCredentials)
// with the attempts the subject has left today before its password locks.
// It is the same for names that exist and names that do not: both count.
type BadCredentialsError struct {
	// Remaining attempts today; 0 means this attempt locked the password
	// (the next is refused with an *authn.LockedError).
	Remaining int
	// Until is when that lock ends (next midnight), set when Remaining is 0.
	Until time.Time
}

func (e *BadCredentialsError) Error() string { return ErrBadCredentials.Error() }
func (e *BadCredentialsError) Unwrap() error { return ErrBadCredentials }

// Customer is a passport identity.
type Customer struct {
	PassportID      string
	LoginName       string
	Mobile          string
	Birthday        string
	ReservedMessage string
	OperatorLocked  bool
	Created         time.Time
	PasswordChanged time.Time
}

// Hooks let tests and the server observe the service.
type Hooks struct {
	// OnVerify is called once per argon2id verification (real or decoy).
	OnVerify func()
	// OnFactorFailure is called once per failed second-factor attempt
	// (BeginFactor's done with ok false); the server posts the customer's
	// failed-login and lockout alerts from it.
	OnFactorFailure func(ctx context.Context, f FactorFailure)
}

// FactorFailure is a failed second-factor attempt of a customer.
type FactorFailure struct {
	PassportID, Factor, IP string
	// Remaining attempts of the factor today; 0: this attempt locked it,
	// until Until (zero: until the bank lifts it); -1: the tool did not say.
	Remaining int
	Until     time.Time
}

// Service is the passport over one database. It is safe for concurrent use
// and keeps no state of its own beyond configuration, so any number of
// Services on one database behave as one.
type Service struct {
	db    *store.DB
	cfg   Config
	loc   *time.Location
	now   func() time.Time
	key   []byte // HMAC key for decoys and name subjects, shared by replicas
	decoy string // a PHC hash to verify unknown names against
	hooks Hooks
}

// New returns the passport service. key must be the same on every replica
// (decoy reserved messages must not change between replicas).
func New(db *store.DB, cfg Config, key []byte, now func() time.Time, hooks Hooks) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(key) < 16 {
		return nil, errors.New("passport: HMAC key must be at least 16 bytes")
	}
	loc, _ := time.LoadLocation(cfg.TimeZone)
	if now == nil {
		now = time.Now
	}
	decoy, err := HashPassword(cfg.Argon2, "decoy password that matches nothing")
	if err != nil {
		return nil, err
	}
	return &Service{db: db, cfg: cfg, loc: loc, now: now, key: key, decoy: decoy, hooks: hooks}, nil
}

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// NormalizeLoginName trims and lower-cases a login name.
func NormalizeLoginName(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// NewCustomer is what registration takes.
type NewCustomer struct {
	LoginName       string
	Mobile          string
	Birthday        string // YYYY-MM-DD or empty
	ReservedMessage string
	Password        string
}

func validLoginName(n string) bool {
	if len(n) < 3 || len(n) > 64 {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' || r == '@') {
			return false
		}
	}
	return true
}

// Register creates a customer with a new passport id.
func (s *Service) Register(ctx context.Context, nc NewCustomer) (Customer, error) {
	name := NormalizeLoginName(nc.LoginName)
	if !validLoginName(name) {
		return Customer{}, fmt.Errorf("%w: the login name must be 3–64 characters of a–z, 0–9, '.', '_', '-', '@'", ErrInvalid)
	}
	if nc.Birthday != "" {
		if _, err := time.Parse("2006-01-02", nc.Birthday); err != nil {
			return Customer{}, fmt.Errorf("%w: the birthday must be YYYY-MM-DD", ErrInvalid)
		}
	}
	if m := strings.TrimSpace(nc.ReservedMessage); m == "" || utf8.RuneCountInString(m) > 64 {
		return Customer{}, fmt.Errorf("%w: the reserved message must be 1–64 characters", ErrInvalid)
	}
	if err := CheckStrength(s.cfg.Strength, nc.Password, PersonalData{LoginName: name, Mobile: nc.Mobile, Birthday: nc.Birthday}); err != nil {
		return Customer{}, err
	}
	hash, err := HashPassword(s.cfg.Argon2, nc.Password)
	if err != nil {
		return Customer{}, err
	}
	now := s.now()
	c := Customer{
		PassportID: newPassportID(), LoginName: name, Mobile: strings.TrimSpace(nc.Mobile), Birthday: nc.Birthday,
		ReservedMessage: strings.TrimSpace(nc.ReservedMessage), Created: now, PasswordChanged: now,
	}
	_, err = s.db.Exec(ctx, `INSERT INTO customers (passport_id, login_name, mobile, birthday, reserved_message, password_hash, password_changed_ms, created_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, c.PassportID, c.LoginName, c.Mobile, c.Birthday, c.ReservedMessage, hash, now.UnixMilli(), now.UnixMilli())
	if store.IsUniqueViolation(err) {
		return Customer{}, ErrLoginNameTaken
	}
	if err != nil {
		return Customer{}, fmt.Errorf("registering customer: %w", err)
	}
	return c, nil
}

func newPassportID() string {
	var b [10]byte
	rand.Read(b[:])
	return "P" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}

const customerCols = `passport_id, login_name, mobile, birthday, reserved_message, operator_locked, created_ms, password_changed_ms`

func scanCustomer(row interface{ Scan(...any) error }) (Customer, error) {
	var c Customer
	var locked int
	var created, changed int64
	if err := row.Scan(&c.PassportID, &c.LoginName, &c.Mobile, &c.Birthday, &c.ReservedMessage, &locked, &created, &changed); err != nil {
		return Customer{}, err
	}
	c.OperatorLocked = locked != 0
	c.Created, c.PasswordChanged = time.UnixMilli(created), time.UnixMilli(changed)
	return c, nil
}

// Customer returns a customer by passport id.
func (s *Service) Customer(ctx context.Context, passportID string) (Customer, error) {
	c, err := scanCustomer(s.db.QueryRow(ctx, `SELECT `+customerCols+` FROM customers WHERE passport_id = ?`, passportID))
	if errors.Is(err, sql.ErrNoRows) {
		return Customer{}, ErrNotFound
	}
	if err != nil {
		return Customer{}, fmt.Errorf("reading customer: %w", err)
	}
	return c, nil
}

// ByLoginName returns a customer by login name (operators and platforms).
func (s *Service) ByLoginName(ctx context.Context, name string) (Customer, error) {
	c, err := scanCustomer(s.db.QueryRow(ctx, `SELECT `+customerCols+` FROM customers WHERE login_name = ?`, NormalizeLoginName(name)))
	if errors.Is(err, sql.ErrNoRows) {
		return Customer{}, ErrNotFound
	}
	if err != nil {
		return Customer{}, fmt.Errorf("reading customer: %w", err)
	}
	return c, nil
}

// Subject is what the first login step resolves a login name to. It is the
// same shape for a name that exists and one that does not.
type Subject struct {
	// Key names the counters: "pid:<passport id>" or "name:<hmac>".
	Key string
	// PassportID is empty when the name does not exist. Never show it.
	PassportID string
	// ReservedMessage is the customer's, or a stable decoy.
	ReservedMessage string
}

// Lookup resolves a login name for the login steps.
func (s *Service) Lookup(ctx context.Context, loginName string) (Subject, error) {
	name := NormalizeLoginName(loginName)
	c, err := s.ByLoginName(ctx, name)
	switch {
	case err == nil:
		return Subject{Key: "pid:" + c.PassportID, PassportID: c.PassportID, ReservedMessage: c.ReservedMessage}, nil
	case errors.Is(err, ErrNotFound):
		mac := s.mac("name", name)
		return Subject{Key: "name:" + hex.EncodeToString(mac[:12]), ReservedMessage: decoyMessage(mac)}, nil
	default:
		return Subject{}, err
	}
}

// SubjectFor returns the subject of a known passport id (second factors,
// single sign-on upgrades).
func SubjectFor(passportID string) Subject {
	return Subject{Key: "pid:" + passportID, PassportID: passportID}
}

func (s *Service) mac(purpose, v string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(v))
	return m.Sum(nil)
}

// Decoy reserved messages: customers choose short phrases; a decoy is a
// stable pick of two words and a number derived from the name's HMAC.
var decoyWords = []string{
	"blue", "river", "panda", "lantern", "jade", "maple", "harbor", "tiger", "cloud", "bamboo",
	"orchid", "summer", "silver", "dragon", "willow", "plum", "crane", "lotus", "spring", "autumn",
	"moon", "pearl", "mountain", "garden", "sunrise", "ocean", "cedar", "phoenix", "lake", "snow",
	"peony", "breeze",
}

func decoyMessage(mac []byte) string {
	a := decoyWords[int(mac[20])%len(decoyWords)]
	b := decoyWords[int(mac[21])%len(decoyWords)]
	return fmt.Sprintf("%s %s %d", a, b, int(mac[22])%90+10)
}

// day returns the counter day for t.
func (s *Service) day(t time.Time) string { return t.In(s.loc).Format("2006-01-02") }

// nextDay returns the start of the day after t.
func (s *Service) nextDay(t time.Time) time.Time {
	y, m, d := t.In(s.loc).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, s.loc)
}

// Failures returns today's count for subject and factor.
func (s *Service) Failures(ctx context.Context, subjectKey, factor string) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT n FROM auth_failures WHERE subject = ? AND factor = ? AND day = ?`, subjectKey, factor, s.day(s.now())).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading failure counter: %w", err)
	}
	return n, nil
}

// reserve takes one attempt slot; ok is false when max are taken today.
func (s *Service) reserve(ctx context.Context, subjectKey, factor string, max int) (day string, ok bool, err error) {
	day, n, err := s.reserveN(ctx, subjectKey, factor, max)
	return day, n > 0, err
}

// reserveN is reserve returning the slot taken (1…max), 0 when none is left.
func (s *Service) reserveN(ctx context.Context, subjectKey, factor string, max int) (day string, n int, err error) {
	day = s.day(s.now())
	err = s.db.QueryRow(ctx, `INSERT INTO auth_failures (subject, factor, day, n) VALUES (?, ?, ?, 1)
		ON CONFLICT (subject, factor, day) DO UPDATE SET n = auth_failures.n + 1 WHERE auth_failures.n < ?
		RETURNING n`, subjectKey, factor, day, max).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return day, 0, nil
	}
	if err != nil {
		return day, 0, fmt.Errorf("reserving attempt: %w", err)
	}
	return day, n, nil
}

// release gives back a slot after a correct answer.
func (s *Service) release(ctx context.Context, subjectKey, factor, day string) error {
	_, err := s.db.Exec(ctx, `UPDATE auth_failures SET n = n - 1 WHERE subject = ? AND factor = ? AND day = ? AND n > 0`, subjectKey, factor, day)
	if err != nil {
		return fmt.Errorf("releasing attempt: %w", err)
	}
	return nil
}

// countIP records one failure from ip, by subjectKey.
func (s *Service) countIP(ctx context.Context, ip, subjectKey string) error {
	if ip == "" {
		return nil
	}
	_, err := s.db.Exec(ctx, `INSERT INTO auth_failures (subject, factor, day, n) VALUES (?, 'any', ?, 1)
		ON CONFLICT (subject, factor, day) DO UPDATE SET n = auth_failures.n + 1`, "ip:"+ip, s.day(s.now()))
	if err != nil {
		return fmt.Errorf("counting failure: %w", err)
	}
	return s.countOwn(ctx, ip, subjectKey)
}

// countOwn records that one of ip's failures today was subjectKey's own
// (see CaptchaRequired). The row lives under the IP, so an operator unlock,
// which clears the customer's counters, keeps it.
func (s *Service) countOwn(ctx context.Context, ip, subjectKey string) error {
	if ip == "" {
		return nil
	}
	_, err := s.db.Exec(ctx, `INSERT INTO auth_failures (subject, factor, day, n) VALUES (?, ?, ?, 1)
		ON CONFLICT (subject, factor, day) DO UPDATE SET n = auth_failures.n + 1`, "ip:"+ip, ownFactor+subjectKey, s.day(s.now()))
	if err != nil {
		return fmt.Errorf("counting failure: %w", err)
	}
	return nil
}

// Counter names besides the factors': ownFactor+subject under "ip:<addr>"
// counts that subject's failures among the IP's; captchaClear under a
// subject holds its password failures at its last successful login.
const (
	ownFactor    = "by:"
	captchaClear = "captcha-clear"
)

// CaptchaRequired reports whether the next attempt for subject from ip must
// solve a captcha: after a failure of that name today since its last
// successful login (an operator unlock clears them too), or after a
// failure today from that IP by another name. A customer who mistyped,
// then signed in, is not asked again; a name guessed at, or an address
// that sprays names, still is. Unknown names are counted the same way.
func (s *Service) CaptchaRequired(ctx context.Context, subj Subject, ip string) (bool, error) {
	n, err := s.Failures(ctx, subj.Key, FactorPassword)
	if err != nil {
		return false, err
	}
	if n > 0 {
		cleared, err := s.Failures(ctx, subj.Key, captchaClear)
		if err != nil || n > cleared {
			return err == nil, err
		}
	}
	if ip == "" {
		return false, nil
	}
	n, err = s.Failures(ctx, "ip:"+ip, "any")
	if err != nil || n == 0 {
		return false, err
	}
	own, err := s.Failures(ctx, "ip:"+ip, ownFactor+subj.Key)
	return n > own, err
}

// RemainingAttempts is how many wrong passwords subject may still make
// today before its password locks: the same count for names that exist
// and names that do not (both are counted), so it tells nothing about
// whether a name exists. An operator lock is not shown here.
func (s *Service) RemainingAttempts(ctx context.Context, subj Subject) (int, error) {
	n, err := s.Failures(ctx, subj.Key, FactorPassword)
	if err != nil {
		return 0, err
	}
	return max(s.cfg.MaxFailures-n, 0), nil
}

// clearCaptcha records the subject's password failures at a successful
// login: CaptchaRequired asks no captcha until it fails again.
func (s *Service) clearCaptcha(ctx context.Context, subjectKey, day string) error {
	n, err := s.Failures(ctx, subjectKey, FactorPassword)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `INSERT INTO auth_failures (subject, factor, day, n) VALUES (?, ?, ?, ?)
		ON CONFLICT (subject, factor, day) DO UPDATE SET n = excluded.n`, subjectKey, captchaClear, day, n)
	if err != nil {
		return fmt.Errorf("clearing captcha: %w", err)
	}
	return nil
}

// FactorPassword is the counter name of passwords.
const FactorPassword = "password"

// lockedError builds the customer-facing lockout for a factor.
func (s *Service) lockedError(factor string) error {
	return &authn.LockedError{Factor: factor, Until: s.nextDay(s.now())}
}

// CheckPassword is the password step. It returns the customer on success;
// otherwise ErrBadCredentials, ErrIPLimited or an *authn.LockedError (which
// says when it unlocks), the same for names that exist and names that do not.
func (s *Service) CheckPassword(ctx context.Context, subj Subject, password, ip string) (c Customer, err error) {
	// The client IP's attempt is reserved before anything is compared, as
	// the customer's is: guesses in parallel from one IP over many names
	// (password spraying) get no more than MaxIPFailures verifications.
	// A right password gives the IP's slot back; so does an attempt that
	// verified nothing.
	if ip != "" {
		var (
			ipDay string
			ok    bool
		)
		if ipDay, ok, err = s.reserve(ctx, "ip:"+ip, "any", s.cfg.MaxIPFailures); err != nil {
			return Customer{}, err
		}
		if !ok {
			return Customer{}, ErrIPLimited
		}
		defer func() { // err is the result here
			if err == nil || !errors.Is(err, ErrBadCredentials) {
				if rerr := s.release(context.WithoutCancel(ctx), "ip:"+ip, "any", ipDay); rerr != nil && err == nil {
					c, err = Customer{}, rerr
				}
			}
		}()
	}
	hash := s.decoy
	if subj.PassportID != "" {
		var locked int
		err := s.db.QueryRow(ctx, `SELECT `+customerCols+`, password_hash FROM customers WHERE passport_id = ?`, subj.PassportID).
			Scan(&c.PassportID, &c.LoginName, &c.Mobile, &c.Birthday, &c.ReservedMessage, &locked, new(int64), new(int64), &hash)
		if err != nil {
			return Customer{}, fmt.Errorf("reading customer: %w", err)
		}
		if locked != 0 {
			return Customer{}, &authn.LockedError{Factor: FactorPassword}
		}
	}
	day, slot, err := s.reserveN(ctx, subj.Key, FactorPassword, s.cfg.MaxFailures)
	if err != nil {
		return Customer{}, err
	}
	if slot == 0 {
		return Customer{}, s.lockedError(FactorPassword)
	}
	if s.hooks.OnVerify != nil {
		s.hooks.OnVerify()
	}
	match, rehash, err := VerifyPassword(hash, password, s.cfg.Argon2)
	if err != nil {
		return Customer{}, fmt.Errorf("verifying password of %s: %w", subj.PassportID, err)
	}
	if !match || subj.PassportID == "" {
		if err := s.countOwn(ctx, ip, subj.Key); err != nil {
			return Customer{}, err
		}
		be := &BadCredentialsError{Remaining: s.cfg.MaxFailures - slot}
		if be.Remaining == 0 {
			be.Until = s.nextDay(s.now())
		}
		return Customer{}, be
	}
	if err := s.release(ctx, subj.Key, FactorPassword, day); err != nil {
		return Customer{}, err
	}
	if err := s.clearCaptcha(ctx, subj.Key, day); err != nil {
		return Customer{}, err
	}
	if rehash {
		if h, err := HashPassword(s.cfg.Argon2, password); err == nil {
			s.db.Exec(ctx, `UPDATE customers SET password_hash = ? WHERE passport_id = ?`, h, c.PassportID)
		}
	}
	return c, nil
}

// BeginFactor reserves an attempt of a second factor for passportID; done
// must be called with the outcome. Counters are per factor, apart from the
// password's.
func (s *Service) BeginFactor(ctx context.Context, passportID, factor string) (done func(ctx context.Context, ok bool, ip string) error, err error) {
	key := "pid:" + passportID
	day, slot, err := s.reserveN(ctx, key, factor, s.cfg.MaxFailures)
	if err != nil {
		return nil, err
	}
	if slot == 0 {
		return nil, s.lockedError(factor)
	}
	return func(ctx context.Context, success bool, ip string) error {
		if success {
			return s.release(ctx, key, factor, day)
		}
		if s.hooks.OnFactorFailure != nil {
			ff := FactorFailure{PassportID: passportID, Factor: factor, IP: ip, Remaining: s.cfg.MaxFailures - slot}
			if ff.Remaining == 0 {
				ff.Until = s.nextDay(s.now())
			}
			s.hooks.OnFactorFailure(ctx, ff)
		}
		return s.countIP(ctx, ip, key)
	}, nil
}

// FactorFailed hears of a failed attempt of a tool that keeps its own
// lockout counter (authn.SelfCounting: SMS, grid card, OTP token): the
// passport keeps no counter of its own for it, and only posts the
// customer's alerts (OnFactorFailure) and counts the client IP's failure.
// left is what the tool's counter says remains (0: this attempt locked it,
// until until; -1: unknown).
func (s *Service) FactorFailed(ctx context.Context, passportID, factor, ip string, left int, until time.Time) error {
	if s.hooks.OnFactorFailure != nil {
		s.hooks.OnFactorFailure(ctx, FactorFailure{PassportID: passportID, Factor: factor, IP: ip, Remaining: left, Until: until})
	}
	return s.countIP(ctx, ip, "pid:"+passportID)
}

var _ authn.Attempts = (*Service)(nil)

// ChangePassword replaces the password after checking the old one (through
// the counted password step) and the strength rules.
func (s *Service) ChangePassword(ctx context.Context, passportID, oldPassword, newPassword, ip string) error {
	if _, err := s.CheckPassword(ctx, SubjectFor(passportID), oldPassword, ip); err != nil {
		return err
	}
	return s.ResetPassword(ctx, passportID, newPassword)
}

// ResetPassword sets a new password without the old one (after the caller
// has established identity another way, or by an operator). It clears
// today's password failures.
func (s *Service) ResetPassword(ctx context.Context, passportID, newPassword string) error {
	c, err := s.Customer(ctx, passportID)
	if err != nil {
		return err
	}
	if err := CheckStrength(s.cfg.Strength, newPassword, PersonalData{LoginName: c.LoginName, Mobile: c.Mobile, Birthday: c.Birthday}); err != nil {
		return err
	}
	hash, err := HashPassword(s.cfg.Argon2, newPassword)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE customers SET password_hash = ?, password_changed_ms = ? WHERE passport_id = ?`, hash, s.now().UnixMilli(), passportID); err != nil {
			return fmt.Errorf("storing password: %w", err)
		}
		_, err := tx.Exec(ctx, `DELETE FROM auth_failures WHERE subject = ? AND factor = ?`, "pid:"+passportID, FactorPassword)
		return err
	})
}

// Lock is an operator lock: only Unlock lifts it.
func (s *Service) Lock(ctx context.Context, passportID string) error {
	return s.setLocked(ctx, passportID, 1)
}

// Unlock lifts an operator lock and clears every failure counter of the
// customer, so a daily lockout ends at once.
func (s *Service) Unlock(ctx context.Context, passportID string) error {
	if err := s.setLocked(ctx, passportID, 0); err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM auth_failures WHERE subject = ?`, "pid:"+passportID); err != nil {
		return fmt.Errorf("clearing counters: %w", err)
	}
	return nil
}

func (s *Service) setLocked(ctx context.Context, passportID string, v int) error {
	res, err := s.db.Exec(ctx, `UPDATE customers SET operator_locked = ? WHERE passport_id = ?`, v, passportID)
	if err != nil {
		return fmt.Errorf("locking customer: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// LockState describes a customer's locks for operators.
type LockState struct {
	OperatorLocked   bool
	PasswordFailures int
	PasswordLocked   bool
	Until            time.Time
}

// LockState reports the customer's locks today.
func (s *Service) LockState(ctx context.Context, passportID string) (LockState, error) {
	c, err := s.Customer(ctx, passportID)
	if err != nil {
		return LockState{}, err
	}
	n, err := s.Failures(ctx, "pid:"+passportID, FactorPassword)
	if err != nil {
		return LockState{}, err
	}
	st := LockState{OperatorLocked: c.OperatorLocked, PasswordFailures: n, PasswordLocked: n >= s.cfg.MaxFailures}
	if st.PasswordLocked {
		st.Until = s.nextDay(s.now())
	}
	return st, nil
}

// FactorState is a customer's failure counter of one factor today, as an
// operator sees it.
type FactorState struct {
	Factor   string
	Failures int       // failed attempts today
	Limit    int       // the daily limit (max-failures)
	Locked   bool      // Failures reached Limit: refused until Until
	Until    time.Time // the next midnight, when Locked
}

// FactorStates lists the customer's failure counters today: the password's
// first, then those of factors in the order given (zero where the factor
// has no counter today), then any other factor counted today, by name. It
// only reads; Unlock clears them.
func (s *Service) FactorStates(ctx context.Context, passportID string, factors ...string) ([]FactorState, error) {
	if _, err := s.Customer(ctx, passportID); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT factor, n FROM auth_failures WHERE subject = ? AND day = ? ORDER BY factor`, "pid:"+passportID, s.day(s.now()))
	if err != nil {
		return nil, fmt.Errorf("reading failure counters: %w", err)
	}
	defer rows.Close()
	counted := map[string]int{}
	var others []string
	for rows.Next() {
		var f string
		var n int
		if err := rows.Scan(&f, &n); err != nil {
			return nil, fmt.Errorf("reading failure counters: %w", err)
		}
		if f == captchaClear {
			continue // a marker of the captcha, not a factor's counter
		}
		counted[f] = n
		others = append(others, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading failure counters: %w", err)
	}
	until := s.nextDay(s.now())
	var out []FactorState
	seen := map[string]bool{}
	add := func(f string) {
		if seen[f] {
			return
		}
		seen[f] = true
		st := FactorState{Factor: f, Failures: counted[f], Limit: s.cfg.MaxFailures}
		if st.Failures >= st.Limit {
			st.Locked, st.Until = true, until
		}
		out = append(out, st)
	}
	add(FactorPassword)
	for _, f := range factors {
		add(f)
	}
	for _, f := range others {
		add(f)
	}
	return out, nil
}

// SetReservedMessage changes the customer's reserved (anti-phishing)
// message: 1–64 characters, trimmed; ErrInvalid otherwise, ErrNotFound for
// no such customer.
func (s *Service) SetReservedMessage(ctx context.Context, passportID, msg string) error {
	m := strings.TrimSpace(msg)
	if m == "" || utf8.RuneCountInString(m) > 64 || strings.ContainsAny(m, "\x00\r\n") {
		return fmt.Errorf("%w: the reserved message must be 1–64 characters on one line", ErrInvalid)
	}
	res, err := s.db.Exec(ctx, `UPDATE customers SET reserved_message = ? WHERE passport_id = ?`, m, passportID)
	if err != nil {
		return fmt.Errorf("changing the reserved message: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
