package pivauth

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	gopiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/authsvc/ushield"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/devices/pin"
	"github.com/egate-bank/egate/devices/piv"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/simulators/pivcard"
	"github.com/egate-bank/egate/simulators/pivcard/pivtest"
)

func TestMain(m *testing.M) { hsmtest.Main(m) }

// bankCA initialises the bank CA in db with its keys in SoftHSM2.
func bankCA(t testing.TB, db *store.DB) *ca.CA {
	t.Helper()
	hsmSvc := hsmtest.Open(t, hsm.KeySpec{Label: ca.RootKeyLabel, Type: hsm.KeyECDSAP256})
	ctx := context.Background()
	root, err := hsmSvc.Signer(ctx, ca.RootKeyLabel)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := hsmSvc.Signer(ctx, ca.IssuingKeyLabel)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Init(ctx, db, root, iss, ca.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// cardRig is a simulated card in a vpcd reader of pcscd.
type cardRig struct {
	vendor *pivcard.Vendor
	slot   pivtest.Slot
	in     *pivtest.Inserted
}

func newCardRig(t *testing.T) *cardRig {
	t.Helper()
	pivtest.NeedPCSC(t)
	hsmtest.Open(t) // the bank HSM: skip (or fail) before a card goes in
	r := &cardRig{vendor: pivtest.Vendor(t)}
	r.slot = pivtest.TakeReader(t)
	r.in = pivtest.Insert(t, r.slot, pivtest.NewCard(t, r.vendor))
	return r
}

// open opens the card through a driver that trusts roots.
func (r *cardRig) open(t *testing.T, roots ...*x509.Certificate) *piv.Card {
	t.Helper()
	pool := x509.NewCertPool()
	for _, c := range roots {
		pool.AddCert(c)
	}
	drv := piv.New(piv.Config{VendorRoots: pool})
	var c *piv.Card
	if err := pivtest.Until(10*time.Second, func() (err error) {
		c, err = drv.Open(context.Background(), r.slot.Reader)
		return err
	}); err != nil {
		t.Fatalf("opening the card: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func pinIs(pin string, calls *int) piv.PINPrompt {
	return func(context.Context, int) (string, error) {
		*calls++
		return pin, nil
	}
}

// TestCard runs the PIV factor end to end: pcscd, the simulated card,
// SoftHSM2 as the bank HSM, and both database engines.
func TestCard(t *testing.T) {
	r := newCardRig(t)
	card := r.open(t, r.vendor.Cert)
	slot := gopiv.SlotAuthentication
	runs := 0
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		runs++
		bank := bankCA(t, db)
		svc := New(db, bank, nil)
		f := svc.Factor()

		b, err := svc.Enroll(ctx, card, "alice", EnrollOptions{})
		if err != nil {
			t.Fatalf("Enroll: %v", err)
		}
		if b.CardSerial != r.in.Card.Serial() || b.Slot != "9a" || b.PINPolicy != "once" || b.Firmware != "5.7.1" {
			t.Errorf("binding %+v", b)
		}
		onCard, err := card.Certificate(ctx, slot)
		if err != nil {
			t.Fatal(err)
		}
		if ca.SerialHex(onCard.SerialNumber) != b.CertSerial || onCard.Subject.CommonName != "alice" {
			t.Fatalf("certificate on the card: serial %s, subject %v", ca.SerialHex(onCard.SerialNumber), onCard.Subject)
		}
		if err := bank.Verify(ctx, onCard); err != nil {
			t.Fatalf("the card's certificate does not verify at the bank CA: %v", err)
		}
		opensslVerify(t, bank, onCard)

		prompts := 0
		prove := func(t *testing.T, data []byte) []byte {
			t.Helper()
			p, err := Prove(ctx, card, slot, pinIs("123456", &prompts), data)
			if err != nil {
				t.Fatalf("Prove: %v", err)
			}
			return p
		}
		login := authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin}
		verifyAs := func(b authn.BeginRequest, ch authn.Challenge, proof []byte) (authn.Result, error) {
			return f.Verify(ctx, b.Answer(ch.ID, proof))
		}
		verify := func(ch authn.Challenge, proof []byte) (authn.Result, error) { return verifyAs(login, ch, proof) }

		// Login at level 4.
		loginCh, err := f.Begin(ctx, login)
		if err != nil {
			t.Fatal(err)
		}
		loginProof := prove(t, loginCh.Data)
		res, err := verify(loginCh, loginProof)
		if err != nil {
			t.Fatalf("login proof: %v", err)
		}
		if res.Level != 4 || res.Factor != "piv" || res.AMR != "hwk" {
			t.Errorf("login result %+v", res)
		}
		// The same proof again: the challenge is spent.
		if _, err := verify(loginCh, loginProof); !errors.Is(err, authn.ErrUsed) {
			t.Errorf("replayed login = %v, want ErrUsed", err)
		}

		// A transaction: the signature over the text verifies; a signature
		// (by the same card, with the same nonce) over other text does not.
		text := "Transfer 12,345.67 yuan from ****1234 to Zhang San ****6789"
		tx := authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeTransaction, TxText: text, TxHash: []byte("intent-hash")}
		ch, err := f.Begin(ctx, tx)
		if err != nil {
			t.Fatal(err)
		}
		nonce := ch.Data[len(ch.Data)-32:]
		forged := prove(t, ushield.SignedText("Transfer 99,999.00 yuan from ****1234 to Mallory ****0000", hexBytes(t, nonce)))
		if _, err := verifyAs(tx, ch, forged); !errors.Is(err, authn.ErrWrongAnswer) {
			t.Errorf("proof over other text = %v, want ErrWrongAnswer", err)
		}
		if res, err := verifyAs(tx, ch, prove(t, ch.Data)); err != nil || res.Level != 4 {
			t.Fatalf("transaction proof: %v, %+v", err, res)
		}
		// PIN-once: asked at the first signature on this connection (which
		// the second engine's run shares: the PIN stays verified), never again.
		if want := map[bool]int{true: 1, false: 0}[runs == 1]; prompts != want {
			t.Errorf("PIN asked %d times for a PIN-once key, want %d", prompts, want)
		}

		// Reported lost: a challenge begun before is refused from the next
		// request on, and no new challenge is given.
		pending, err := f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin})
		if err != nil {
			t.Fatal(err)
		}
		proof := prove(t, pending.Data)
		if _, err := svc.ReportCardLost(ctx, "alice", card.Serial()); err != nil {
			t.Fatal(err)
		}
		if _, err := verify(pending, proof); !errors.Is(err, authn.ErrRevoked) {
			t.Errorf("proof of a lost card = %v, want ErrRevoked", err)
		}
		if _, err := f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin}); !errors.Is(err, authn.ErrNotEnrolled) {
			t.Errorf("Begin after the only card was lost = %v, want ErrNotEnrolled", err)
		}
		if revoked, err := bank.IsRevoked(ctx, onCard.SerialNumber); err != nil || !revoked {
			t.Errorf("lost card's certificate revoked = %v, %v", revoked, err)
		}
	})
}

func hexBytes(t *testing.T, h []byte) []byte {
	t.Helper()
	b, err := hex.DecodeString(string(h))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// opensslVerify checks the card's certificate with OpenSSL, an independent
// reference, when it is installed.
func opensslVerify(t *testing.T, bank *ca.CA, cert *x509.Certificate) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		return
	}
	dir := t.TempDir()
	files := map[string][]byte{"root.pem": bank.RootPEM(), "issuing.pem": bank.IssuingPEM(), "card.pem": ca.CertPEM(cert)}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(bin, "verify", "-purpose", "sslclient", "-CAfile", filepath.Join(dir, "root.pem"),
		"-untrusted", filepath.Join(dir, "issuing.pem"), filepath.Join(dir, "card.pem")).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl verify: %v: %s", err, out)
	}
}

// TestEnrollForeignVendor: a card whose attestation chains to another
// vendor root is refused before the CA issues anything.
func TestEnrollForeignVendor(t *testing.T) {
	r := newCardRig(t)
	card := r.open(t, pivtest.Vendor(t).Cert) // trusts a root that is not the card's
	db := storetest.SQLite(t)
	bank := bankCA(t, db)
	svc := New(db, bank, nil)
	ctx := context.Background()
	if _, err := svc.Enroll(ctx, card, "mallory", EnrollOptions{}); !errors.Is(err, piv.ErrAttestation) {
		t.Fatalf("Enroll = %v, want piv.ErrAttestation", err)
	}
	if issued, err := bank.List(ctx, "mallory"); err != nil || len(issued) != 0 {
		t.Errorf("the CA issued %d certificates (%v)", len(issued), err)
	}
	if ok, err := svc.Factor().Enrolled(ctx, "mallory"); err != nil || ok {
		t.Errorf("Enrolled = %v, %v", ok, err)
	}
}

// TestPINPrompt: a wrong PIN surfaces the tries left, is asked once and
// never retried; a blocked PIN is reported without asking.
func TestPINPrompt(t *testing.T) {
	r := newCardRig(t)
	card := r.open(t, r.vendor.Cert)
	db := storetest.SQLite(t)
	svc := New(db, bankCA(t, db), nil)
	ctx := context.Background()
	slot := gopiv.SlotSignature
	if _, err := svc.Enroll(ctx, card, "carol", EnrollOptions{Slot: slot, PINPolicy: gopiv.PINPolicyAlways}); err != nil {
		t.Fatal(err)
	}
	f := svc.Factor()
	steps := []struct {
		name    string
		pin     string
		prompts int   // times the prompt must be called
		want    error // nil: the proof verifies
		retries int   // for a wrong PIN (*pin.Error): the tries it reports
	}{
		{name: "wrong PIN", pin: "000000", prompts: 1, want: pin.ErrIncorrect, retries: 2},
		{name: "right PIN", pin: "123456", prompts: 1},
		{name: "PIN-always asks again", pin: "123456", prompts: 1},
		{name: "wrong PIN once more", pin: "999999", prompts: 1, want: pin.ErrIncorrect, retries: 2},
		{name: "and again", pin: "999999", prompts: 1, want: pin.ErrIncorrect, retries: 1},
		{name: "last try wrong blocks", pin: "999999", prompts: 1, want: piv.ErrPINBlocked},
		{name: "blocked: not even asked", pin: "123456", prompts: 0, want: piv.ErrPINBlocked},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			ch, err := f.Begin(ctx, authn.BeginRequest{PassportID: "carol", Purpose: authn.PurposeLogin})
			if err != nil {
				t.Fatal(err)
			}
			var asked []int
			prompt := func(_ context.Context, retries int) (string, error) {
				asked = append(asked, retries)
				return st.pin, nil
			}
			proof, err := Prove(ctx, card, slot, prompt, ch.Data)
			if len(asked) != st.prompts {
				t.Errorf("prompt called %d times (%v), want %d", len(asked), asked, st.prompts)
			}
			switch want := st.want; want {
			case nil:
				if err != nil {
					t.Fatalf("Prove: %v", err)
				}
				if _, err := f.Verify(ctx, authn.VerifyRequest{PassportID: "carol", ChallengeID: ch.ID, Response: proof}); err != nil {
					t.Fatalf("Verify: %v", err)
				}
			case pin.ErrIncorrect:
				var pe *pin.Error
				if !errors.As(err, &pe) || !errors.Is(err, pin.ErrIncorrect) || pe.Retries != st.retries {
					t.Fatalf("Prove = %v, want a *pin.Error with %d tries left", err, st.retries)
				}
				if n, err := card.PINRetries(ctx); err != nil || n != st.retries {
					t.Errorf("card has %d tries left (%v), want %d: the PIN was retried", n, err, st.retries)
				}
			default:
				if !errors.Is(err, want) {
					t.Fatalf("Prove = %v, want %v", err, want)
				}
			}
		})
	}
}
