package ca

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	gopiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/egate-bank/egate/devices/piv"
)

// KindPIV is a customer's PIV token (a key generated on the card and
// attested by the card's vendor).
const KindPIV = "piv"

// Errors of PIV issuance.
var (
	// ErrAttestation: no attestation, or one that does not say the key was
	// generated on the expected card, in the expected slot, under a PIN.
	ErrAttestation = errors.New("the PIV key's attestation is not acceptable")
)

// PIVEvidence is the attestation as the card produced it: the card's
// device attestation certificate (slot f9, issued by the vendor) and the
// certificate it signed for the generated key.
type PIVEvidence struct {
	DeviceCert *x509.Certificate
	SlotCert   *x509.Certificate
	// VendorRoots are the vendor attestation roots the CA trusts.
	VendorRoots *x509.CertPool
}

// PIVRequest asks for a PIV token certificate. There is no CSR: a CSR
// would need the card's PIN (the key signs only after VERIFY), and the
// attestation proves more than a CSR does, namely that the key was
// generated on the card and cannot leave it.
type PIVRequest struct {
	Owner string           // the passport id
	Key   crypto.PublicKey // the generated key, as the card returned it
	// Serial and Slot are where the key must be: the card's serial read
	// from the card being enrolled and the slot enrollment generated in.
	Serial uint32
	Slot   gopiv.Slot
	// Attestation is the verified attestation (devices/piv checks the chain
	// to the vendor roots and that the attested key is Key before it asks
	// the CA). Required.
	Attestation *gopiv.Attestation
	// Evidence, when present, is verified here again: chain to the vendor
	// roots, slot and serial, and that the attested key is Key.
	Evidence *PIVEvidence
	// AllowNoPIN accepts a key whose PIN policy is "never"; by default a
	// level-4 key must ask for the PIN.
	AllowNoPIN bool
	Validity   time.Duration // 3 years when zero
}

// IssuePIV checks a PIV key's attestation and signs its certificate:
// O=<bank>, OU=PIV, CN=<passport id>, serialNumber=<card serial>/<slot>,
// digitalSignature, clientAuth.
func (c *CA) IssuePIV(ctx context.Context, req PIVRequest) (*x509.Certificate, error) {
	if c.signer == nil {
		return nil, fmt.Errorf("the CA was opened without its issuing key")
	}
	if req.Owner == "" || strings.ContainsAny(req.Owner, "\x00\n") {
		return nil, fmt.Errorf("%w: owner is empty or malformed", ErrBadCSR)
	}
	if err := acceptableKey(req.Key); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := checkPIVAttestation(req); err != nil {
		return nil, err
	}
	if req.Validity == 0 {
		req.Validity = 3 * 365 * 24 * time.Hour
	}
	tmpl := &x509.Certificate{
		SerialNumber: mustSerial(),
		Subject: pkix.Name{Organization: c.issuing.Subject.Organization, OrganizationalUnit: []string{"PIV"},
			CommonName: req.Owner, SerialNumber: strconv.FormatUint(uint64(req.Serial), 10) + "/" + req.Slot.String()},
		NotBefore:             c.now().Add(-time.Minute).UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	tmpl.NotAfter = tmpl.NotBefore.Add(req.Validity)
	if tmpl.NotAfter.After(c.issuing.NotAfter) {
		tmpl.NotAfter = c.issuing.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.issuing, req.Key, c.signer)
	if err != nil {
		return nil, fmt.Errorf("signing the certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	_, err = c.db.Exec(ctx, `INSERT INTO ca_certs (serial, kind, owner, subject, cert_der, not_after_ms, issued_ms) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		SerialHex(cert.SerialNumber), KindPIV, req.Owner, cert.Subject.String(), der, cert.NotAfter.UnixMilli(), c.now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("recording the issued certificate: %w", err)
	}
	return cert, nil
}

func checkPIVAttestation(req PIVRequest) error {
	att := req.Attestation
	if att == nil {
		return fmt.Errorf("%w: none given", ErrAttestation)
	}
	if err := samePlace(att, req.Serial, req.Slot); err != nil {
		return err
	}
	if att.PINPolicy != gopiv.PINPolicyOnce && att.PINPolicy != gopiv.PINPolicyAlways && !req.AllowNoPIN {
		return fmt.Errorf("%w: the key does not require the PIN", ErrAttestation)
	}
	if req.Evidence == nil {
		return nil
	}
	ev := req.Evidence
	if ev.DeviceCert == nil || ev.SlotCert == nil || ev.VendorRoots == nil {
		return fmt.Errorf("%w: incomplete evidence", ErrAttestation)
	}
	got, err := (&gopiv.Verifier{Roots: ev.VendorRoots}).Verify(ev.DeviceCert, ev.SlotCert)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrAttestation, err)
	}
	if err := samePlace(got, req.Serial, req.Slot); err != nil {
		return err
	}
	if *got != *att {
		return fmt.Errorf("%w: the evidence does not match the attestation given", ErrAttestation)
	}
	k, ok := ev.SlotCert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !k.Equal(req.Key) {
		return fmt.Errorf("%w: the attested key is not the key to certify", ErrAttestation)
	}
	return nil
}

func samePlace(att *gopiv.Attestation, serial uint32, slot gopiv.Slot) error {
	if att.Serial != serial {
		return fmt.Errorf("%w: attested on card %d, not on card %d", ErrAttestation, att.Serial, serial)
	}
	if att.Slot != slot {
		return fmt.Errorf("%w: attested for slot %s, not slot %s", ErrAttestation, att.Slot, slot)
	}
	return nil
}

// PIVIssuer is the bank CA as the devices/piv enrollment's Issuer for one
// customer's card and slot: the attestation devices/piv verified must name
// that card and slot.
type PIVIssuer struct {
	CA     *CA
	Owner  string
	Serial uint32
	Slot   gopiv.Slot
	// VendorRoots, when set, make the CA verify the card's attestation
	// certificates itself (PIVEvidence) rather than trust the driver's reading.
	VendorRoots *x509.CertPool
	// Issued is called with every certificate issued (so that a caller can
	// revoke it if the rest of the enrollment fails). May be nil.
	Issued func(*x509.Certificate)
}

var _ piv.Issuer = (*PIVIssuer)(nil)

// IssueCertificate implements piv.Issuer. subject is ignored: the CA sets
// the subject from the owner and the attested card.
func (p *PIVIssuer) IssueCertificate(ctx context.Context, pub crypto.PublicKey, _ pkix.Name, att *piv.Attestation) (*x509.Certificate, error) {
	if att == nil {
		return nil, fmt.Errorf("%w: none given", ErrAttestation)
	}
	req := PIVRequest{Owner: p.Owner, Key: pub, Serial: p.Serial, Slot: p.Slot, Attestation: att.Attestation}
	if p.VendorRoots != nil {
		// The CA checks the card's own certificates too: the chain to the
		// vendor root and that the attested key is the one it certifies.
		if att.DeviceCert == nil || att.SlotCert == nil {
			return nil, fmt.Errorf("%w: the attestation certificates are missing", ErrAttestation)
		}
		req.Evidence = &PIVEvidence{DeviceCert: att.DeviceCert, SlotCert: att.SlotCert, VendorRoots: p.VendorRoots}
	}
	cert, err := p.CA.IssuePIV(ctx, req)
	if err != nil {
		return nil, err
	}
	if p.Issued != nil {
		p.Issued(cert)
	}
	return cert, nil
}
