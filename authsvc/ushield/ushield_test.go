package ushield

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/authn/authntest"
	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/devices/pkcs11token"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// clock is the tests' movable wall clock.
type clock = authntest.Clock

func key(t testing.TB) *ecdsa.PrivateKey {
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
	c, err := ca.Init(context.Background(), db, key(t), key(t), ca.Options{}, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{svc: New(db, c, clk.Now), ca: c, clk: clk}
}

// softToken is a software key with a bank certificate, bound to a customer
// (the SoftHSM path is TestEnrollSoftHSM's).
type softToken struct {
	key  crypto.Signer
	cert *x509.Certificate
}

func (r *rig) enrollSoft(t testing.TB, passportID string, gen int) softToken {
	t.Helper()
	ctx := context.Background()
	k := key(t)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
	cert, err := r.svc.Issuer(passportID).IssueToken(ctx, csr, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.svc.Bind(ctx, &Binding{CertSerial: ca.SerialHex(cert.SerialNumber), PassportID: passportID, Generation: gen, TokenLabel: "soft", TokenSerial: "0", KeyID: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	return softToken{k, cert}
}

func (s softToken) sign(t testing.TB, data []byte, confirmed bool) []byte {
	t.Helper()
	p, err := pkcs11token.SignProof(s.key, s.cert, data, confirmed)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerify(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := newRig(t, db)
		alice := r.enrollSoft(t, "alice", 1)
		alice2 := r.enrollSoft(t, "alice", 2)
		bob := r.enrollSoft(t, "bob", 1)
		lost := r.enrollSoft(t, "carol", 1)
		foreign := newRig(t, storetest.SQLite(t)).enrollSoft(t, "alice", 1)
		gen1, gen2 := r.svc.Factor(1), r.svc.Factor(2)
		tx := authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeTransaction, TxText: "Transfer 1,234.56 yuan to ****6789", TxHash: []byte{1, 2, 3}}
		txZH := authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeTransaction, TxText: "向 6222…6789 转账 1,234.56 元（付款账户 6222…0001）", TxLang: "zh-CN", TxHash: []byte{1, 2, 3}}

		cases := []struct {
			name     string
			factor   authn.Factor
			begin    authn.BeginRequest
			respond  func(ch authn.Challenge) []byte
			mutate   func(ch *authn.Challenge) // before verifying
			want     error
			reusable bool // the refused challenge must still verify with a good proof
		}{
			{name: "login", factor: gen1, begin: authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin},
				respond: func(ch authn.Challenge) []byte { return alice.sign(t, ch.Data, false) }},
			{name: "transaction", factor: gen1, begin: tx,
				respond: func(ch authn.Challenge) []byte { return alice.sign(t, ch.Data, false) }},
			{name: "2nd gen confirmed", factor: gen2, begin: tx,
				respond: func(ch authn.Challenge) []byte { return alice2.sign(t, ch.Data, true) }},
			{name: "2nd gen confirmed, Chinese text", factor: gen2, begin: txZH,
				respond: func(ch authn.Challenge) []byte {
					if !bytes.HasPrefix(ch.Data, []byte(txZH.TxText+"\nChallenge: ")) {
						t.Errorf("the token is asked to sign %q", ch.Data)
					}
					return alice2.sign(t, ch.Data, true)
				}},
			{name: "signature over other text", factor: gen1, begin: tx,
				respond: func(ch authn.Challenge) []byte {
					return alice.sign(t, SignedText("Transfer 9,999.00 yuan to ****0000", ch.Data[len(ch.Data)-32:]), false)
				}, want: authn.ErrWrongAnswer, reusable: true},
			{name: "signature over the text without the challenge", factor: gen1, begin: tx,
				respond: func(ch authn.Challenge) []byte { return alice.sign(t, []byte(tx.TxText), false) },
				want:    authn.ErrWrongAnswer, reusable: true},
			{name: "foreign certificate", factor: gen1, begin: tx,
				respond: func(ch authn.Challenge) []byte { return foreign.sign(t, ch.Data, false) },
				want:    ca.ErrNotIssuedHere, reusable: true},
			{name: "another customer's token", factor: gen1, begin: tx,
				respond: func(ch authn.Challenge) []byte { return bob.sign(t, ch.Data, false) },
				want:    authn.ErrWrongAnswer, reusable: true},
			{name: "1st gen token for a 2nd gen challenge", factor: gen2, begin: tx,
				respond: func(ch authn.Challenge) []byte { return alice.sign(t, ch.Data, true) },
				want:    ErrGeneration, reusable: true},
			{name: "2nd gen proof without confirmation", factor: gen2, begin: tx,
				respond: func(ch authn.Challenge) []byte { return alice2.sign(t, ch.Data, false) },
				want:    authn.ErrWrongAnswer, reusable: true},
			{name: "malformed", factor: gen1, begin: tx,
				respond: func(ch authn.Challenge) []byte { return []byte("EGP1garbage") },
				want:    authn.ErrBadResponse, reusable: true},
			{name: "unknown challenge", factor: gen1, begin: tx,
				respond: func(ch authn.Challenge) []byte { return alice.sign(t, ch.Data, false) },
				mutate:  func(ch *authn.Challenge) { ch.ID = "nope" }, want: authn.ErrUnknown},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ch, err := tc.factor.Begin(ctx, tc.begin)
				if err != nil {
					t.Fatal(err)
				}
				resp := tc.respond(ch)
				id := ch.ID
				if tc.mutate != nil {
					tc.mutate(&ch)
				}
				res, err := tc.factor.Verify(ctx, tc.begin.Answer(ch.ID, resp))
				if !errors.Is(err, tc.want) {
					t.Fatalf("Verify = %v, want %v", err, tc.want)
				}
				if tc.want == nil {
					if res.Level != tc.factor.Level() || res.ConfirmedOnDevice != (tc.factor.Level() == 5) || res.AMR != "hwk" {
						t.Fatalf("result %+v", res)
					}
					_, err := tc.factor.Verify(ctx, tc.begin.Answer(ch.ID, resp))
					if !errors.Is(err, authn.ErrUsed) {
						t.Fatalf("second Verify = %v, want ErrUsed", err)
					}
				}
				if tc.reusable {
					signer := alice
					if tc.factor.Level() == 5 {
						signer = alice2
					}
					if _, err := tc.factor.Verify(ctx, tc.begin.Answer(id, signer.sign(t, ch.Data, tc.factor.Level() == 5))); err != nil {
						t.Fatalf("the refused proof changed the challenge: good proof now gives %v", err)
					}
				}
			})
		}

		t.Run("reported lost is refused from the next request", func(t *testing.T) {
			begin := authn.BeginRequest{PassportID: "carol", Purpose: authn.PurposeLogin}
			ch1, _ := gen1.Begin(ctx, begin)
			ch2, _ := gen1.Begin(ctx, begin)
			if _, err := gen1.Verify(ctx, authn.VerifyRequest{PassportID: "carol", ChallengeID: ch1.ID, Response: lost.sign(t, ch1.Data, false)}); err != nil {
				t.Fatal(err)
			}
			if err := r.svc.ReportLost(ctx, "carol", ca.SerialHex(lost.cert.SerialNumber)); err != nil {
				t.Fatal(err)
			}
			_, err := gen1.Verify(ctx, authn.VerifyRequest{PassportID: "carol", ChallengeID: ch2.ID, Response: lost.sign(t, ch2.Data, false)})
			if !errors.Is(err, authn.ErrRevoked) {
				t.Fatalf("Verify after ReportLost = %v, want ErrRevoked", err)
			}
			if ok, _ := gen1.Enrolled(ctx, "carol"); ok {
				t.Fatal("a customer whose only token is lost is still enrolled")
			}
		})

		t.Run("expired challenge", func(t *testing.T) {
			ch, _ := gen1.Begin(ctx, tx)
			r.clk.Advance(r.svc.TTL + time.Second)
			defer r.clk.Advance(-(r.svc.TTL + time.Second))
			_, err := gen1.Verify(ctx, tx.Answer(ch.ID, alice.sign(t, ch.Data, false)))
			if !errors.Is(err, authn.ErrExpired) {
				t.Fatalf("Verify = %v, want ErrExpired", err)
			}
		})

		t.Run("bad transaction text", func(t *testing.T) {
			for _, text := range []string{"", "a\x00b", string(make([]byte, MaxTxText+1))} {
				if _, err := gen1.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeTransaction, TxText: text, TxHash: []byte{1}}); !errors.Is(err, ErrBadTxText) {
					t.Errorf("Begin(%q) = %v", text, err)
				}
			}
			if _, err := gen1.Begin(ctx, authn.BeginRequest{PassportID: "nobody", Purpose: authn.PurposeLogin}); !errors.Is(err, authn.ErrNotEnrolled) {
				t.Errorf("Begin for a customer without token = %v", err)
			}
		})

		t.Run("single use under parallel verifies", func(t *testing.T) {
			ch, _ := gen1.Begin(ctx, tx)
			resp := alice.sign(t, ch.Data, false)
			const n = 16
			ok, used := authntest.VerifyConcurrently(ctx, t, gen1, tx.Answer(ch.ID, resp), n)
			if ok != 1 || used != n-1 {
				t.Fatalf("%d successes and %d ErrUsed, want 1 and %d", ok, used, n-1)
			}
		})
	})
}
