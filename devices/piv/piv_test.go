package piv_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	gopiv "github.com/go-piv/piv-go/v2/piv"

	devpin "github.com/egate-bank/egate/devices/pin"
	"github.com/egate-bank/egate/devices/piv"
	"github.com/egate-bank/egate/simulators/pivcard"
	"github.com/egate-bank/egate/simulators/pivcard/pivtest"
)

// testCA is a small x509 CA standing in for the bank CA.
type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	seen *gopiv.Attestation
}

func newTestCA(t testing.TB) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test bank CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{key: key, cert: cert}
}

func (ca *testCA) IssueCertificate(_ context.Context, pub crypto.PublicKey, subject pkix.Name, a *piv.Attestation) (*x509.Certificate, error) {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if a.DeviceCert == nil || a.SlotCert == nil || !a.SlotCert.PublicKey.(equaler).Equal(pub) {
		return nil, errors.New("the issuer was not given the attestation certificates of this key")
	}
	ca.seen = a.Attestation
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: subject, NotBefore: time.Now().Add(-time.Minute),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

type rig struct {
	vendor *pivcard.Vendor
	path   string
	slot   pivtest.Slot
	in     *pivtest.Inserted
	drv    *piv.Driver
}

func newRig(t testing.TB) *rig { return newTracedRig(t, nil) }

// newTracedRig is newRig with a card that shows trace every command APDU
// and its response.
func newTracedRig(t testing.TB, trace func(cmd, resp []byte)) *rig {
	t.Helper()
	pivtest.NeedPCSC(t)
	r := &rig{vendor: pivtest.Vendor(t), path: filepath.Join(t.TempDir(), "card.json")}
	card, err := pivcard.Open(pivcard.Config{Path: r.path, Vendor: r.vendor, Trace: trace})
	if err != nil {
		t.Fatal(err)
	}
	r.slot = pivtest.TakeReader(t)
	r.in = pivtest.Insert(t, r.slot, card)
	roots := x509.NewCertPool()
	roots.AddCert(r.vendor.Cert)
	r.drv = piv.New(piv.Config{VendorRoots: roots})
	return r
}

func (r *rig) open(t testing.TB) *piv.Card {
	t.Helper()
	var c *piv.Card
	if err := pivtest.Until(10*time.Second, func() (err error) {
		c, err = r.drv.Open(context.Background(), r.slot.Reader)
		return err
	}); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestEnrollAndSign(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	card := r.open(t)
	if card.Serial() != r.in.Card.Serial() {
		t.Errorf("Serial = %d, want %d", card.Serial(), r.in.Card.Serial())
	}
	if _, err := r.drv.Open(ctx, r.slot.Reader); !errors.Is(err, piv.ErrInUse) {
		t.Errorf("second Open = %v, want ErrInUse", err)
	}
	if _, err := r.drv.Open(ctx, "No Such Reader 00 00"); !errors.Is(err, piv.ErrNoCard) {
		t.Errorf("Open(unknown) = %v, want ErrNoCard", err)
	}

	ca := newTestCA(t)
	subject := pkix.Name{CommonName: "customer 1001"}
	cert, att, err := card.Enroll(ctx, gopiv.SlotAuthentication, piv.EnrollOptions{Subject: subject}, ca)
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	if att.Serial != card.Serial() || ca.seen != att || cert.Subject.CommonName != "customer 1001" {
		t.Errorf("attestation %+v, cert subject %v", att, cert.Subject)
	}
	if err := cert.CheckSignatureFrom(ca.cert); err != nil {
		t.Errorf("certificate not from the CA: %v", err)
	}
	stored, err := card.Certificate(ctx, gopiv.SlotAuthentication)
	if err != nil || !stored.Equal(cert) {
		t.Fatalf("stored certificate: %v", err)
	}

	prompts := 0
	signer, err := card.Signer(ctx, gopiv.SlotAuthentication, func(_ context.Context, retries int) (string, error) {
		prompts++
		return "123456", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("transfer 12345 fen"))
	for i := 0; i < 2; i++ {
		sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
			t.Fatal("signature does not verify with the certificate")
		}
	}
	if prompts != 1 {
		t.Errorf("PIN asked %d times for a PIN-once key, want 1", prompts)
	}

	// Enrollment against a foreign vendor root fails.
	other := x509.NewCertPool()
	other.AddCert(pivtest.Vendor(t).Cert)
	card.Close()
	strict := piv.New(piv.Config{VendorRoots: other})
	c2, err := strict.Open(ctx, r.slot.Reader)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, _, err := c2.Enroll(ctx, gopiv.SlotSignature, piv.EnrollOptions{Subject: subject}, ca); !errors.Is(err, piv.ErrAttestation) {
		t.Errorf("Enroll with a foreign root = %v, want ErrAttestation", err)
	}
	if _, err := card.Certificate(ctx, gopiv.SlotAuthentication); !errors.Is(err, piv.ErrClosed) {
		t.Errorf("after Close = %v, want ErrClosed", err)
	}
}

func TestPINHandling(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	card := r.open(t)
	if _, _, err := card.Enroll(ctx, gopiv.SlotSignature, piv.EnrollOptions{Subject: pkix.Name{CommonName: "c"}, PINPolicy: gopiv.PINPolicyAlways}, newTestCA(t)); err != nil {
		t.Fatal(err)
	}
	var asked []int
	pin := "000000"
	signer, err := card.Signer(ctx, gopiv.SlotSignature, func(_ context.Context, retries int) (string, error) {
		asked = append(asked, retries)
		return pin, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	steps := []struct {
		name    string
		pin     string
		retries int // tries left in the *pin.Error; 0: blocked; -1: success
	}{
		{"wrong PIN", "000000", 2},
		{"wrong again", "000000", 1},
		{"right PIN", "123456", -1},
		{"PIN-always asks again", "123456", -1},
		{"wrong", "999999", 2},
		{"wrong", "999999", 1},
		{"blocks", "999999", 0},
	}
	for _, s := range steps {
		pin = s.pin
		before := len(asked)
		_, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
		var pe *devpin.Error
		switch {
		case s.retries == -1 && err != nil:
			t.Fatalf("%s: %v", s.name, err)
		case s.retries == 0 && !errors.Is(err, piv.ErrPINBlocked):
			t.Fatalf("%s: %v, want ErrPINBlocked", s.name, err)
		case s.retries > 0 && (!errors.As(err, &pe) || !errors.Is(err, devpin.ErrIncorrect) || pe.Retries != s.retries):
			t.Fatalf("%s: %v, want a *pin.Error with %d tries left", s.name, err, s.retries)
		}
		if len(asked) != before+1 {
			t.Fatalf("%s: prompt called %d times, want once (never retried)", s.name, len(asked)-before)
		}
	}
	if asked[0] != 3 || asked[1] != 2 {
		t.Errorf("prompt told retries %v, want 3 then 2 first", asked)
	}
	before := len(asked)
	if _, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256); !errors.Is(err, piv.ErrPINBlocked) {
		t.Errorf("blocked card: %v", err)
	}
	if len(asked) != before {
		t.Error("prompted for a PIN on a blocked card")
	}
}

// TestSignCommands: a signature is the one command it needs (GENERAL
// AUTHENTICATE) once the PIN is verified, or when the key needs none: no
// GET SERIAL probe and no VERIFY before it. A PIN-once key whose PIN is not
// verified yet is refused by the card (6982) without signing; the PIN is
// then asked for once and verified, and the signature made; a wrong PIN is
// a *pin.Error and nothing is signed.
func TestSignCommands(t *testing.T) {
	var mu sync.Mutex
	var cmds []string
	r := newTracedRig(t, func(cmd, resp []byte) {
		mu.Lock()
		defer mu.Unlock()
		if len(cmd) >= 2 && len(resp) >= 2 {
			cmds = append(cmds, fmt.Sprintf("%02X/%X", cmd[1], resp[len(resp)-2:]))
		}
	})
	taken := func() []string {
		mu.Lock()
		defer mu.Unlock()
		c := cmds
		cmds = nil
		return c
	}
	ctx := context.Background()
	card := r.open(t)
	ca := newTestCA(t)
	for _, slot := range []gopiv.Slot{gopiv.SlotAuthentication, gopiv.SlotCardAuthentication} {
		pp := gopiv.PINPolicyOnce
		if slot == gopiv.SlotCardAuthentication {
			pp = gopiv.PINPolicyNever
		}
		if _, _, err := card.Enroll(ctx, slot, piv.EnrollOptions{Subject: pkix.Name{CommonName: "c"}, PINPolicy: pp}, ca); err != nil {
			t.Fatal(err)
		}
	}
	pin, asked := "000000", 0
	prompt := func(context.Context, int) (string, error) { asked++; return pin, nil }
	once, err := card.Signer(ctx, gopiv.SlotAuthentication, prompt)
	if err != nil {
		t.Fatal(err)
	}
	never, err := card.Signer(ctx, gopiv.SlotCardAuthentication, nil)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	const ga, verify = "87", "20"
	steps := []struct {
		name   string
		s      *piv.Signer
		pin    string
		asks   int
		want   []string // INS/SW of each command the card saw
		signed bool
	}{
		{"PIN-once, not verified, wrong PIN", once, "000000", 1, []string{ga + "/6982", verify + "/63C3", verify + "/63C2"}, false},
		{"PIN-once, not verified", once, "123456", 1, []string{ga + "/6982", verify + "/63C2", verify + "/9000", ga + "/9000"}, true},
		{"PIN-once, verified", once, "", 0, []string{ga + "/9000"}, true},
		{"PIN-once, verified again", once, "", 0, []string{ga + "/9000"}, true},
		{"PIN-never", never, "", 0, []string{ga + "/9000"}, true},
	}
	taken()
	for _, s := range steps {
		pin, asked = s.pin, 0
		sig, err := s.s.Sign(rand.Reader, digest[:], crypto.SHA256)
		got := taken()
		if s.signed != (err == nil) {
			t.Fatalf("%s: signed %v, err %v", s.name, sig != nil, err)
		}
		if s.signed && !ecdsa.VerifyASN1(s.s.Public().(*ecdsa.PublicKey), digest[:], sig) {
			t.Fatalf("%s: the signature does not verify", s.name)
		}
		var pe *devpin.Error
		if !s.signed && (!errors.As(err, &pe) || pe.Retries != 2) {
			t.Fatalf("%s: %v, want a *pin.Error with 2 tries left", s.name, err)
		}
		if asked != s.asks || !slices.Equal(got, s.want) {
			t.Errorf("%s: prompt asked %d times, the card saw %v; want %d, %v", s.name, asked, got, s.asks, s.want)
		}
	}
}

func TestRemovalAndReconnect(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	card := r.open(t)
	if _, _, err := card.Enroll(ctx, gopiv.SlotAuthentication, piv.EnrollOptions{Subject: pkix.Name{CommonName: "c"}, PINPolicy: gopiv.PINPolicyNever}, newTestCA(t)); err != nil {
		t.Fatal(err)
	}
	signer, err := card.Signer(ctx, gopiv.SlotAuthentication, nil)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	if _, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	r.in.Remove()
	if _, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256); !errors.Is(err, piv.ErrCardRemoved) {
		t.Fatalf("Sign after removal = %v, want ErrCardRemoved", err)
	}
	card2, err := pivcard.Open(pivcard.Config{Path: r.path})
	if err != nil {
		t.Fatal(err)
	}
	r.in = pivtest.Insert(t, r.slot, card2)
	if err := pivtest.Until(10*time.Second, func() error {
		_, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Log(err)
		}
		return err
	}); err != nil {
		t.Fatalf("Sign after reinsertion: %v", err)
	}

	// Another card in the same reader is not ours.
	r.in.Remove()
	stranger := pivtest.NewCard(t, r.vendor)
	r.in = pivtest.Insert(t, r.slot, stranger)
	err = pivtest.Until(10*time.Second, func() error {
		_, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
		if errors.Is(err, piv.ErrCardRemoved) && errors.Unwrap(err) != nil && containsAnother(err) {
			return nil
		}
		return errors.New("not yet")
	})
	if err != nil {
		t.Errorf("Sign with a stranger card in the reader: want ErrCardRemoved naming another card")
	}
}

func containsAnother(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if s := e.Error(); len(s) > 0 && contains(s, "another card") {
			return true
		}
	}
	return false
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
