package pivauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	gopiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/authn/authntest"
	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/authsvc/ushield"
	"github.com/egate-bank/egate/devices/piv"
	"github.com/egate-bank/egate/devices/pkcs11token"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// These tests cover verification with software keys certified through the
// same CA path as a card's (IssuePIV with an attestation); card_test.go
// runs the whole flow on the simulator through pcscd and SoftHSM2.

// clock is the tests' movable wall clock.
type clock = authntest.Clock

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type rig struct {
	svc *Service
	ca  *ca.CA
	clk *clock
}

func newRig(t testing.TB, db *store.DB) *rig {
	clk := &clock{}
	c, err := ca.Init(context.Background(), db, newKey(t), newKey(t), ca.Options{}, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{svc: New(db, c, clk.Now), ca: c, clk: clk}
}

type softKey struct {
	key  crypto.Signer
	cert *x509.Certificate
	b    *Binding
}

var nextSerial atomic.Uint32

// enrollSoft certifies a software key as if a card had attested it, and binds it.
func (r *rig) enrollSoft(t testing.TB, passportID string) softKey {
	t.Helper()
	ctx := context.Background()
	k := newKey(t)
	serial := 1000 + nextSerial.Add(1)
	att := &gopiv.Attestation{Serial: serial, Slot: gopiv.SlotAuthentication, PINPolicy: gopiv.PINPolicyOnce, TouchPolicy: gopiv.TouchPolicyNever}
	cert, err := (&ca.PIVIssuer{CA: r.ca, Owner: passportID, Serial: serial, Slot: gopiv.SlotAuthentication}).IssueCertificate(ctx, k.Public(), pkix.Name{}, &piv.Attestation{Attestation: att})
	if err != nil {
		t.Fatal(err)
	}
	b := &Binding{CertSerial: ca.SerialHex(cert.SerialNumber), PassportID: passportID, CardSerial: serial, Slot: "9a", Firmware: "5.7.1", PINPolicy: "once", TouchPolicy: "never"}
	if err := r.svc.Bind(ctx, b); err != nil {
		t.Fatal(err)
	}
	return softKey{k, cert, b}
}

func (s softKey) sign(t testing.TB, data []byte) []byte {
	t.Helper()
	p, err := pkcs11token.SignProof(s.key, s.cert, data, false)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerify(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := newRig(t, db)
		alice := r.enrollSoft(t, "alice")
		bob := r.enrollSoft(t, "bob")
		lost := r.enrollSoft(t, "alice")
		revoked := r.enrollSoft(t, "alice")
		foreign := newRig(t, storetest.SQLite(t)).enrollSoft(t, "alice")
		if err := r.svc.ReportLost(ctx, "alice", lost.b.CertSerial); err != nil {
			t.Fatal(err)
		}
		if err := r.ca.Revoke(ctx, revoked.b.CertSerial, ca.ReasonKeyCompromise); err != nil {
			t.Fatal(err)
		}
		// A U-shield certificate from the same CA, bound as a U-shield: not a PIV key.
		us := ushield.New(db, r.ca, r.clk.Now)
		uk := newKey(t)
		csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, uk)
		ucert, err := us.Issuer("alice").IssueToken(ctx, csr, uk.Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := us.Bind(ctx, &ushield.Binding{CertSerial: ca.SerialHex(ucert.SerialNumber), PassportID: "alice", Generation: 1, TokenLabel: "u", TokenSerial: "1", KeyID: []byte{1}}); err != nil {
			t.Fatal(err)
		}
		ushieldKey := softKey{key: uk, cert: ucert}

		f := r.svc.Factor()
		if f.Name() != "piv" || f.Level() != 4 {
			t.Fatalf("factor %s level %d", f.Name(), f.Level())
		}
		login := authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin}
		tx := authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeTransaction, TxText: "Transfer 1,234.56 yuan to ****6789", TxHash: []byte{1, 2, 3}}
		cases := []struct {
			name     string
			begin    authn.BeginRequest
			respond  func(ch authn.Challenge) []byte
			want     error
			reusable bool // the refused challenge must still verify with a good proof
		}{
			{name: "login", begin: login, respond: func(ch authn.Challenge) []byte { return alice.sign(t, ch.Data) }},
			{name: "transaction", begin: tx, respond: func(ch authn.Challenge) []byte { return alice.sign(t, ch.Data) }},
			{name: "signature over other text", begin: tx, respond: func(ch authn.Challenge) []byte {
				return alice.sign(t, ushield.SignedText("Transfer 9,999.00 yuan to ****0000", ch.Data[len(ch.Data)-32:]))
			}, want: authn.ErrWrongAnswer, reusable: true},
			{name: "signature over the text without the challenge", begin: tx,
				respond: func(ch authn.Challenge) []byte { return alice.sign(t, []byte(tx.TxText)) }, want: authn.ErrWrongAnswer, reusable: true},
			{name: "another customer's card", begin: tx, respond: func(ch authn.Challenge) []byte { return bob.sign(t, ch.Data) },
				want: authn.ErrWrongAnswer, reusable: true},
			{name: "certificate of another CA", begin: tx, respond: func(ch authn.Challenge) []byte { return foreign.sign(t, ch.Data) },
				want: ca.ErrNotIssuedHere, reusable: true},
			{name: "a U-shield is not a PIV card", begin: login, respond: func(ch authn.Challenge) []byte { return ushieldKey.sign(t, ch.Data) },
				want: authn.ErrNotEnrolled, reusable: true},
			{name: "card reported lost", begin: login, respond: func(ch authn.Challenge) []byte { return lost.sign(t, ch.Data) },
				want: authn.ErrRevoked, reusable: true},
			{name: "certificate revoked at the CA", begin: login, respond: func(ch authn.Challenge) []byte { return revoked.sign(t, ch.Data) },
				want: authn.ErrRevoked, reusable: true},
			{name: "garbage", begin: login, respond: func(authn.Challenge) []byte { return []byte("EGP1 not really") },
				want: authn.ErrBadResponse, reusable: true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ch, err := f.Begin(ctx, tc.begin)
				if err != nil {
					t.Fatal(err)
				}
				res, err := f.Verify(ctx, tc.begin.Answer(ch.ID, tc.respond(ch)))
				if tc.want != nil {
					if !errors.Is(err, tc.want) {
						t.Fatalf("Verify = %v, want %v", err, tc.want)
					}
					if tc.reusable {
						if _, err := f.Verify(ctx, tc.begin.Answer(ch.ID, alice.sign(t, ch.Data))); err != nil {
							t.Fatalf("the refused challenge is no longer usable: %v", err)
						}
					}
					return
				}
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if res.Factor != "piv" || res.Level != 4 || res.AMR != "hwk" || res.ConfirmedOnDevice {
					t.Errorf("result %+v", res)
				}
				if _, err := f.Verify(ctx, tc.begin.Answer(ch.ID, tc.respond(ch))); !errors.Is(err, authn.ErrUsed) {
					t.Errorf("replay = %v, want ErrUsed", err)
				}
			})
		}

		t.Run("expired challenge", func(t *testing.T) {
			ch, err := f.Begin(ctx, login)
			if err != nil {
				t.Fatal(err)
			}
			r.clk.Advance(r.svc.TTL + time.Second)
			defer r.clk.Advance(-(r.svc.TTL + time.Second))
			if _, err := f.Verify(ctx, authn.VerifyRequest{PassportID: "alice", ChallengeID: ch.ID, Response: alice.sign(t, ch.Data)}); !errors.Is(err, authn.ErrExpired) {
				t.Fatalf("Verify = %v, want ErrExpired", err)
			}
		})
		t.Run("another customer's challenge", func(t *testing.T) {
			ch, err := f.Begin(ctx, authn.BeginRequest{PassportID: "bob", Purpose: authn.PurposeLogin})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Verify(ctx, authn.VerifyRequest{PassportID: "alice", ChallengeID: ch.ID, Response: alice.sign(t, ch.Data)}); !errors.Is(err, authn.ErrUnknown) {
				t.Fatalf("Verify = %v, want ErrUnknown", err)
			}
		})
		t.Run("bad transaction text", func(t *testing.T) {
			for _, text := range []string{"", "a\x00b", string(make([]byte, ushield.MaxTxText+1))} {
				if _, err := f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeTransaction, TxText: text, TxHash: []byte{1}}); !errors.Is(err, ushield.ErrBadTxText) {
					t.Errorf("Begin(%q) = %v, want ErrBadTxText", text, err)
				}
			}
		})
		t.Run("concurrent verifies of one challenge", func(t *testing.T) {
			ch, err := f.Begin(ctx, login)
			if err != nil {
				t.Fatal(err)
			}
			proof := alice.sign(t, ch.Data)
			ok, used := authntest.VerifyConcurrently(ctx, t, f, authn.VerifyRequest{PassportID: "alice", ChallengeID: ch.ID, Response: proof}, 8)
			if ok != 1 || used != 7 {
				t.Fatalf("%d succeeded and %d were told used, want 1 and 7", ok, used)
			}
		})
		t.Run("enrollment state", func(t *testing.T) {
			for _, tc := range []struct {
				who  string
				want bool
			}{{"alice", true}, {"bob", true}, {"carol", false}} {
				if got, err := f.Enrolled(ctx, tc.who); err != nil || got != tc.want {
					t.Errorf("Enrolled(%s) = %v, %v; want %v", tc.who, got, err, tc.want)
				}
			}
			if err := r.svc.ReportLost(ctx, "bob", bob.b.CertSerial); err != nil {
				t.Fatal(err)
			}
			if got, _ := f.Enrolled(ctx, "bob"); got {
				t.Error("bob still enrolled after his only card was reported lost")
			}
			if _, err := f.Begin(ctx, authn.BeginRequest{PassportID: "bob", Purpose: authn.PurposeLogin}); !errors.Is(err, authn.ErrNotEnrolled) {
				t.Errorf("Begin for bob = %v, want ErrNotEnrolled", err)
			}
			if err := r.svc.ReportLost(ctx, "alice", bob.b.CertSerial); !errors.Is(err, authn.ErrNotEnrolled) {
				t.Errorf("ReportLost of another customer's card = %v, want ErrNotEnrolled", err)
			}
			if ok, _ := r.ca.IsRevoked(ctx, bob.cert.SerialNumber); !ok {
				t.Error("lost card's certificate not revoked")
			}
		})
		t.Run("re-enrolling a slot replaces the old key", func(t *testing.T) {
			k := r.enrollSoft(t, "dave")
			old := k.b.CertSerial
			k2 := r.enrollSoft(t, "dave")
			// Bind k2's certificate to k's card and slot, as a re-enrollment does.
			if _, err := db.Exec(ctx, `DELETE FROM piv_tokens WHERE cert_serial = ?`, k2.b.CertSerial); err != nil {
				t.Fatal(err)
			}
			nb := *k2.b
			nb.CardSerial = k.b.CardSerial
			if err := r.svc.Bind(ctx, &nb); err != nil {
				t.Fatal(err)
			}
			bs, err := r.svc.Tokens(ctx, "dave")
			if err != nil {
				t.Fatal(err)
			}
			st := map[string]string{}
			for _, b := range bs {
				st[b.CertSerial] = b.Status
			}
			if st[old] != "replaced" || st[k2.b.CertSerial] != "active" {
				t.Fatalf("statuses %v", st)
			}
			if ok, _ := r.ca.IsRevoked(ctx, k.cert.SerialNumber); !ok {
				t.Error("replaced certificate not revoked")
			}
		})
	})
}
