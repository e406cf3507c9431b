package factors

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gopiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/authsvc/otp"
	"github.com/egate-bank/egate/authsvc/pivauth"
	"github.com/egate-bank/egate/authsvc/ushield"
	devotp "github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/devices/piv"
	"github.com/egate-bank/egate/devices/pkcs11token"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
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

// kind is one factor under test: how to begin a challenge for a transaction
// (or a login) and how the customer's tool answers it.
type kind struct {
	name    string
	level   authn.Level
	confirm bool // ConfirmedOnDevice expected
	begin   func(t *testing.T, purpose authn.Purpose, x tx) authn.Challenge
	answer  func(t *testing.T, ch authn.Challenge) []byte
	// contentBound says the answer itself depends on the challenge (a
	// code sent for it, cells, a question, a signature), so A's answer is
	// wrong for B's challenge. A TOTP code is bound to its intent only by
	// the challenge id.
	contentBound bool
}

type rig struct {
	set *Set
	db  *store.DB
	pid string
	now time.Time
	// smsWhat is what each SMS challenge authorizes, as its message says.
	smsWhat map[string]string
}

func newRig(t *testing.T, db *store.DB) *rig {
	now := time.Now()
	r := &rig{db: db, now: now, smsWhat: map[string]string{}}
	r.set = build(t, db, autoCA(), Deps{Now: func() time.Time { return now }})
	r.pid = customer(t, db, "13912345678")
	return r
}

func (r *rig) begin(name string) func(t *testing.T, purpose authn.Purpose, x tx) authn.Challenge {
	return func(t *testing.T, purpose authn.Purpose, x tx) authn.Challenge {
		t.Helper()
		req := authn.BeginRequest{PassportID: r.pid, Purpose: purpose, ClientIP: "192.0.2.7"}
		if purpose == authn.PurposeTransaction {
			req.TxText, req.TxHash = x.text, x.hash
		}
		ch, err := r.set.Factor(name).Begin(context.Background(), req)
		if err != nil {
			t.Fatalf("%s Begin: %v", name, err)
		}
		return ch
	}
}

var smsCode = regexp.MustCompile(`\] (\d{6}) is your code to (.*)\. Valid`)

func (r *rig) smsKind(t *testing.T) kind {
	return kind{name: SMS, level: 2, contentBound: true, begin: r.begin(SMS),
		answer: func(t *testing.T, ch authn.Challenge) []byte {
			// The code whose message names what the challenge authorizes.
			msgs, err := r.set.SMSSink.List(context.Background(), "13912345678", 50)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				if sm := smsCode.FindStringSubmatch(m.Body); sm != nil && sm[2] == r.smsWhat[ch.ID] {
					return []byte(sm[1])
				}
			}
			t.Fatalf("no SMS for challenge %s", ch.ID)
			return nil
		}}
}

func (r *rig) gridKind(t *testing.T) kind {
	card, err := r.set.GridCard.Issue(context.Background(), r.pid)
	if err != nil {
		t.Fatal(err)
	}
	return kind{name: GridCard, level: 2, contentBound: true, begin: r.begin(GridCard),
		answer: func(t *testing.T, ch authn.Challenge) []byte {
			var out []string
			for _, cell := range strings.Split(string(ch.Data), ",") {
				c, ok := card.Code(cell)
				if !ok {
					t.Fatalf("cell %q not on the card", cell)
				}
				out = append(out, c)
			}
			return []byte(strings.Join(out, " "))
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
	if _, err := r.set.OTP.ImportPSKC(ctx, func() (io.ReadCloser, error) { return os.Open(path) }, otp.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.set.OTP.Assign(ctx, k.Serial, "", r.pid); err != nil {
		t.Fatal(err)
	}
}

var totpSeed = []byte("12345678901234567890")

func (r *rig) totpKind(t *testing.T) kind {
	serial := "T" + randomHex(4)
	p := devotp.Params{Kind: devotp.KindTOTP, Hash: crypto.SHA1, Digits: 6, Period: 30 * time.Second}
	r.importToken(t, &pskc.Key{ID: "1", Serial: serial, Manufacturer: "Acme", Params: p, Secret: append([]byte(nil), totpSeed...)})
	return kind{name: OTP, level: 3, begin: r.begin(OTP),
		answer: func(t *testing.T, ch authn.Challenge) []byte {
			c, err := p.TOTP().Code(context.Background(), devotp.SoftwareMAC{Key: totpSeed}, r.now)
			if err != nil {
				t.Fatal(err)
			}
			return []byte(c)
		}}
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
	return kind{name: OTP, level: 3, contentBound: true, begin: r.begin(OTP),
		answer: func(t *testing.T, ch authn.Challenge) []byte {
			c, err := su.Compute(context.Background(), devotp.SoftwareMAC{Key: seed}, devotp.OCRAInput{Question: string(ch.Data)})
			if err != nil {
				t.Fatal(err)
			}
			return []byte(c)
		}}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signer(key crypto.Signer, cert *x509.Certificate, confirmed bool) func(t *testing.T, ch authn.Challenge) []byte {
	return func(t *testing.T, ch authn.Challenge) []byte {
		p, err := pkcs11token.SignProof(key, cert, ch.Data, confirmed)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// ushieldKind binds a software key certified by the bank CA as the
// customer's U-shield of a generation (the token path itself is tested in
// authsvc/ushield against SoftHSM2).
func (r *rig) ushieldKind(t *testing.T, gen int) kind {
	ctx := context.Background()
	k := newKey(t)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: r.pid}}, k)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := r.set.UShield.Issuer(r.pid).IssueToken(ctx, csr, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.set.UShield.Bind(ctx, &ushield.Binding{CertSerial: ca.SerialHex(cert.SerialNumber), PassportID: r.pid, Generation: gen,
		TokenLabel: "u", TokenSerial: randomHex(4), KeyID: []byte{byte(gen)}}); err != nil {
		t.Fatal(err)
	}
	if gen == 2 {
		return kind{name: UShield2, level: 5, confirm: true, contentBound: true, begin: r.begin(UShield2), answer: signer(k, cert, true)}
	}
	return kind{name: UShield, level: 4, contentBound: true, begin: r.begin(UShield), answer: signer(k, cert, false)}
}

var pivSerial atomic.Uint32

func (r *rig) pivKind(t *testing.T) kind {
	ctx := context.Background()
	k := newKey(t)
	serial := 4000 + pivSerial.Add(1)
	att := &gopiv.Attestation{Serial: serial, Slot: gopiv.SlotAuthentication, PINPolicy: gopiv.PINPolicyOnce, TouchPolicy: gopiv.TouchPolicyNever}
	cert, err := (&ca.PIVIssuer{CA: r.set.CA, Owner: r.pid, Serial: serial, Slot: gopiv.SlotAuthentication}).IssueCertificate(ctx, k.Public(), pkix.Name{}, &piv.Attestation{Attestation: att})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.set.PIV.Bind(ctx, &pivauth.Binding{CertSerial: ca.SerialHex(cert.SerialNumber), PassportID: r.pid, CardSerial: serial, Slot: "9a",
		Firmware: "5.7.1", PINPolicy: "once", TouchPolicy: "never"}); err != nil {
		t.Fatal(err)
	}
	return kind{name: PIV, level: 4, contentBound: true, begin: r.begin(PIV), answer: signer(k, cert, false)}
}

// TestTransactionBinding: for every kind of tool, a transaction challenge
// verifies only for its own intent hash, with the answer made for it; a
// signature covers the transaction text, so a proof over another text is
// refused; a login challenge is no transaction proof; single use holds.
func TestTransactionBinding(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		kinds := []struct {
			name string
			make func(r *rig, t *testing.T) kind
		}{
			{"sms", (*rig).smsKind},
			{"gridcard", (*rig).gridKind},
			{"otp totp", (*rig).totpKind},
			{"otp ocra", (*rig).ocraKind},
			{"ushield 1st gen", func(r *rig, t *testing.T) kind { return r.ushieldKind(t, 1) }},
			{"ushield 2nd gen", func(r *rig, t *testing.T) kind { return r.ushieldKind(t, 2) }},
			{"piv", (*rig).pivKind},
		}
		for _, kc := range kinds {
			t.Run(kc.name, func(t *testing.T) {
				ctx := context.Background()
				r := newRig(t, db)
				k := kc.make(r, t)
				a, b := newTx("Transfer of CNY 1,200.00 to account ending 4321"), newTx("Transfer of CNY 9,900.00 to account ending 8765")
				chA := k.begin(t, authn.PurposeTransaction, a)
				r.smsWhat[chA.ID] = "authorize " + a.text
				chB := k.begin(t, authn.PurposeTransaction, b)
				r.smsWhat[chB.ID] = "authorize " + b.text
				verify := func(hash []byte, ch authn.Challenge, resp []byte) (authn.Result, error) {
					return r.set.VerifyTransaction(ctx, k.name, hash, authn.VerifyRequest{PassportID: r.pid, ChallengeID: ch.ID, Response: resp, ClientIP: "192.0.2.7"})
				}
				ansA := k.answer(t, chA)
				// Random codes (SMS, grid cells, OCRA questions) now and then
				// give B's challenge A's answer, which then is right for B:
				// such a B is begun again. A tool that answers every
				// challenge alike still fails here.
				for i := 0; k.contentBound && bytes.Equal(k.answer(t, chB), ansA); i++ {
					if i == 2 {
						t.Fatalf("three challenges for B take A's answer %q", ansA)
					}
					chB = k.begin(t, authn.PurposeTransaction, b)
					r.smsWhat[chB.ID] = "authorize " + b.text
				}

				// A's challenge and answer presented for intent B: refused before the tool sees it.
				if _, err := verify(b.hash, chA, ansA); !errors.Is(err, ErrOtherTransaction) || !errors.Is(err, authn.ErrUnknown) {
					t.Fatalf("A's challenge for intent B: %v", err)
				}
				if _, err := verify(nil, chA, ansA); !errors.Is(err, ErrNoTxHash) {
					t.Fatalf("no hash: %v", err)
				}
				if k.contentBound && !bytes.Equal(chA.Data, chB.Data) {
					// A's answer on B's challenge (for B's intent): wrong.
					if _, err := verify(b.hash, chB, ansA); !errors.Is(err, authn.ErrWrongAnswer) {
						t.Fatalf("A's answer to B's challenge: %v", err)
					}
				}
				if strings.Contains(string(chB.Data), "\nChallenge: ") {
					// A signature over B's challenge line with A's text in place of B's: refused.
					forged := chB
					forged.Data = bytes.Replace(chB.Data, []byte(b.text), []byte(a.text), 1)
					if _, err := verify(b.hash, chB, k.answer(t, forged)); !errors.Is(err, authn.ErrWrongAnswer) {
						t.Fatalf("a signature over another transaction text: %v", err)
					}
					if !bytes.HasPrefix(chA.Data, []byte(a.text+"\nChallenge: ")) {
						t.Fatalf("the signed bytes do not start with the transaction text: %q", chA.Data)
					}
				}

				res, err := verify(a.hash, chA, ansA)
				if err != nil {
					t.Fatalf("A's answer for A: %v", err)
				}
				if res.Factor != k.name || res.Level != k.level || res.ConfirmedOnDevice != k.confirm {
					t.Fatalf("result %+v", res)
				}
				if _, err := verify(a.hash, chA, ansA); !errors.Is(err, authn.ErrUsed) && !errors.Is(err, authn.ErrReplay) {
					t.Fatalf("used twice: %v", err)
				}

				// A login challenge is no transaction proof.
				login := k.begin(t, authn.PurposeLogin, tx{})
				r.smsWhat[login.ID] = "log in"
				if _, err := verify(a.hash, login, k.answer(t, login)); !errors.Is(err, ErrOtherTransaction) {
					t.Fatalf("login challenge for a transaction: %v", err)
				}
				if _, err := verify(a.hash, authn.Challenge{ID: "no-such-challenge"}, ansA); !errors.Is(err, authn.ErrUnknown) {
					t.Fatalf("unknown challenge: %v", err)
				}
			})
		}
	})
}
