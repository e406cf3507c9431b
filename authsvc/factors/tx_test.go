package factors

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gopiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/oath"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/authsvc/pivauth"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	devotp "github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/devices/piv"
	"github.com/egate-bank/egate/devices/pkcs11token"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/simulators/pivcard/pivtest"
	simushield "github.com/egate-bank/egate/simulators/ushield"
)

// customer registers a passport row with a mobile number (what the SMS
// factor's phone book reads).
func customer(t testing.TB, db *store.DB, mobile string) string {
	t.Helper()
	pid := "P" + strings.ToUpper(randomHex(8))
	_, err := db.Exec(context.Background(), `INSERT INTO customers (passport_id, login_name, mobile, reserved_message, password_hash, password_changed_ms, created_ms)
		VALUES (?, ?, ?, 'x', 'x', 0, 0)`, pid, strings.ToLower(pid), mobile)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

type tx struct {
	text string
	hash []byte
}

func newTx(text string) tx {
	h := sha256.Sum256([]byte("intent:" + text))
	return tx{text: text, hash: h[:]}
}

// clock is the rig's clock: TOTP answers move it to the next time step.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// rig is one customer with the tools Build makes, the passport (its
// password and per-factor counters, the Set's Attempts) on one database.
type rig struct {
	set *Set
	pp  *passport.Service
	db  *store.DB
	pid string
	clk *clock
	// smsWhat is what each SMS challenge authorizes, as its message says.
	smsWhat map[string]string
}

const (
	rigPassword = "Blue-Kite-47-Lantern"
	rigMobile   = "13912345678"
	rigIP       = "192.0.2.7"
)

func newRig(t *testing.T, db *store.DB) *rig {
	ctx := context.Background()
	r := &rig{db: db, clk: &clock{t: time.Now()}, smsWhat: map[string]string{}}
	r.set = build(t, db, autoCA(), Deps{Now: r.clk.Now})
	pp, err := passport.New(db, passport.Config{AllowWeakArgon2: true,
		Argon2: passport.Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}},
		[]byte("0123456789abcdef0123456789abcdef"), r.clk.Now, passport.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	r.pp, r.set.Attempts = pp, pp
	c, err := pp.Register(ctx, passport.NewCustomer{LoginName: "c" + strings.ToLower(randomHex(6)), Mobile: rigMobile,
		ReservedMessage: "red lantern", Password: rigPassword})
	if err != nil {
		t.Fatal(err)
	}
	r.pid = c.PassportID
	return r
}

// passportFailures is the passport's per-factor counter today.
func (r *rig) passportFailures(t *testing.T, factor string) int {
	t.Helper()
	n, err := r.pp.Failures(context.Background(), "pid:"+r.pid, factor)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// kind is one tool under test: how a challenge is begun for a login or a
// transaction, the right and a wrong answer of the customer's tool, and
// the tool's one lockout counter.
type kind struct {
	name    string // the factor's name (passport.FactorPassword for the password)
	level   authn.Level
	confirm bool // ConfirmedOnDevice expected
	begin   func(t *testing.T, purpose authn.Purpose, x tx) authn.Challenge
	answer  func(t *testing.T, ch authn.Challenge) []byte
	wrong   func(t *testing.T, ch authn.Challenge) []byte // of the right form
	// counter reads the tool's one lockout counter.
	counter func(t *testing.T) int
	// contentBound says the answer itself depends on the challenge (a
	// code sent for it, cells, a question, a signature), so A's answer is
	// wrong for B's challenge. An HOTP/TOTP code is bound to its intent
	// only by the challenge id.
	contentBound bool
	// step: a TOTP token's right answers need a fresh time step each.
	step bool
	// login verifies an answer at login; nil: authn.Counted with the
	// passport, what the login page does.
	login func(t *testing.T, ch authn.Challenge, resp []byte) (authn.Result, error)
	// noTx says why the tool answers no transaction challenge.
	noTx string
}

func (r *rig) begin(name string) func(t *testing.T, purpose authn.Purpose, x tx) authn.Challenge {
	return func(t *testing.T, purpose authn.Purpose, x tx) authn.Challenge {
		t.Helper()
		req := authn.BeginRequest{PassportID: r.pid, Purpose: purpose, ClientIP: rigIP}
		what := "log in"
		if purpose == authn.PurposeTransaction {
			req.TxText, req.TxHash = x.text, x.hash
			what = "authorize " + x.text
		}
		ch, err := r.set.Factor(name).Begin(context.Background(), req)
		if err != nil {
			t.Fatalf("%s Begin: %v", name, err)
		}
		r.smsWhat[ch.ID] = what
		return ch
	}
}

// flip changes the first digit of a code: a wrong code of the right form.
func flip(b []byte) []byte {
	out := bytes.Clone(b)
	for i, c := range out {
		if c >= '0' && c <= '9' {
			out[i] = '0' + (c-'0'+1)%10
			return out
		}
	}
	return out
}

// passwordKind: the password at login is the passport's password step
// (CheckPassword), counted on the passport's password counter. It answers
// no transaction challenge (authsvc/README.md, "Counters and lockout").
func (r *rig) passwordKind(t *testing.T) kind {
	return kind{name: passport.FactorPassword, level: 1,
		noTx: "level 1 authorizes no amount (the limit table's level 1 is 0 fen), and a password names no transaction",
		begin: func(*testing.T, authn.Purpose, tx) authn.Challenge {
			return authn.Challenge{Factor: passport.FactorPassword}
		},
		answer: func(*testing.T, authn.Challenge) []byte { return []byte(rigPassword) },
		wrong:  func(*testing.T, authn.Challenge) []byte { return []byte("Wrong-Kite-47-Lantern") },
		login: func(t *testing.T, _ authn.Challenge, resp []byte) (authn.Result, error) {
			_, err := r.pp.CheckPassword(context.Background(), passport.SubjectFor(r.pid), string(resp), rigIP)
			if errors.Is(err, passport.ErrBadCredentials) {
				err = errors.Join(err, authn.ErrWrongAnswer)
			}
			return authn.Result{Factor: passport.FactorPassword, Level: 1, AMR: "pwd"}, err
		},
		counter: func(t *testing.T) int { return r.passportFailures(t, passport.FactorPassword) }}
}

var smsCode = regexp.MustCompile(`\] (\d{6}) is your code to (.*)\. Valid`)

// smsKind: each challenge's code is the one new message in the sink after
// its Begin (the rig's clock stands still, so the sink's order says
// nothing), and the message names what the challenge authorizes.
func (r *rig) smsKind(t *testing.T) kind {
	seen := map[string]bool{}
	codes := map[string][]byte{}
	begin := func(t *testing.T, purpose authn.Purpose, x tx) authn.Challenge {
		t.Helper()
		ch := r.begin(SMS)(t, purpose, x)
		msgs, err := r.set.SMSSink.List(context.Background(), rigMobile, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if seen[m.ID] {
				continue
			}
			seen[m.ID] = true
			sm := smsCode.FindStringSubmatch(m.Body)
			if sm == nil || sm[2] != r.smsWhat[ch.ID] || codes[ch.ID] != nil {
				t.Fatalf("SMS for challenge %s (%s): %q", ch.ID, r.smsWhat[ch.ID], m.Body)
			}
			codes[ch.ID] = []byte(sm[1])
		}
		return ch
	}
	answer := func(t *testing.T, ch authn.Challenge) []byte {
		if codes[ch.ID] == nil {
			t.Fatalf("no SMS for challenge %s", ch.ID)
		}
		return codes[ch.ID]
	}
	return kind{name: SMS, level: 2, contentBound: true, begin: begin, answer: answer,
		wrong: func(t *testing.T, ch authn.Challenge) []byte { return flip(answer(t, ch)) },
		counter: func(t *testing.T) int {
			st, err := r.set.SMS.Attempts(context.Background(), r.pid)
			if err != nil {
				t.Fatal(err)
			}
			return st.Failures
		}}
}

func (r *rig) gridKind(t *testing.T) kind {
	card, err := r.set.GridCard.Issue(context.Background(), r.pid)
	if err != nil {
		t.Fatal(err)
	}
	answer := func(t *testing.T, ch authn.Challenge) []byte {
		var out []string
		for _, cell := range strings.Split(string(ch.Data), ",") {
			c, ok := card.Code(cell)
			if !ok {
				t.Fatalf("cell %q not on the card", cell)
			}
			out = append(out, c)
		}
		return []byte(strings.Join(out, " "))
	}
	return kind{name: GridCard, level: 2, contentBound: true, begin: r.begin(GridCard), answer: answer,
		wrong: func(t *testing.T, ch authn.Challenge) []byte { return flip(answer(t, ch)) },
		counter: func(t *testing.T) int {
			cards, err := r.set.GridCard.Cards(context.Background(), r.pid)
			if err != nil || len(cards) != 1 {
				t.Fatalf("cards %+v, %v", cards, err)
			}
			return cards[0].Attempts
		}}
}

// importToken imports one token through the PSKC path (the seed wrapped in
// SoftHSM) and assigns it.
func (r *rig) importToken(t *testing.T, k *pskc.Key) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.pskc")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pskc.NewWriter(f, pskc.WriterOptions{})
	if err == nil {
		err = w.Add(k)
	}
	if err == nil {
		err = w.Close()
	}
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.set.OTP.ImportPSKC(ctx, func() (io.ReadCloser, error) { return os.Open(path) }, oath.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.set.OTP.Assign(ctx, k.Serial, "", r.pid); err != nil {
		t.Fatal(err)
	}
}

// token is the customer's one OTP token as stored.
func (r *rig) token(t *testing.T) *oath.Token {
	t.Helper()
	toks, err := r.set.OTP.TokensOf(context.Background(), r.pid)
	if err != nil || len(toks) != 1 {
		t.Fatalf("tokens %v, %v", toks, err)
	}
	return toks[0]
}

func (r *rig) otpKind(t *testing.T, answer func(t *testing.T, ch authn.Challenge) []byte) kind {
	return kind{name: OTP, level: 3, begin: r.begin(OTP), answer: answer,
		wrong:   func(t *testing.T, ch authn.Challenge) []byte { return flip(answer(t, ch)) },
		counter: func(t *testing.T) int { return r.token(t).Failures }}
}

var oathSeed = []byte("12345678901234567890")

func (r *rig) hotpKind(t *testing.T) kind {
	r.importToken(t, &pskc.Key{ID: "1", Serial: "H" + randomHex(4), Manufacturer: "Acme",
		Params: devotp.Params{Kind: devotp.KindHOTP, Hash: crypto.SHA1, Digits: 6}, Secret: bytes.Clone(oathSeed)})
	return r.otpKind(t, func(t *testing.T, ch authn.Challenge) []byte {
		// The token's next code: the ledger's mark is the next counter.
		c, err := devotp.HOTPWindow(context.Background(), devotp.SoftwareMAC{Key: oathSeed}, crypto.SHA1, r.token(t).Counter, 1, 6)
		if err != nil {
			t.Fatal(err)
		}
		return []byte(c[0])
	})
}

func (r *rig) totpKind(t *testing.T) kind {
	p := devotp.Params{Kind: devotp.KindTOTP, Hash: crypto.SHA1, Digits: 6, Period: 30 * time.Second}
	r.importToken(t, &pskc.Key{ID: "1", Serial: "T" + randomHex(4), Manufacturer: "Acme", Params: p, Secret: bytes.Clone(oathSeed)})
	k := r.otpKind(t, func(t *testing.T, ch authn.Challenge) []byte {
		c, err := p.TOTP().Code(context.Background(), devotp.SoftwareMAC{Key: oathSeed}, r.clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		return []byte(c)
	})
	k.step = true
	return k
}

func (r *rig) ocraKind(t *testing.T) kind {
	const suite = "OCRA-1:HOTP-SHA256-8:QN08"
	seed := []byte("12345678901234567890123456789012")
	r.importToken(t, &pskc.Key{ID: "1", Serial: "O" + randomHex(4), Manufacturer: "Acme",
		Params: devotp.Params{Kind: devotp.KindOCRA, Suite: suite, Hash: crypto.SHA256, Digits: 8}, Secret: seed})
	su, err := devotp.ParseSuite(suite)
	if err != nil {
		t.Fatal(err)
	}
	k := r.otpKind(t, func(t *testing.T, ch authn.Challenge) []byte {
		c, err := su.Compute(context.Background(), devotp.SoftwareMAC{Key: seed}, devotp.OCRAInput{Question: string(ch.Data)})
		if err != nil {
			t.Fatal(err)
		}
		return []byte(c)
	})
	k.contentBound = true
	return k
}

// passportCounted is the passport's per-factor counter of a tool that
// keeps none of its own.
func (r *rig) passportCounted(name string) func(t *testing.T) int {
	return func(t *testing.T) int { return r.passportFailures(t, name) }
}

// ushieldToken is the customer's U-shield: a SoftHSM2 token
// (hsmtest.UShieldToken) reached through devices/pkcs11token, as the
// customer's token software does.
type ushieldToken struct {
	once sync.Once
	tok  *pkcs11token.Token
	err  error
}

func (u *ushieldToken) open(t *testing.T) *pkcs11token.Token {
	t.Helper()
	u.once.Do(func() {
		ctx := context.Background()
		mod, err := pkcs11token.Open(hsmtest.Config(t).Module)
		if err != nil {
			u.err = err
			return
		}
		if u.tok, u.err = mod.OpenToken(ctx, hsmtest.UShieldToken); u.err == nil {
			u.err = u.tok.Login(ctx, []byte(hsmtest.PIN))
		}
	})
	if u.err != nil {
		t.Fatalf("the U-shield token in SoftHSM2: %v", u.err)
	}
	return u.tok
}

// ushieldKind enrolls the SoftHSM2 token as the customer's U-shield of a
// generation (the key made on the token, the certificate from the bank CA
// written back). A 2nd-generation one signs through the simulated device
// (simulators/ushield), which shows the text and signs after confirm.
func (r *rig) ushieldKind(t *testing.T, ut *ushieldToken, gen int) kind {
	ctx := context.Background()
	tok := ut.open(t)
	b, err := r.set.UShield.Enroll(ctx, tok, r.pid, gen, pkcs11token.EnrollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := tok.Key(ctx, b.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tok.Certificate(ctx, b.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(t *testing.T, data []byte) []byte {
		p, err := pkcs11token.SignProof(key, cert, data, false)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	name, level := UShield, authn.Level(4)
	if gen == 2 {
		dev := &simushield.Device{Signer: key, Cert: cert, Auto: simushield.AutoConfirm}
		sign = func(t *testing.T, data []byte) []byte {
			p, err := dev.Sign(ctx, data)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		name, level = UShield2, 5
	}
	return kind{name: name, level: level, confirm: gen == 2, contentBound: true, begin: r.begin(name),
		answer: func(t *testing.T, ch authn.Challenge) []byte { return sign(t, ch.Data) },
		wrong: func(t *testing.T, ch authn.Challenge) []byte {
			return sign(t, append(bytes.Clone(ch.Data), " and more"...))
		},
		counter: r.passportCounted(name)}
}

// pivCard is the simulated PIV card (simulators/pivcard) in a vpcd reader
// of pcscd, opened through devices/piv.
type pivCard struct {
	once sync.Once
	card *piv.Card
}

func (p *pivCard) open(t *testing.T) *piv.Card {
	t.Helper()
	p.once.Do(func() {
		pivtest.NeedPCSC(t)
		v := pivtest.Vendor(t)
		slot := pivtest.TakeReader(t)
		pivtest.Insert(t, slot, pivtest.NewCard(t, v))
		pool := x509.NewCertPool()
		pool.AddCert(v.Cert)
		drv := piv.New(piv.Config{VendorRoots: pool})
		if err := pivtest.Until(10*time.Second, func() (err error) {
			p.card, err = drv.Open(context.Background(), slot.Reader)
			return err
		}); err != nil {
			t.Fatalf("opening the PIV card: %v", err)
		}
		t.Cleanup(func() { p.card.Close() })
	})
	if p.card == nil {
		t.Fatal("no PIV card")
	}
	return p.card
}

func (r *rig) pivKind(t *testing.T, pc *pivCard) kind {
	ctx := context.Background()
	card := pc.open(t)
	if _, err := r.set.PIV.Enroll(ctx, card, r.pid, pivauth.EnrollOptions{}); err != nil {
		t.Fatalf("PIV Enroll: %v", err)
	}
	pin := func(context.Context, int) (string, error) { return "123456", nil }
	prove := func(t *testing.T, data []byte) []byte {
		p, err := pivauth.Prove(ctx, card, gopiv.SlotAuthentication, pin, data)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	return kind{name: PIV, level: 4, contentBound: true, begin: r.begin(PIV),
		answer: func(t *testing.T, ch authn.Challenge) []byte { return prove(t, ch.Data) },
		wrong: func(t *testing.T, ch authn.Challenge) []byte {
			return prove(t, append(bytes.Clone(ch.Data), " and more"...))
		},
		counter: r.passportCounted(PIV)}
}

// TestEveryToolLoginAndTransaction runs every tool the passport offers —
// the password, SMS (development sink), grid card, OATH HOTP and TOTP and
// OCRA tokens (PSKC import, seeds wrapped and HMACs computed in SoftHSM2),
// U-shields of both generations (keys on a SoftHSM2 token; the 2nd
// generation through the simulated device's display and confirm button),
// and a PIV card (the simulated card on pcscd) — through a login
// challenge and through transaction-bound challenges, the same way:
// login answers go through authn.Counted (the login page's call),
// transaction answers through Set.VerifyTransaction. For each tool the
// right answer is accepted once; an answer to another transaction's
// challenge, a login challenge given for a transaction and a transaction
// challenge given at login are refused (authn.ErrOtherTransaction) without
// costing an attempt; every wrong answer is counted once, on the tool's
// one counter (its own for SMS, grid card and OTP, the passport's
// per-factor counter otherwise, which then stays at zero for the others).
func TestEveryToolLoginAndTransaction(t *testing.T) {
	ut, pc := &ushieldToken{}, &pivCard{}
	hsmtest.Open(t) // the bank HSM, loaded before the U-shield token
	pc.open(t)      // one card on pcscd for both engines
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		kinds := []struct {
			name string
			make func(r *rig, t *testing.T) kind
		}{
			{"password", (*rig).passwordKind},
			{"sms", (*rig).smsKind},
			{"gridcard", (*rig).gridKind},
			{"otp hotp", (*rig).hotpKind},
			{"otp totp", (*rig).totpKind},
			{"otp ocra", (*rig).ocraKind},
			{"ushield 1st gen", func(r *rig, t *testing.T) kind { return r.ushieldKind(t, ut, 1) }},
			{"ushield 2nd gen", func(r *rig, t *testing.T) kind { return r.ushieldKind(t, ut, 2) }},
			{"piv", func(r *rig, t *testing.T) kind { return r.pivKind(t, pc) }},
		}
		for _, kc := range kinds {
			t.Run(kc.name, func(t *testing.T) {
				ctx := context.Background()
				r := newRig(t, db)
				k := kc.make(r, t)
				own := k.name == passport.FactorPassword || CountsOwnFailures(k.name)
				if f := r.set.Factor(k.name); f != nil && authn.CountsOwnFailures(f) != own {
					t.Fatalf("%s: factors.CountsOwnFailures says %v, the tool %v", k.name, own, !own)
				}
				// failures checks the one counter, and that no other counts.
				failures := func(t *testing.T, want int) {
					t.Helper()
					if got := k.counter(t); got != want {
						t.Fatalf("%s's counter = %d, want %d", k.name, got, want)
					}
					if k.name != passport.FactorPassword && own {
						if n := r.passportFailures(t, k.name); n != 0 {
							t.Fatalf("the passport counted %d failures of %s, which counts its own", n, k.name)
						}
					}
				}
				right := func(t *testing.T, ch authn.Challenge) []byte {
					t.Helper()
					if k.step {
						r.clk.Add(30 * time.Second)
					}
					return k.answer(t, ch)
				}
				login := func(t *testing.T, ch authn.Challenge, resp []byte) (authn.Result, error) {
					if k.login != nil {
						return k.login(t, ch, resp)
					}
					return authn.Counted(ctx, r.set.Factor(k.name), r.pp, authn.VerifyRequest{PassportID: r.pid, ChallengeID: ch.ID,
						Response: resp, ClientIP: rigIP, Purpose: authn.PurposeLogin})
				}
				verify := func(hash []byte, ch authn.Challenge, resp []byte) (authn.Result, error) {
					return r.set.VerifyTransaction(ctx, k.name, hash, authn.VerifyRequest{PassportID: r.pid, ChallengeID: ch.ID, Response: resp, ClientIP: rigIP})
				}
				check := func(t *testing.T, res authn.Result) {
					t.Helper()
					if res.Factor != k.name || res.Level != k.level || res.ConfirmedOnDevice != k.confirm {
						t.Fatalf("result %+v", res)
					}
				}
				used := func(err error) bool { return errors.Is(err, authn.ErrUsed) || errors.Is(err, authn.ErrReplay) }

				// Login: the right answer, once; a wrong one counted once.
				ch := k.begin(t, authn.PurposeLogin, tx{})
				ans := right(t, ch)
				res, err := login(t, ch, ans)
				if err != nil {
					t.Fatalf("login: %v", err)
				}
				check(t, res)
				if k.login == nil {
					if _, err := login(t, ch, ans); !used(err) {
						t.Fatalf("login answer used twice: %v", err)
					}
				}
				failures(t, 0)
				ch = k.begin(t, authn.PurposeLogin, tx{})
				if _, err := login(t, ch, k.wrong(t, ch)); !errors.Is(err, authn.ErrWrongAnswer) {
					t.Fatalf("wrong login answer: %v", err)
				}
				failures(t, 1)
				if k.noTx != "" {
					t.Logf("no transaction challenge: %s", k.noTx)
					return
				}

				a, b := newTx("Transfer of CNY 1,200.00 to account ending 4321"), newTx("Transfer of CNY 9,900.00 to account ending 8765")
				chA := k.begin(t, authn.PurposeTransaction, a)
				chB := k.begin(t, authn.PurposeTransaction, b)
				ansA := k.answer(t, chA)
				// Random codes (SMS, grid cells, OCRA questions) now and then
				// give B's challenge A's answer, which then is right for B:
				// such a B is begun again.
				for i := 0; k.contentBound && bytes.Equal(k.answer(t, chB), ansA); i++ {
					if i == 2 {
						t.Fatalf("three challenges for B take A's answer %q", ansA)
					}
					chB = k.begin(t, authn.PurposeTransaction, b)
				}
				// Refused without costing an attempt, the challenge unchanged:
				// A's challenge (and answer) given for intent B, a login
				// challenge given for a transaction, A's challenge at login.
				if _, err := verify(b.hash, chA, ansA); !errors.Is(err, ErrOtherTransaction) || !errors.Is(err, authn.ErrUnknown) {
					t.Fatalf("A's challenge for intent B: %v", err)
				}
				lg := k.begin(t, authn.PurposeLogin, tx{})
				if _, err := verify(a.hash, lg, k.answer(t, lg)); !errors.Is(err, ErrOtherTransaction) {
					t.Fatalf("login challenge for a transaction: %v", err)
				}
				if _, err := login(t, chA, ansA); !errors.Is(err, authn.ErrOtherTransaction) {
					t.Fatalf("transaction challenge at login: %v", err)
				}
				if _, err := verify(nil, chA, ansA); !errors.Is(err, ErrNoTxHash) {
					t.Fatalf("no hash: %v", err)
				}
				failures(t, 1)

				// A wrong answer for B: counted once.
				if _, err := verify(b.hash, chB, k.wrong(t, chB)); !errors.Is(err, authn.ErrWrongAnswer) {
					t.Fatalf("wrong answer for B: %v", err)
				}
				failures(t, 2)
				if strings.Contains(string(chB.Data), "\nChallenge: ") {
					// A signature over B's challenge line with A's text in place of B's: refused, counted.
					forged := chB
					forged.Data = bytes.Replace(chB.Data, []byte(b.text), []byte(a.text), 1)
					if _, err := verify(b.hash, chB, k.answer(t, forged)); !errors.Is(err, authn.ErrWrongAnswer) {
						t.Fatalf("a signature over another transaction text: %v", err)
					}
					failures(t, 3)
					if !bytes.HasPrefix(chA.Data, []byte(a.text+"\nChallenge: ")) {
						t.Fatalf("the signed bytes do not start with the transaction text: %q", chA.Data)
					}
				}

				// A's answer for A: accepted once. A tool's own counter
				// starts again after a right answer; the passport's counts
				// the day's failures.
				res, err = verify(a.hash, chA, right(t, chA))
				if err != nil {
					t.Fatalf("A's answer for A: %v", err)
				}
				check(t, res)
				if _, err := verify(a.hash, chA, k.answer(t, chA)); !used(err) {
					t.Fatalf("used twice: %v", err)
				}
				if own {
					failures(t, 0)
				} else if k.counter(t) < 2 {
					t.Fatalf("the passport's counter of %s lost its failures: %d", k.name, k.counter(t))
				}
				// The login challenge refused for the transaction still logs in.
				if _, err := login(t, lg, right(t, lg)); err != nil {
					t.Fatalf("the login challenge after its refusal for a transaction: %v", err)
				}
				if _, err := verify(a.hash, authn.Challenge{ID: "no-such-challenge"}, ansA); !errors.Is(err, authn.ErrUnknown) {
					t.Fatalf("unknown challenge: %v", err)
				}
			})
		}
	})
}
