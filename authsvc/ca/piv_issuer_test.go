package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"

	gopiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/egate-bank/egate/devices/piv"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// attestVendor builds a PIV attestation chain the way a YubiKey's is laid
// out (vendor root → device attestation CA → per-slot certificate with
// Yubico's extensions, slot in the CN), independently of the simulator, so
// that piv-go's Verifier is the reference that parses it.
type attestVendor struct {
	root    *x509.Certificate
	rootKey *ecdsa.PrivateKey
}

func newAttestVendor(t testing.TB) *attestVendor {
	k := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test PIV vendor root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &attestVendor{root: c, rootKey: k}
}

func (v *attestVendor) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(v.root)
	return p
}

// attest returns the device certificate and the slot certificate for pub.
func (v *attestVendor) attest(t testing.TB, serial uint32, slot string, pinPolicy byte, pub crypto.PublicKey) (dev, slotCert *x509.Certificate) {
	t.Helper()
	dk := newKey(t)
	dt := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "test PIV attestation"},
		NotBefore: v.root.NotBefore, NotAfter: v.root.NotAfter, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, dt, v.root, dk.Public(), v.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	dev, _ = x509.ParseCertificate(der)
	ser, _ := asn1.Marshal(int64(serial))
	yubi := func(n int) asn1.ObjectIdentifier { return asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, n} }
	st := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "YubiKey PIV Attestation " + slot},
		NotBefore: dev.NotBefore, NotAfter: dev.NotAfter,
		ExtraExtensions: []pkix.Extension{
			{Id: yubi(3), Value: []byte{5, 7, 1}},
			{Id: yubi(7), Value: ser},
			{Id: yubi(8), Value: []byte{pinPolicy, 1}},
		}}
	der, err = x509.CreateCertificate(rand.Reader, st, dev, pub, dk)
	if err != nil {
		t.Fatal(err)
	}
	slotCert, _ = x509.ParseCertificate(der)
	return dev, slotCert
}

func TestIssuePIV(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := newCA(t, db)
		vendor, foreign := newAttestVendor(t), newAttestVendor(t)
		key, other := newKey(t), newKey(t)
		p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		const serial = 1234567
		slot := gopiv.SlotAuthentication
		// What piv-go's Verifier reports for the chain: the reference.
		dev, sc := vendor.attest(t, serial, "9a", 2, key.Public())
		att, err := (&gopiv.Verifier{Roots: vendor.pool()}).Verify(dev, sc)
		if err != nil {
			t.Fatalf("the test's attestation does not verify with piv-go: %v", err)
		}
		if att.Serial != serial || att.Slot != slot || att.PINPolicy != gopiv.PINPolicyOnce {
			t.Fatalf("piv-go parsed %+v", att)
		}
		with := func(f func(a *gopiv.Attestation)) *gopiv.Attestation { a := *att; f(&a); return &a }
		good := &PIVEvidence{DeviceCert: dev, SlotCert: sc, VendorRoots: vendor.pool()}
		fdev, fsc := foreign.attest(t, serial, "9a", 2, key.Public())
		odev, osc := vendor.attest(t, serial, "9a", 2, other.Public())
		adev, asc := vendor.attest(t, serial, "9a", 3, key.Public()) // PIN always

		cases := []struct {
			name string
			req  PIVRequest
			want error
		}{
			{name: "attestation from the driver", req: PIVRequest{Attestation: att}},
			{name: "with evidence", req: PIVRequest{Attestation: att, Evidence: good}},
			{name: "no attestation", req: PIVRequest{}, want: ErrAttestation},
			{name: "another card", req: PIVRequest{Attestation: with(func(a *gopiv.Attestation) { a.Serial++ })}, want: ErrAttestation},
			{name: "another slot", req: PIVRequest{Attestation: with(func(a *gopiv.Attestation) { a.Slot = gopiv.SlotSignature })}, want: ErrAttestation},
			{name: "no PIN", req: PIVRequest{Attestation: with(func(a *gopiv.Attestation) { a.PINPolicy = gopiv.PINPolicyNever })}, want: ErrAttestation},
			{name: "no PIN allowed", req: PIVRequest{AllowNoPIN: true, Attestation: with(func(a *gopiv.Attestation) { a.PINPolicy = gopiv.PINPolicyNever })}},
			{name: "evidence from a foreign vendor", req: PIVRequest{Attestation: att, Evidence: &PIVEvidence{DeviceCert: fdev, SlotCert: fsc, VendorRoots: vendor.pool()}}, want: ErrAttestation},
			{name: "evidence for another key", req: PIVRequest{Attestation: att, Evidence: &PIVEvidence{DeviceCert: odev, SlotCert: osc, VendorRoots: vendor.pool()}}, want: ErrAttestation},
			{name: "evidence disagrees with the attestation", req: PIVRequest{Attestation: att, Evidence: &PIVEvidence{DeviceCert: adev, SlotCert: asc, VendorRoots: vendor.pool()}}, want: ErrAttestation},
			{name: "slot cert signed by another device", req: PIVRequest{Attestation: att, Evidence: &PIVEvidence{DeviceCert: odev, SlotCert: sc, VendorRoots: vendor.pool()}}, want: ErrAttestation},
			{name: "incomplete evidence", req: PIVRequest{Attestation: att, Evidence: &PIVEvidence{SlotCert: sc}}, want: ErrAttestation},
			{name: "P-384 key", req: PIVRequest{Attestation: att, Key: p384.Public()}, want: ErrBadCSR},
			{name: "no owner", req: PIVRequest{Attestation: att, Owner: "-"}, want: ErrBadCSR},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				req := tc.req
				if req.Owner == "" {
					req.Owner = "alice"
				} else if req.Owner == "-" {
					req.Owner = ""
				}
				if req.Key == nil {
					req.Key = key.Public()
				}
				req.Serial, req.Slot = serial, slot
				cert, err := c.IssuePIV(ctx, req)
				if tc.want != nil {
					if !errors.Is(err, tc.want) {
						t.Fatalf("IssuePIV = %v, want %v", err, tc.want)
					}
					return
				}
				if err != nil {
					t.Fatalf("IssuePIV: %v", err)
				}
				if err := c.Verify(ctx, cert); err != nil {
					t.Errorf("issued certificate does not verify: %v", err)
				}
				if !cert.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
					t.Error("certified another key")
				}
				if cert.Subject.CommonName != "alice" || cert.Subject.OrganizationalUnit[0] != "PIV" || cert.Subject.SerialNumber != "1234567/9a" {
					t.Errorf("subject %v", cert.Subject)
				}
			})
		}
		issued, err := c.List(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if len(issued) != 3 {
			t.Fatalf("%d certificates issued, want 3", len(issued))
		}
		for _, i := range issued {
			if i.Kind != KindPIV {
				t.Errorf("kind %q", i.Kind)
			}
		}

		// The devices/piv Issuer: bound to a card and a slot.
		var seen []*x509.Certificate
		iss := &PIVIssuer{CA: c, Owner: "bob", Serial: serial, Slot: slot, Issued: func(c *x509.Certificate) { seen = append(seen, c) }}
		cert, err := iss.IssueCertificate(ctx, key.Public(), pkix.Name{CommonName: "ignored"}, &piv.Attestation{Attestation: att})
		if err != nil || cert.Subject.CommonName != "bob" || len(seen) != 1 || seen[0] != cert {
			t.Fatalf("PIVIssuer: %v, %v, %d seen", err, cert, len(seen))
		}
		iss.Serial++
		if _, err := iss.IssueCertificate(ctx, key.Public(), pkix.Name{}, &piv.Attestation{Attestation: att}); !errors.Is(err, ErrAttestation) || len(seen) != 1 {
			t.Fatalf("PIVIssuer for another card = %v (%d seen), want ErrAttestation", err, len(seen))
		}
		iss.Serial--

		// With the vendor roots, the issuer hands the card's certificates to
		// the CA, which checks them itself.
		iss.VendorRoots = vendor.pool()
		if _, err := iss.IssueCertificate(ctx, key.Public(), pkix.Name{}, &piv.Attestation{Attestation: att}); !errors.Is(err, ErrAttestation) {
			t.Fatalf("PIVIssuer with roots but no certificates = %v, want ErrAttestation", err)
		}
		if _, err := iss.IssueCertificate(ctx, key.Public(), pkix.Name{}, &piv.Attestation{Attestation: att, DeviceCert: odev, SlotCert: osc}); !errors.Is(err, ErrAttestation) {
			t.Fatalf("PIVIssuer with another key's certificates = %v, want ErrAttestation", err)
		}
		if _, err := iss.IssueCertificate(ctx, key.Public(), pkix.Name{}, &piv.Attestation{Attestation: att, DeviceCert: dev, SlotCert: sc}); err != nil {
			t.Fatalf("PIVIssuer with the card's certificates: %v", err)
		}
	})
}
